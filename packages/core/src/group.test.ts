import { ByteView } from "@tinycache/byteview";
import { LRU_ENTRY_OVERHEAD } from "@tinycache/lru";
import { describe, expect, it, vi } from "vitest";
import { ENTRY_OVERHEAD, NEGATIVE_ENTRY_OVERHEAD } from "./cache.js";
import { InvalidArgumentError, NotFoundError, TinycacheError } from "./errors.js";
import { type Group, keysLoading } from "./group.js";
import type { GetterResult, GroupOptions } from "./options.js";
import { GroupRegistry } from "./registry.js";
import { type Deferred, deferred, fakeClock, flush } from "./testing.test-util.js";

/** What a cached positive / negative entry costs beyond its key and value bytes. */
const POSITIVE = ENTRY_OVERHEAD + LRU_ENTRY_OVERHEAD;
const NEGATIVE = NEGATIVE_ENTRY_OVERHEAD + LRU_ENTRY_OVERHEAD;

function group(opts: Partial<GroupOptions> & Pick<GroupOptions, "getter">) {
  return new GroupRegistry().newGroup({ name: "g", cacheBytes: 1 << 20, ...opts });
}

describe("Group.get (single node)", () => {
  it("loads a miss with the getter once, then serves it from the main cache", async () => {
    const getter = vi.fn(async (key: string) => `v:${key}`);
    const g = group({ getter });
    expect((await g.get("Tom")).toString()).toBe("v:Tom");
    expect((await g.get("Tom")).toString()).toBe("v:Tom");
    expect(getter).toHaveBeenCalledTimes(1);
    expect(g.stats).toMatchObject({
      gets: 2,
      cacheHits: 1,
      loads: 1,
      loadsDeduped: 1,
      localLoads: 1,
      localLoadErrs: 0,
      peerLoads: 0,
      peerErrors: 0,
      serverRequests: 0,
    });
    expect(g.cacheStats("main")).toEqual({
      bytes: 3 + 5 + POSITIVE,
      items: 1,
      gets: 3, // as groupcache: the miss, the re-check inside the load, the hit
      hits: 1,
      evictions: 0,
    });
    expect(g.cacheStats("hot")).toMatchObject({ items: 0, gets: 2, hits: 0 });
  });

  it("returns a ByteView, whatever form the getter returned", async () => {
    const results: Record<string, GetterResult> = {
      s: "text",
      u: new Uint8Array([1, 2, 3]),
      b: ByteView.from("view"),
      o: { value: "obj", ttlMs: 1000 },
      ou: { value: new Uint8Array([9]) },
      e: "",
    };
    const g = group({ getter: async (k) => results[k] as GetterResult });
    expect((await g.get("s")).toString()).toBe("text");
    expect([...(await g.get("u")).byteSlice()]).toEqual([1, 2, 3]);
    expect((await g.get("b")).toString()).toBe("view");
    expect((await g.get("o")).toString()).toBe("obj");
    expect([...(await g.get("ou")).byteSlice()]).toEqual([9]);
    expect((await g.get("e")).length).toBe(0);
    expect(g.cacheStats("main").items).toBe(6);
  });

  it("takes a ByteView of another copy of @tinycache/byteview (ESM and CJS builds in one app)", async () => {
    // Stands for the other copy's class: its private bytes are out of this copy's reach.
    class ByteView2 {
      get [Symbol.toStringTag]() {
        return "ByteView";
      }
      byteSlice() {
        return new TextEncoder().encode("from the other copy");
      }
    }
    const g = group({ getter: async () => new ByteView2() as unknown as ByteView });
    const v = await g.get("k");
    expect(v).toBeInstanceOf(ByteView);
    expect(v.toString()).toBe("from the other copy");
  });

  it("copies a Uint8Array from the getter: later writes to it do not change the cache", async () => {
    const bytes = new Uint8Array([1, 2, 3]);
    const g = group({ getter: async () => bytes });
    await g.get("k");
    bytes[0] = 99;
    expect((await g.get("k")).at(0)).toBe(1);
  });

  it("rejects a getter result that is not bytes, and does not cache it", async () => {
    const getter = vi.fn(async () => 42 as unknown as string);
    const g = group({ getter });
    await expect(g.get("k")).rejects.toBeInstanceOf(TypeError);
    await expect(g.get("k")).rejects.toBeInstanceOf(TypeError);
    expect(getter).toHaveBeenCalledTimes(2);
    expect(g.stats.localLoadErrs).toBe(2);
  });

  it("collapses concurrent misses for one key into one getter call", async () => {
    const gate = deferred<string>();
    const getter = vi.fn(() => gate.promise);
    const g = group({ getter });
    const all = Array.from({ length: 100 }, () => g.get("hot"));
    await flush();
    expect(getter).toHaveBeenCalledTimes(1);
    gate.resolve("once");
    const views = await Promise.all(all);
    expect(views.every((v) => v.toString() === "once")).toBe(true);
    expect(g.stats).toMatchObject({ gets: 100, loads: 100, loadsDeduped: 1, localLoads: 1 });
  });

  it("never caches errors: the next get calls the getter again", async () => {
    let fail = true;
    const getter = vi.fn(async () => {
      if (fail) throw new Error("db down");
      return "up";
    });
    const g = group({ getter });
    await expect(g.get("k")).rejects.toThrow("db down");
    expect(g.stats.localLoadErrs).toBe(1);
    fail = false;
    expect((await g.get("k")).toString()).toBe("up");
    expect(getter).toHaveBeenCalledTimes(2);
  });

  it("shares one error object with every concurrent waiter", async () => {
    const gate = deferred<string>();
    const g = group({ getter: () => gate.promise });
    const a = g.get("k");
    const b = g.get("k");
    const err = new Error("boom");
    gate.reject(err);
    await expect(a).rejects.toBe(err);
    await expect(b).rejects.toBe(err);
  });

  it("empty key and unicode keys are valid keys, sized in UTF-8 bytes", async () => {
    const getter = vi.fn(async (k: string) => `<${k}>`);
    const g = group({ getter });
    expect((await g.get("")).toString()).toBe("<>");
    expect((await g.get("ключ🔑")).toString()).toBe("<ключ🔑>");
    expect((await g.get("ключ🔑")).toString()).toBe("<ключ🔑>");
    expect(getter.mock.calls.map((c) => c[0])).toEqual(["", "ключ🔑"]);
    // "" + "<>" = 2 bytes; "ключ🔑" = 8 + 4 bytes, value 14 bytes; plus two overheads.
    expect(g.cacheStats("main").bytes).toBe(2 + 12 + 14 + 2 * POSITIVE);
  });

  it("passes the getter a signal, and the key as is", async () => {
    let seen: AbortSignal | undefined;
    const g = group({
      getter: async (_k, { signal }) => {
        seen = signal;
        return "x";
      },
    });
    await g.get("a/b?c#d%20 e");
    expect(seen).toBeInstanceOf(AbortSignal);
    expect(seen?.aborted).toBe(false);
  });
});

