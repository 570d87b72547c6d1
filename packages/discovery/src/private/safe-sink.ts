import type { PeerSink } from "@tinycache/core";

/**
 * The sink's calls, guarded: a source runs them from timers and I/O callbacks, where a
 * throw would be an uncaught exception. A sink that throws (followPeers does not) loses
 * that one report; the source goes on.
 */
export function safeSink(sink: PeerSink, signal: AbortSignal) {
  return {
    update(urls: readonly string[]): void {
      if (signal.aborted) return;
      try {
        sink.update(urls);
      } catch {
        // see above
      }
    },
    fail(reason: unknown): void {
      if (signal.aborted) return;
      try {
        sink.fail(reason);
      } catch {
        // see above
      }
    },
  };
}
