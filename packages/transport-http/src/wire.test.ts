import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { ByteView } from "@tinycache/core";
import { groupcachepb } from "@tinycache/protocol";
import { prng } from "@tinycache/testkit";
import { describe, expect, it } from "vitest";
import { escapeSegment, unescapeSegment, whyUndecodable } from "./escape.js";
import {
  decodeGetResponse,
  decodeSetRequest,
  encodeGetResponse,
  encodeSetRequest,
  MalformedMessage,
} from "./wire.js";

const rand = prng(7);

function randomBytes(n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = Math.floor(rand() * 256);
  return b;
}

describe("GetResponse", () => {
  it("encodes exactly as protobuf-es (and Go) for random values and expiries", () => {
    for (let i = 0; i < 200; i++) {
      const n = [0, 1, 127, 128, 200, 16_383, 16_384, 70_000][i % 8] as number;
      const value = randomBytes(n);
      const expiresAt = i % 3 === 0 ? undefined : 1_600_000_000_000 + Math.floor(rand() * 1e12);
      const ours = encodeGetResponse(ByteView.from(value), expiresAt);
      const msg = create(groupcachepb.GetResponseSchema, { value });
      if (expiresAt !== undefined) msg.expire = BigInt(expiresAt) * 1_000_000n;
      expect(
        Buffer.from(ours).equals(Buffer.from(toBinary(groupcachepb.GetResponseSchema, msg))),
      ).toBe(true);
      const back = decodeGetResponse(ours);
      expect(Buffer.from(back.value).equals(value)).toBe(true);
      expect(back.expiresAt).toBe(expiresAt);
    }
  });

  it("omits expire for none, 0, negative or non-finite expiries", () => {
    for (const e of [undefined, 0, -5, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect([...encodeGetResponse(ByteView.from("ab"), e)]).toEqual([0x0a, 2, 0x61, 0x62]);
    }
  });

  it("decodes what protobuf-es writes, with minute_qps and unknown fields skipped", () => {
    for (let i = 0; i < 300; i++) {
      const value = randomBytes(Math.floor(rand() * 300));
      const msg = create(groupcachepb.GetResponseSchema, { value, minuteQps: rand() * 100 });
      if (i % 2) msg.expire = 1_700_000_000_000_000_000n + BigInt(i);
      const known = toBinary(groupcachepb.GetResponseSchema, msg);
      // unknown fields: 9 varint, 10 fixed64, 11 bytes, 12 fixed32
      const unknown = [
        0x48, 0x96, 0x01, 0x51, 1, 2, 3, 4, 5, 6, 7, 8, 0x5a, 2, 9, 9, 0x65, 1, 2, 3, 4,
      ];
      const body =
        i % 3 ? new Uint8Array([...unknown, ...known]) : new Uint8Array([...known, ...unknown]);
      const ref = fromBinary(groupcachepb.GetResponseSchema, body);
      const got = decodeGetResponse(body);
      expect(Buffer.from(got.value).equals(ref.value)).toBe(true);
      expect(got.expiresAt).toBe(ref.expire > 0n ? Number(ref.expire / 1_000_000n) : undefined);
    }
  });

  it("an empty body is the empty value", () => {
    expect(decodeGetResponse(new Uint8Array()).value.length).toBe(0);
  });

  it.each([
    ["truncated length", [0x0a, 0x05, 1, 2]],
    ["truncated varint", [0x0a]],
    ["endless varint", [0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]],
    ["field 0", [0x00, 0x01]],
    ["group wire type", [0x0b]],
    ["truncated fixed64", [0x11, 1, 2]],
  ])("rejects %s", (_name, bytes) => {
    expect(() => decodeGetResponse(new Uint8Array(bytes))).toThrow(MalformedMessage);
  });

  it("never throws anything but MalformedMessage on random bytes", () => {
    for (let i = 0; i < 5000; i++) {
      try {
        decodeGetResponse(randomBytes(Math.floor(rand() * 40)));
      } catch (err) {
        expect(err).toBeInstanceOf(MalformedMessage);
      }
    }
  });
});

describe("SetRequest", () => {
  it("round-trips group, key, value and expiry (ns <-> ms)", () => {
    const b = encodeSetRequest("g", "a b", new Uint8Array([1, 2]), 1_800_000_000_123);
    expect(decodeSetRequest(b)).toEqual({
      group: "g",
      key: "a b",
      value: new Uint8Array([1, 2]),
      expiresAt: 1_800_000_000_123,
    });
    expect(fromBinary(groupcachepb.SetRequestSchema, b).expire).toBe(1_800_000_000_123_000_000n);
    expect(decodeSetRequest(encodeSetRequest("g", "k", new Uint8Array()))).toEqual({
      group: "g",
      key: "k",
      value: new Uint8Array(),
    });
  });
});

describe("escaping", () => {
  it("round-trips random Unicode strings and never emits + or space", () => {
    for (let i = 0; i < 2000; i++) {
      let s = "";
      const n = Math.floor(rand() * 12);
      for (let j = 0; j < n; j++) {
        const r = rand();
        s +=
          r < 0.5
            ? String.fromCharCode(0x20 + Math.floor(rand() * 95))
            : r < 0.8
              ? String.fromCharCode(0xa0 + Math.floor(rand() * 0x2000))
              : String.fromCodePoint(0x1f600 + Math.floor(rand() * 80));
      }
      const e = escapeSegment(s);
      expect(e).not.toMatch(/[+ /?#]/);
      expect(unescapeSegment(e)).toBe(s);
    }
  });

  it("keeps + literal when decoding, as Go's server does", () => {
    expect(unescapeSegment("a+b")).toBe("a+b");
    expect(unescapeSegment("a%2Bb%20c")).toBe("a+b c");
  });

  it("refuses bad escapes and non-UTF-8 with distinct reasons", () => {
    for (const bad of ["%", "%4", "%zz", "a%g1"]) {
      expect(unescapeSegment(bad)).toBeUndefined();
      expect(whyUndecodable(bad)).toBe("bad request: invalid percent-encoding");
    }
    for (const bad of ["%FF", "%C3", "%ED%A0%80", "%C0%AF"]) {
      expect(unescapeSegment(bad)).toBeUndefined();
      expect(whyUndecodable(bad)).toBe("bad request: path is not UTF-8");
    }
  });

  it("a lone surrogate cannot be escaped", () => {
    expect(() => escapeSegment("\uD800")).toThrow(URIError);
  });
});