describe("key and value limits", () => {
  it("rejects keys over maxKeyBytes with InvalidArgumentError, counting UTF-8 bytes", async () => {
    const getter = vi.fn(async () => "v");
    const g = group({ getter, maxKeyBytes: 4 });
    expect((await g.get("abcd")).toString()).toBe("v");
    await expect(g.get("abcde")).rejects.toBeInstanceOf(InvalidArgumentError);
    // "éé" is 2 units but 4 bytes (ok); "ééé" is 6 bytes.
    await expect(g.get("éé")).resolves.toBeDefined();
    await expect(g.get("ééé")).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(g.set("abcde", "v")).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(g.remove("abcde")).rejects.toBeInstanceOf(InvalidArgumentError);
    expect(getter).toHaveBeenCalledTimes(2);
  });

  it("rejects keys with a lone surrogate (no UTF-8 form) and takes surrogate pairs", async () => {
    const getter = vi.fn(async (key: string) => `v:${key}`);
    const g = group({ getter });
    // Each would reach a peer as U+FFFD, the key "\ufffd" (or "a\ufffdb"): another key.
    for (const key of ["\ud800", "a\udc00b", "\udc00\ud800", "🔑\ud83d"]) {
      await expect(g.get(key)).rejects.toThrow(/lone surrogate/);
      await expect(g.get(key)).rejects.toBeInstanceOf(InvalidArgumentError);
      await expect(g.set(key, "v")).rejects.toBeInstanceOf(InvalidArgumentError);
      await expect(g.remove(key)).rejects.toBeInstanceOf(InvalidArgumentError);
      await expect(g.serveGet(key)).rejects.toBeInstanceOf(InvalidArgumentError);
      expect(() => g.serveSet(key, new Uint8Array(1))).toThrow(InvalidArgumentError);
      expect(() => g.serveRemove(key)).toThrow(InvalidArgumentError);
    }
    expect(getter).not.toHaveBeenCalled();
    expect((await g.get("🔑")).toString()).toBe("v:🔑");
    expect((await g.get("\ufffd")).toString()).toBe("v:\ufffd");
  });

  it("has a default maxKeyBytes of 4096", async () => {
    const g = group({ getter: async () => "v" });
    await expect(g.get("k".repeat(4096))).resolves.toBeDefined();
    await expect(g.get("k".repeat(4097))).rejects.toBeInstanceOf(InvalidArgumentError);
  });

  it("rejects a non-string key with TypeError", async () => {
    const g = group({ getter: async () => "v" });
    await expect(g.get(42 as unknown as string)).rejects.toBeInstanceOf(TypeError);
  });

  it("set of a value over maxValueBytes throws InvalidArgumentError and stores nothing", async () => {
    const getter = vi.fn(async () => "from-db");
    const g = group({ getter, maxValueBytes: 3 });
    await expect(g.set("k", "toolong")).rejects.toBeInstanceOf(InvalidArgumentError);
    expect(g.cacheStats("main").items).toBe(0);
    await g.set("k", "abc");
    expect((await g.get("k")).toString()).toBe("abc");
    expect(getter).not.toHaveBeenCalled();
  });

  it("a getter value over maxValueBytes is a load error, not cached", async () => {
    const getter = vi.fn(async () => "0123456789");
    const g = group({ getter, maxValueBytes: 5 });
    await expect(g.get("k")).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(g.get("k")).rejects.toBeInstanceOf(InvalidArgumentError);
    expect(getter).toHaveBeenCalledTimes(2);
    expect(g.stats.localLoadErrs).toBe(2);
  });

  it("rejects bad options with typed errors", () => {
    const r = new GroupRegistry();
    const getter = async () => "v";
    expect(() => r.newGroup({ name: "a", cacheBytes: 1, getter, ttlJitter: 2 })).toThrow(
      RangeError,
    );
    expect(() => r.newGroup({ name: "b", cacheBytes: 1, getter, ttlMs: -1 })).toThrow(RangeError);
    expect(() => r.newGroup({ name: "c", cacheBytes: Number.NaN, getter })).toThrow(TypeError);
    expect(() =>
      r.newGroup({ name: "d", cacheBytes: 1, getter: "x" as unknown as GroupOptions["getter"] }),
    ).toThrow(TypeError);
    for (const [option, value] of [
      ["negativeTtlMs", -1],
      ["maxKeyBytes", -1],
      ["maxValueBytes", Number.NaN],
      ["peerTimeoutMs", -1],
    ] as const) {
      expect(() => r.newGroup({ name: "e", cacheBytes: 1, getter, [option]: value })).toThrow(
        RangeError,
      );
    }
  });

  it("peerTimeoutMs 0 is refused: the error says to use Infinity for no timeout", () => {
    const r = new GroupRegistry();
    const getter = async () => "v";
    expect(() => r.newGroup({ name: "a", cacheBytes: 1, getter, peerTimeoutMs: 0 })).toThrow(
      /peerTimeoutMs must be > 0 ms; use Infinity for no timeout, got 0/,
    );
    expect(() =>
      r.newGroup({ name: "b", cacheBytes: 1, getter, peerTimeoutMs: Number.POSITIVE_INFINITY }),
    ).not.toThrow();
  });

  it("maxKeyBytes reads the resolved key limit (default 4096, Infinity allowed)", async () => {
    expect(group({ getter: async () => "v" }).maxKeyBytes).toBe(4096);
    expect(group({ getter: async () => "v", maxKeyBytes: 10 }).maxKeyBytes).toBe(10);
    const g = group({ getter: async () => "v", maxKeyBytes: Number.POSITIVE_INFINITY });
    expect(g.maxKeyBytes).toBe(Number.POSITIVE_INFINITY);
    await expect(g.get("k".repeat(100_000))).resolves.toBeDefined();
  });
});

