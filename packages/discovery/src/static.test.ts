import { followPeers } from "@tinycache/core";
import { fakePool, peerRecorder as recorder } from "@tinycache/testkit";
import { describe, expect, it } from "vitest";
import { staticSource } from "./static.js";

const A = "http://10.0.0.1:8001";
const B = "http://10.0.0.2:8001";

describe("staticSource", () => {
  it("reports its list once, on subscribe, as a copy", () => {
    const urls = [B, A];
    const source = staticSource(urls);
    urls.push("http://10.0.0.3:8001");
    const rec = recorder();
    source.subscribe(rec.sink, new AbortController().signal);
    expect(source.name).toBe("static");
    expect(rec.events).toEqual([{ kind: "update", urls: [B, A] }]);
  });

  it("reports nothing to an aborted subscription", () => {
    const rec = recorder();
    staticSource([A]).subscribe(rec.sink, AbortSignal.abort());
    expect(rec.events).toEqual([]);
  });

  it("drives a pool through followPeers", () => {
    const pool = fakePool(A);
    const m = followPeers(pool, staticSource([B, A, "not a url"]));
    expect(pool.calls).toEqual([[A, B]]);
    expect(m.source).toBe("static");
    expect(m.stats.invalidUrls).toBe(1);
    m.close();
  });

  it("refuses what is not an array of strings", () => {
    expect(() => staticSource("http://a:1" as never)).toThrow(
      /staticSource: urls must be an array/,
    );
    expect(() => staticSource([A, 1] as never)).toThrow(TypeError);
  });
});
