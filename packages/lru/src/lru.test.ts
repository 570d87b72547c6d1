import { describe, expect, it } from "vitest";
import { type EvictionReason, LRUCache } from "./index.js";
import { utf8Length } from "./size.js";

type Event = [unknown, unknown, EvictionReason];

function recorder<K, V>() {
  const events: Event[] = [];
  return { events, onEvicted: (k: K, v: V, r: EvictionReason) => void events.push([k, v, r]) };
}

const bytes = (n: number) => new Uint8Array(n);

describe("default sizeOf", () => {
  it("counts UTF-8 bytes of string keys and values, byteLength of byte containers", () => {
    const c = new LRUCache<unknown, unknown>();
    c.set("ab", "cd");
    expect(c.bytes).toBe(4);
    c.set("é", "日本"); // 2 + 6
    expect(c.bytes).toBe(12);
    c.set("😀", bytes(10)); // 4 + 10
    expect(c.bytes).toBe(26);
    c.set("ab", new ArrayBuffer(7)); // replaces 4 with 2 + 7
    expect(c.bytes).toBe(31);
    c.set("dv", new DataView(new ArrayBuffer(3))); // 2 + 3
    c.set("buf", Buffer.from("xyz")); // 3 + 3
    c.set("bl", { byteLength: 5 }); // ByteView-like
    expect(c.bytes).toBe(31 + 5 + 6 + 7);
  });

  it("counts non-string keys as 0 bytes", () => {
    const c = new LRUCache<unknown, string>();
    c.set(42, "abc");
    c.set({}, "de");
    c.set(Symbol("s"), "");
    expect(c.bytes).toBe(5);
  });

  it("matches Buffer.byteLength for odd strings (lone surrogates count 3)", () => {
    for (const s of ["", "a", "\uD800", "a\uDC00b", "😀\uD83D", "é日😀", "x".repeat(1000)]) {
      expect(utf8Length(s)).toBe(new TextEncoder().encode(s).length);
    }
  });

  it("rejects unmeasurable values with a TypeError and leaves the cache unchanged", () => {
    const { events, onEvicted } = recorder<string, unknown>();
    const c = new LRUCache<string, unknown>({ maxBytes: 100, onEvicted });
    c.set("a", "x");
    for (const bad of [1, true, null, undefined, {}, [1, 2], () => 1, { byteLength: -1 }]) {
      expect(() => c.set("a", bad)).toThrow(TypeError);
      expect(() => c.set("new", bad)).toThrow(TypeError);
    }
    expect([...c]).toEqual([["a", "x"]]);
    expect(c.bytes).toBe(2);
    expect(events).toEqual([]);
  });
});

describe("custom sizeOf", () => {
  it("is used for every entry", () => {
    const c = new LRUCache<string, object>({ maxBytes: 10, sizeOf: () => 4 });
    c.set("a", {});
    c.set("b", {});
    c.set("c", {});
    expect(c.size).toBe(2);
    expect(c.bytes).toBe(8);
    expect([...c.keys()]).toEqual(["c", "b"]);
  });

  it("bad results are RangeError/TypeError and leave the cache unchanged", () => {
    let result: unknown = 1;
    const c = new LRUCache<string, string>({ maxBytes: 10, sizeOf: () => result as number });
    c.set("a", "x");
    for (const bad of [-1, Number.NaN, 1.5, Number.POSITIVE_INFINITY, 2 ** 60]) {
      result = bad;
      expect(() => c.set("a", "y")).toThrow(RangeError);
      expect(() => c.set("b", "y")).toThrow(RangeError);
    }
    result = "3";
    expect(() => c.set("b", "y")).toThrow(TypeError);
    expect([...c]).toEqual([["a", "x"]]);
    expect(c.bytes).toBe(1);
  });

  it("an exception thrown by sizeOf propagates with the cache unchanged", () => {
    const c = new LRUCache<string, string>({
      sizeOf: (k) => {
        if (k === "boom") throw new Error("boom");
        return 1;
      },
    });
    c.set("a", "x");
    expect(() => c.set("boom", "x")).toThrow("boom");
    expect(c.size).toBe(1);
  });
});

