import { prng } from "@tinycache/testkit";
import { Histogram, Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import { TallyHistogram } from "./tally-histogram.js";

const BUCKETS = [0.0005, 0.001, 0.01, 0.1, 1, 10];
const NAMES = ["group", "peer", "outcome"] as const;

/** prom-client's Histogram and ours, each in a registry of its own, fed the same way. */
function pair(labelNames: readonly string[] = NAMES, extra: { collect?: () => void } = {}) {
  const theirsReg = new Registry();
  const oursReg = new Registry();
  const config = { name: "calls_seconds", help: "Calls", labelNames, buckets: BUCKETS, ...extra };
  const theirs = new Histogram({ ...config, registers: [theirsReg] });
  const ours = new TallyHistogram({ ...config, registers: [oursReg] });
  const same = async () => {
    expect(await oursReg.metrics()).toBe(await theirsReg.metrics());
    expect(await oursReg.getMetricsAsJSON()).toEqual(await theirsReg.getMetricsAsJSON());
  };
  return { theirs, ours, same, oursReg };
}

describe("TallyHistogram", () => {
  it("scrapes exactly as prom-client's Histogram after the same observations", async () => {
    const { theirs, ours, same } = pair();
    const rand = prng(11);
    const groups = ["scores", "users", "ünïcødé 🗝"];
    const peers = ["http://10.0.0.1:8001", "http://10.0.0.2:8001", 'odd "peer"\nname\\'];
    const outcomes = ["ok", "timeout", "unavailable"];
    const pick = <T>(xs: readonly T[]) => xs[Math.floor(rand() * xs.length)] as T;
    for (let i = 0; i < 5000; i++) {
      // Values on and around the bounds, zero, negative and beyond the last bound.
      const v = i % 7 === 0 ? (pick(BUCKETS) as number) : i % 11 === 0 ? -rand() : rand() ** 4 * 20;
      const [g, p, o] = [pick(groups), pick(peers), pick(outcomes)];
      theirs.observe({ group: g, peer: p, outcome: o }, v);
      if (i % 2 === 0) ours.tally(v, g, p, o);
      else ours.observe({ group: g, peer: p, outcome: o }, v);
    }
    await same();
  });

  it("starts empty, and a histogram without labels has its one series", async () => {
    await pair().same();
    const bare = pair([]);
    await bare.same();
    bare.theirs.observe(0.5);
    bare.ours.observe(0.5);
    bare.ours.tally(3);
    bare.theirs.observe(3);
    await bare.same();
  });

  it("keeps subsets of the labels, numbers as values and the caller's label order as prom-client does", async () => {
    const { theirs, ours, same } = pair();
    for (const [labels, v] of [
      [{ group: "g" }, 0.01],
      [{ outcome: "ok", group: "g" }, 0.2],
      [{ group: "g", peer: "p", outcome: "ok" }, 2],
      [{ group: 7 }, 1],
      [{ group: "7" }, 1],
      [{}, 0.3],
    ] as const) {
      theirs.observe(labels, v);
      ours.observe(labels, v);
    }
    await same();
  });

  it("removes series by labels object or by values, and a series observed again comes last", async () => {
    const { theirs, ours, same } = pair();
    for (const h of [theirs, ours]) {
      h.observe({ group: "a", peer: "p1", outcome: "ok" }, 0.1);
      h.observe({ group: "a", peer: "p2", outcome: "ok" }, 0.1);
      h.observe({ group: "b", peer: "p1", outcome: "ok" }, 0.1);
      h.remove({ group: "a", peer: "p1", outcome: "ok" });
      h.remove("b", "p1", "ok");
      h.remove({ group: "nope", peer: "p1", outcome: "ok" }); // never seen: nothing
      h.observe({ group: "a", peer: "p1", outcome: "ok" }, 5);
    }
    await same();
  });

  it("removeWhere() drops every series with a label's value, as removing each would; valuesOf() lists the values held", async () => {
    const { theirs, ours, same } = pair();
    for (const h of [theirs, ours]) {
      h.observe({ group: "a", peer: "p1", outcome: "ok" }, 0.1);
      h.observe({ group: "a", peer: "p1", outcome: "timeout" }, 0.1);
      h.observe({ group: "b", peer: "p1", outcome: "ok" }, 0.1);
      h.observe({ group: "a", peer: "p2", outcome: "ok" }, 0.1);
      h.observe({ group: "a" }, 0.1);
    }
    expect([...ours.valuesOf("peer")].sort()).toEqual(["p1", "p2"]);
    for (const labels of [
      { group: "a", peer: "p1", outcome: "ok" },
      { group: "a", peer: "p1", outcome: "timeout" },
      { group: "b", peer: "p1", outcome: "ok" },
    ]) {
      theirs.remove(labels);
    }
    ours.removeWhere("peer", "p1");
    ours.removeWhere("peer", "never-seen");
    await same();
    expect([...ours.valuesOf("peer")]).toEqual(["p2"]);
  });

  it("zero() and reset() as prom-client's", async () => {
    const { theirs, ours, same } = pair();
    for (const h of [theirs, ours]) {
      h.observe({ group: "a", peer: "p", outcome: "ok" }, 0.1);
      h.observe({ group: "b", peer: "p", outcome: "ok" }, 0.1);
      h.zero({ group: "a", peer: "p", outcome: "ok" });
      h.zero({ group: "c", peer: "p", outcome: "ok" });
    }
    await same();
    theirs.reset();
    ours.reset();
    await same();
    ours.tally(1, "a", "p", "ok");
    theirs.observe({ group: "a", peer: "p", outcome: "ok" }, 1);
    await same();
  });

  it("labels() and startTimer() observe into the same series", async () => {
    const { ours, oursReg } = pair();
    ours.labels("g", "p", "ok").observe(0.2);
    ours.labels({ group: "g", peer: "p", outcome: "ok" }).observe(0.4);
    const end = ours.startTimer({ group: "g" });
    const seconds = end({ peer: "p", outcome: "ok" });
    expect(seconds).toBeGreaterThanOrEqual(0);
    ours.labels("g", "p", "ok").startTimer()();
    const json = await oursReg.getMetricsAsJSON();
    const values = json[0]?.values as { metricName?: string; value: number; labels: object }[];
    const count = values.find((v) => v.metricName === "calls_seconds_count");
    expect(count?.value).toBe(4);
    expect(count?.labels).toEqual({ group: "g", peer: "p", outcome: "ok" });
  });

  it("throws prom-client's errors for unknown labels, bad values and wrong argument counts", () => {
    const { theirs, ours } = pair();
    for (const bad of [
      (h: Histogram<string>) => h.observe({ nope: "x" }, 1),
      (h: Histogram<string>) => h.observe({ group: "g" }, Number.NaN),
      (h: Histogram<string>) => h.observe({ group: "g" }, Number.POSITIVE_INFINITY),
      (h: Histogram<string>) => h.labels("only-one"),
      (h: Histogram<string>) => h.remove({ nope: "x" }),
    ]) {
      let theirError: unknown;
      try {
        bad(theirs);
      } catch (err) {
        theirError = err;
      }
      expect(theirError).toBeInstanceOf(Error);
      expect(() => bad(ours)).toThrow((theirError as Error).message);
    }
    expect(() => ours.tally(Number.NaN, "g", "p", "ok")).toThrow(TypeError);
    // Stricter than prom-client, whose zero() takes any label name.
    expect(() => ours.zero({ nope: "x" } as never)).toThrow(/not included in initial labelset/);
  });

  it("a refused observation leaves no series behind", async () => {
    const { ours, oursReg } = pair();
    expect(() => ours.observe({ group: "g" }, Number.NaN)).toThrow(TypeError);
    expect(() => ours.tally(Number.NaN, "g", "p", "ok")).toThrow(TypeError);
    expect((await oursReg.getMetricsAsJSON())[0]?.values).toEqual([]);
  });

  it("runs the collect callback before each scrape", async () => {
    let calls = 0;
    const { same } = pair(NAMES, {
      collect() {
        calls++;
      },
    });
    await same();
    expect(calls).toBe(4); // two scrapes (text, JSON) of each of the two histograms
  });

  it("refuses more than three label names and exemplars", () => {
    const registers = [new Registry()];
    expect(
      () =>
        new TallyHistogram({ name: "x", help: "x", labelNames: ["a", "b", "c", "d"], registers }),
    ).toThrow(RangeError);
    expect(
      () => new TallyHistogram({ name: "x", help: "x", enableExemplars: true, registers }),
    ).toThrow(TypeError);
  });
});
