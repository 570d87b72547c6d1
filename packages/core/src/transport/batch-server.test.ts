import { ByteView } from "@tinycache/byteview";
import { describe, expect, it } from "vitest";
import { InvalidArgumentError, NotFoundError, OverloadedError } from "../errors.js";
import type { ServedGroup } from "../peers.js";
import { batchSizeError, serveBatch, serveCachedGet } from "./batch-server.js";

/** A served group whose values are `v:<key>`, with a few keys that fail. */
function group(): ServedGroup & { calls: string[]; inflight: number; peak: number } {
  const g = {
    name: "g",
    maxKeyBytes: 8,
    calls: [] as string[],
    inflight: 0,
    peak: 0,
    async serveGet(key: string) {
      g.calls.push(key);
      g.inflight++;
      g.peak = Math.max(g.peak, g.inflight);
      await new Promise((resolve) => setImmediate(resolve));
      g.inflight--;
      if (key === "missing") throw new NotFoundError(key);
      if (key === "broken") throw new Error("getter failed");
      if (key === "busy") throw new OverloadedError("busy");
      if (key.startsWith("big")) return { value: ByteView.from(new Uint8Array(1000)) };
      return { value: ByteView.from(`v:${key}`), expiresAt: 42 };
    },
    serveSet() {},
    serveRemove() {},
  };
  return g;
}

const keyError = (g: ServedGroup, key: string) =>
  Buffer.byteLength(key) > g.maxKeyBytes ? new InvalidArgumentError("key too long") : undefined;

describe("serveBatch", () => {
  it("answers each key on its own, in order, looking them up concurrently", async () => {
    const g = group();
    const out = await serveBatch(g, ["a", "missing", "broken", "busy", "toolongkey", "b"], {
      keyError,
      maxAnswerBytes: 1 << 20,
    });
    expect(out.map((a) => (a.ok ? a.value.toString() : a.code))).toEqual([
      "v:a",
      "not_found",
      "internal",
      "unavailable",
      "invalid_argument",
      "v:b",
    ]);
    expect(out[0]?.ok && out[0].expiresAt).toBe(42);
    expect(out.map((a) => a.key)).toEqual(["a", "missing", "broken", "busy", "toolongkey", "b"]);
    expect(g.calls).not.toContain("toolongkey");
    expect(g.peak).toBe(5);
  });

  it("a key asked twice is looked up once", async () => {
    const g = group();
    const out = await serveBatch(g, ["a", "a"], { maxAnswerBytes: 1 << 20 });
    expect(out.map((a) => a.ok && a.value.toString())).toEqual(["v:a", "v:a"]);
    expect(g.calls).toEqual(["a"]);
  });

  it("values past maxAnswerBytes are answered resource_exhausted, in request order", async () => {
    const g = group();
    const out = await serveBatch(g, ["big1", "big2", "a", "big3"], { maxAnswerBytes: 2200 });
    expect(out.map((a) => (a.ok ? "ok" : a.code))).toEqual([
      "ok",
      "ok",
      "ok",
      "resource_exhausted",
    ]);
  });

  it("an aborted request's failures are canceled, not the getter's verdict", async () => {
    const g = group();
    const ac = new AbortController();
    ac.abort();
    const out = await serveBatch(g, ["broken"], { signal: ac.signal, maxAnswerBytes: 1 << 20 });
    expect(!out[0]?.ok && out[0]?.code).toBe("canceled");
  });

  it("with timeoutMs, a slow key does not hold the others: answered deadline_exceeded", async () => {
    const g = group();
    let release: (() => void) | undefined;
    const serveGet = g.serveGet;
    g.serveGet = async (key: string) => {
      if (key === "slow") await new Promise<void>((resolve) => (release = resolve));
      return serveGet(key);
    };
    const out = await serveBatch(g, ["a", "slow", "b"], { maxAnswerBytes: 1 << 20, timeoutMs: 50 });
    expect(out.map((a) => (a.ok ? a.value.toString() : a.code))).toEqual([
      "v:a",
      "deadline_exceeded",
      "v:b",
    ]);
    release?.();
    // Without a slow key, the answer comes as soon as every key is done.
    const fast = await serveBatch(g, ["c"], { maxAnswerBytes: 1 << 20, timeoutMs: 60_000 });
    expect(fast[0]?.ok).toBe(true);
  });

  it("batchSizeError refuses more than maxBatchKeys", () => {
    expect(batchSizeError(1000, 1000)).toBeUndefined();
    expect(batchSizeError(1001, 1000)).toMatch(/1001 keys/);
  });
});

