/** Seeded random inputs for the codecs' differential tests, so a failure is reproducible. */

/** A seeded PRNG. */
export function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

const ALPHABET = ["a", "Z", "0", "/", " ", "%", "é", "ü", "中", "🎉", "\u0000", "\uffff"];

/** Up to `max` characters: ASCII, 2-, 3- and 4-byte UTF-8, NUL and U+FFFF. */
export function randomString(next: () => number, max: number): string {
  const n = Math.floor(next() * max);
  let s = "";
  for (let i = 0; i < n; i++) s += ALPHABET[Math.floor(next() * ALPHABET.length)];
  return s;
}
