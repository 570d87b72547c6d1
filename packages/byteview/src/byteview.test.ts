import { inspect } from "node:util";
import { describe, expect, it } from "vitest";
import { ByteView } from "./index.js";

const u8 = (...xs: number[]) => new Uint8Array(xs);

describe("ByteView.from", () => {
  it("copies a Uint8Array: later writes to the input do not show", () => {
    const input = u8(1, 2, 3);
    const v = ByteView.from(input);
    input[0] = 99;
    expect(v.at(0)).toBe(1);
    expect([...v.byteSlice()]).toEqual([1, 2, 3]);
  });

  it("copies a Buffer instead of sharing its memory, and hands out plain Uint8Arrays", () => {
    const buf = Buffer.from("abc");
    const v = ByteView.from(buf);
    buf[0] = 0x7a;
    expect(v.toString()).toBe("abc");
    const out = v.byteSlice();
    expect(Object.getPrototypeOf(out)).toBe(Uint8Array.prototype);
  });

  it("copies only the visible window of a subarray input", () => {
    const big = u8(0, 1, 2, 3, 4, 5);
    const v = ByteView.from(big.subarray(2, 4));
    expect(v.length).toBe(2);
    expect([...v.byteSlice()]).toEqual([2, 3]);
    expect(v.byteSlice().buffer.byteLength).toBe(2);
  });

  it("encodes strings as UTF-8", () => {
    expect(ByteView.from("abc").length).toBe(3);
    expect(ByteView.from("é").length).toBe(2);
    expect(ByteView.from("日本").length).toBe(6);
    expect(ByteView.from("😀").length).toBe(4);
    expect([...ByteView.from("😀").byteSlice()]).toEqual([0xf0, 0x9f, 0x98, 0x80]);
  });

  it("encodes a lone surrogate as U+FFFD, like TextEncoder", () => {
    const v = ByteView.from("a\uD800b");
    expect([...v.byteSlice()]).toEqual([0x61, 0xef, 0xbf, 0xbd, 0x62]);
    expect(v.toString()).toBe("a\uFFFDb");
  });

  it("rejects other inputs with a TypeError", () => {
    expect(() => ByteView.from(42 as unknown as string)).toThrow(TypeError);
    expect(() => ByteView.from(null as unknown as string)).toThrow(TypeError);
    expect(() => ByteView.from([1, 2] as unknown as Uint8Array)).toThrow(TypeError);
  });
});

describe("empty views", () => {
  it("from an empty string, an empty array and ByteView.empty behave alike", () => {
    for (const v of [ByteView.from(""), ByteView.from(u8()), ByteView.empty]) {
      expect(v.length).toBe(0);
      expect(v.byteLength).toBe(0);
      expect(v.toString()).toBe("");
      expect(v.at(0)).toBeUndefined();
      expect(v.at(-1)).toBeUndefined();
      expect(v.byteSlice().length).toBe(0);
      expect(v.slice(0).length).toBe(0);
      expect(v.equals("")).toBe(true);
      expect(v.equals(u8())).toBe(true);
      expect(v.equals(ByteView.empty)).toBe(true);
      expect(v.equals("a")).toBe(false);
      expect(v.copyTo(new Uint8Array(4))).toBe(0);
    }
  });
});

describe("toString", () => {
  it("round-trips multi-byte UTF-8 (emoji, CJK, combining marks)", () => {
    const s = "héllo 世界 👩‍👩‍👧 e\u0301";
    expect(ByteView.from(s).toString()).toBe(s);
    expect(ByteView.from(new TextEncoder().encode(s)).toString()).toBe(s);
  });

  it("decodes invalid UTF-8 bytes as U+FFFD, as TextDecoder does", () => {
    const cases = [
      u8(0xff),
      u8(0x61, 0xc3), // truncated 2-byte sequence
      u8(0xe6, 0x97), // truncated 3-byte sequence
      u8(0xed, 0xa0, 0x80), // encoded surrogate
      u8(0xc0, 0xaf), // overlong
      u8(0xf0, 0x9f, 0x98), // truncated emoji
    ];
    for (const bytes of cases) {
      const want = new TextDecoder().decode(bytes);
      expect(ByteView.from(bytes).toString()).toBe(want);
      expect(want).toContain("\uFFFD");
    }
  });

  it("keeps a leading BOM (it is content, not a marker, in a byte view)", () => {
    expect(ByteView.from(u8(0xef, 0xbb, 0xbf, 0x61)).toString()).toBe("\uFEFFa");
  });

  it("returns the same string on repeated calls", () => {
    const v = ByteView.from(u8(0xe4, 0xb8, 0x96));
    expect(v.toString()).toBe("世");
    expect(v.toString()).toBe("世");
    expect(`${v}`).toBe("世");
  });
});

