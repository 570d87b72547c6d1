/**
 * Singleflight throughput against the peers a user would pick instead, interleaved in one
 * run (method: docs/benchmarks.md). Each round issues every call synchronously for
 * 10k keys -- 1 or 10 callers per key -- then awaits them all; the work resolves on a
 * microtask, so what is measured is the bookkeeping around it: map traffic, promises,
 * closures. Ops = calls made by callers (not fn invocations). A round repeats that pass
 * until it has made 100k calls, so a single GC pause weighs less on one round.
 */
import { compare, goal, makeKeys, printTable, ratio } from "@tinycache/testkit";
import { coalesceAsync } from "promise-coalesce";
import { SingleFlight } from "../dist/index.js";

const KEYS = makeKeys(10_000);
const VALUE = { ok: true };
type Value = typeof VALUE;

// The same work for every contender: resolves on a microtask, ignores any signal.
const work = (): Promise<Value> => Promise.resolve(VALUE);
// Work that takes the signal, as `(signal) => load(key, signal)` would.
const workWithSignal = (signal: AbortSignal): Promise<Value> =>
  signal.aborted ? Promise.reject(signal.reason) : Promise.resolve(VALUE);
// One long-lived signal every caller passes (say, a server's shutdown signal): this
// takes our per-caller abort path, for information; the peers have no such feature.
const shutdown = new AbortController().signal;
const withSignal = { signal: shutdown };

/** The minimal reference: get-or-create a promise per key, delete it on settle. */
class MapReference<K, V> {
  readonly #map = new Map<K, Promise<V>>();
  do(key: K, fn: () => Promise<V>): Promise<V> {
    let p = this.#map.get(key);
    if (p !== undefined) return p;
    const map = this.#map;
    p = fn().then(
      (v) => {
        map.delete(key);
        return v;
      },
      (e: unknown) => {
        map.delete(key);
        throw e;
      },
    );
    map.set(key, p);
    return p;
  }
}

const ours = new SingleFlight<string, Value>();
const oursSignal = new SingleFlight<string, Value>();
const reference = new MapReference<string, Value>();

const CALLS_PER_ROUND = 100_000;

function makeRuns(callers: number) {
  const perPass = KEYS.length * callers;
  const passes = Math.max(1, Math.round(CALLS_PER_ROUND / perPass));
  const n = perPass * passes;
  const pending = new Array<Promise<Value>>(perPass);
  // One loop function per contender keeps each call site monomorphic.
  const runOurs = async (): Promise<number> => {
    for (let pass = 0; pass < passes; pass++) {
      let i = 0;
      for (let c = 0; c < callers; c++) for (const k of KEYS) pending[i++] = ours.do(k, work);
      await Promise.all(pending);
    }
    return n;
  };
  const runOursSignal = async (): Promise<number> => {
    for (let pass = 0; pass < passes; pass++) {
      let i = 0;
      for (let c = 0; c < callers; c++)
        for (const k of KEYS) pending[i++] = oursSignal.do(k, workWithSignal, withSignal);
      await Promise.all(pending);
    }
    return n;
  };
  const runReference = async (): Promise<number> => {
    for (let pass = 0; pass < passes; pass++) {
      let i = 0;
      for (let c = 0; c < callers; c++) for (const k of KEYS) pending[i++] = reference.do(k, work);
      await Promise.all(pending);
    }
    return n;
  };
  const runCoalesce = async (): Promise<number> => {
    for (let pass = 0; pass < passes; pass++) {
      let i = 0;
      for (let c = 0; c < callers; c++) for (const k of KEYS) pending[i++] = coalesceAsync(k, work);
      await Promise.all(pending);
    }
    return n;
  };
  return [
    { name: "singleflight", run: runOurs },
    { name: "singleflight, every caller passes a signal", run: runOursSignal },
    { name: "map-reference", run: runReference },
    { name: "promise-coalesce", run: runCoalesce },
  ];
}

for (const callers of [1, 10]) {
  const label = `${callers} caller${callers === 1 ? "" : "s"}`;
  const cmp = await compare(`singleflight, 10k keys, ${label} per key`, makeRuns(callers), {
    rounds: 25,
    warmup: 5,
    // CPU time of this process: the rounds are synchronous work plus microtasks, and on a
    // shared machine wall time mostly measures the other processes.
    clock: "cpu",
  });
  printTable(cmp, "map-reference");
  const vsRef = ratio(cmp, "singleflight", "map-reference");
  const vsRefSignal = ratio(cmp, "singleflight, every caller passes a signal", "map-reference");
  const vsCoalesce = ratio(cmp, "singleflight", "promise-coalesce");
  // The bare Map is the least bookkeeping a singleflight can do, so its lead over
  // promise-coalesce bounds ours (unless ours beats the bare Map itself).
  const refVsCoalesce = ratio(cmp, "map-reference", "promise-coalesce");
  const spread = (r: { p10: number; p90: number }) =>
    `(p10-p90 ${r.p10.toFixed(2)}-${r.p90.toFixed(2)})`;
  console.log();
  console.log(
    `info singleflight (callers pass a signal) vs map-reference (${label}): ${vsRefSignal.median.toFixed(2)} ${spread(vsRefSignal)}`,
  );
  console.log(
    `info map-reference vs promise-coalesce (${label}): ${refVsCoalesce.median.toFixed(2)} ${spread(refVsCoalesce)} -- the ceiling for anything no faster than a bare Map`,
  );
  goal(`singleflight vs map-reference (${label})`, vsRef.median, 0.9, spread(vsRef));
  goal(`singleflight vs promise-coalesce (${label})`, vsCoalesce.median, 2, spread(vsCoalesce));
}
