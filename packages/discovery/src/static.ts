import type { PeerSource } from "@tinycache/core";

/**
 * A fixed peer list, as a {@link PeerSource}: reports it once, on subscribe. Useful where a
 * source is expected (tests, a fallback) and the list is known up front.
 * @throws TypeError when `urls` is not an array of strings.
 */
export function staticSource(urls: readonly string[]): PeerSource {
  if (!Array.isArray(urls) || urls.some((u) => typeof u !== "string")) {
    throw new TypeError("staticSource: urls must be an array of strings");
  }
  const list = Object.freeze(urls.slice());
  return {
    name: "static",
    subscribe(sink, signal) {
      if (!signal.aborted) sink.update(list);
    },
  };
}
