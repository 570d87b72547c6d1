import { describe, expect, it } from "vitest";
import { mountable, requestPath } from "./mount.js";

describe("requestPath", () => {
  it.each([
    ["/_groupcache/scores/Tom", "/_groupcache/scores/Tom"],
    ["/a/b?x=1&y=/z", "/a/b"],
    ["/?", "/"],
    ["/", "/"],
    ["http://host:8001/a/b?q", "/a/b"],
    ["https://host/a", "/a"],
    ["http://host", "/"],
    ["http://host?x=/a", "/"],
    ["http://host#/a", "/"],
  ])("%j -> %j", (url, path) => {
    expect(requestPath(url)).toBe(path);
  });

  it.each([undefined, "", "*", "host:443", "a/b", "?x"])("%j is no path (undefined)", (url) => {
    expect(requestPath(url)).toBeUndefined();
  });
});

describe("mountable", () => {
  /** A handler whose peer paths start with /peer/, recording what it served. */
  const make = () => {
    const served: string[] = [];
    const handler = mountable<{ url?: string }, string>(
      (req, res) => served.push(`${res} ${req.url}`),
      (req) => requestPath(req.url)?.startsWith("/peer/") === true,
    );
    return { handler, served };
  };

  it("with next: serves peer paths, hands every other request to next (called with nothing)", () => {
    const { handler, served } = make();
    const calls: unknown[][] = [];
    const next = (...args: unknown[]) => calls.push(args);
    handler({ url: "/peer/x" }, "res1", next);
    handler({ url: "/app?x=1" }, "res2", next);
    handler({ url: "*" }, "res3", next);
    expect(served).toEqual(["res1 /peer/x"]);
    expect(calls).toEqual([[], []]);
  });

  it("without next, or with a next that is not a function: serves everything", () => {
    const { handler, served } = make();
    handler({ url: "/app" }, "res1");
    handler({ url: "/app" }, "res2", "not a function" as never);
    expect(served).toEqual(["res1 /app", "res2 /app"]);
  });

  it("handles(req) says which requests are peer calls", () => {
    const { handler } = make();
    expect(handler.handles({ url: "/peer/x?q" })).toBe(true);
    expect(handler.handles({ url: "http://h/peer/x" })).toBe(true);
    expect(handler.handles({ url: "/peers" })).toBe(false);
    expect(handler.handles({})).toBe(false);
  });
});
