/**
 * Measures what one entry of an LRUCache costs in memory beyond its key's UTF-8 bytes and
 * its value (one shared Uint8Array here, so the value costs nothing per entry): the Map
 * entry, the slot arrays with the slack of their doubling, and the key string's header.
 * LRU_ENTRY_OVERHEAD is the worst figure, rounded up.
 *
 *   node --expose-gc --import tsx bench/entry-overhead.ts
 *
 * Memory is V8's heapUsed plus arrayBuffers (typed arrays keep their contents outside
 * the heap), after forced GCs, before and after filling one cache, each count in a fresh
 * process. Keys are fresh 10-character strings (`user000001`), as a server makes them per
 * request. The cache is bounded to n entries and given 4n keys, so it churns (evicts)
 * as a busy cache does. Several counts are measured, just past and just before the
 * arrays double.
 */
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { LRUCache } from "../src/index.ts";

const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error("run with node --expose-gc");

function memory(): number {
  for (let i = 0; i < 4; i++) gc?.();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

const arg = process.argv[2];
if (arg !== undefined) {
  const n = Number(arg);
  const shared = new Uint8Array(3);
  const before = memory();
  // Bounded to n entries, then 3n more keys: the cache churns (evicts) as a busy one
  // does, so the Map's deleted slots count too, not only a freshly filled cache's.
  const cache = new LRUCache<string, Uint8Array>({ maxEntries: n });
  for (let i = 0; i < 4 * n; i++) cache.set(`user${String(i).padStart(6, "0")}`, shared);
  const after = memory();
  if (cache.size !== n) throw new Error("lost entries");
  process.stdout.write(String((after - before) / n - 10)); // minus the key's 10 bytes
} else {
  let worst = 0;
  for (const n of [66_000, 100_000, 131_100, 200_000, 262_200]) {
    const out = execFileSync(
      process.execPath,
      [...process.execArgv, fileURLToPath(import.meta.url), String(n)],
      { encoding: "utf8" },
    );
    const perEntry = Number(out);
    worst = Math.max(worst, perEntry);
    console.log(`${n} entries: ${perEntry.toFixed(1)} bytes per entry beyond the key's bytes`);
  }
  console.log(`worst: ${worst.toFixed(1)} bytes per entry (LRU_ENTRY_OVERHEAD rounds it up)`);
}
