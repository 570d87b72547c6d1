import { prng } from "@tinycache/testkit";
import { type HashFunction, HashRing } from "./index.js";

/**
 * Max/mean share of the hash space (= expected key share of the busiest node) for each
 * of `sets` random sets of `nodes` URL-like node names. Shared by the balance test and
 * the bench's balance table, so both sample node names the same way.
 */
export function maxOverMeanShares(
  hash: HashFunction,
  nodes: number,
  replicas: number,
  sets: number,
  seed: number,
): number[] {
  const rnd = prng(seed);
  const byte = () => Math.floor(rnd() * 256);
  const out: number[] = [];
  for (let s = 0; s < sets; s++) {
    const names = Array.from(
      { length: nodes },
      () => `http://10.${byte()}.${byte()}.${byte()}:${8000 + Math.floor(rnd() * 1000)}`,
    );
    const ring = new HashRing({ replicas, hash }).add(...names);
    out.push(Math.max(...ring.shares().values()) * nodes);
  }
  return out;
}
