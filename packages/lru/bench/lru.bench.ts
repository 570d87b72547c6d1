/**
 * @tinycache/lru beside the LRUs a Node user would pick instead, in one process,
 * interleaved, on the same op streams (method: docs/benchmarks.md).
 *
 * Workload: 1M ops, 90% get / 10% set, 100k distinct ~20-char keys, capacity 10k entries of
 * 100-byte Uint8Array values; Zipf(0.99) and uniform key streams. Every contender gets a
 * fresh cache each round and its own loop function (monomorphic call sites).
 *
 * Values come from a pool of 256 arrays, so the value handed to `set` is warm in the CPU
 * cache, as a value a read-through cache has just loaded is. With 100k distinct
 * pre-made arrays every `set` of a byte-counting cache (ours, lru-cache with
 * sizeCalculation) pays a cache miss to read the array's length that lru-cache `{max}`
 * never pays; that measures the benchmark's memory layout, not the caches.
 *
 * Timing is CPU time of this process (testkit `clock: "cpu"`): the loops are synchronous,
 * and on a shared machine wall time mostly measures the other processes.
 *
 * Goals compare like with like: our `{maxBytes}` against lru-cache `{max}` (neither has
 * an eviction callback), and our `{maxBytes, onEvicted}` against lru-cache's byte-bounded
 * configuration with `dispose`.
 *
 * Run: `pnpm bench` (node --expose-gc, so the allocation check can force GC).
 */
import { PerformanceObserver } from "node:perf_hooks";
import {
  type Comparison,
  compare,
  goal,
  makeKeys,
  printTable,
  prng,
  ratio,
  shuffled,
  uniformStream,
  zipfStream,
} from "@tinycache/testkit";
import { createLRU } from "lru.min";
import { LRUCache as LruCache11 } from "lru-cache";
import { LRUMap } from "mnemonist";
import { LRU as TinyLRU } from "tiny-lru";
import { LRUCache } from "../dist/index.js";

const OPS = 1_000_000;
const KEYS = 100_000;
const CAPACITY = 10_000;
const VALUE_BYTES = 100;
const ROUNDS = Number(process.env.ROUNDS ?? 15);

const keys = shuffled(makeKeys(KEYS));
const valuePool = Array.from({ length: 256 }, (_, i) => new Uint8Array(VALUE_BYTES).fill(i));
const values = keys.map((_, i) => valuePool[i & 255] as Uint8Array);
// Byte bound for ~10k entries: our default size is UTF-8 key bytes + value bytes.
const ENTRY_BYTES = (keys[0] as string).length + VALUE_BYTES;
const MAX_BYTES = CAPACITY * ENTRY_BYTES;

/** 1 = set, 0 = get, fixed per op index so every contender sees the same sequence. */
const isSet = new Uint8Array(OPS);
{
  const rnd = prng(7);
  for (let i = 0; i < OPS; i++) isSet[i] = rnd() < 0.1 ? 1 : 0;
}

let sink = 0;
let evictions = 0;
const onDrop = (): void => {
  evictions++;
};

function ours(stream: Uint32Array): number {
  const c = new LRUCache<string, Uint8Array>({ maxEntries: CAPACITY });
  let hits = 0;
  for (let i = 0; i < OPS; i++) {
    const k = stream[i] as number;
    if (isSet[i] === 1) c.set(keys[k] as string, values[k] as Uint8Array);
    else if (c.get(keys[k] as string) !== undefined) hits++;
  }
  sink += hits;
  return OPS;
}

function oursBytesOnly(stream: Uint32Array): number {
  const c = new LRUCache<string, Uint8Array>({ maxBytes: MAX_BYTES });
  let hits = 0;
  for (let i = 0; i < OPS; i++) {
    const k = stream[i] as number;
    if (isSet[i] === 1) c.set(keys[k] as string, values[k] as Uint8Array);
    else if (c.get(keys[k] as string) !== undefined) hits++;
  }
  sink += hits;
  return OPS;
}