describe("serveBatch: the cached keys' answers (serveCached)", () => {
  /** The fake group, with `serveCached` answering from `cache` (and counting its calls). */
  function cachedGroup(cache: Record<string, string | null>) {
    const g = group();
    const peeks: string[] = [];
    return Object.assign(g, {
      peeks,
      serveCached(key: string) {
        peeks.push(key);
        const v = cache[key];
        if (v === undefined) return undefined;
        return v === null ? null : { value: ByteView.from(v), expiresAt: 7 };
      },
    });
  }

  it("an all-hit batch is answered from the caches alone: no serveGet, no timer", async () => {
    const g = cachedGroup({ a: "A", b: "B", gone: null });
    const out = await serveBatch(g, ["a", "gone", "b"], { maxAnswerBytes: 1 << 20, timeoutMs: 50 });
    expect(out).toEqual([
      { key: "a", ok: true, value: ByteView.from("A"), expiresAt: 7 },
      { key: "gone", ok: false, code: "not_found", message: new NotFoundError("gone").message },
      { key: "b", ok: true, value: ByteView.from("B"), expiresAt: 7 },
    ]);
    expect(g.calls).toEqual([]);
  });

  it("a partly cached batch: only the others go through serveGet, each key asked once", async () => {
    const g = cachedGroup({ a: "A" });
    const out = await serveBatch(g, ["x", "a", "y", "x", "a"], { maxAnswerBytes: 1 << 20 });
    expect(out.map((r) => r.ok && r.value.toString())).toEqual(["v:x", "A", "v:y", "v:x", "A"]);
    expect(g.calls).toEqual(["x", "y"]);
    expect(g.peeks).toEqual(["x", "a", "y"]);
  });

  it("a key the keyError refuses is not peeked and answers invalid_argument", async () => {
    const g = cachedGroup({ a: "A", toolongkey: "no" });
    const out = await serveBatch(g, ["a", "toolongkey"], { keyError, maxAnswerBytes: 1 << 20 });
    expect(out.map((r) => (r.ok ? r.value.toString() : r.code))).toEqual(["A", "invalid_argument"]);
    expect(g.peeks).toEqual(["a"]);
    expect(g.calls).toEqual([]);
  });

  it("the all-hit answer keeps maxAnswerBytes", async () => {
    const big = "x".repeat(1000);
    const g = cachedGroup({ big1: big, big2: big, big3: big });
    const out = await serveBatch(g, ["big1", "big2", "big3"], { maxAnswerBytes: 2200 });
    expect(out.map((r) => (r.ok ? "ok" : r.code))).toEqual(["ok", "ok", "resource_exhausted"]);
  });

  it("an empty batch is an empty answer", async () => {
    expect(await serveBatch(cachedGroup({}), [], { maxAnswerBytes: 1 << 20 })).toEqual([]);
  });
});

describe("serveCachedGet", () => {
  it("a cached value as is, a cached not-found as NotFoundError, undefined for the rest", () => {
    const value = { value: ByteView.from("v"), expiresAt: 7 };
    const g: ServedGroup = {
      ...group(),
      serveCached: (key) => (key === "hit" ? value : key === "gone" ? null : undefined),
    };
    expect(serveCachedGet(g, "hit")).toBe(value);
    expect(() => serveCachedGet(g, "gone")).toThrow(NotFoundError);
    expect(serveCachedGet(g, "cold")).toBeUndefined();
    // A group without serveCached: every get goes through serveGet.
    expect(serveCachedGet(group(), "hit")).toBeUndefined();
  });
});
