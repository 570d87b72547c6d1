/**
 * A closed request loop for fault tests: `concurrency` workers each send one request after
 * another; the test marks phases ("before", "during", "after") and reads, per phase, the
 * throughput, the failures and how many requests took at least `slowMs` (e.g. a full peer
 * timeout).
 */

/** One phase's figures. */
export interface LoadPhase {
  name: string;
  /** Requests that ended in this phase. */
  requests: number;
  failures: number;
  /** Requests that took at least `slowMs`. */
  slow: number;
  maxLatencyMs: number;
  durationMs: number;
  /** requests / duration. */
  perSecond: number;
}

export interface LoadLoop {
  /** Ends the current phase and starts `name`. */
  phase(name: string): void;
  /** Failure messages so far (the first 20). */
  readonly failures: readonly string[];
  /** Stops the workers (after their request in flight) and returns every phase. */
  end(): Promise<LoadPhase[]>;
}

export interface LoadLoopOptions {
  concurrency: number;
  /** Sends request number `i`; throws (or rejects) on a failure. */
  request: (i: number) => Promise<void>;
  /** A request this long or longer counts as slow. */
  slowMs: number;
  /** First phase's name. @default "warmup" */
  first?: string;
}

export function startLoadLoop(o: LoadLoopOptions): LoadLoop {
  let stop = false;
  let next = 0;
  const failures: string[] = [];
  const phases: LoadPhase[] = [];
  let current: LoadPhase & { startedAt: number } = fresh(o.first ?? "warmup");

  function fresh(name: string) {
    return {
      name,
      requests: 0,
      failures: 0,
      slow: 0,
      maxLatencyMs: 0,
      durationMs: 0,
      perSecond: 0,
      startedAt: performance.now(),
    };
  }
  const close = (): void => {
    const { startedAt, ...p } = current;
    p.durationMs = Math.round(performance.now() - startedAt);
    p.perSecond = Math.round((p.requests * 1000) / Math.max(1, p.durationMs));
    p.maxLatencyMs = Math.round(p.maxLatencyMs);
    phases.push(p);
  };

  const worker = async (): Promise<void> => {
    while (!stop) {
      const i = next++;
      const t0 = performance.now();
      let failed = false;
      try {
        await o.request(i);
      } catch (err) {
        failed = true;
        if (failures.length < 20) failures.push(`#${i}: ${String(err)}`);
      }
      const ms = performance.now() - t0;
      const p = current;
      p.requests++;
      if (failed) p.failures++;
      if (ms >= o.slowMs) p.slow++;
      if (ms > p.maxLatencyMs) p.maxLatencyMs = ms;
    }
  };
  const done = Promise.all(Array.from({ length: o.concurrency }, () => worker()));

  return {
    failures,
    phase(name) {
      close();
      current = fresh(name);
    },
    async end() {
      stop = true;
      await done;
      close();
      return phases;
    },
  };
}