describe("options", () => {
  it("rejects bad bounds, ttl and callbacks", () => {
    for (const v of [-1, Number.NaN, 1.5, Number.NEGATIVE_INFINITY, 2 ** 60]) {
      expect(() => new LRUCache({ maxBytes: v })).toThrow(RangeError);
      expect(() => new LRUCache({ maxEntries: v })).toThrow(RangeError);
    }
    expect(() => new LRUCache({ maxBytes: "1" as unknown as number })).toThrow(TypeError);
    expect(() => new LRUCache({ ttlMs: -1 })).toThrow(RangeError);
    expect(() => new LRUCache({ ttlMs: Number.NaN })).toThrow(RangeError);
    expect(() => new LRUCache({ ttlMs: "1" as unknown as number })).toThrow(TypeError);
    expect(() => new LRUCache({ sizeOf: 1 as unknown as () => number })).toThrow(TypeError);
    expect(() => new LRUCache({ onEvicted: "x" as unknown as () => void })).toThrow(TypeError);
    expect(() => new LRUCache({ now: 1 as unknown as () => number })).toThrow(TypeError);
    expect(() => new LRUCache(null as unknown as object)).toThrow(TypeError);
  });

  it("Infinity, or leaving a bound out, means no bound; the getters report Infinity", () => {
    for (const c of [
      new LRUCache<number, string>(),
      new LRUCache<number, string>({
        maxBytes: Number.POSITIVE_INFINITY,
        maxEntries: Number.POSITIVE_INFINITY,
      }),
    ]) {
      for (let i = 0; i < 5000; i++) c.set(i, "x");
      expect(c.size).toBe(5000);
      expect(c.maxBytes).toBe(Number.POSITIVE_INFINITY);
      expect(c.maxEntries).toBe(Number.POSITIVE_INFINITY);
    }
    const bounded = new LRUCache({ maxBytes: 7, maxEntries: 3 });
    expect([bounded.maxBytes, bounded.maxEntries]).toEqual([7, 3]);
  });

  it("0 is refused, and the error says to use Infinity for no limit", () => {
    const hint = /must be an integer > 0; use Infinity \(or leave it out\) for no limit/;
    expect(() => new LRUCache({ maxBytes: 0 })).toThrow(RangeError);
    expect(() => new LRUCache({ maxBytes: 0 })).toThrow(hint);
    expect(() => new LRUCache({ maxEntries: 0 })).toThrow(RangeError);
    expect(() => new LRUCache({ maxEntries: 0 })).toThrow(/^maxEntries must be/);
    const noExpiry =
      /ttlMs must be > 0 milliseconds; use Infinity \(or leave it out\) for no expiry/;
    expect(() => new LRUCache({ ttlMs: 0 })).toThrow(RangeError);
    expect(() => new LRUCache({ ttlMs: 0 })).toThrow(noExpiry);
    const c = new LRUCache<string, string>();
    expect(() => c.set("a", "x", { ttlMs: 0 })).toThrow(noExpiry);
  });

  it("rejects a bad per-entry ttl with the cache unchanged", () => {
    const { events, onEvicted } = recorder<string, string>();
    const c = new LRUCache<string, string>({ onEvicted });
    c.set("a", "old");
    for (const ttlMs of [-5, 0, Number.NaN]) {
      expect(() => c.set("a", "x", { ttlMs })).toThrow(RangeError);
      expect(() => c.set("b", "x", { ttlMs })).toThrow(RangeError);
    }
    expect([...c]).toEqual([["a", "old"]]);
    expect(c.remainingTtl("a")).toBe(Number.POSITIVE_INFINITY);
    expect(events).toEqual([]);
  });
});