describe("not found and negative caching (penetration)", () => {
  it("NotFoundError from the getter reaches the caller and is not cached by default", async () => {
    const getter = vi.fn(async (k: string) => {
      throw new NotFoundError(k);
    });
    const g = group({ getter });
    await expect(g.get("nobody")).rejects.toBeInstanceOf(NotFoundError);
    await expect(g.get("nobody")).rejects.toThrow("nobody not exist");
    expect(getter).toHaveBeenCalledTimes(2);
    expect(g.stats).toMatchObject({ notFounds: 2, localLoads: 2, localLoadErrs: 0 });
  });

  it("caches not-found for negativeTtlMs, then asks the source again", async () => {
    const clock = fakeClock();
    const getter = vi.fn(async (k: string) => {
      throw new NotFoundError(k);
    });
    const g = group({ getter, negativeTtlMs: 1000, now: clock.now });
    await expect(g.get("ghost")).rejects.toBeInstanceOf(NotFoundError);
    await expect(g.get("ghost")).rejects.toBeInstanceOf(NotFoundError);
    await expect(g.get("ghost")).rejects.toBeInstanceOf(NotFoundError);
    expect(getter).toHaveBeenCalledTimes(1);
    expect(g.stats.negativeHits).toBe(2);
    expect(g.cacheStats("main").bytes).toBe(5 + NEGATIVE); // the key and the overhead
    clock.advance(1000);
    await expect(g.get("ghost")).rejects.toBeInstanceOf(NotFoundError);
    expect(getter).toHaveBeenCalledTimes(2);
  });

  it("negativeTtlMs Infinity caches not-found until evicted or replaced", async () => {
    const clock = fakeClock();
    const getter = vi.fn(async (k: string) => {
      throw new NotFoundError(k);
    });
    const g = group({ getter, negativeTtlMs: Number.POSITIVE_INFINITY, now: clock.now });
    await expect(g.get("ghost")).rejects.toBeInstanceOf(NotFoundError);
    clock.advance(1e12);
    await expect(g.get("ghost")).rejects.toBeInstanceOf(NotFoundError);
    expect(getter).toHaveBeenCalledTimes(1);
    await g.set("ghost", "here");
    expect((await g.get("ghost")).toString()).toBe("here");
  });

  it("a set replaces a negative entry", async () => {
    const g = group({
      getter: async (k) => {
        throw new NotFoundError(k);
      },
      negativeTtlMs: 60_000,
    });
    await expect(g.get("k")).rejects.toBeInstanceOf(NotFoundError);
    await g.set("k", "now here");
    expect((await g.get("k")).toString()).toBe("now here");
  });
});

