/**
 * Settles with `p`, or rejects with `signal.reason` as soon as `signal` aborts, whichever
 * comes first: a caller's wait ends at once even if the work it waits for does not honour
 * the signal. `p`'s later rejection is handled so it is never reported as unhandled.
 */
export function raceSignal<T>(p: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (signal === undefined) return p;
  if (signal.aborted) {
    p.catch(() => {});
    return Promise.reject(signal.reason);
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener("abort", onAbort);
        resolve(v);
      },
      (err: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(err);
      },
    );
  });
}

/** A signal for one call, and the function that releases its timer and listener. */
export interface CallSignal {
  signal: AbortSignal | undefined;
  done: () => void;
}

const NOTHING = (): void => {};

/**
 * `signal` combined with a timeout of `ms` (none when `ms <= 0`). Built from a timer and
 * a controller rather than `AbortSignal.timeout` + `AbortSignal.any`: those are held only
 * weakly, so when the awaited call is itself unreachable (a peer that never answers) the
 * whole chain can be garbage collected and the timeout never fires. A live timer keeps
 * the controller reachable until `done()`.
 */
export function callSignal(signal: AbortSignal | undefined, ms: number): CallSignal {
  if (!(ms > 0) || ms === Number.POSITIVE_INFINITY) return { signal, done: NOTHING };
  const ac = new AbortController();
  const timer = setTimeout(() => {
    ac.abort(new DOMException(`timed out after ${ms} ms`, "TimeoutError"));
  }, ms);
  timer.unref?.();
  if (signal === undefined) {
    return { signal: ac.signal, done: () => clearTimeout(timer) };
  }
  if (signal.aborted) {
    clearTimeout(timer);
    ac.abort(signal.reason);
    return { signal: ac.signal, done: NOTHING };
  }
  const onAbort = (): void => ac.abort(signal.reason);
  signal.addEventListener("abort", onAbort, { once: true });
  return {
    signal: ac.signal,
    done: () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", onAbort);
    },
  };
}
