import { describe, expect, it } from "vitest";
import { type EvictionReason, LRU_ENTRY_OVERHEAD, LRUCache } from "./index.js";

describe("entryOverhead", () => {
  it("adds the same bytes to every entry, with the default and a custom sizeOf", () => {
    const c = new LRUCache<string, string>({ entryOverhead: 100 });
    c.set("ab", "cd"); // 4 + 100
    c.set("é", "x"); // 3 + 100
    expect(c.bytes).toBe(207);
    c.set("ab", "cdef"); // replaced: 6 + 100
    expect(c.bytes).toBe(209);
    c.delete("é");
    expect(c.bytes).toBe(106);
    const s = new LRUCache<string, object>({ entryOverhead: 10, sizeOf: () => 5 });
    s.set("a", {});
    expect(s.bytes).toBe(15);
  });

  it("counts against maxBytes: the bound is on memory, not payload", () => {
    const c = new LRUCache<string, string>({ entryOverhead: 50, maxBytes: 200 });
    for (const k of ["a", "b", "c", "d"]) c.set(k, "v"); // 52 each: three fit
    expect(c.size).toBe(3);
    expect([...c.keys()]).toEqual(["d", "c", "b"]);
    // Too large once the overhead is added: not stored.
    expect(c.set("big", "x".repeat(148))).toBe(false);
    expect(c.set("ok", "x".repeat(148))).toBe(true); // 2 + 148 + 50 = 200
    expect(c.size).toBe(1);
  });

  it("refuses a negative, fractional or non-number overhead", () => {
    for (const bad of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => new LRUCache({ entryOverhead: bad })).toThrow(RangeError);
    }
    expect(() => new LRUCache({ entryOverhead: "8" as unknown as number })).toThrow(TypeError);
    expect(LRU_ENTRY_OVERHEAD).toBeGreaterThan(0);
  });
});

describe("sweepExpired", () => {
  const clock = () => {
    let t = 1000;
    return {
      now: () => t,
      advance: (ms: number) => {
        t += ms;
      },
    };
  };

  it("looks at a bounded number of entries per call, round robin, and drops the expired", () => {
    const k = clock();
    const events: [string, EvictionReason][] = [];
    const c = new LRUCache<string, string>({
      now: k.now,
      onEvicted: (key, _v, r) => void events.push([key, r]),
    });
    for (let i = 0; i < 10; i++) c.set(`k${i}`, "v", { ttlMs: i % 2 === 0 ? 10 : 1000 });
    k.advance(10); // the five even keys have expired
    expect(c.sweepExpired(4)).toBe(2); // k0..k3: k0, k2
    expect(c.size).toBe(8);
    expect(c.bytes).toBe(8 * 3);
    expect(c.sweepExpired(4)).toBe(2); // k4..k7
    expect(c.sweepExpired(4)).toBe(1); // k8, k9, then wraps to the start
    expect(events).toEqual(["k0", "k2", "k4", "k6", "k8"].map((key) => [key, "expire"]));
    expect([...c.keys()].sort()).toEqual(["k1", "k3", "k5", "k7", "k9"]);
    expect(c.sweepExpired(100)).toBe(0); // never more than the entries held
  });

  it("takes a predicate for values that carry their own expiry", () => {
    const c = new LRUCache<string, { dead: boolean }>({ sizeOf: () => 1 });
    c.set("a", { dead: true });
    c.set("b", { dead: false });
    c.set("c", { dead: true });
    expect(c.sweepExpired(3, (_k, v) => v.dead)).toBe(2);
    expect([...c.keys()]).toEqual(["b"]);
    expect(c.bytes).toBe(1);
  });

  it("skips freed and reused slots, and does nothing without TTL or predicate", () => {
    const c = new LRUCache<string, string>();
    c.set("a", "1");
    c.set("b", "2");
    expect(c.sweepExpired(10)).toBe(0);
    c.delete("a");
    c.set("c", "3"); // reuses a's slot
    expect(c.sweepExpired(10, (k) => k === "a")).toBe(0);
    expect(c.sweepExpired(10, (k) => k === "c")).toBe(1);
    expect([...c.keys()]).toEqual(["b"]);
    expect(c.sweepExpired(0, () => true)).toBe(0);
    c.clear();
    expect(c.sweepExpired(10, () => true)).toBe(0);
  });

  it("get removes an entry it finds expired, and its bytes return", () => {
    const k = clock();
    const c = new LRUCache<string, string>({ now: k.now, ttlMs: 5 });
    c.set("a", "1");
    k.advance(5);
    expect(c.bytes).toBe(2);
    expect(c.get("a")).toBeUndefined();
    expect(c.size).toBe(0);
    expect(c.bytes).toBe(0);
  });
});