describe("TTL and jitter (avalanche)", () => {
  it("expires values after the group ttlMs, and never serves an expired value", async () => {
    const clock = fakeClock();
    let n = 0;
    const g = group({ getter: async () => `v${++n}`, ttlMs: 1000, now: clock.now });
    expect((await g.get("k")).toString()).toBe("v1");
    clock.advance(999);
    expect((await g.get("k")).toString()).toBe("v1");
    clock.advance(1);
    expect((await g.get("k")).toString()).toBe("v2");
  });

  it("uses the getter's ttlMs over the group's, and expiresAt as is", async () => {
    const clock = fakeClock();
    const t0 = clock.now();
    let n = 0;
    const g = group({
      getter: async (k) => {
        n++;
        return k === "rel" ? { value: `r${n}`, ttlMs: 10 } : { value: `a${n}`, expiresAt: t0 + 50 };
      },
      ttlMs: 1_000_000,
      ttlJitter: 0.5,
      random: () => 0, // no jitter drawn
      now: clock.now,
    });
    await g.get("rel");
    await g.get("abs");
    clock.advance(10);
    expect((await g.get("rel")).toString()).toBe("r3");
    expect((await g.get("abs")).toString()).toBe("a2");
    clock.advance(40);
    expect((await g.get("abs")).toString()).toBe("a4");
  });

  it("ttlJitter shortens each TTL by up to the fraction, from the injected random source", async () => {
    const clock = fakeClock();
    const draws = [0.999, 0.5, 0];
    const g = group({
      getter: async () => "v",
      ttlMs: 1000,
      ttlJitter: 0.1,
      random: () => draws.shift() ?? 0,
      now: clock.now,
      hotCache: false,
    });
    await Promise.all([g.get("a"), g.get("b"), g.get("c")]); // TTLs ~900, 950, 1000
    clock.advance(901);
    const before = g.stats.localLoads;
    await Promise.all([g.get("a"), g.get("b"), g.get("c")]);
    expect(g.stats.localLoads - before).toBe(1); // only a expired
    clock.advance(50); // t = 951
    await Promise.all([g.get("a"), g.get("b"), g.get("c")]);
    expect(g.stats.localLoads - before).toBe(2); // b expired too; c lives until 1000
  });

  it("ttlMs left out or Infinity: values never expire", async () => {
    const clock = fakeClock();
    for (const ttl of [{}, { ttlMs: Number.POSITIVE_INFINITY }]) {
      const getter = vi.fn(async () => "v");
      const g = group({ getter, now: clock.now, ttlJitter: 0.5, ...ttl });
      await g.get("k");
      clock.advance(1e12);
      await g.get("k");
      expect(getter).toHaveBeenCalledTimes(1);
      expect((await g.serveGet("k")).expiresAt).toBeUndefined();
    }
  });

  it("ttlMs 0: every value expires at once, answering its load's callers but never cached", async () => {
    const clock = fakeClock();
    const gate = deferred<string>();
    const getter = vi.fn(() => gate.promise);
    const g = group({ getter, ttlMs: 0, now: clock.now });
    const all = [g.get("k"), g.get("k"), g.get("k")];
    await flush();
    gate.resolve("v");
    expect((await Promise.all(all)).map(String)).toEqual(["v", "v", "v"]);
    expect(getter).toHaveBeenCalledTimes(1); // concurrent callers still share one load
    expect(g.cacheStats("main").items).toBe(0);
    await g.get("k");
    expect(getter).toHaveBeenCalledTimes(2);
  });

  it("a getter's ttlMs 0 is returned but not cached; its Infinity outlives the group's ttlMs", async () => {
    const clock = fakeClock();
    const getter = vi.fn(async (k: string) => ({
      value: k,
      ttlMs: k === "zero" ? 0 : Number.POSITIVE_INFINITY,
    }));
    const g = group({ getter, ttlMs: 1000, now: clock.now });
    expect((await g.get("zero")).toString()).toBe("zero");
    expect((await g.get("zero")).toString()).toBe("zero");
    await g.get("forever");
    clock.advance(1e12);
    await g.get("forever");
    expect(getter.mock.calls.map((c) => c[0])).toEqual(["zero", "zero", "forever"]);
    await expect(
      group({ getter: async () => ({ value: "v", ttlMs: -1 }) }).get("k"),
    ).rejects.toBeInstanceOf(RangeError);
  });

  it("set with ttlMs 0 replaces the key with nothing; Infinity outlives the group's ttlMs", async () => {
    const clock = fakeClock();
    const getter = vi.fn(async () => "db");
    const g = group({ getter, ttlMs: 1000, now: clock.now });
    await g.set("k", "old");
    await g.set("k", "gone at once", { ttlMs: 0 });
    expect(g.cacheStats("main").items).toBe(0);
    expect((await g.get("k")).toString()).toBe("db");
    await g.set("f", "forever", { ttlMs: Number.POSITIVE_INFINITY });
    clock.advance(1e12);
    expect((await g.get("f")).toString()).toBe("forever");
    expect(getter).toHaveBeenCalledTimes(1);
  });

  it("a value already expired when loaded is returned but not cached", async () => {
    const clock = fakeClock();
    const getter = vi.fn(async () => ({ value: "stale", expiresAt: clock.now() - 1 }));
    const g = group({ getter, now: clock.now });
    expect((await g.get("k")).toString()).toBe("stale");
    expect(g.cacheStats("main").items).toBe(0);
    await g.get("k");
    expect(getter).toHaveBeenCalledTimes(2);
  });

  it("set honours ttlMs and expiresAt", async () => {
    const clock = fakeClock();
    const getter = vi.fn(async () => "db");
    const g = group({ getter, now: clock.now });
    await g.set("a", "A", { ttlMs: 100 });
    await g.set("b", "B", { expiresAt: clock.now() + 200 });
    await g.set("c", "C");
    clock.advance(100);
    expect((await g.get("a")).toString()).toBe("db");
    expect((await g.get("b")).toString()).toBe("B");
    clock.advance(100);
    expect((await g.get("b")).toString()).toBe("db");
    expect((await g.get("c")).toString()).toBe("C");
  });
});

