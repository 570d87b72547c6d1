/**
 * Protobuf base-128 varints for non-negative safe integers, for the transports'
 * hand-written encoders of their hot message (a GetResponse written straight into the
 * response buffer). Division rather than bit shifts, so values above 2^31 stay exact.
 */

/** Bytes the varint of `n` takes (1 to 8 for a safe integer). */
export function varintLength(n: number): number {
  let len = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 0x80);
    len++;
  }
  return len;
}

/** Writes the varint of `n` into `buf` at `pos`; returns the position after it. */
export function writeVarint(buf: Uint8Array, pos: number, n: number): number {
  while (n >= 0x80) {
    buf[pos++] = (n % 0x80) | 0x80;
    n = Math.floor(n / 0x80);
  }
  buf[pos++] = n;
  return pos;
}
