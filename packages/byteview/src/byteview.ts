/**
 * An immutable view of bytes, as groupcache's `ByteView`: the bytes are copied in once and
 * copied out on every hand-off, so neither the array passed to {@link ByteView.from} nor any
 * array returned later can change what the view holds.
 */

// Strings with no lone surrogate: the ones that survive a UTF-8 round trip.
const isWellFormed = (s: string): boolean => s.isWellFormed();

/** The key Node's `util.inspect` looks for (`util.inspect.custom`). */
const INSPECT: unique symbol = Symbol.for("nodejs.util.inspect.custom");

/** How many bytes `util.inspect` shows of a view; the rest is counted. */
const INSPECT_BYTES = 64;

// C0 and C1 controls and DEL, but not tab, newline and carriage return (text has them,
// and JSON.stringify shows them as \t \n \r).
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding them is the point
const CONTROL = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]/;

/**
 * `bytes` as text if they are well-formed UTF-8 without control characters, else
 * undefined; with how many bytes the text holds. `cut`: the bytes are a prefix of longer
 * ones, so a character split at the end is left out rather than taken as malformed.
 */
function printableText(bytes: Buffer, cut: boolean): { text: string; end: number } | undefined {
  let end = bytes.length;
  if (cut) {
    // Back up over a last character the prefix split (up to 3 continuation bytes).
    let i = end - 1;
    while (i > 0 && end - i < 4 && ((bytes[i] as number) & 0xc0) === 0x80) i--;
    const lead = bytes[i] as number;
    const need = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 1;
    if (i + need > end) end = i;
  }
  const part = bytes.subarray(0, end);
  const text = part.toString("utf8");
  // Malformed bytes decode to U+FFFD and do not survive the round trip.
  if (!Buffer.from(text, "utf8").equals(part) || CONTROL.test(text)) return undefined;
  return { text, end };
}

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

  /** `Object.prototype.toString` says `[object ByteView]`. */
  get [Symbol.toStringTag](): string {
    return "ByteView";
  }

  /**
   * What `console.log` and `util.inspect` show: `ByteView(5) "hello"` for printable UTF-8,
   * `ByteView(3) <00 ff 10>` for other bytes, the first {@link INSPECT_BYTES} bytes of a
   * longer view and how many more there are. Without it Node shows `ByteView {}`: the
   * bytes live in a private field. Keyed by `Symbol.for`, so no import of node:util.
   */
  [INSPECT](
    _depth: number,
    options: { stylize?: (text: string, style: string) => string },
  ): string {
    const stylize = options?.stylize ?? ((t: string) => t);
    const bytes = this.#bytes;
    const head = `ByteView(${bytes.length})`;
    const shown = bytes.subarray(0, INSPECT_BYTES);
    const more = (n: number) => (n > 0 ? ` ... ${n} more byte${n === 1 ? "" : "s"}` : "");
    const text = printableText(shown, shown.length < bytes.length);
    if (text !== undefined) {
      return `${head} ${stylize(JSON.stringify(text.text), "string")}${more(bytes.length - text.end)}`;
    }
    const hex = shown.toString("hex").replace(/(..)(?!$)/g, "$1 ");
    return `${head} <${hex}${more(bytes.length - shown.length)}>`;
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
