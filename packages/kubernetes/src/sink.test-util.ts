import type { PeerSink } from "@tinycache/core";

export type SinkEvent =
  | { kind: "update"; urls: string[] }
  | { kind: "fail"; reason: unknown }
  | { kind: "leave"; urls: string[] };

/**
 * Records what a source reports, and lets a test await the next report that matches
 * (events, not sleeps). Reports are consumed in order: `next` searches from just after
 * the report it last returned, so a report that came before the test asked still counts.
 */
export function recorder() {
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
  };
}

const same = (a: readonly string[], b: readonly string[]) =>
  a.length === b.length && a.every((u, i) => u === b[i]);

export const isUpdate =
  (urls?: readonly string[]) =>
  (e: SinkEvent): boolean =>
    e.kind === "update" && (urls === undefined || same(e.urls, urls));

export const isLeave =
  (urls?: readonly string[]) =>
  (e: SinkEvent): boolean =>
    e.kind === "leave" && (urls === undefined || same(e.urls, urls));

export const isFail = (e: SinkEvent): boolean => e.kind === "fail";

function show(events: SinkEvent[]): string {
  return JSON.stringify(
    events.map((e) =>
      e.kind === "fail" ? `fail: ${String((e.reason as Error)?.message ?? e.reason)}` : e,
    ),
  );
}

/** Timers as the source's `setTimer` seam wants them (real, unref'ed), with a live count. */
export function countedTimers() {
  const live = new Set<NodeJS.Timeout>();
  return {
    live: () => live.size,
    setTimer(fn: () => void, ms: number): () => void {
      const t = setTimeout(() => {
        live.delete(t);
        fn();
      }, ms);
      t.unref();
      live.add(t);
      return () => {
        clearTimeout(t);
        live.delete(t);
      };
    },
  };
}