describe("bounds", () => {
  it("evicts least recent entries to respect maxBytes", () => {
    const { events, onEvicted } = recorder<string, Uint8Array>();
    const c = new LRUCache<string, Uint8Array>({ maxBytes: 30, onEvicted });
    const a = bytes(9);
    c.set("a", a); // 10
    c.set("b", bytes(9)); // 20
    c.set("c", bytes(9)); // 30
    expect(c.get("a")).toBe(a); // a is most recent now
    c.set("d", bytes(9)); // evicts b
    expect([...c.keys()]).toEqual(["d", "a", "c"]);
    expect(events).toEqual([["b", expect.any(Uint8Array), "evict"]]);
    c.set("e", bytes(19)); // 20 bytes: evicts c then a
    expect([...c.keys()]).toEqual(["e", "d"]);
    expect(events.map((e) => e[0])).toEqual(["b", "c", "a"]);
    expect(c.bytes).toBe(30);
  });

  it("evicts to respect maxEntries", () => {
    const c = new LRUCache<number, string>({ maxEntries: 3 });
    for (let i = 0; i < 10; i++) c.set(i, "v");
    expect([...c.keys()]).toEqual([9, 8, 7]);
  });

  it("adjusts bytes by the difference when replacing, and may evict others", () => {
    const { events, onEvicted } = recorder<string, string>();
    const c = new LRUCache<string, string>({ maxBytes: 10, onEvicted });
    c.set("a", "1234"); // 5
    c.set("b", "1234"); // 10
    c.set("b", "1"); // 2
    expect(c.bytes).toBe(7);
    expect(events).toEqual([["b", "1234", "replace"]]);
    c.set("b", "12345678"); // 9: a must go
    expect(c.bytes).toBe(9);
    expect([...c]).toEqual([["b", "12345678"]]);
    expect(events.slice(1)).toEqual([
      ["b", "1", "replace"],
      ["a", "1234", "evict"],
    ]);
  });

  it("does not report setting the identical value again", () => {
    const { events, onEvicted } = recorder<string, Uint8Array>();
    const c = new LRUCache<string, Uint8Array>({ onEvicted });
    const v = bytes(3);
    c.set("a", v);
    c.set("a", v);
    expect(events).toEqual([]);
  });

  it("refuses an entry larger than maxBytes, evicts nothing, removes the old value", () => {
    const { events, onEvicted } = recorder<string, string>();
    const c = new LRUCache<string, string>({ maxBytes: 10, onEvicted });
    c.set("a", "12");
    c.set("b", "12");
    expect(c.set("b", "0123456789")).toBe(false); // 11 bytes
    expect(c.set("c", "0123456789")).toBe(false);
    expect([...c]).toEqual([["a", "12"]]);
    expect(c.bytes).toBe(3);
    expect(events).toEqual([["b", "12", "delete"]]);
    expect(c.set("c", "012345678")).toBe(true); // exactly 10
    expect([...c.keys()]).toEqual(["c"]);
  });

  it("a new entry that needs several evictions reuses a freed slot, keeping order and bytes exact", () => {
    const { events, onEvicted } = recorder<string, Uint8Array>();
    const c = new LRUCache<string, Uint8Array>({
      maxBytes: 45,
      sizeOf: (_k, v) => v.length,
      onEvicted,
    });
    for (const k of ["a", "b", "c", "d"]) c.set(k, bytes(10));
    c.get("a"); // order, least recent first: b c d a
    c.set("big", bytes(25)); // must drop b and c (10 + 10) to fit 25 next to d and a
    expect(events.map(([k, , r]) => [k, r])).toEqual([
      ["b", "evict"],
      ["c", "evict"],
    ]);
    expect(c.bytes).toBe(45);
    expect([...c.keys()]).toEqual(["big", "a", "d"]);
    // Freed and reused slots keep working: fill again, one out one in, then drain.
    for (let i = 0; i < 50; i++) c.set(`k${i}`, bytes(10));
    expect([...c.keys()]).toEqual(["k49", "k48", "k47", "k46"]);
    expect(c.bytes).toBe(40);
    expect(c.removeOldest()?.[0]).toBe("k46");
    c.clear();
    expect(c.size).toBe(0);
    c.set("x", bytes(40));
    expect([...c.keys()]).toEqual(["x"]);
  });

  it("an onEvicted that sets during a full-cache insert sees a consistent cache", () => {
    const seen: [string, number, boolean][] = [];
    const c: LRUCache<string, number> = new LRUCache<string, number>({
      maxEntries: 2,
      sizeOf: () => 1,
      onEvicted: (k) => {
        seen.push([k, c.size, c.has("new")]);
        if (k === "a") c.set("again", 9); // evicts b, reported after this callback
      },
    });
    c.set("a", 1);
    c.set("b", 2);
    c.set("new", 3);
    expect(seen).toEqual([
      ["a", 2, true],
      ["b", 2, true],
    ]);
    expect([...c.entries()]).toEqual([
      ["again", 9],
      ["new", 3],
    ]);
  });

  it("handles a huge number of entries and growth of the slot arrays", () => {
    const c = new LRUCache<number, string>({ maxEntries: 100_000 });
    for (let i = 0; i < 250_000; i++) c.set(i, "v");
    expect(c.size).toBe(100_000);
    expect(c.peek(150_000)).toBe("v");
    expect(c.peek(149_999)).toBeUndefined();
    expect(c.bytes).toBe(100_000);
  });
});

