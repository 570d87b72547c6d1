/**
 * An immutable view of bytes, as groupcache's `ByteView`: the bytes are copied in once and
 * copied out on every hand-off, so neither the array passed to {@link ByteView.from} nor any
 * array returned later can change what the view holds.
 */

// In `u` mode a surrogate pair is one code point, so this matches only lone surrogates,
// the strings that do not survive a UTF-8 round trip. (No `g` flag: the regex keeps no state.)
const LONE_SURROGATE = /\p{Surrogate}/u;
const isWellFormed = (s: string): boolean => !LONE_SURROGATE.test(s);

/** What {@link ByteView.equals} accepts. */
export type ByteViewLike = ByteView | Uint8Array | string;

export class ByteView {
  /**
   * The bytes, in a Buffer for Node's native copy/decode fast paths (pooled allocation,
   * native UTF-8). Never handed out, so nobody else can write to them.
   */
  readonly #bytes: Buffer;
  /** Lazily decoded `toString()` result; views are immutable, so it never goes stale. */
  #text: string | undefined;
  /**
   * Whether `#text` is the string these bytes encode exactly (set when built from a
   * well-formed string). A decoded cache is not: invalid bytes decode to U+FFFD, which
   * re-encodes to different bytes, so `equals` may only trust `#text` when this is true.
   */
  readonly #exact: boolean;

  /** The empty view. */
  static readonly empty: ByteView = new ByteView(Buffer.alloc(0), "");

  // Private by convention: callers go through `from`, which guarantees the copy.
  private constructor(bytes: Buffer, text?: string) {
    this.#bytes = bytes;
    this.#text = text;
    this.#exact = text !== undefined;
  }

  /**
   * Makes a view of `input`: a Uint8Array (or Buffer) is copied, a string is encoded as
   * UTF-8 (lone surrogates become U+FFFD, as `TextEncoder` does).
   * @throws TypeError if `input` is neither a Uint8Array nor a string.
   */
  static from(input: Uint8Array | string): ByteView {
    if (typeof input === "string") {
      if (input.length === 0) return ByteView.empty;
      // Keep the original string only when it round-trips (no lone surrogates), so
      // toString() always equals the decoding of the bytes.
      const bytes = Buffer.from(input, "utf8");
      return new ByteView(bytes, isWellFormed(input) ? input : undefined);
    }
    if (input instanceof Uint8Array) {
      if (input.length === 0) return ByteView.empty;
      // Buffer.from(Uint8Array) copies (into Node's shared pool for small inputs, much
      // cheaper than a fresh ArrayBuffer per value).
      return new ByteView(Buffer.from(input));
    }
    throw new TypeError(
      `ByteView.from expects a Uint8Array or a string, got ${input === null ? "null" : typeof input}`,
    );
  }

  /** Number of bytes. */
  get length(): number {
    return this.#bytes.length;
  }

  /**
   * Number of bytes, under the name byte-counting code looks for (e.g. the default
   * `sizeOf` of `@tinycache/lru`). Always equal to {@link length}.
   */
  get byteLength(): number {
    return this.#bytes.length;
  }

  /** A fresh copy of the bytes; writing to it does not change the view. */
  byteSlice(): Uint8Array {
    // new Uint8Array(x) copies and yields a plain Uint8Array (Buffer#slice would share).
    return new Uint8Array(this.#bytes);
  }

  /** The bytes decoded as UTF-8; invalid sequences become U+FFFD, as `TextDecoder` does. */
  toString(): string {
    let text = this.#text;
    if (text === undefined) {
      // Node's native UTF-8 decoder: faster than TextDecoder for short values and it
      // replaces invalid sequences the same way (WHATWG; pinned by tests).
      text = this.#bytes.toString("utf8");
      this.#text = text;
    }
    return text;
  }

  /**
   * The byte at `index`, or `undefined` when out of range. A negative index counts back
   * from the end, as `Array.prototype.at`.
   */
  at(index: number): number | undefined {
    return this.#bytes.at(index);
  }

  /**
   * A view of bytes `[start, end)`, with `Array.prototype.slice` rules for negative and
   * out-of-range indexes. Shares nothing writable with this view.
   */
  slice(start?: number, end?: number): ByteView {
    const len = this.#bytes.length;
    const s = clampIndex(start ?? 0, len);
    const e = end === undefined ? len : clampIndex(end, len);
    if (s === 0 && e === len) return this;
    if (e <= s) return ByteView.empty;
    // subarray is safe here: the backing array is never exposed, so sharing it between
    // immutable views cannot leak writes.
    return new ByteView(this.#bytes.subarray(s, e));
  }

  /** Whether `other` holds the same bytes (a string is compared as its UTF-8 encoding). */
  equals(other: ByteViewLike): boolean {
    if (other instanceof ByteView) {
      if (other === this) return true;
      return bytesEqual(this.#bytes, other.#bytes);
    }
    if (typeof other === "string") {
      // Fast path: two well-formed strings are equal exactly when their encodings are.
      if (this.#exact && isWellFormed(other)) return this.#text === other;
      return bytesEqual(this.#bytes, Buffer.from(other, "utf8"));
    }
    if (other instanceof Uint8Array) return bytesEqual(this.#bytes, other);
    throw new TypeError("ByteView.equals expects a ByteView, a Uint8Array or a string");
  }

  /**
   * Copies the bytes into `dest` starting at `offset` (default 0), as many as fit.
   * @returns the number of bytes copied.
   * @throws RangeError if `offset` is not an integer in `[0, dest.length]`.
   */
  copyTo(dest: Uint8Array, offset = 0): number {
    if (!(dest instanceof Uint8Array)) throw new TypeError("copyTo expects a Uint8Array");
    if (!Number.isInteger(offset) || offset < 0 || offset > dest.length) {
      throw new RangeError(`offset must be an integer in [0, ${dest.length}], got ${offset}`);
    }
    const n = Math.min(this.#bytes.length, dest.length - offset);
    dest.set(n === this.#bytes.length ? this.#bytes : this.#bytes.subarray(0, n), offset);
    return n;
  }

  /** For `console.log` and friends: shows the length, not a mutable array. */
  get [Symbol.toStringTag](): string {
    return "ByteView";
  }
}

function clampIndex(i: number, len: number): number {
  const n = Math.trunc(i) || 0; // NaN -> 0, like Array.prototype.slice
  if (n < 0) return Math.max(len + n, 0);
  return Math.min(n, len);
}

function bytesEqual(a: Buffer, b: Uint8Array): boolean {
  return a.length === b.length && a.equals(b);
}