describe("at", () => {
  it("indexes bytes, negative from the end, undefined out of range", () => {
    const v = ByteView.from(u8(10, 20, 30));
    expect(v.at(0)).toBe(10);
    expect(v.at(2)).toBe(30);
    expect(v.at(3)).toBeUndefined();
    expect(v.at(-1)).toBe(30);
    expect(v.at(-3)).toBe(10);
    expect(v.at(-4)).toBeUndefined();
  });
});

describe("slice", () => {
  const v = ByteView.from(u8(0, 1, 2, 3, 4, 5));
  const bytes = (x: ByteView) => [...x.byteSlice()];

  it("follows Array.prototype.slice rules", () => {
    const ref = [0, 1, 2, 3, 4, 5];
    const args: [number?, number?][] = [
      [],
      [2],
      [2, 4],
      [-2],
      [-4, -1],
      [4, 2],
      [10],
      [-10, 2],
      [0, 100],
      [Number.NaN, 3],
      [1.7, 3.2],
    ];
    for (const [s, e] of args) expect(bytes(v.slice(s, e))).toEqual(ref.slice(s, e));
  });

  it("is independent of the parent and of the arrays it hands out", () => {
    const s = v.slice(1, 3);
    const out = s.byteSlice();
    out[0] = 99;
    expect(bytes(s)).toEqual([1, 2]);
    expect(bytes(v)).toEqual([0, 1, 2, 3, 4, 5]);
  });

  it("can cut a multi-byte character (bytes, not characters)", () => {
    const e = ByteView.from("😀");
    expect(e.slice(0, 2).toString()).toBe(new TextDecoder().decode(u8(0xf0, 0x9f)));
    expect(e.slice(0, 2).length).toBe(2);
  });
});

describe("immutability", () => {
  it("byteSlice returns a fresh copy every time", () => {
    const v = ByteView.from("abc");
    const a = v.byteSlice();
    a[0] = 0;
    a.fill(7);
    expect(v.toString()).toBe("abc");
    expect(v.byteSlice()).not.toBe(v.byteSlice());
  });

  it("has no enumerable or writable way to the bytes", () => {
    const v = ByteView.from("abc");
    expect(Object.keys(v)).toEqual([]);
    expect(() => {
      (v as unknown as { length: number }).length = 0;
    }).toThrow(TypeError);
    expect(v.length).toBe(3);
  });

  it("copyTo copies out without exposing the bytes", () => {
    const v = ByteView.from("abc");
    const dest = new Uint8Array(5);
    expect(v.copyTo(dest, 1)).toBe(3);
    expect([...dest]).toEqual([0, 0x61, 0x62, 0x63, 0]);
    dest[1] = 0;
    expect(v.toString()).toBe("abc");
  });
});

describe("copyTo", () => {
  it("copies as many bytes as fit and says how many", () => {
    const v = ByteView.from(u8(1, 2, 3, 4));
    const small = new Uint8Array(3);
    expect(v.copyTo(small, 1)).toBe(2);
    expect([...small]).toEqual([0, 1, 2]);
    expect(v.copyTo(small, 3)).toBe(0);
  });

  it("rejects bad offsets and destinations", () => {
    const v = ByteView.from("ab");
    expect(() => v.copyTo(new Uint8Array(2), -1)).toThrow(RangeError);
    expect(() => v.copyTo(new Uint8Array(2), 3)).toThrow(RangeError);
    expect(() => v.copyTo(new Uint8Array(2), 0.5)).toThrow(RangeError);
    expect(() => v.copyTo([] as unknown as Uint8Array)).toThrow(TypeError);
  });
});

