import { ByteView } from "@tinycache/byteview";
import { describe, expect, it } from "vitest";
import { RandomPromotion, RatePromotion } from "./hotpolicy.js";
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
