/**
 * Whether `key` is longer than `max` UTF-8 bytes: the one key-length rule, applied by the
 * group and, before any work, by every transport's server (through RequestCheck).
 * A UTF-16 unit is at least one UTF-8 byte and at most three, so the exact byte count is
 * needed only in between: short keys never pay for it.
 */
export function overKeyBytes(key: string, max: number): boolean {
  if (key.length * 3 <= max) return false;
  return key.length > max || Buffer.byteLength(key, "utf8") > max;
}