describe("equals", () => {
  it("compares with views, arrays and strings by bytes", () => {
    const v = ByteView.from("日本");
    expect(v.equals(ByteView.from("日本"))).toBe(true);
    expect(v.equals(new TextEncoder().encode("日本"))).toBe(true);
    expect(v.equals("日本")).toBe(true);
    expect(v.equals("日")).toBe(false);
    expect(v.equals(ByteView.from("日"))).toBe(false);
    expect(v.equals(u8(0xe6))).toBe(false);
    expect(v.equals(v)).toBe(true);
  });

  it("compares a string as its UTF-8 encoding, lone surrogates included", () => {
    // "\uD800" encodes to EF BF BD, the same bytes as "\uFFFD".
    expect(ByteView.from("\uFFFD").equals("\uD800")).toBe(true);
    expect(ByteView.from("\uD800").equals("\uFFFD")).toBe(true);
  });

  it("does not mistake invalid bytes for U+FFFD after toString", () => {
    const v = ByteView.from(u8(0xff));
    expect(v.toString()).toBe("\uFFFD");
    expect(v.equals("\uFFFD")).toBe(false);
    expect(v.equals(u8(0xff))).toBe(true);
  });

  it("rejects other types with a TypeError", () => {
    expect(() => ByteView.from("a").equals(1 as unknown as string)).toThrow(TypeError);
  });
});

describe("util.inspect / console.log", () => {
  it("shows a short printable value as its length and text", () => {
    expect(inspect(ByteView.from("hello"))).toBe('ByteView(5) "hello"');
    // Quotes, backslashes, tab and newline are escaped as in JSON: still one line.
    expect(inspect(ByteView.from('say "hi"\tnow\n'))).toBe('ByteView(13) "say \\"hi\\"\\tnow\\n"');
  });

  it("shows the empty view", () => {
    expect(inspect(ByteView.empty)).toBe('ByteView(0) ""');
    expect(inspect(ByteView.from(new Uint8Array(0)))).toBe('ByteView(0) ""');
  });

  it("shows bytes that are not printable UTF-8 in hex", () => {
    expect(inspect(ByteView.from(u8(0xde, 0xad, 0xbe, 0xef)))).toBe("ByteView(4) <de ad be ef>");
    expect(inspect(ByteView.from(u8(0x61, 0x00, 0x62)))).toBe("ByteView(3) <61 00 62>"); // NUL
    expect(inspect(ByteView.from(u8(0x61, 0x1b)))).toBe("ByteView(2) <61 1b>"); // ESC
    expect(inspect(ByteView.from(u8(0x61, 0xc2, 0x85)))).toBe("ByteView(3) <61 c2 85>"); // C1 NEL
    expect(inspect(ByteView.from(u8(0xc3)))).toBe("ByteView(1) <c3>"); // a cut character
  });

  it("shows the first 64 bytes of a long value and counts the rest", () => {
    const text = ByteView.from("a".repeat(1000));
    expect(inspect(text)).toBe(`ByteView(1000) "${"a".repeat(64)}" ... 936 more bytes`);
    const bin = ByteView.from(new Uint8Array(65).fill(0xff));
    expect(inspect(bin)).toBe(`ByteView(65) <${Array(64).fill("ff").join(" ")} ... 1 more byte>`);
    // Exactly 64 bytes: nothing more to count.
    expect(inspect(ByteView.from("b".repeat(64)))).toBe(`ByteView(64) "${"b".repeat(64)}"`);
  });

  it("shows multi-byte UTF-8 as text, never cutting a character in two", () => {
    expect(inspect(ByteView.from("héllo wörld €"))).toBe('ByteView(17) "héllo wörld €"');
    expect(inspect(ByteView.from("👍 ok"))).toBe('ByteView(7) "👍 ok"');
    // 63 ASCII bytes, then "€" (3 bytes) across the 64-byte edge: shown up to the edge
    // of the last whole character, the rest counted.
    const v = ByteView.from(`${"x".repeat(63)}€€`);
    expect(inspect(v)).toBe(`ByteView(69) "${"x".repeat(63)}" ... 6 more bytes`);
  });

  it("reads well inside other values and with colours", () => {
    const v = ByteView.from("hello");
    expect(inspect({ v })).toBe('{ v: ByteView(5) "hello" }');
    expect(inspect([v, ByteView.from(u8(1))])).toBe('[ ByteView(5) "hello", ByteView(1) <01> ]');
    expect(inspect(new Map([["k", v]]))).toBe("Map(1) { 'k' => ByteView(5) \"hello\" }");
    // With colours, the text is styled as a string (green), the rest left plain.
    expect(inspect(v, { colors: true })).toBe('ByteView(5) \u001b[32m"hello"\u001b[39m');
    // String() and template literals still give the text itself.
    expect(`${v}`).toBe("hello");
    expect(Object.prototype.toString.call(v)).toBe("[object ByteView]");
  });
});
