/**
 * CRC-32 IEEE (the zlib / Go `hash/crc32.ChecksumIEEE` polynomial, reflected 0xEDB88320)
 * over the UTF-8 bytes of a string, computed straight from the UTF-16 code units so the
 * hot path never allocates an encoded copy of the key.
 */

/** Slicing-by-8 tables: T0 is the classic byte table, Tk advances k more zero bytes. */
function makeTables(): Int32Array {
  const t = new Int32Array(8 * 256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c;
  }
  for (let n = 0; n < 256; n++) {
    let c = t[n] as number;
    for (let k = 1; k < 8; k++) {
      c = (c >>> 8) ^ (t[c & 0xff] as number);
      t[k * 256 + n] = c;
    }
  }
  return t;
}

// Read-only after construction: a lookup table, not mutable state.
const T = makeTables();

/** Feeds one byte into a (pre-inverted) running CRC. */
function step(crc: number, byte: number): number {
  return (T[(crc ^ byte) & 0xff] as number) ^ (crc >>> 8);
}

/**
 * CRC-32 IEEE of the UTF-8 encoding of `s` as a *signed* 32-bit integer (same bits as
 * {@link crc32}). Internal: V8 keeps int32 results unboxed (Smi), while a uint32 above
 * 2^31 returned from a non-inlined call is boxed as a heap number -- an allocation per
 * lookup. The ring works in signed space for that reason.
 */
export function crc32Int(s: string): number {
  const len = s.length;
  let crc = -1;
  let i = 0;
  // ASCII fast path, eight bytes per step (slicing-by-8). Keys are mostly ASCII; a
  // non-ASCII unit drops to the byte-wise UTF-8 path below for the rest of the string.
  while (i + 8 <= len) {
    const c0 = s.charCodeAt(i);
    const c1 = s.charCodeAt(i + 1);
    const c2 = s.charCodeAt(i + 2);
    const c3 = s.charCodeAt(i + 3);
    const c4 = s.charCodeAt(i + 4);
    const c5 = s.charCodeAt(i + 5);
    const c6 = s.charCodeAt(i + 6);
    const c7 = s.charCodeAt(i + 7);
    if ((c0 | c1 | c2 | c3 | c4 | c5 | c6 | c7) >= 0x80) break;
    crc ^= c0 | (c1 << 8) | (c2 << 16) | (c3 << 24);
    crc =
      (T[1792 + (crc & 0xff)] as number) ^
      (T[1536 + ((crc >>> 8) & 0xff)] as number) ^
      (T[1280 + ((crc >>> 16) & 0xff)] as number) ^
      (T[1024 + (crc >>> 24)] as number) ^
      (T[768 + c4] as number) ^
      (T[512 + c5] as number) ^
      (T[256 + c6] as number) ^
      (T[c7] as number);
    i += 8;
  }
  for (; i < len; i++) {
    let c = s.charCodeAt(i);
    if (c < 0x80) {
      crc = step(crc, c);
    } else if (c < 0x800) {
      crc = step(crc, 0xc0 | (c >>> 6));
      crc = step(crc, 0x80 | (c & 0x3f));
    } else {
      if (c >= 0xd800 && c <= 0xdfff) {
        const d = i + 1 < len ? s.charCodeAt(i + 1) : 0;
        if (c <= 0xdbff && d >= 0xdc00 && d <= 0xdfff) {
          // A valid surrogate pair: one 4-byte sequence.
          c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
          i++;
          crc = step(crc, 0xf0 | (c >>> 18));
          crc = step(crc, 0x80 | ((c >>> 12) & 0x3f));
          crc = step(crc, 0x80 | ((c >>> 6) & 0x3f));
          crc = step(crc, 0x80 | (c & 0x3f));
          continue;
        }
        c = 0xfffd; // lone surrogate, as TextEncoder encodes it
      }
      crc = step(crc, 0xe0 | (c >>> 12));
      crc = step(crc, 0x80 | ((c >>> 6) & 0x3f));
      crc = step(crc, 0x80 | (c & 0x3f));
    }
  }
  return ~crc;
}

/**
 * CRC-32 IEEE of the UTF-8 encoding of `s`, as an unsigned 32-bit integer.
 *
 * Equal to Go's `crc32.ChecksumIEEE([]byte(s))` and to `zlib.crc32(s)`. Lone UTF-16
 * surrogates encode as U+FFFD (`EF BF BD`), exactly as `TextEncoder` does.
 *
 * @example crc32("123456789") === 0xcbf43926
 */
export function crc32(s: string): number {
  return crc32Int(s) >>> 0;
}

/**
 * CRC-32 IEEE of raw bytes, as an unsigned 32-bit integer (Go's `crc32.ChecksumIEEE`).
 */
export function crc32Bytes(bytes: Uint8Array): number {
  let crc = -1;
  for (let i = 0; i < bytes.length; i++) crc = step(crc, bytes[i] as number);
  return ~crc >>> 0;
}