describe("recency", () => {
  it("get refreshes; peek, has and iteration do not", () => {
    const c = new LRUCache<string, string>({ maxEntries: 3 });
    c.set("a", "1");
    c.set("b", "2");
    c.set("c", "3");
    expect(c.peek("a")).toBe("1");
    expect(c.has("a")).toBe(true);
    expect([...c.values()]).toEqual(["3", "2", "1"]);
    c.set("d", "4"); // a is still the oldest
    expect(c.has("a")).toBe(false);
    expect(c.get("b")).toBe("2");
    c.set("e", "5"); // c is the oldest now
    expect([...c.keys()]).toEqual(["e", "b", "d"]);
    expect([...c.entries()]).toEqual([
      ["e", "5"],
      ["b", "2"],
      ["d", "4"],
    ]);
  });

  it("removeOldest returns and removes the least recent entry", () => {
    const { events, onEvicted } = recorder<string, string>();
    const c = new LRUCache<string, string>({ onEvicted });
    expect(c.removeOldest()).toBeUndefined();
    c.set("a", "1");
    c.set("b", "2");
    expect(c.removeOldest()).toEqual(["a", "1"]);
    expect(c.removeOldest()).toEqual(["b", "2"]);
    expect(c.removeOldest()).toBeUndefined();
    expect(events).toEqual([
      ["a", "1", "evict"],
      ["b", "2", "evict"],
    ]);
    expect(c.bytes).toBe(0);
  });

  it("peekOldestKey names the next eviction's victim without changing recency", () => {
    const { events, onEvicted } = recorder<string, string>();
    const c = new LRUCache<string, string>({ maxEntries: 3, onEvicted });
    expect(c.peekOldestKey()).toBeUndefined();
    c.set("a", "1");
    expect(c.peekOldestKey()).toBe("a");
    c.set("b", "2");
    c.set("c", "3");
    expect(c.peekOldestKey()).toBe("a");
    expect(c.peekOldestKey()).toBe("a"); // a peek is not a use
    c.get("a");
    expect(c.peekOldestKey()).toBe("b");
    c.set("d", "4"); // evicts the key peekOldestKey named
    expect(events).toEqual([["b", "2", "evict"]]);
    expect(c.peekOldestKey()).toBe("c");
    c.delete("c");
    expect(c.peekOldestKey()).toBe("a");
    expect(c.removeOldest()?.[0]).toBe("a");
    expect(c.peekOldestKey()).toBe("d");
    c.clear();
    expect(c.peekOldestKey()).toBeUndefined();
  });

  it("delete and clear report their reasons", () => {
    const { events, onEvicted } = recorder<string, string>();
    const c = new LRUCache<string, string>({ onEvicted });
    c.set("a", "1");
    c.set("b", "2");
    c.set("c", "3");
    expect(c.delete("b")).toBe(true);
    expect(c.delete("b")).toBe(false);
    c.clear();
    expect(events).toEqual([
      ["b", "2", "delete"],
      ["a", "1", "clear"],
      ["c", "3", "clear"],
    ]);
    expect(c.size).toBe(0);
    expect(c.bytes).toBe(0);
    c.set("x", "1");
    expect([...c]).toEqual([["x", "1"]]);
  });

  it("iteration tolerates the cache changing underneath and never loops", () => {
    const c = new LRUCache<number, number>({ sizeOf: () => 1 });
    for (let i = 0; i < 10; i++) c.set(i, i);
    const seen: number[] = [];
    for (const k of c.keys()) {
      seen.push(k);
      c.get(k); // moves k to the head
      c.delete(k - 1); // removes an entry not yet visited
    }
    expect(seen).toEqual([9, 7, 5, 3, 1]);
  });
});