function oursBytes(stream: Uint32Array): number {
  const c = new LRUCache<string, Uint8Array>({ maxBytes: MAX_BYTES, onEvicted: onDrop });
  let hits = 0;
  for (let i = 0; i < OPS; i++) {
    const k = stream[i] as number;
    if (isSet[i] === 1) c.set(keys[k] as string, values[k] as Uint8Array);
    else if (c.get(keys[k] as string) !== undefined) hits++;
  }
  sink += hits;
  return OPS;
}

function lruCacheMax(stream: Uint32Array): number {
  const c = new LruCache11<string, Uint8Array>({ max: CAPACITY });
  let hits = 0;
  for (let i = 0; i < OPS; i++) {
    const k = stream[i] as number;
    if (isSet[i] === 1) c.set(keys[k] as string, values[k] as Uint8Array);
    else if (c.get(keys[k] as string) !== undefined) hits++;
  }
  sink += hits;
  return OPS;
}

function lruCacheBytes(stream: Uint32Array): number {
  const c = new LruCache11<string, Uint8Array>({
    max: CAPACITY,
    maxSize: MAX_BYTES,
    sizeCalculation: (v, k) => v.byteLength + k.length,
    dispose: onDrop,
  });
  let hits = 0;
  for (let i = 0; i < OPS; i++) {
    const k = stream[i] as number;
    if (isSet[i] === 1) c.set(keys[k] as string, values[k] as Uint8Array);
    else if (c.get(keys[k] as string) !== undefined) hits++;
  }
  sink += hits;
  return OPS;
}

function mnemonist(stream: Uint32Array): number {
  const c = new LRUMap<string, Uint8Array>(CAPACITY);
  let hits = 0;
  for (let i = 0; i < OPS; i++) {
    const k = stream[i] as number;
    if (isSet[i] === 1) c.set(keys[k] as string, values[k] as Uint8Array);
    else if (c.get(keys[k] as string) !== undefined) hits++;
  }
  sink += hits;
  return OPS;
}

function lruMinLoop(stream: Uint32Array): number {
  const c = createLRU<string, Uint8Array>({ max: CAPACITY });
  let hits = 0;
  for (let i = 0; i < OPS; i++) {
    const k = stream[i] as number;
    if (isSet[i] === 1) c.set(keys[k] as string, values[k] as Uint8Array);
    else if (c.get(keys[k] as string) !== undefined) hits++;
  }
  sink += hits;
  return OPS;
}

function tinyLru(stream: Uint32Array): number {
  const c = new TinyLRU<Uint8Array>(CAPACITY);
  let hits = 0;
  for (let i = 0; i < OPS; i++) {
    const k = stream[i] as number;
    if (isSet[i] === 1) c.set(keys[k] as string, values[k] as Uint8Array);
    else if (c.get(keys[k] as string) !== undefined) hits++;
  }
  sink += hits;
  return OPS;
}

const OURS = "@tinycache/lru {maxEntries}";
const OURS_BYTES_ONLY = "@tinycache/lru {maxBytes}";
const OURS_BYTES = "@tinycache/lru {maxBytes, onEvicted}";
const LC_MAX = "lru-cache 11 {max}";
const LC_BYTES = "lru-cache 11 {max, maxSize, sizeCalculation, dispose}";

async function run(title: string, stream: Uint32Array): Promise<Comparison> {
  const cmp = await compare(
    title,
    [
      { name: OURS, run: () => ours(stream) },
      { name: OURS_BYTES_ONLY, run: () => oursBytesOnly(stream) },
      { name: OURS_BYTES, run: () => oursBytes(stream) },
      { name: LC_MAX, run: () => lruCacheMax(stream) },
      { name: LC_BYTES, run: () => lruCacheBytes(stream) },
      { name: "mnemonist LRUMap", run: () => mnemonist(stream) },
      { name: "lru.min", run: () => lruMinLoop(stream) },
      { name: "tiny-lru", run: () => tinyLru(stream) },
    ],
    { rounds: ROUNDS, warmup: 3, clock: "cpu" },
  );
  printTable(cmp, LC_MAX);
  return cmp;
}

