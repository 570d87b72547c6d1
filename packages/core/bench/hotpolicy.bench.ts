/**
 * Hot-cache promotion policies (method: docs/benchmarks.md), through a real Group whose
 * peer picker sends 2 keys in 3 to a fake remote owner (an in-process PeerGetter that
 * answers at once, counting round trips) and keeps the third local, as one node of three:
 *
 * 1. Zipf(0.99) over 100k keys (seeded, generated before timing): hot-cache hit ratio of
 *    the remote gets, and owner round trips per hot remote key (the 100 most popular),
 *    for RandomPromotion (groupcache's 1 in 10) vs FrequencyPromotion (TinyLFU).
 * 2. Scan resistance: the same traffic, warmed, then a one-off scan of 50k remote keys
 *    interleaved 1:1 with it; the hot hit ratio during and after the scan.
 * 3. CPU cost of a hot hit with each policy (FrequencyPromotion counts every hot hit):
 *    interleaved rounds, median of per-round ratios.
 */
import {
  ByteView,
  FrequencyPromotion,
  GroupRegistry,
  type HotCachePolicy,
  RandomPromotion,
} from "@tinycache/core";
import { compare, goal, makeKeys, printTable, prng, ratio, zipfStream } from "@tinycache/testkit";

const KEYS = 100_000;
const OPS = 400_000;
const VALUE = ByteView.from("x".repeat(100));
/** About 9k entries of this size: main takes ~8k, the hot cache up to 1/8 of main (~1k). */
const CACHE_BYTES = 9_000 * 720;

const keys = makeKeys(KEYS, 11);
const local = new Set(keys.filter((_, i) => i % 3 === 0));
const zipf = zipfStream(KEYS, OPS, 0.99, 12);
const scanKeys = makeKeys(50_000, 13)
  .map((k) => `scan:${k}`)
  .filter((k) => !local.has(k));
/** The most popular remote keys. */
const topRemote: string[] = [];
for (let i = 0; i < KEYS && topRemote.length < 100; i++) {
  const k = keys[i] as string;
  if (!local.has(k)) topRemote.push(k);
}

interface Sim {
  get(key: string): Promise<ByteView>;
  fetches: Map<string, number>;
  hotHits(): number;
  roundTrips(): number;
  hotItems(): number;
}

function sim(policy: HotCachePolicy): Sim {
  const fetches = new Map<string, number>();
  let trips = 0;
  const owner = {
    id: "owner",
    get(req: { key: string }) {
      trips++;
      fetches.set(req.key, (fetches.get(req.key) ?? 0) + 1);
      return Promise.resolve({ value: VALUE.byteSlice() });
    },
    set: () => Promise.resolve(),
    remove: () => Promise.resolve(),
  };
  const g = new GroupRegistry().newGroup({
    name: "hot",
    cacheBytes: CACHE_BYTES,
    getter: async () => VALUE,
    hotCache: policy,
    peers: { pickPeer: (k) => (local.has(k) ? undefined : owner), peers: () => [owner] },
  });
  return {
    get: (k) => g.get(k),
    fetches,
    hotHits: () => g.cacheStats("hot").hits,
    roundTrips: () => trips,
    hotItems: () => g.cacheStats("hot").items,
  };
}

const policies: Record<string, () => HotCachePolicy> = {
  random: () => new RandomPromotion({ random: prng(99) }),
  frequency: () => new FrequencyPromotion(),
};

interface Result {
  hitRatio: number;
  tripsPerTopKey: number;
  scanHitRatio: number;
  afterScanHitRatio: number;
  hotItems: number;
}

/**
 * Hot hits / remote gets of the regular traffic over `stream[from, to)` (scanned keys
 * come once: they can never hit, so they are left out of the denominator).
 */
async function run(s: Sim, stream: (i: number) => string, from: number, to: number) {
  const hits0 = s.hotHits();
  const trips0 = s.roundTrips();
  let remote = 0;
  for (let i = from; i < to; i++) {
    const k = stream(i);
    if (!local.has(k) && !k.startsWith("scan:")) remote++;
    await s.get(k);
  }
  return { hitRatio: (s.hotHits() - hits0) / remote, trips: s.roundTrips() - trips0 };
}

const zipfKey = (i: number) => keys[zipf[i] as number] as string;