describe("abort", () => {
  it("a caller's abort rejects its own wait at once with signal.reason; the load goes on", async () => {
    const gate = deferred<string>();
    let loadSignal: AbortSignal | undefined;
    const getter = vi.fn((_k: string, { signal }: { signal: AbortSignal }) => {
      loadSignal = signal;
      return gate.promise;
    });
    const g = group({ getter });
    const ac = new AbortController();
    const mine = g.get("k", { signal: ac.signal });
    const other = g.get("k");
    await flush();
    const reason = new Error("user went away");
    ac.abort(reason);
    await expect(mine).rejects.toBe(reason);
    expect(loadSignal?.aborted).toBe(false);
    gate.resolve("done");
    expect((await other).toString()).toBe("done");
    expect(getter).toHaveBeenCalledTimes(1);
    expect((await g.get("k")).toString()).toBe("done");
  });

  it("options without an aborted signal still hit the cache", async () => {
    const getter = vi.fn(async () => "v");
    const g = group({ getter });
    await g.get("k");
    expect((await g.get("k", {})).toString()).toBe("v");
    expect((await g.get("k", { signal: new AbortController().signal })).toString()).toBe("v");
    expect(getter).toHaveBeenCalledTimes(1);
    expect(g.stats).toMatchObject({ gets: 3, cacheHits: 2 });
  });

  it("an already aborted signal rejects at once, even for a cached key", async () => {
    const g = group({ getter: async () => "v" });
    await g.get("k");
    const ac = new AbortController();
    ac.abort(new Error("gone"));
    await expect(g.get("k", { signal: ac.signal })).rejects.toThrow("gone");
  });

  it("when every caller aborted, the getter's signal aborts", async () => {
    let loadSignal: AbortSignal | undefined;
    const g = group({
      getter: (_k, { signal }) => {
        loadSignal = signal;
        return new Promise<string>(() => {});
      },
    });
    const ac = new AbortController();
    const p = g.get("k", { signal: ac.signal });
    await flush();
    ac.abort();
    await expect(p).rejects.toBeDefined();
    expect(loadSignal?.aborted).toBe(true);
  });
});

describe("set and remove on a single node", () => {
  it("set stores in the main cache; remove drops it; both skip the getter", async () => {
    const getter = vi.fn(async () => "db");
    const g = group({ getter });
    await g.set("k", "mine");
    expect((await g.get("k")).toString()).toBe("mine");
    const res = await g.remove("k");
    expect(res).toEqual({ key: "k", owner: undefined, peersAsked: 0, failures: [], ok: true });
    expect(g.cacheStats("main").items).toBe(0);
    expect((await g.get("k")).toString()).toBe("db");
    expect(getter).toHaveBeenCalledTimes(1);
  });

  it("a load in flight during remove answers its waiters but does not re-fill the cache", async () => {
    const gate = deferred<string>();
    let calls = 0;
    const g = group({
      getter: () => (++calls === 1 ? gate.promise : Promise.resolve("fresh")),
    });
    const inflight = g.get("k");
    await flush();
    await g.remove("k");
    gate.resolve("stale");
    expect((await inflight).toString()).toBe("stale");
    expect((await g.get("k")).toString()).toBe("fresh");
  });

  it("a get after remove does not join the old flight", async () => {
    const gates = [deferred<string>(), deferred<string>()];
    let calls = 0;
    const g = group({ getter: () => (gates[calls++] as { promise: Promise<string> }).promise });
    const old = g.get("k");
    await flush();
    await g.remove("k");
    const fresh = g.get("k");
    await flush();
    expect(calls).toBe(2);
    gates[0]?.resolve("old");
    gates[1]?.resolve("new");
    expect((await old).toString()).toBe("old");
    expect((await fresh).toString()).toBe("new");
    expect((await g.get("k")).toString()).toBe("new");
  });

  it("set rejects a value that is not bytes", async () => {
    const g = group({ getter: async () => "v" });
    await expect(g.set("k", 1 as unknown as string)).rejects.toBeInstanceOf(TypeError);
  });
});

