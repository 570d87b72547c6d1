import { ByteView } from "@tinycache/byteview";
import { describe, expect, it } from "vitest";
import {
  FrequencyPromotion,
  type HotCacheView,
  RandomPromotion,
  RatePromotion,
} from "./hotpolicy.js";
import { newGroupStats } from "./stats.js";
import { fakeClock } from "./testing.test-util.js";

const v = ByteView.from("v");
const stats = newGroupStats();

describe("RandomPromotion", () => {
  it("promotes with probability 1/oneIn from the injected random source", () => {
    const draws = [0.0, 0.099, 0.1, 0.5, 0.999];
    const p = new RandomPromotion({ random: () => draws.shift() as number });
    expect(draws.map(() => 0).map(() => p.shouldPromote())).toEqual([
      true,
      true,
      false,
      false,
      false,
    ]);
  });

  it("about 10% of a seeded stream (groupcache's 1 in 10)", () => {
    let s = 1;
    const rnd = () => {
      s = (s * 16807) % 2147483647;
      return s / 2147483647;
    };
    const p = new RandomPromotion({ random: rnd });
    let n = 0;
    for (let i = 0; i < 10_000; i++) if (p.shouldPromote()) n++;
    expect(n).toBeGreaterThan(900);
    expect(n).toBeLessThan(1100);
  });

  it("oneIn 1 always promotes; bad oneIn is a RangeError", () => {
    expect(new RandomPromotion({ oneIn: 1, random: () => 0.9999 }).shouldPromote()).toBe(true);
    expect(() => new RandomPromotion({ oneIn: 0 })).toThrow(RangeError);
    expect(() => new RandomPromotion({ oneIn: Number.NaN })).toThrow(RangeError);
  });
});

describe("RatePromotion", () => {
  it("promotes a key on its Nth fetch within the window", () => {
    const clock = fakeClock();
    const p = new RatePromotion({ minFetches: 3, windowMs: 1000, now: clock.now });
    expect(p.shouldPromote("a", v, stats)).toBe(false);
    expect(p.shouldPromote("b", v, stats)).toBe(false);
    expect(p.shouldPromote("a", v, stats)).toBe(false);
    expect(p.shouldPromote("a", v, stats)).toBe(true);
    // counting restarts after a promotion
    expect(p.shouldPromote("a", v, stats)).toBe(false);
  });

  it("forgets counts older than the window", () => {
    const clock = fakeClock();
    const p = new RatePromotion({ minFetches: 2, windowMs: 1000, now: clock.now });
    expect(p.shouldPromote("a", v, stats)).toBe(false);
    clock.advance(1000);
    expect(p.shouldPromote("a", v, stats)).toBe(false);
    clock.advance(999);
    expect(p.shouldPromote("a", v, stats)).toBe(true);
  });

  it("tracks at most maxTrackedKeys keys (least recent forgotten)", () => {
    const p = new RatePromotion({ minFetches: 2, maxTrackedKeys: 2 });
    p.shouldPromote("a", v, stats);
    p.shouldPromote("b", v, stats);
    p.shouldPromote("c", v, stats); // a forgotten
    expect(p.shouldPromote("a", v, stats)).toBe(false);
    expect(p.shouldPromote("c", v, stats)).toBe(true);
  });

  it("minFetches 1 promotes at once; bad options are RangeErrors", () => {
    expect(new RatePromotion({ minFetches: 1 }).shouldPromote("k", v, stats)).toBe(true);
    expect(() => new RatePromotion({ minFetches: 0 })).toThrow(RangeError);
    expect(() => new RatePromotion({ minFetches: 2, windowMs: 0 })).toThrow(
      /windowMs must be > 0; use Infinity/,
    );
    for (const maxTrackedKeys of [0, -1, 1.5, Number.NaN]) {
      expect(() => new RatePromotion({ minFetches: 2, maxTrackedKeys })).toThrow(
        /maxTrackedKeys must be an integer >= 1; use Infinity for no limit/,
      );
    }
  });

  it("Infinity means no limit: no key forgotten, no window reset", () => {
    const clock = fakeClock();
    const p = new RatePromotion({
      minFetches: 2,
      windowMs: Number.POSITIVE_INFINITY,
      maxTrackedKeys: Number.POSITIVE_INFINITY,
      now: clock.now,
    });
    for (let i = 0; i < 20_000; i++) expect(p.shouldPromote(`k${i}`, v, stats)).toBe(false);
    clock.advance(1e12);
    expect(p.shouldPromote("k0", v, stats)).toBe(true); // remembered and never reset
  });
});

/** A hot cache as a policy sees it: a fixed number of slots, oldest first in `keys`. */
function fakeHot(slots: number, keys: string[] = []): HotCacheView & { keys: string[] } {
  return {
    keys,
    get items() {
      return keys.length;
    },
    get bytes() {
      return keys.length * 100;
    },
    hasRoomFor: () => keys.length < slots,
    victimKey: () => keys[0],
  };
}

