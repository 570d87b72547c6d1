import type { PeerSink } from "@tinycache/core";

/**
 * The sink's calls, guarded: a source runs them from timers and I/O callbacks, where a
 * throw would be an uncaught exception (or, inside client-node's watch callback, silently
 * end the processing of that event). A sink that throws (followPeers does not) loses that
 * one report; the source goes on. Nothing is reported once `signal` has aborted.
 */
export function safeSink(sink: PeerSink, signal: AbortSignal): PeerSink {
  const guard =
    <A>(call: (a: A) => void) =>
    (a: A): void => {
      if (signal.aborted) return;
      try {
        call(a);
      } catch {
        // see above
      }
    };
  return {
    update: guard((urls: readonly string[]) => sink.update(urls)),
    fail: guard((reason: unknown) => sink.fail(reason)),
    leave: guard((urls: readonly string[]) => sink.leave(urls)),
  };
}