describe("a set/remove during a load invalidates that key only", () => {
  /** A getter whose loads wait until the test answers them, per key, in call order. */
  function gatedGetter() {
    const gates = new Map<string, Deferred<GetterResult>[]>();
    const calls: string[] = [];
    const getter = (key: string): Promise<GetterResult> => {
      calls.push(key);
      const d = deferred<GetterResult>();
      const queue = gates.get(key) ?? [];
      queue.push(d);
      gates.set(key, queue);
      return d.promise;
    };
    const answer = (key: string, value: GetterResult | Error): void => {
      const d = gates.get(key)?.shift() as Deferred<GetterResult>;
      if (value instanceof Error) d.reject(value);
      else d.resolve(value);
    };
    return { getter, calls, answer };
  }

  // Each write of a key, and what a get of that key finds after it (undefined: a new load).
  const writes: [string, (g: Group, key: string) => unknown, string | undefined][] = [
    ["set", (g, k) => g.set(k, "written"), "written"],
    ["remove", (g, k) => g.remove(k), undefined],
    ["serveSet", (g, k) => g.serveSet(k, new TextEncoder().encode("written")), "written"],
    ["serveRemove", (g, k) => g.serveRemove(k), undefined],
  ];

  it.each(writes)(
    "a %s of key A while B loads: B's answer is still cached",
    async (_name, write, stored) => {
      const { getter, calls, answer } = gatedGetter();
      const g = group({ getter });
      const b = g.get("B");
      await flush();
      expect(keysLoading(g)).toBe(1);
      await write(g, "A");
      answer("B", "b-value");
      expect((await b).toString()).toBe("b-value");
      expect((await g.get("B")).toString()).toBe("b-value");
      expect(calls).toEqual(["B"]); // cached: the second get did not load
      expect(g.cacheStats("main").items).toBe(stored === undefined ? 1 : 2); // B (and A)
      expect(keysLoading(g)).toBe(0);
    },
  );

  it.each(writes)(
    "a %s of key A while A loads: the load answers its callers but stores nothing",
    async (_name, write, after) => {
      const { getter, calls, answer } = gatedGetter();
      const g = group({ getter });
      const a = g.get("A");
      await flush();
      await write(g, "A");
      expect(keysLoading(g)).toBe(0); // the stale token left the map at once
      answer("A", "stale");
      expect((await a).toString()).toBe("stale");
      const next = g.get("A");
      await flush();
      if (after === undefined) {
        expect(calls).toEqual(["A", "A"]);
        answer("A", "fresh");
        expect((await next).toString()).toBe("fresh");
      } else {
        expect(calls).toEqual(["A"]);
        expect((await next).toString()).toBe(after);
      }
      expect(keysLoading(g)).toBe(0);
    },
  );

  it("keys named like Object.prototype's members load, collapse and go stale like any other", async () => {
    const { getter, calls, answer } = gatedGetter();
    const g = group({ getter });
    const keys = ["__proto__", "constructor", "toString", "hasOwnProperty", "0"];
    const first = keys.map((k) => g.get(k));
    const again = keys.map((k) => g.get(k)); // joins the flights
    await flush();
    expect(calls).toEqual(keys);
    expect(keysLoading(g)).toBe(keys.length);
    await g.set("constructor", "written"); // its load goes stale
    expect(keysLoading(g)).toBe(keys.length - 1);
    for (const k of keys) answer(k, `v:${k}`);
    const got = await Promise.all([...first, ...again]);
    expect(got.map(String)).toEqual([...keys, ...keys].map((k) => `v:${k}`));
    expect(keysLoading(g)).toBe(0);
    expect((await g.get("constructor")).toString()).toBe("written");
    expect((await g.get("__proto__")).toString()).toBe("v:__proto__"); // cached: no new load
    expect(calls).toEqual(keys);
  });

  it("a write of another key does not stop a not-found from being cached negatively", async () => {
    const { getter, calls, answer } = gatedGetter();
    const g = group({ getter, negativeTtlMs: 60_000 });
    const ghost = g.get("ghost");
    await flush();
    await g.set("other", "v");
    await g.remove("other2");
    answer("ghost", new NotFoundError("ghost"));
    await expect(ghost).rejects.toBeInstanceOf(NotFoundError);
    await expect(g.get("ghost")).rejects.toBeInstanceOf(NotFoundError);
    expect(calls).toEqual(["ghost"]);
    expect(g.stats.negativeHits).toBe(1);
  });

  it("a stale load ending does not drop the token of a newer load of the same key", async () => {
    const { getter, calls, answer } = gatedGetter();
    const g = group({ getter });
    const old = g.get("k");
    await flush();
    await g.remove("k");
    const fresh = g.get("k");
    await flush();
    expect(calls).toEqual(["k", "k"]);
    expect(keysLoading(g)).toBe(1); // the fresh load's token only
    answer("k", "old");
    expect((await old).toString()).toBe("old");
    expect(keysLoading(g)).toBe(1);
    await g.set("k", "written"); // must still reach the fresh load
    answer("k", "fresh-but-stale");
    expect((await fresh).toString()).toBe("fresh-but-stale");
    expect((await g.get("k")).toString()).toBe("written");
    expect(keysLoading(g)).toBe(0);
  });

  it("keeps no per-key state once loads end (no leak), whatever their outcome", async () => {
    const { getter, answer } = gatedGetter();
    // Caches nothing: every get loads; every load runs at once (no getter limit).
    const g = group({ getter, cacheBytes: 0, maxConcurrentLoads: Number.POSITIVE_INFINITY });
    const N = 3000;
    const gets: Promise<unknown>[] = [];
    for (let i = 0; i < N; i++) {
      gets.push(
        g.get(`k${i}`).catch(() => {}),
        g.get(`k${i}`).catch(() => {}),
      );
    }
    await flush();
    expect(keysLoading(g)).toBe(N); // one token per key in flight, shared by its waiters
    for (let i = 0; i < N; i += 3) g.serveRemove(`k${i}`); // invalidate a third mid-flight
    expect(keysLoading(g)).toBe(N - N / 3);
    for (let i = 0; i < N; i += 3) gets.push(g.get(`k${i}`).catch(() => {})); // newer loads
    await flush();
    expect(keysLoading(g)).toBe(N);
    for (let i = 0; i < N; i++) {
      answer(
        `k${i}`,
        i % 3 === 1 ? new NotFoundError(`k${i}`) : i % 3 === 2 ? new Error("x") : "v",
      );
    }
    for (let i = 0; i < N; i += 3) answer(`k${i}`, "v2");
    await Promise.all(gets);
    expect(keysLoading(g)).toBe(0);
    // Many more loads, one after the other, some aborted by their only caller.
    const ac = new AbortController();
    const aborted = g.get("abandoned", { signal: ac.signal });
    await flush();
    ac.abort(new Error("bye"));
    await expect(aborted).rejects.toThrow("bye");
    answer("abandoned", "late");
    for (let i = 0; i < 2000; i++) {
      const p = g.get(`seq${i}`);
      await flush(1);
      answer(`seq${i}`, "v");
      await p;
    }
    await flush();
    expect(keysLoading(g)).toBe(0);
  });
});

