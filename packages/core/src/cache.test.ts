import { ByteView } from "@tinycache/byteview";
import { LRU_ENTRY_OVERHEAD } from "@tinycache/lru";
import { describe, expect, it } from "vitest";
import { type Entry, entrySize, SWEEP_CHECKS_PER_ADD, TwoTierCache } from "./cache.js";
import { fakeClock } from "./testing.test-util.js";

const entry = (size: number, expiresAt = 0): Entry => ({
  view: ByteView.from("x".repeat(Math.max(0, size - 2))),
  expiresAt,
  size,
  resolved: undefined,
  served: undefined,
  servedValue: undefined,
});

/** What an entry of `size` costs the budget: its size plus the LRU's own overhead. */
const cost = (size: number): number => size + LRU_ENTRY_OVERHEAD;
/** One unit of the tests below: an entry(10). */
const U = cost(10);

describe("TwoTierCache: one budget for main + hot, as groupcache", () => {
  it("evicts from hot first while hot > main/8, else from main", () => {
    const c = new TwoTierCache(10 * U, Date.now);
    for (let i = 0; i < 8; i++) c.add("main", `m${i}`, entry(10)); // main 8 U
    c.add("hot", "h0", entry(10)); // hot 1 U > 8U/8: hot is the victim when over
    c.add("hot", "h1", entry(10)); // total 10 U: fits
    expect(c.stats("main").bytes + c.stats("hot").bytes).toBe(10 * U);
    c.add("hot", "h2", entry(10)); // 11 U > 10 U, hot 3 U > 1 U -> evict oldest hot (h0)
    expect(c.stats("hot")).toMatchObject({ items: 2, evictions: 1 });
    expect(c.lookup("h0")).toBeUndefined();
    expect(c.lookup("h1")).toBeDefined();
    expect(c.stats("main").evictions).toBe(0);
  });

  it("evicts the oldest main entry when hot is small (hot <= main/8)", () => {
    const c = new TwoTierCache(10 * U, Date.now);
    for (let i = 0; i < 9; i++) c.add("main", `m${i}`, entry(10)); // main 9 U
    c.add("hot", "h0", entry(10)); // hot 1 U <= 9U/8 -> fits at 10 U
    c.lookup("m0"); // m0 becomes most recent: m1 is the oldest
    c.add("main", "m9", entry(10)); // 11 U -> evict main's oldest: m1
    expect(c.stats("main")).toMatchObject({ items: 9, evictions: 1 });
    expect(c.stats("hot")).toMatchObject({ items: 1, evictions: 0 });
    expect(c.lookup("m1")).toBeUndefined();
    expect(c.lookup("m0")).toBeDefined();
  });

  it("never stores an entry larger than the whole budget (and keeps the rest)", () => {
    const budget = 5 * U;
    const c = new TwoTierCache(budget, Date.now);
    c.add("main", "a", entry(10));
    // Its size alone fits, not with the LRU's overhead.
    expect(c.add("main", "huge", entry(budget - LRU_ENTRY_OVERHEAD + 1))).toBe(false);
    expect(c.stats("main")).toMatchObject({ items: 1, bytes: U, evictions: 0 });
    expect(c.add("main", "big", entry(budget - LRU_ENTRY_OVERHEAD))).toBe(true);
    expect(c.stats("main")).toMatchObject({ items: 1, bytes: budget, evictions: 1 });
  });

  it("a zero budget stores nothing, not even an empty entry", () => {
    const c = new TwoTierCache(0, Date.now);
    expect(c.add("main", "a", entry(1))).toBe(false);
    expect(c.add("hot", "", entry(0))).toBe(false);
    expect(c.stats("main").items + c.stats("hot").items).toBe(0);
  });

  it("an Infinity budget never evicts; a negative or NaN budget is a RangeError", () => {
    const c = new TwoTierCache(Number.POSITIVE_INFINITY, Date.now);
    const huge = { ...entry(10), size: 2 ** 40 }; // a size, not an allocation
    for (let i = 0; i < 1000; i++) c.add(i % 2 ? "main" : "hot", `k${i}`, { ...huge });
    expect(c.stats("main")).toMatchObject({ items: 500, evictions: 0 });
    expect(c.stats("hot")).toMatchObject({ items: 500, evictions: 0 });
    for (const b of [-1, Number.NaN, Number.NEGATIVE_INFINITY]) {
      expect(() => new TwoTierCache(b, Date.now)).toThrow(
        /cacheBytes must be >= 0 \(0 caches nothing\); use Infinity for no limit/,
      );
    }
  });

  it("an entry it refuses still replaces the key: older copies in main and hot go", () => {
    const clock = fakeClock();
    const c = new TwoTierCache(5 * U, clock.now);
    c.add("main", "m", entry(10));
    c.add("hot", "h", entry(10));
    expect(c.add("main", "m", entry(10, clock.now()))).toBe(false); // already expired
    expect(c.add("main", "h", entry(5 * U))).toBe(false); // over the whole budget
    expect(c.lookup("m")).toBeUndefined();
    expect(c.lookup("h")).toBeUndefined();
    expect(c.stats("main").items + c.stats("hot").items).toBe(0);
  });

  it("looks up main before hot, and a key lives in one cache only", () => {
    const c = new TwoTierCache(1000, Date.now);
    c.add("hot", "k", entry(5));
    c.add("main", "k", entry(6));
    expect(c.stats("hot").items).toBe(0);
    expect(c.lookup("k")?.size).toBe(6);
    c.add("hot", "k", entry(7));
    expect(c.stats("main").items).toBe(0);
    expect(c.lookup("k")?.size).toBe(7);
    c.remove("k");
    expect(c.lookup("k")).toBeUndefined();
  });

  it("never returns expired entries, drops them on lookup, and refuses already-expired adds", () => {
    const clock = fakeClock();
    const c = new TwoTierCache(1000, clock.now);
    c.add("main", "a", entry(10, clock.now() + 5));
    expect(c.add("main", "old", entry(10, clock.now()))).toBe(false);
    expect(c.lookup("a")).toBeDefined();
    clock.advance(5);
    expect(c.lookup("a")).toBeUndefined();
    expect(c.stats("main")).toMatchObject({ items: 0, bytes: 0, hits: 1, gets: 2 });
  });

  it("sweeps expired entries on adds, a bounded number per add, without lookups", () => {
    const clock = fakeClock();
    const c = new TwoTierCache(Number.POSITIVE_INFINITY, clock.now);
    for (let i = 0; i < 100; i++) c.add("main", `neg${i}`, entry(10, clock.now() + 1000));
    for (let i = 0; i < 20; i++) c.add("hot", `hot${i}`, entry(10, clock.now() + 1000));
    clock.advance(1000); // all of them have expired; nobody asks for them again
    c.add("main", "fresh0", entry(10));
    const left = 120 - (c.stats("main").items + c.stats("hot").items - 1);
    expect(left).toBeGreaterThan(0);
    expect(left).toBeLessThanOrEqual(2 * SWEEP_CHECKS_PER_ADD);
    for (let i = 1; i <= Math.ceil(100 / SWEEP_CHECKS_PER_ADD); i++) {
      c.add("main", `fresh${i}`, entry(10));
    }
    expect(c.stats("hot")).toMatchObject({ items: 0, bytes: 0 });
    const fresh = Math.ceil(100 / SWEEP_CHECKS_PER_ADD) + 1;
    expect(c.stats("main")).toMatchObject({ items: fresh, bytes: fresh * U, evictions: 0 });
  });

  it("entrySize counts key, value and the measured overhead (negative entries less)", () => {
    const positive = entrySize("ключ", ByteView.from("630"));
    const negative = entrySize("ключ", undefined);
    expect(positive).toBeGreaterThan(8 + 3 + 300);
    expect(negative).toBeGreaterThan(8);
    expect(negative).toBeLessThan(positive - 3);
  });
});