describe("onEvicted", () => {
  it("runs after the entry has left, and may call back into the cache", () => {
    const seen: unknown[] = [];
    const c: LRUCache<string, string> = new LRUCache<string, string>({
      maxEntries: 2,
      onEvicted: (k, v, reason) => {
        seen.push([k, c.has(k), c.size, c.bytes, reason]);
        if (k === "a") c.set("a2", v); // re-entrant set that evicts again
      },
    });
    c.set("a", "1");
    c.set("b", "2");
    c.set("c", "3"); // evicts a; the callback sets a2, which evicts b
    expect(seen).toEqual([
      ["a", false, 2, 4, "evict"],
      ["b", false, 2, 5, "evict"],
    ]);
    expect([...c.keys()]).toEqual(["a2", "c"]);
  });

  it("delivers every notification even if one throws, then rethrows the first error", () => {
    const seen: string[] = [];
    const c = new LRUCache<string, string>({
      onEvicted: (k) => {
        seen.push(k);
        throw new Error(`fail ${k}`);
      },
    });
    c.set("a", "1");
    c.set("b", "2");
    expect(() => c.clear()).toThrow("fail a");
    expect(seen).toEqual(["a", "b"]);
    expect(c.size).toBe(0);
    c.set("c", "3"); // still usable
    expect(c.get("c")).toBe("3");
  });
});

