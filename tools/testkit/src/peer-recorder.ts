// The shapes of @tinycache/core's PeerSink and PeerSource, written out so the testkit
// needs no dependency on core (core's own tests use it).
interface PeerSink {
  update(urls: readonly string[]): void;
  fail(reason: unknown): void;
  leave(urls: readonly string[]): void;
}
interface PeerSource {
  readonly name: string;
  subscribe(sink: PeerSink, signal: AbortSignal): void;
}

/** One report a {@link PeerSource} made to its sink. */
export type SinkEvent =
  | { kind: "update"; urls: string[] }
  | { kind: "fail"; reason: unknown }
  | { kind: "leave"; urls: string[] };

/**
 * Records what a peer source reports, and lets a test await the next report that matches
 * (events, not sleeps). Reports are consumed in order: `next` searches from just after the
 * report it last returned, so a report that came before the test asked still counts.
 * `tee` wraps a source so a membership (followPeers) gets the reports too.
 */
export function peerRecorder() {
  const events: SinkEvent[] = [];
  let cursor = 0;
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
    leave: (urls) => push({ kind: "leave", urls: [...urls] }),
  };
  return {
    sink,
    events,
    updates: () => events.flatMap((e) => (e.kind === "update" ? [e.urls] : [])),
    failures: () => events.flatMap((e) => (e.kind === "fail" ? [e.reason] : [])),
    /** The first report from index `from` on (default: after the last one returned) that matches. */
    next(
      match: (e: SinkEvent) => boolean = () => true,
      from = cursor,
      timeoutMs = 5000,
    ): Promise<SinkEvent> {
      const find = () => {
        const i = events.findIndex((e, j) => j >= from && match(e));
        cursor = i + 1;
        return events[i] as SinkEvent;
      };
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
                sink.leave(urls);
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

const same = (a: readonly string[], b: readonly string[]) =>
  a.length === b.length && a.every((u, i) => u === b[i]);

/** Matches an update (with exactly `urls`, in order, when given). */
export const isUpdate =
  (urls?: readonly string[]) =>
  (e: SinkEvent): boolean =>
    e.kind === "update" && (urls === undefined || same(e.urls, urls));

/** Matches a leave (with exactly `urls`, when given). */
export const isLeave =
  (urls?: readonly string[]) =>
  (e: SinkEvent): boolean =>
    e.kind === "leave" && (urls === undefined || same(e.urls, urls));

/** Matches a failure. */
export const isFail = (e: SinkEvent): boolean => e.kind === "fail";

function show(events: SinkEvent[]): string {
  return JSON.stringify(
    events.map((e) =>
      e.kind === "fail" ? `fail: ${String((e.reason as Error)?.message ?? e.reason)}` : e,
    ),
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
