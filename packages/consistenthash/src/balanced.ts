import { crc32Int } from "./crc32.js";

/**
 * murmur3's 32-bit finalizer: a bijection on 32 bits with full avalanche. CRC-32 is
 * linear, so the points `crc32("0" + N)`, `crc32("1" + N)`, ... of one node are
 * correlated and cluster on the ring; mixing each CRC through fmix32 breaks that.
 */
export function fmix32(h: number): number {
  return fmix32Int(h) >>> 0;
}

/** fmix32 as a signed int32 (unboxed in V8; see crc32Int). */
function fmix32Int(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
}

/** {@link balancedHash} as a signed int32 (same bits), for the ring's hot path. */
export function balancedHashInt(s: string): number {
  return fmix32Int(crc32Int(s));
}

/**
 * An opt-in, better-balanced ring hash: murmur3's fmix32 finalizer over CRC-32 (UTF-8).
 *
 * **NOT compatible with golang/groupcache.** A ring using it places keys on different
 * owners than Go peers (and than a default `HashRing`) would. Use it only when every
 * member of the cluster uses it. In exchange, with 3 nodes x 100 replicas the largest
 * node's share is about 1.09x the mean on average (1.18x at p95) instead of ~1.3x at
 * p95 for plain CRC-32.
 */
export function balancedHash(s: string): number {
  return fmix32Int(crc32Int(s)) >>> 0;
}