/** Hit rate of one pass, for the table titles (same for every correct LRU). */
function hitRate(stream: Uint32Array): number {
  const c = new LRUCache<string, Uint8Array>({ maxEntries: CAPACITY });
  let hits = 0;
  let gets = 0;
  for (let i = 0; i < OPS; i++) {
    const k = stream[i] as number;
    if (isSet[i] === 1) c.set(keys[k] as string, values[k] as Uint8Array);
    else {
      gets++;
      if (c.get(keys[k] as string) !== undefined) hits++;
    }
  }
  return hits / gets;
}

const zipf = zipfStream(KEYS, OPS, 0.99);
const uniform = uniformStream(KEYS, OPS);
const pct = (x: number): string => `${(x * 100).toFixed(0)}% get hits`;

console.log(
  `LRU: ${OPS / 1e6}M ops, 90% get / 10% set, ${KEYS / 1000}k keys, capacity ${CAPACITY} entries ` +
    `of ${VALUE_BYTES}-byte values (byte-bounded configs: ${MAX_BYTES} bytes), ${ROUNDS} rounds`,
);
const z = await run(`Zipf(0.99), ${pct(hitRate(zipf))}`, zipf);
const u = await run(`uniform, ${pct(hitRate(uniform))}`, uniform);

/**
 * Allocation check: 10M gets that all hit (the hot path), measured as heap growth with
 * GC forced before, and as the number of GCs during the loop. A get that allocated even
 * 8 bytes would produce 80 MB of garbage and several scavenges.
 */
async function getAllocation(): Promise<{ growth: number; gcs: number }> {
  const c = new LRUCache<string, Uint8Array>({ maxBytes: MAX_BYTES });
  const hot = keys.slice(0, 5000);
  for (const k of hot) c.set(k, values[0] as Uint8Array);
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error("run with node --expose-gc (pnpm bench does)");
  let gcs = 0;
  const obs = new PerformanceObserver((list) => {
    gcs += list.getEntries().length;
  });
  // Warm the loop up so JIT compilation garbage is not counted.
  let found = 0;
  for (let r = 0; r < 2_000_000; r++) if (c.get(hot[r % 5000] as string)) found++;
  gc();
  await new Promise((resolve) => setImmediate(resolve));
  obs.observe({ entryTypes: ["gc"] });
  const before = process.memoryUsage().heapUsed;
  for (let r = 0; r < 10_000_000; r++) if (c.get(hot[r % 5000] as string)) found++;
  const growth = process.memoryUsage().heapUsed - before;
  await new Promise((resolve) => setImmediate(resolve));
  obs.disconnect();
  sink += found;
  return { growth, gcs };
}
const alloc = await getAllocation();

console.log(`\n(sink ${sink}, evictions ${evictions})\n`);
goal("lru zipf vs lru-cache byte-bounded", ratio(z, OURS_BYTES, LC_BYTES).median, 1.25);
goal("lru zipf vs lru-cache {max}", ratio(z, OURS_BYTES_ONLY, LC_MAX).median, 1.0);
goal("lru uniform vs lru-cache {max}", ratio(u, OURS_BYTES_ONLY, LC_MAX).median, 1.0);
const allocOk = alloc.growth < 256 * 1024 && alloc.gcs === 0;
console.log(
  `goal lru get allocation-free: heap growth ${alloc.growth} bytes and ${alloc.gcs} GCs over 10M hit gets ` +
    `(target < 262144 bytes, 0 GCs) ${allocOk ? "ok" : "MISSED"}`,
);