describe("TTL", () => {
  function clock() {
    let t = 1000;
    const advance = (ms: number): void => {
      t += ms;
    };
    return { now: () => t, advance };
  }

  it("never returns expired entries and removes them lazily", () => {
    const { now, advance } = clock();
    const { events, onEvicted } = recorder<string, string>();
    const c = new LRUCache<string, string>({ now, onEvicted });
    c.set("a", "1", { ttlMs: 100 });
    c.set("b", "2");
    advance(99);
    expect(c.get("a")).toBe("1");
    expect(c.remainingTtl("a")).toBe(1);
    expect(c.remainingTtl("b")).toBe(Number.POSITIVE_INFINITY);
    advance(1);
    expect([...c.keys()]).toEqual(["b"]); // iteration skips without removing
    expect(c.size).toBe(2);
    expect(events).toEqual([]);
    expect(c.get("a")).toBeUndefined();
    expect(c.size).toBe(1);
    expect(c.bytes).toBe(2);
    expect(events).toEqual([["a", "1", "expire"]]);
    expect(c.remainingTtl("a")).toBeUndefined();
  });

  it("applies the default ttl; a per-entry Infinity or number overrides it", () => {
    const { now, advance } = clock();
    const c = new LRUCache<string, string>({ now, ttlMs: 50 });
    c.set("a", "1");
    c.set("b", "2", {});
    c.set("c", "3", { ttlMs: Number.POSITIVE_INFINITY });
    c.set("d", "4", { ttlMs: 500 });
    expect(c.remainingTtl("c")).toBe(Number.POSITIVE_INFINITY);
    advance(60);
    expect(c.has("a")).toBe(false);
    expect(c.has("b")).toBe(false);
    expect(c.peek("c")).toBe("3");
    expect(c.has("d")).toBe(true);
  });

  it("a default ttl of Infinity (or none) never expires; a per-entry ttl still does", () => {
    const { now, advance } = clock();
    for (const c of [
      new LRUCache<string, string>({ now }),
      new LRUCache<string, string>({ now, ttlMs: Number.POSITIVE_INFINITY }),
    ]) {
      c.set("forever", "1");
      c.set("short", "2", { ttlMs: 10 });
      advance(1e12);
      expect([...c.keys()]).toEqual(["forever"]);
      expect(c.remainingTtl("forever")).toBe(Number.POSITIVE_INFINITY);
    }
  });

  it("reports expire (not delete/replace/evict) for expired entries", () => {
    const { now, advance } = clock();
    const { events, onEvicted } = recorder<string, string>();
    const c = new LRUCache<string, string>({ now, onEvicted, maxEntries: 3 });
    for (const k of ["a", "b", "c"]) c.set(k, k, { ttlMs: 10 });
    advance(10);
    expect(c.delete("a")).toBe(false);
    c.set("b", "B"); // overwrite an expired entry
    c.set("d", "d");
    c.set("e", "e"); // evicts c, which has expired
    expect(events).toEqual([
      ["a", "a", "expire"],
      ["b", "b", "expire"],
      ["c", "c", "expire"],
    ]);
    expect([...c.keys()]).toEqual(["e", "d", "b"]);
  });

  it("removeOldest skips expired entries, purgeExpired removes them all", () => {
    const { now, advance } = clock();
    const { events, onEvicted } = recorder<string, string>();
    const c = new LRUCache<string, string>({ now, onEvicted });
    c.set("a", "1", { ttlMs: 5 });
    c.set("b", "2");
    c.set("c", "3", { ttlMs: 5 });
    c.set("d", "4", { ttlMs: 5 });
    advance(5);
    expect(c.removeOldest()).toEqual(["b", "2"]);
    expect(c.purgeExpired()).toBe(2);
    expect(c.size).toBe(0);
    expect(events.map((e) => e[2])).toEqual(["expire", "evict", "expire", "expire"]);
  });

  it("peekOldestKey drops the expired entries at the old end and names the first live one", () => {
    const { now, advance } = clock();
    const { events, onEvicted } = recorder<string, string>();
    const c = new LRUCache<string, string>({ now, onEvicted });
    c.set("a", "1", { ttlMs: 5 });
    c.set("b", "2", { ttlMs: 5 });
    c.set("c", "3");
    c.set("d", "4", { ttlMs: 5 });
    expect(c.peekOldestKey()).toBe("a");
    advance(5);
    expect(c.peekOldestKey()).toBe("c");
    expect(events).toEqual([
      ["a", "1", "expire"],
      ["b", "2", "expire"],
    ]);
    expect(c.size).toBe(2); // d, expired but not at the old end, stays until met
    c.delete("c");
    expect(c.peekOldestKey()).toBeUndefined();
    expect(c.size).toBe(0);
    expect(c.bytes).toBe(0);
  });

  it("a cache that never uses TTL never reads the clock", () => {
    let calls = 0;
    const c = new LRUCache<string, string>({
      now: () => {
        calls++;
        return 0;
      },
      maxEntries: 2,
    });
    for (let i = 0; i < 100; i++) {
      c.set(`k${i}`, "v");
      c.get(`k${i}`);
      c.peek(`k${i - 1}`);
    }
    [...c];
    c.removeOldest();
    expect(calls).toBe(0);
  });

  it("uses performance.now() by default", () => {
    const c = new LRUCache<string, string>();
    c.set("a", "1", { ttlMs: 60_000 });
    const left = c.remainingTtl("a") as number;
    expect(left).toBeGreaterThan(59_000);
    expect(left).toBeLessThanOrEqual(60_000);
  });
});
