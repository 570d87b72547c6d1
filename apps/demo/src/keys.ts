/** The demo data set, shared by the seed, the burst script and the tests. */

/** Rows in the generated table: user000001 .. user100000. */
export const GENERATED_ROWS = 200_000;
/** The original demo's three rows. */
export const CLASSIC_SCORES: Readonly<Record<string, string>> = Object.freeze({
  Tom: "630",
  Jack: "589",
  Sam: "567",
});

/** Name of generated row `i` (1-based): user000001 .. user100000. */
export function generatedKey(i: number): string {
  return `user${String(i).padStart(6, "0")}`;
}

/** Score of generated row `i`: deterministic (a multiplicative hash), so tests can know it. */
export function generatedScore(i: number): string {
  return String((Math.imul(i, 2_654_435_761) >>> 0) % 1000);
}