describe("FrequencyPromotion", () => {
  it("counts accesses per key (count-min: never under, capped at 15)", () => {
    const p = new FrequencyPromotion();
    expect(p.frequency("a")).toBe(0);
    for (let i = 1; i <= 5; i++) expect(p.record("a")).toBe(i);
    p.recordHit("a");
    expect(p.frequency("a")).toBe(6);
    expect(p.frequency("b")).toBe(0);
    for (let i = 0; i < 40; i++) p.record("c");
    expect(p.frequency("c")).toBe(15);
  });

  it("few collisions: 1000 keys counted once each are mostly estimated 1", () => {
    const p = new FrequencyPromotion({ expectedEntries: 1024 });
    for (let i = 0; i < 1000; i++) p.record(`key-${i}`);
    let exact = 0;
    for (let i = 0; i < 1000; i++) if (p.frequency(`key-${i}`) === 1) exact++;
    expect(exact).toBeGreaterThan(980);
  });

  it("halves every count after sampleFactor x entries accesses (aging)", () => {
    const p = new FrequencyPromotion({ expectedEntries: 8, sampleFactor: 10 });
    expect(p.sampleSize).toBe(80);
    for (let i = 0; i < 12; i++) p.record("hot");
    expect(p.frequency("hot")).toBe(12);
    for (let i = 0; i < 67; i++) p.record(`cold${i % 7}`); // 79 accesses so far
    expect(p.frequency("hot")).toBe(12);
    p.record("x"); // the 80th: everything halves
    expect(p.frequency("hot")).toBe(6);
    // samples were halved too: the next aging comes after 40 more accesses
    for (let i = 0; i < 39; i++) p.record("y");
    expect(p.frequency("hot")).toBe(6);
    p.record("y");
    expect(p.frequency("hot")).toBe(3);
  });

  it("admits while the hot cache has room, then only keys more frequent than the victim", () => {
    const p = new FrequencyPromotion();
    const hot = fakeHot(2);
    expect(p.shouldPromote("a", v, stats, hot)).toBe(true);
    hot.keys.push("a");
    expect(p.shouldPromote("b", v, stats, hot)).toBe(true);
    hot.keys.push("b");
    p.recordHit("a"); // a: 2 accesses, and it is the victim
    expect(p.shouldPromote("c", v, stats, hot)).toBe(false); // 1 vs 2
    expect(p.shouldPromote("c", v, stats, hot)).toBe(false); // 2 vs 2: a tie keeps a
    expect(p.shouldPromote("c", v, stats, hot)).toBe(true); // 3 vs 2
  });

  it("an empty but full hot cache (no victim) admits", () => {
    const p = new FrequencyPromotion();
    const hot: HotCacheView = {
      items: 0,
      bytes: 0,
      hasRoomFor: () => false,
      victimKey: () => undefined,
    };
    expect(p.shouldPromote("a", v, stats, hot)).toBe(true);
  });

  it("scan resistance: a scan of 100k keys does not flush hot keys in use", () => {
    const p = new FrequencyPromotion({ expectedEntries: 64 });
    const hotKeys = Array.from({ length: 64 }, (_, i) => `hot:${i}`);
    const hot = fakeHot(64);
    const admit = (k: string) => {
      if (hot.items >= 64) hot.keys.shift(); // the victim goes
      hot.keys.push(k);
    };
    for (const k of hotKeys) if (p.shouldPromote(k, v, stats, hot)) admit(k);
    let admitted = 0;
    for (let i = 0; i < 100_000; i++) {
      // The hot keys keep being used: half the traffic, over 64 keys (about 5 accesses
      // each per aging window of 640), while each scanned key comes once.
      const k = hotKeys[i % 64] as string;
      const at = hot.keys.indexOf(k);
      if (at >= 0) {
        p.recordHit(k);
        hot.keys.splice(at, 1);
        hot.keys.push(k); // most recent
      } else if (p.shouldPromote(k, v, stats, hot)) {
        admit(k);
      }
      const scan = `scan:${i}`;
      if (p.shouldPromote(scan, v, stats, hot)) {
        admitted++;
        admit(scan);
      }
    }
    expect(admitted).toBeLessThan(1000); // < 1% of the scan, by hash collisions only
    expect(hotKeys.filter((k) => hot.keys.includes(k)).length).toBeGreaterThanOrEqual(60);
  });

  it("grows the sketch with the hot cache, up to maxEntries", () => {
    const p = new FrequencyPromotion({ expectedEntries: 4, maxEntries: 100 });
    expect(p.sizedFor).toBe(4);
    const hot = fakeHot(
      1000,
      Array.from({ length: 20 }, (_, i) => `k${i}`),
    );
    p.shouldPromote("x", v, stats, hot);
    expect(p.sizedFor).toBe(32);
    expect(p.sampleSize).toBe(320);
    for (let i = 0; i < 500; i++) hot.keys.push(`m${i}`);
    p.shouldPromote("x", v, stats, hot);
    expect(p.sizedFor).toBe(128); // 100 rounded up to a power of 2
  });

  it("empty, unicode and huge keys hash and count like any other", () => {
    const p = new FrequencyPromotion();
    const huge = "x".repeat(1 << 20);
    for (const k of ["", "ключ", "鍵", "🔑", "\ud800", huge]) {
      expect(p.record(k)).toBe(1);
      expect(p.record(k)).toBe(2);
    }
    expect(p.frequency(`${huge}y`)).toBe(0);
    expect(p.shouldPromote("", v, stats, fakeHot(1))).toBe(true);
  });

  it("bad options are RangeErrors", () => {
    expect(() => new FrequencyPromotion({ expectedEntries: 0 })).toThrow(RangeError);
    expect(() => new FrequencyPromotion({ expectedEntries: 1.5 })).toThrow(RangeError);
    expect(() => new FrequencyPromotion({ expectedEntries: 64, maxEntries: 32 })).toThrow(
      /maxEntries must be an integer >= expectedEntries/,
    );
    expect(() => new FrequencyPromotion({ sampleFactor: 0.5 })).toThrow(RangeError);
    expect(() => new FrequencyPromotion({ sampleFactor: Number.NaN })).toThrow(RangeError);
  });
});
