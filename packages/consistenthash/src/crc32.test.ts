import zlib from "node:zlib";
import { prng } from "@tinycache/testkit";
import { describe, expect, it } from "vitest";
import { balancedHash, crc32, crc32Bytes } from "./index.js";

// Independent reference: zlib's native CRC-32 over Node's own UTF-8 encoding.
const ref = (s: string): number => zlib.crc32(Buffer.from(s, "utf8")) >>> 0;

/** Random strings that mix ASCII, 2/3/4-byte UTF-8 and lone surrogates. */
function randomString(rnd: () => number, maxLen: number): string {
  const len = Math.floor(rnd() * maxLen);
  let s = "";
  for (let i = 0; i < len; i++) {
    const kind = rnd();
    if (kind < 0.5) s += String.fromCharCode(Math.floor(rnd() * 0x80));
    else if (kind < 0.65) s += String.fromCharCode(0x80 + Math.floor(rnd() * 0x780));
    else if (kind < 0.8) s += String.fromCharCode(0x800 + Math.floor(rnd() * 0xf7ff));
    else if (kind < 0.95) s += String.fromCodePoint(0x10000 + Math.floor(rnd() * 0xfffff));
    else s += String.fromCharCode(0xd800 + Math.floor(rnd() * 0x800)); // lone surrogate
  }
  return s;
}

describe("crc32", () => {
  it("matches pinned check values", () => {
    expect(crc32("")).toBe(0);
    expect(crc32("123456789")).toBe(0xcbf43926);
    expect(crc32("The quick brown fox jumps over the lazy dog")).toBe(0x414fa339);
    expect(crc32("Tom")).toBe(0x459235f3);
    expect(crc32("Tömß")).toBe(0x70193a24);
    expect(crc32("键")).toBe(0x7d31f3cc);
    expect(crc32("🙂")).toBe(0xf258e529);
    expect(crc32("http://127.0.0.1:8001")).toBe(0xf68b82c2);
  });

  it("encodes lone surrogates as U+FFFD, like TextEncoder", () => {
    expect(crc32("\ud800")).toBe(0x8b7233c9);
    expect(crc32("\ud800")).toBe(crc32("\ufffd"));
    expect(crc32("a\udc00b")).toBe(crc32("a\ufffdb"));
    expect(crc32("\ud83d")).toBe(crc32Bytes(new TextEncoder().encode("\ud83d")));
    // High surrogate followed by a non-surrogate, and a reversed pair.
    expect(crc32("\ud83dx")).toBe(ref("\ud83dx"));
    expect(crc32("\ude42\ud83d")).toBe(ref("\ude42\ud83d"));
  });

  it("matches zlib on random mixed strings of every length around the 4-byte steps", () => {
    const rnd = prng(7);
    for (let i = 0; i < 3000; i++) {
      const s = randomString(rnd, 40);
      expect(crc32(s), JSON.stringify(s)).toBe(ref(s));
    }
    for (let len = 0; len < 20; len++) {
      const s = "abcdefghijklmnopqrstuvwxyz".slice(0, len);
      expect(crc32(s)).toBe(ref(s));
      expect(crc32(`${s}é${s}`)).toBe(ref(`${s}é${s}`));
    }
  });

  it("handles long strings", () => {
    const s = "x".repeat(100_000) + "🙂".repeat(1000);
    expect(crc32(s)).toBe(ref(s));
  });

  it("crc32Bytes matches zlib on raw bytes", () => {
    const rnd = prng(8);
    const bytes = new Uint8Array(1000);
    for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(rnd() * 256);
    expect(crc32Bytes(bytes)).toBe(zlib.crc32(bytes) >>> 0);
    expect(crc32Bytes(new Uint8Array(0))).toBe(0);
  });
});

describe("balancedHash", () => {
  it("is deterministic, unsigned 32-bit, and not plain CRC-32", () => {
    expect(balancedHash("Tom")).toBe(balancedHash("Tom"));
    expect(balancedHash("")).toBe(0); // fmix32(0) = 0
    for (const s of ["Tom", "键", "0http://127.0.0.1:8001"]) {
      const h = balancedHash(s);
      expect(Number.isInteger(h) && h >= 0 && h < 2 ** 32).toBe(true);
      expect(h).not.toBe(crc32(s));
    }
    expect(balancedHash("Tom")).toBe(0x929acee1); // fmix32(0x459235f3), checked with BigInt arithmetic;
  });
});
