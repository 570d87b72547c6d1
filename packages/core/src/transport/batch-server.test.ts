import { ByteView } from "@tinycache/byteview";
import { describe, expect, it } from "vitest";
import { InvalidArgumentError, NotFoundError, OverloadedError } from "../errors.js";
import type { ServedGroup } from "../peers.js";
import { batchSizeError, serveBatch } from "./batch-server.js";

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