describe("cacheBytes", () => {
  it("cacheBytes 0 caches nothing: every get loads", async () => {
    const getter = vi.fn(async () => "v");
    const g = group({ getter, cacheBytes: 0 });
    await g.get("k");
    await g.get("k");
    await g.set("s", "v");
    expect(getter).toHaveBeenCalledTimes(2);
    expect(g.cacheStats("main")).toMatchObject({ items: 0, bytes: 0 });
  });

  it("cacheBytes Infinity never evicts; a negative one is a RangeError saying what to use", async () => {
    const g = group({ getter: async (k) => `${k}-value`, cacheBytes: Number.POSITIVE_INFINITY });
    for (let i = 0; i < 1000; i++) await g.get(`k${i}`);
    expect(g.cacheStats("main")).toMatchObject({ items: 1000, evictions: 0 });
    expect(() => group({ getter: async () => "v", cacheBytes: -1 })).toThrow(
      /cacheBytes must be >= 0 \(0 caches nothing\); use Infinity for no limit, got -1/,
    );
  });

  it("evicts the least recently used entries beyond the budget and counts evictions", async () => {
    // 3 entries of 2 + 8 bytes and the overhead.
    const g = group({ getter: async (k) => `${k}-value`, cacheBytes: 3 * (10 + POSITIVE) });
    for (const k of ["k1", "k2", "k3"]) await g.get(k);
    await g.get("k1"); // k1 becomes most recent
    await g.get("k4"); // evicts k2
    expect(g.cacheStats("main")).toMatchObject({
      items: 3,
      bytes: 3 * (10 + POSITIVE),
      evictions: 1,
    });
    const loads = g.stats.localLoads;
    await g.get("k1");
    await g.get("k2");
    expect(g.stats.localLoads - loads).toBe(1);
  });
});

