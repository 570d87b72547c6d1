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

/** `signal` combined with a timeout of `ms` (none when `ms <= 0`). */
export function withTimeout(signal: AbortSignal | undefined, ms: number): AbortSignal | undefined {
  if (!(ms > 0) || ms === Number.POSITIVE_INFINITY) return signal;
  const t = AbortSignal.timeout(ms);
  return signal === undefined ? t : AbortSignal.any([signal, t]);
}
