export { balancedHash } from "./balanced.js";
export { crc32, crc32Bytes } from "./crc32.js";
export { type HashFunction, HashRing, type HashRingOptions } from "./hash-ring.js";