describe("stats", () => {
  it("snapshots are plain objects, detached from the live counters", async () => {
    const g = group({ getter: async () => "v" });
    const s = g.stats;
    await g.get("k");
    expect(s.gets).toBe(0);
    expect(Object.getPrototypeOf(s)).toBe(Object.prototype);
    expect(JSON.parse(JSON.stringify(g.stats))).toEqual(g.stats);
    expect(Object.getPrototypeOf(g.cacheStats("main"))).toBe(Object.prototype);
    expect(() => g.cacheStats("cold" as "main")).toThrow(TypeError);
  });
});

describe("recentKeys", () => {
  it("lists held keys most recently used first, not-founds flagged, without counting", async () => {
    const clock = fakeClock();
    const g = group({
      getter: async (k) => {
        if (k.startsWith("no")) throw new NotFoundError(k);
        return k === "short" ? { value: "s", ttlMs: 10 } : `v:${k}`;
      },
      negativeTtlMs: 1000,
      now: clock.now,
    });
    for (const k of ["a", "b", "c"]) await g.get(k);
    await expect(g.get("nobody")).rejects.toBeInstanceOf(NotFoundError);
    await g.get("a"); // a hit makes "a" the most recent
    await g.get("short");
    clock.advance(10); // "short" has expired (still held: nobody looked it up)
    const before = { stats: g.stats, main: g.cacheStats("main") };
    expect(g.recentKeys("main", 10)).toEqual([
      { key: "a", notFound: false },
      { key: "nobody", notFound: true },
      { key: "c", notFound: false },
      { key: "b", notFound: false },
    ]);
    expect(g.recentKeys("main", 2).map((r) => r.key)).toEqual(["a", "nobody"]);
    expect(g.recentKeys("main", 0)).toEqual([]);
    expect(g.recentKeys("hot", 10)).toEqual([]);
    // Reading moved nothing and counted nothing.
    expect(g.stats).toEqual(before.stats);
    expect(g.cacheStats("main")).toEqual(before.main);
    expect(g.recentKeys("main", 1)).toEqual([{ key: "a", notFound: false }]);
  });

  it("refuses a bad cache name or limit with a typed error", () => {
    const g = group({ getter: async () => "v" });
    expect(() => g.recentKeys("cold" as "main", 1)).toThrow(TypeError);
    for (const bad of [-1, 1.5, 1001, Number.NaN, Number.POSITIVE_INFINITY, "3" as unknown]) {
      expect(() => g.recentKeys("main", bad as number), String(bad)).toThrow(RangeError);
    }
    expect(g.recentKeys("main", 1000)).toEqual([]);
  });
});

describe("registerPeers", () => {
  it("may be called once; a second call throws", () => {
    const g = group({ getter: async () => "v" });
    const picker = { pickPeer: () => undefined, peers: () => [] };
    g.registerPeers(picker);
    expect(() => g.registerPeers(picker)).toThrow(TinycacheError);
    expect(() => group({ getter: async () => "v" }).registerPeers({} as never)).toThrow(TypeError);
  });
});

describe("Group.serveCached (a peer's get from the caches alone)", () => {
  it("a hit: the object serveGet resolves with, counted as serveGet counts a hit", async () => {
    const clock = fakeClock();
    const g = group({ getter: async (k) => ({ value: `v:${k}`, ttlMs: 1000 }), now: clock.now });
    await g.get("Tom");
    const before = { ...g.stats };
    const v = g.serveCached("Tom");
    expect(v?.value.toString()).toBe("v:Tom");
    expect(v?.expiresAt).toBe(clock.now() + 1000);
    expect(Object.isFrozen(v)).toBe(true);
    expect(await g.serveGet("Tom")).toBe(v);
    const after = g.stats;
    expect(after.serverRequests - before.serverRequests).toBe(2);
    expect(after.gets - before.gets).toBe(2);
    expect(after.cacheHits - before.cacheHits).toBe(2);
  });

  it("a cached not-found is null (counted as a negative hit)", async () => {
    const g = group({
      getter: async (k) => {
        throw new NotFoundError(k);
      },
      negativeTtlMs: 5000,
    });
    await expect(g.get("ghost")).rejects.toBeInstanceOf(NotFoundError);
    const before = g.stats.negativeHits;
    expect(g.serveCached("ghost")).toBeNull();
    expect(g.stats.negativeHits - before).toBe(1);
  });

  it("a miss, an expired entry, a refused key: undefined, nothing counted, nothing loaded", async () => {
    const clock = fakeClock();
    const getter = vi.fn(async (k: string) => ({ value: k, ttlMs: 10 }));
    const g = group({ getter, now: clock.now, ttlJitter: 0, maxKeyBytes: 8 });
    await g.get("short");
    clock.advance(11);
    const before = { ...g.stats };
    expect(g.serveCached("never")).toBeUndefined();
    expect(g.serveCached("short")).toBeUndefined(); // expired
    expect(g.serveCached("much-too-long")).toBeUndefined();
    expect(g.serveCached("\uD800")).toBeUndefined();
    expect(g.stats).toEqual(before);
    expect(getter).toHaveBeenCalledTimes(1);
  });
});
