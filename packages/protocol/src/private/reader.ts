/**
 * A forward-only protobuf reader for the batch codecs' hot paths. protobuf-es's
 * BinaryReader allocates per field (a `[field, wireType]` array per tag, a DataView per
 * reader, a new reader per sub-message); on a batch of 20 small answers that was most of
 * the decode's cost (transport-http bench/batch-wire.bench.ts). Here a tag, a length or a varint is a plain
 * number, and a sub-message is read in place between two positions.
 */

/** Thrown for bytes that are not the message being read. */
export class MalformedMessage extends Error {
  override name = "MalformedMessage";
}

/** 2^63: an int64 varint at or above it is negative. */
const INT64_SIGN = 2 ** 63;
const TWO_32 = 2 ** 32;

const utf8Decoder = new TextDecoder();

/**
 * What a decoder throws, whatever went wrong while reading: a MalformedMessage as it is,
 * anything else (a RangeError from a view, say) as one with its message.
 */
export function asMalformed(err: unknown): MalformedMessage {
  if (err instanceof MalformedMessage) return err;
  return new MalformedMessage(err instanceof Error ? err.message : String(err));
}

/** Wire types (protobuf encoding). */
export const VARINT = 0;
export const FIXED64 = 1;
export const LEN = 2;
export const FIXED32 = 5;

export class WireReader {
  readonly buf: Uint8Array;
  pos: number;
  /** Where the message being read ends. */
  end: number;

  constructor(buf: Uint8Array) {
    this.buf = buf;
    this.pos = 0;
    this.end = buf.length;
  }

  /**
   * A varint as a number: exact up to 2^53 (every length, tag and millisecond time we
   * read), the nearest double above. At most 10 bytes.
   */
  varint(): number {
    const b = this.buf;
    let pos = this.pos;
    if (pos < this.end) {
      const c = b[pos] as number;
      if (c < 0x80) {
        this.pos = pos + 1;
        return c;
      }
    }
    let x = 0;
    let mul = 1;
    for (let i = 0; i < 10; i++) {
      if (pos >= this.end) throw new MalformedMessage("premature end of varint");
      const c = b[pos++] as number;
      x += (c & 0x7f) * mul;
      if (c < 0x80) {
        this.pos = pos;
        return x;
      }
      mul *= 0x80;
    }
    throw new MalformedMessage("varint over 10 bytes");
  }

  /**
   * A field's tag: `field * 8 + wireType` (read them with {@link fieldOf} and
   * {@link wireTypeOf}). Field 0 and wire types 6 and 7 are refused, as protobuf-es does.
   */
  tag(): number {
    const t = this.varint();
    if (t < 8 || t % 8 > 5 || t >= TWO_32) throw new MalformedMessage(`illegal tag ${t}`);
    return t;
  }

  /** A length-delimited field's length, checked against the end: returns its end. */
  len(): number {
    const n = this.varint();
    const start = this.pos;
    if (n > this.end - start) throw new MalformedMessage("length beyond the end of the message");
    return start + n;
  }

  /** A length-delimited field as UTF-8 (malformed bytes read as U+FFFD, as protobuf-es's). */
  string(): string {
    const end = this.len();
    const s = utf8(this.buf, this.pos, end);
    this.pos = end;
    return s;
  }

  /** A length-delimited field as a view of the buffer (no copy). */
  bytes(): Uint8Array {
    const end = this.len();
    const v = this.buf.subarray(this.pos, end);
    this.pos = end;
    return v;
  }

  /** An int64 varint, > 0, as a number; 0 for zero and negative values. */
  positiveInt64(): number {
    const x = this.varint();
    return x >= INT64_SIGN ? 0 : x;
  }

  /** A uint32 varint: its low 32 bits, as protobuf-es reads one. */
  uint32(): number {
    const x = this.varint();
    return x < TWO_32 ? x : x % TWO_32;
  }

  /** Skips a field of wire type `wt`; groups (3, 4) are refused, as before. */
  skip(wt: number): void {
    switch (wt) {
      case VARINT:
        this.varint();
        return;
      case FIXED64:
        this.#advance(8);
        return;
      case LEN:
        this.pos = this.len();
        return;
      case FIXED32:
        this.#advance(4);
        return;
      default:
        throw new MalformedMessage(`unsupported wire type ${wt}`);
    }
  }

  #advance(n: number): void {
    if (n > this.end - this.pos) throw new MalformedMessage("premature end of field");
    this.pos += n;
  }
}

export const wireTypeOf = (tag: number): number => tag % 8;

/**
 * `buf[start, end)` as UTF-8. ASCII in a Buffer (most keys, every code) is read as latin1,
 * ~2x a TextDecoder call for short strings, and flat (a string built char by char is a
 * rope, which a Map flattens again); anything else goes to TextDecoder (U+FFFD for
 * malformed bytes, as protobuf-es's BinaryReader).
 */
export function utf8(buf: Uint8Array, start: number, end: number): string {
  return ascii(buf, start, end) ?? utf8Decoder.decode(buf.subarray(start, end));
}

/**
 * `buf[start, end)` as UTF-8, refusing malformed bytes (MalformedMessage), as protobuf-es's
 * `fromBinary` refuses them in a string field; ASCII is read as in {@link utf8}.
 */
export function strictUtf8(buf: Uint8Array, start: number, end: number): string {
  const s = ascii(buf, start, end);
  if (s !== undefined) return s;
  try {
    return strictDecoder.decode(buf.subarray(start, end));
  } catch {
    throw new MalformedMessage("a string field is not valid UTF-8");
  }
}
const strictDecoder = new TextDecoder("utf-8", { fatal: true });

/** `buf[start, end)` read as latin1 when it is all ASCII in a Buffer; else undefined. */
function ascii(buf: Uint8Array, start: number, end: number): string | undefined {
  if (!(buf instanceof Buffer)) return undefined;
  let i = start;
  while (i < end && (buf[i] as number) < 0x80) i++;
  return i === end ? buf.toString("latin1", start, end) : undefined;
}

/**
 * The UTF-8 length of `s`, with a pure-JS pass for ASCII (most keys) instead of a call
 * into C++; lone surrogates count as U+FFFD (3 bytes), as Buffer.byteLength counts them.
 */
export function utf8Length(s: string): number {
  const n = s.length;
  for (let i = 0; i < n; i++) {
    if (s.charCodeAt(i) >= 0x80) return Buffer.byteLength(s, "utf8");
  }
  return n;
}

/**
 * Writes `s` (of UTF-8 length `len`, from {@link utf8Length}) into `buf` at `pos`;
 * returns the position after it.
 */
export function writeUtf8(buf: Buffer, pos: number, s: string, len: number): number {
  if (len === s.length) {
    for (let i = 0; i < len; i++) buf[pos + i] = s.charCodeAt(i);
    return pos + len;
  }
  return pos + buf.write(s, pos, len, "utf8");
}
