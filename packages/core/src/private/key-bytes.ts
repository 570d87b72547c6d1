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

/**
 * Whether `key` holds a lone surrogate: a string with no UTF-8 form, which every wire
 * would carry as U+FFFD and so confuse with another key. (String#isWellFormed, Node >= 20:
 * ~3x cheaper than a /\p{Surrogate}/u test on short keys.)
 */
export function hasLoneSurrogate(key: string): boolean {
  return !key.isWellFormed();
}