describe("TwoTierCache: main's keys owned elsewhere (heldForOthers)", () => {
  it("holds a key added to main as owned elsewhere, and forgets it with its entry", () => {
    const c = new TwoTierCache(Number.POSITIVE_INFINITY, Date.now);
    c.add("main", "mine", entry(10));
    c.add("main", "theirs", entry(10), true);
    c.add("hot", "copy", entry(10), true); // the flag is for main only
    expect(c.heldForOthers("mine")).toBe(false);
    expect(c.heldForOthers("theirs")).toBe(true);
    expect(c.heldForOthers("copy")).toBe(false);
    expect(c.heldForOthers("absent")).toBe(false);
    c.add("main", "theirs", entry(12)); // replaced by a copy stored as its own
    expect(c.heldForOthers("theirs")).toBe(false);
    c.add("main", "theirs", entry(10), true);
    c.remove("theirs");
    expect(c.heldForOthers("theirs")).toBe(false);
    c.add("main", "theirs", entry(10), true);
    c.add("hot", "theirs", entry(10)); // moved to hot: main's copy goes
    expect(c.heldForOthers("theirs")).toBe(false);
    expect(c.heldForOthersCount).toBe(0);
  });

  it("forgets keys evicted by the budget, and one refused as too large", () => {
    const c = new TwoTierCache(3 * U, Date.now);
    c.add("main", "a", entry(10), true);
    c.add("main", "b", entry(10), true);
    c.add("main", "c", entry(10), true);
    c.add("main", "d", entry(10), true); // evicts a
    expect(c.heldForOthers("a")).toBe(false);
    expect(["b", "c", "d"].map((k) => c.heldForOthers(k))).toEqual([true, true, true]);
    c.add("main", "b", entry(4 * U), true); // larger than the budget: refused, b goes
    expect(c.heldForOthers("b")).toBe(false);
    expect(c.heldForOthersCount).toBe(2);
  });

  it("forgets keys that expire, met by a lookup or by the sweep", () => {
    const clock = fakeClock();
    const c = new TwoTierCache(Number.POSITIVE_INFINITY, clock.now);
    c.add("main", "x", entry(10, clock.now() + 10), true);
    c.add("main", "y", entry(10, clock.now() + 10), true);
    clock.advance(10);
    expect(c.lookup("x")).toBeUndefined();
    expect(c.heldForOthers("x")).toBe(false);
    c.sweep(SWEEP_CHECKS_PER_ADD);
    expect(c.heldForOthers("y")).toBe(false);
    expect(c.heldForOthersCount).toBe(0);
  });

  it("lookupHot looks in hot alone, counting as lookup counts hot", () => {
    const c = new TwoTierCache(Number.POSITIVE_INFINITY, Date.now);
    c.add("main", "m", entry(10));
    c.add("hot", "h", entry(10));
    expect(c.lookupHot("m")).toBeUndefined();
    expect(c.lookupHot("h")).toBeDefined();
    expect(c.stats("main")).toMatchObject({ gets: 0, hits: 0 });
    expect(c.stats("hot")).toMatchObject({ gets: 2, hits: 1 });
  });

  it("stays exact under random adds, removes and evictions (model check)", () => {
    let seed = 7;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const c = new TwoTierCache(12 * U, Date.now);
    const keys = Array.from({ length: 24 }, (_, i) => (i % 3 === 0 ? `ключ${i}` : `k${i}`));
    // What the last add to main said of each key; main itself says whether it is still there.
    const addedAsOthers = new Map<string, boolean>();
    for (let step = 0; step < 2_000; step++) {
      const key = keys[rand(keys.length)] as string;
      const op = rand(10);
      if (op < 5) {
        const others = rand(2) === 0;
        c.add("main", key, entry(10 + rand(3) * 10), others);
        addedAsOthers.set(key, others);
      } else if (op < 7) c.add("hot", key, entry(10));
      else if (op < 8) c.remove(key);
      else c.lookup(key);
      let held = 0;
      for (const k of keys) {
        const want = c.main.lru.peek(k) !== undefined && addedAsOthers.get(k) === true;
        expect(c.heldForOthers(k)).toBe(want);
        if (want) held++;
      }
      expect(c.heldForOthersCount).toBe(held);
    }
  });
});
