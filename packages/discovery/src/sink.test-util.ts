import type { PeerSink, PeerSource } from "@tinycache/core";

export type SinkEvent = { kind: "update"; urls: string[] } | { kind: "fail"; reason: unknown };

/**
 * Records what a source reports, and lets a test await the next report that matches
 * (events, not sleeps). `tee` wraps a source so a membership gets the reports too.
 */
export function recorder() {
  const events: SinkEvent[] = [];
  const waiters: { from: number; match: (e: SinkEvent) => boolean; done: () => void }[] = [];
  const push = (e: SinkEvent) => {
    events.push(e);
    for (let i = waiters.length - 1; i >= 0; i--) {
      const w = waiters[i];
      if (w && events.slice(w.from).some(w.match)) {
        waiters.splice(i, 1);
        w.done();
      }
    }
  };
  const sink: PeerSink = {
    update: (urls) => push({ kind: "update", urls: [...urls] }),
    fail: (reason) => push({ kind: "fail", reason }),
    leave: () => {
      throw new Error("a discovery source never calls leave");
    },
  };
  return {
    sink,
    events,
    updates: () => events.flatMap((e) => (e.kind === "update" ? [e.urls] : [])),
    failures: () => events.flatMap((e) => (e.kind === "fail" ? [e.reason] : [])),
    /** The first event from index `from` on (default: the next one) that matches. */
    next(
      match: (e: SinkEvent) => boolean = () => true,
      from = events.length,
      timeoutMs = 5000,
    ): Promise<SinkEvent> {
      const find = () => events.slice(from).find(match) as SinkEvent;
      if (events.slice(from).some(match)) return Promise.resolve(find());
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          reject(new Error(`no matching report within ${timeoutMs} ms; got ${show(events)}`));
        }, timeoutMs);
        waiters.push({
          from,
          match,
          done: () => {
            clearTimeout(timer);
            resolve(find());
          },
        });
      });
    },
    /** A source that reports to this recorder and to whoever subscribes (followPeers). */
    tee(source: PeerSource): PeerSource {
      return {
        name: source.name,
        subscribe(outer, signal) {
          source.subscribe(
            {
              update(urls) {
                sink.update(urls);
                outer.update(urls);
              },
              fail(reason) {
                sink.fail(reason);
                outer.fail(reason);
              },
              leave(urls) {
                outer.leave(urls);
              },
            },
            signal,
          );
        },
      };
    },
  };
}

export const isUpdate =
  (urls?: readonly string[]) =>
  (e: SinkEvent): boolean =>
    e.kind === "update" && (urls === undefined || JSON.stringify(e.urls) === JSON.stringify(urls));

export const isFail = (e: SinkEvent): boolean => e.kind === "fail";

function show(events: SinkEvent[]): string {
  return JSON.stringify(
    events.map((e) => (e.kind === "update" ? e.urls : `fail: ${String(e.reason)}`)),
  );
}

/** A pool as followPeers sees it: its own URL and a record of each setPeers. */
export function fakePool(self: string) {
  const calls: string[][] = [];
  return {
    self,
    calls,
    setPeers(...urls: string[]) {
      calls.push(urls);
    },
  };
}

/** Yields to the event loop once (I/O callbacks and timers already due run first). */
export const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
