/**
 * core benchmarks (method: docs/benchmarks.md):
 * 1. `group.get` on cache hits vs an async function around lru-cache's `get` (what a user
 *    would write instead), same keys, same run, interleaved. Goal >= 0.8x.
 * 2. Miss storms: 10k concurrent gets over 100 cold keys, on one node and on a 3-node
 *    in-memory cluster. Goal: getter calls == keys (ratio 1.0).
 */
import { ByteView, GroupRegistry } from "@tinycache/core";
import { InMemoryNetwork } from "@tinycache/core/testing";
import { compare, goal, makeKeys, printTable, ratio, uniformStream } from "@tinycache/testkit";
import { LRUCache } from "lru-cache";

const KEYS = 10_000;
const OPS = 200_000;
const keys = makeKeys(KEYS);
const stream = uniformStream(KEYS, OPS);
const values = keys.map((k) => ByteView.from(`value-of-${k}`));

// --- tinycache group, every key cached in the main cache ---
const group = new GroupRegistry().newGroup({
  name: "bench",
  cacheBytes: 64 << 20,
  getter: async () => {
    throw new Error("the hit benchmark must never load");
  },
});
for (let i = 0; i < KEYS; i++) await group.set(keys[i] as string, values[i] as ByteView);

// --- baseline: lru-cache behind an async function ---
const lc = new LRUCache<string, ByteView>({ max: KEYS * 2 });
for (let i = 0; i < KEYS; i++) lc.set(keys[i] as string, values[i] as ByteView);
async function lruGet(key: string): Promise<ByteView | undefined> {
  return lc.get(key);
}

let sink = 0;
async function runGroup(): Promise<number> {
  let n = 0;
  for (let i = 0; i < OPS; i++) n += (await group.get(keys[stream[i] as number] as string)).length;
  sink += n;
  return OPS;
}
async function runLru(): Promise<number> {
  let n = 0;
  for (let i = 0; i < OPS; i++)
    n += ((await lruGet(keys[stream[i] as number] as string)) as ByteView).length;
  sink += n;
  return OPS;
}

const hits = await compare(
  `get on cache hits, ${KEYS} keys, ${OPS} awaited gets per round (uniform)`,
  [
    { name: "tinycache group.get", run: runGroup },
    { name: "async lru-cache get", run: runLru },
  ],
  // CPU time: the awaited gets never leave this thread; wall time on a shared machine
  // measures the neighbours.
  { rounds: 15, warmup: 3, clock: "cpu" },
);
printTable(hits, "async lru-cache get");
const hitRatio = ratio(hits, "tinycache group.get", "async lru-cache get");
if (group.stats.localLoads !== 0) throw new Error("unexpected loads in the hit benchmark");

// --- miss storms ---
const STORM_KEYS = 100;
const STORM_GETS = 10_000;
const stormKeys = makeKeys(STORM_KEYS, 7);

async function stormOneNode(): Promise<number> {
  let calls = 0;
  const g = new GroupRegistry().newGroup({
    name: "storm",
    cacheBytes: 1 << 20,
    getter: async (key) => {
      calls++;
      await new Promise((r) => setTimeout(r, 5));
      return `v:${key}`;
    },
  });
  const gets = [];
  for (let i = 0; i < STORM_GETS; i++) gets.push(g.get(stormKeys[i % STORM_KEYS] as string));
  await Promise.all(gets);
  return calls;
}

async function stormCluster(): Promise<number> {
  let calls = 0;
  const net = new InMemoryNetwork();
  const groups = ["a", "b", "c"].map((id) => {
    const r = new GroupRegistry();
    r.registerPeers(net.join(id, r));
    return r.newGroup({
      name: "storm",
      cacheBytes: 1 << 20,
      getter: async (key) => {
        calls++;
        await new Promise((r) => setTimeout(r, 5));
        return `v:${key}`;
      },
    });
  });
  const gets = [];
  for (let i = 0; i < STORM_GETS; i++) {
    gets.push(groups[i % 3]?.get(stormKeys[(i * 7) % STORM_KEYS] as string));
  }
  await Promise.all(gets);
  return calls;
}

const t0 = performance.now();
const oneNodeCalls = await stormOneNode();
const t1 = performance.now();
const clusterCalls = await stormCluster();
const t2 = performance.now();
console.log(`\n### miss storm: ${STORM_GETS} concurrent gets over ${STORM_KEYS} cold keys\n`);
console.log("| setup | getter calls | time (ms) |");
console.log("|---|---|---|");
console.log(`| 1 node | ${oneNodeCalls} | ${(t1 - t0).toFixed(1)} |`);
console.log(`| 3 nodes, in-memory peers | ${clusterCalls} | ${(t2 - t1).toFixed(1)} |`);
console.log(`\n(sink ${sink})\n`);

goal(
  "core get hit vs async lru-cache",
  hitRatio.median,
  0.8,
  `(p10-p90 ${hitRatio.p10.toFixed(2)}-${hitRatio.p90.toFixed(2)})`,
);
goal(
  "core miss storm single load",
  STORM_KEYS / oneNodeCalls,
  1.0,
  `(${oneNodeCalls} getter calls for ${STORM_KEYS} keys)`,
);
goal(
  "core miss storm single load, 3 nodes",
  STORM_KEYS / clusterCalls,
  1.0,
  `(${clusterCalls} getter calls for ${STORM_KEYS} keys)`,
);
