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

// In `u` mode a surrogate pair is one code point, so this matches only lone surrogates.
const LONE_SURROGATE = /\p{Surrogate}/u;

/**
 * Whether `key` holds a lone surrogate: a string with no UTF-8 form, which every wire
 * would carry as U+FFFD and so confuse with another key.
 */
export function hasLoneSurrogate(key: string): boolean {
  return LONE_SURROGATE.test(key);
}
