/**
 * Measures what one cached entry costs in memory beyond its key's and value's bytes, for
 * a positive entry (a 3-byte value, with the resolved promises of a hit and of a served
 * hit made, as a hot key has them) and a negative ("not found") entry. ENTRY_OVERHEAD and
 * NEGATIVE_ENTRY_OVERHEAD (src/cache.ts) are the worst figures minus the LRU's own
 * (LRU_ENTRY_OVERHEAD, measured by packages/lru/bench/entry-overhead.ts), rounded up.
 *
 *   node --expose-gc --import tsx bench/entry-overhead.ts
 *
 * Memory is V8's heapUsed plus arrayBuffers (typed arrays and small Buffers keep their
 * bytes outside the heap), after forced GCs, before and after filling a cache through a
 * Group exactly as a server does (fresh 10-character keys, a getter returning "630" or
 * throwing NotFoundError), each count in a fresh process. Several counts are measured,
 * just past and just before the LRU's arrays double.
 */
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { LRU_ENTRY_OVERHEAD } from "@tinycache/lru";
import { ENTRY_OVERHEAD, NEGATIVE_ENTRY_OVERHEAD } from "../src/cache.ts";
import { GroupRegistry, NotFoundError } from "../src/index.ts";

/** Keys are `key-` and 12 digits: 16 bytes. */
const KEY_BYTES = 16;

const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error("run with node --expose-gc");

function memory(): number {
  for (let i = 0; i < 4; i++) gc?.();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

const [kind, arg] = process.argv.slice(2);
if (kind !== undefined && arg !== undefined) {
  const n = Number(arg);
  const positive = kind === "positive";
  // A budget that holds about n entries, then 3n more keys: the cache churns (evicts) as
  // a busy server's does, so the Map's deleted slots and the arrays' slack are counted.
  const perEntry = positive ? ENTRY_OVERHEAD + 3 : NEGATIVE_ENTRY_OVERHEAD;
  const group = new GroupRegistry().newGroup({
    name: "g",
    cacheBytes: n * (KEY_BYTES + perEntry + LRU_ENTRY_OVERHEAD),
    negativeTtlMs: Number.POSITIVE_INFINITY,
    hotCache: false,
    getter: async (key) => {
      if (positive) return "630";
      throw new NotFoundError(key);
    },
  });
  const before = memory();
  for (let i = 0; i < 4 * n; i++) {
    // As a server makes a key: sliced out of the request's URL (so it keeps the URL).
    const url = `/_groupcache/g/key-${String(i).padStart(12, "0")}`;
    const key = url.slice(15);
    await group.get(key).catch(() => {});
    if (positive) {
      await group.get(key); // a fast hit: makes the entry's resolved promise
      await group.serveGet(key); // a served hit: makes its served promise
    }
  }
  const after = memory();
  const items = group.cacheStats("main").items;
  if (Math.abs(items - n) > n / 10) throw new Error(`expected about ${n} entries, got ${items}`);
  // Minus the key's bytes and the value's 3.
  process.stdout.write(String((after - before) / items - KEY_BYTES - (positive ? 3 : 0)));
} else {
  for (const kind of ["positive", "negative"]) {
    let worst = 0;
    for (const n of [66_000, 100_000, 131_100, 200_000, 262_200]) {
      const out = execFileSync(
        process.execPath,
        [...process.execArgv, fileURLToPath(import.meta.url), kind, String(n)],
        { encoding: "utf8" },
      );
      const perEntry = Number(out);
      worst = Math.max(worst, perEntry);
      console.log(
        `${kind}, ~${n} entries: ${perEntry.toFixed(1)} bytes per entry beyond key+value`,
      );
    }
    console.log(
      `${kind}: worst ${worst.toFixed(1)} bytes, ${(worst - LRU_ENTRY_OVERHEAD).toFixed(1)} beyond LRU_ENTRY_OVERHEAD (${LRU_ENTRY_OVERHEAD})`,
    );
  }
}