async function simulate(name: string): Promise<Result> {
  const make = policies[name] as () => HotCachePolicy;
  // 1. Zipf from cold.
  const a = sim(make());
  const r1 = await run(a, zipfKey, 0, OPS);
  let top = 0;
  for (const k of topRemote) top += a.fetches.get(k) ?? 0;
  // 2. Warm on the first half, then scan interleaved 1:1 with the rest, then the rest again.
  const b = sim(make());
  await run(b, zipfKey, 0, OPS / 2);
  const n = Math.min(scanKeys.length * 2, OPS / 2);
  const mixed = (i: number) =>
    (i & 1) === 0 ? zipfKey(OPS / 2 + (i >> 1)) : (scanKeys[i >> 1] as string);
  const r2 = await run(b, mixed, 0, n);
  const r3 = await run(b, zipfKey, OPS / 2, OPS);
  return {
    hitRatio: r1.hitRatio,
    tripsPerTopKey: top / topRemote.length,
    scanHitRatio: r2.hitRatio,
    afterScanHitRatio: r3.hitRatio,
    hotItems: a.hotItems(),
  };
}

const res: Record<string, Result> = {};
for (const name of Object.keys(policies)) res[name] = await simulate(name);
const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
console.log(
  `\n### hot cache: Zipf(0.99), ${KEYS} keys (2 in 3 remote), ${OPS} gets, ~9k entries' budget\n`,
);
console.log(
  "| policy | hot hit ratio (remote gets) | round trips per top-100 remote key | hit ratio of the regular gets during a 1:1 scan | after the scan | hot entries |",
);
console.log("|---|---|---|---|---|---|");
for (const [name, r] of Object.entries(res)) {
  console.log(
    `| ${name} | ${pct(r.hitRatio)} | ${r.tripsPerTopKey.toFixed(1)} | ${pct(r.scanHitRatio)} | ${pct(r.afterScanHitRatio)} | ${r.hotItems} |`,
  );
}

// 3. CPU cost of a hot hit: the same 1000 keys in each group's hot cache.
const HOT = 1000;
const HIT_OPS = 200_000;
const hotKeys = topRemote.concat(keys.filter((k) => !local.has(k)).slice(100, 100 + HOT - 100));
const hitStream = zipfStream(HOT, HIT_OPS, 0.99, 14);
async function filled(policy: HotCachePolicy): Promise<Sim> {
  const s = sim(policy);
  for (let round = 0; round < 200 && s.hotItems() < HOT; round++) {
    for (const k of hotKeys) await s.get(k);
  }
  if (s.hotItems() < HOT) throw new Error(`hot cache holds ${s.hotItems()} of ${HOT} keys`);
  return s;
}
const hr = await filled(new RandomPromotion({ random: prng(5) }));
const hf = await filled(new FrequencyPromotion());
const trips = [hr.roundTrips(), hf.roundTrips()];
let sink = 0;
async function hitsRandom(): Promise<number> {
  let n = 0;
  for (let i = 0; i < HIT_OPS; i++)
    n += (await hr.get(hotKeys[hitStream[i] as number] as string)).length;
  sink += n;
  return HIT_OPS;
}
async function hitsFrequency(): Promise<number> {
  let n = 0;
  for (let i = 0; i < HIT_OPS; i++)
    n += (await hf.get(hotKeys[hitStream[i] as number] as string)).length;
  sink += n;
  return HIT_OPS;
}
const cost = await compare(
  `get on hot-cache hits, ${HOT} hot keys, ${HIT_OPS} awaited gets per round (Zipf)`,
  [
    { name: "RandomPromotion", run: hitsRandom },
    { name: "FrequencyPromotion", run: hitsFrequency },
  ],
  { rounds: 15, warmup: 3, clock: "cpu" },
);
printTable(cost, "RandomPromotion");
if (hr.roundTrips() !== trips[0] || hf.roundTrips() !== trips[1]) {
  throw new Error("the hot-hit benchmark must never fetch");
}
const hitCost = ratio(cost, "FrequencyPromotion", "RandomPromotion");
console.log(`\n(sink ${sink})\n`);

const f = res.frequency as Result;
const r = res.random as Result;
goal("hot policy frequency vs random hot hit ratio, Zipf 0.99", f.hitRatio / r.hitRatio, 1.0);
goal(
  "hot policy round trips per hot key, random / frequency",
  r.tripsPerTopKey / f.tripsPerTopKey,
  1.0,
  `(${r.tripsPerTopKey.toFixed(1)} vs ${f.tripsPerTopKey.toFixed(1)})`,
);
goal(
  "hot policy frequency vs random hit ratio after a scan",
  f.afterScanHitRatio / r.afterScanHitRatio,
  1.0,
);
goal(
  "hot policy frequency keeps its hit ratio through a 1:1 scan",
  f.scanHitRatio / f.hitRatio,
  0.9,
);
goal(
  "hot hit cost frequency vs random (ops/s)",
  hitCost.median,
  0.5,
  `(p10-p90 ${hitCost.p10.toFixed(2)}-${hitCost.p90.toFixed(2)})`,
);
