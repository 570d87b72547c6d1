/**
 * Deterministic workloads for benchmarks and randomized tests: a seeded PRNG, string keys
 * of about 20 characters, and uniform / Zipf index streams, all generated before timing.
 */

/** mulberry32: a tiny, fast, seeded 32-bit PRNG. Returns floats in [0, 1). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `n` distinct string keys of about 20 characters, e.g. `user:00000001a3:k7`. */
export function makeKeys(n: number, seed = 1): string[] {
  const rnd = prng(seed);
  const keys = new Array<string>(n);
  for (let i = 0; i < n; i++) {
    const tag = Math.floor(rnd() * 1296)
      .toString(36)
      .padStart(2, "0");
    // A template literal this long is a rope (ConsString) in V8; keys that arrive from a
    // socket or a database are flat strings. Flatten, so no benchmark measures V8's rope
    // handling instead of the code under test (Buffer.byteLength alone is ~4x slower on
    // a rope).
    keys[i] = Buffer.from(`user:${i.toString(16).padStart(10, "0")}:${tag}`, "latin1").toString(
      "latin1",
    );
  }
  return keys;
}

/** `count` indexes drawn uniformly from [0, n). */
export function uniformStream(n: number, count: number, seed = 2): Uint32Array {
  const rnd = prng(seed);
  const out = new Uint32Array(count);
  for (let i = 0; i < count; i++) out[i] = Math.floor(rnd() * n);
  return out;
}

/** `count` indexes in [0, n) drawn from Zipf(s): index 0 is the most popular. */
export function zipfStream(n: number, count: number, s = 0.99, seed = 3): Uint32Array {
  const cdf = new Float64Array(n);
  let sum = 0;
  for (let i = 0; i < n; i++) {
    sum += 1 / (i + 1) ** s;
    cdf[i] = sum;
  }
  for (let i = 0; i < n; i++) cdf[i] = (cdf[i] as number) / sum;
  const rnd = prng(seed);
  const out = new Uint32Array(count);
  for (let i = 0; i < count; i++) {
    const u = rnd();
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((cdf[mid] as number) < u) lo = mid + 1;
      else hi = mid;
    }
    out[i] = lo;
  }
  return out;
}

/** Fisher-Yates shuffle of a copy, so Zipf rank is not correlated with key order. */
export function shuffled<T>(items: readonly T[], seed = 4): T[] {
  const rnd = prng(seed);
  const out = items.slice();
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    const t = out[i] as T;
    out[i] = out[j] as T;
    out[j] = t;
  }
  return out;
}
