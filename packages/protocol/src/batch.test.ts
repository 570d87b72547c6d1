import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import {
  decodeGetManyRequest,
  decodeGetManyResponse,
  encodeGetManyRequest,
  encodeGetManyResponse,
  MalformedMessage,
} from "./batch.js";
import { GetManyRequestSchema, GetManyResponseSchema } from "./gen/tinycache/v1/cache_pb.js";
import { utf8, utf8Length, WireReader } from "./private/reader.js";
import { randomString, rng } from "./random.test-util.js";

describe("batch codecs: the same bytes and readings as protobuf-es", () => {
  it("decodeGetManyResponse reads 500 random responses as fromBinary does", () => {
    const next = rng(1);
    for (let round = 0; round < 500; round++) {
      const n = Math.floor(next() * 8);
      const msg = create(GetManyResponseSchema, {
        results: Array.from({ length: n }, () => {
          const kind = next();
          return {
            key: randomString(next, 80),
            result:
              kind < 0.6
                ? {
                    case: "value" as const,
                    value: {
                      value: new Uint8Array(Math.floor(next() * 300)).map(() => next() * 256),
                      expiresAtMs:
                        next() < 0.5 ? 0n : BigInt(Math.floor(next() * Number.MAX_SAFE_INTEGER)),
                    },
                  }
                : kind < 0.9
                  ? {
                      case: "error" as const,
                      value: { code: randomString(next, 10), message: randomString(next, 100) },
                    }
                  : { case: undefined },
          };
        }),
      });
      const bytes = toBinary(GetManyResponseSchema, msg);
      const mine = decodeGetManyResponse(bytes);
      expect(mine.length).toBe(n);
      for (let i = 0; i < n; i++) {
        const want = msg.results[i];
        const got = mine[i];
        expect(got?.key).toBe(want?.key);
        if (want?.result.case === "value") {
          expect(got?.ok).toBe(true);
          if (!got?.ok) continue;
          expect(Buffer.from(got.value.value).equals(Buffer.from(want.result.value.value))).toBe(
            true,
          );
          const ms = Number(want.result.value.expiresAtMs);
          expect(got.value.expiresAt).toBe(ms > 0 ? ms : undefined);
        } else if (want?.result.case === "error") {
          expect(got).toMatchObject({
            ok: false,
            code: want.result.value.code,
            message: want.result.value.message,
          });
        } else {
          expect(got).toMatchObject({ ok: false, code: "unavailable" });
        }
      }
      // And our encoder writes these answers back byte for byte.
      const again = encodeGetManyResponse(
        mine.map((r) =>
          r.ok
            ? {
                key: r.key,
                ok: true as const,
                value: {
                  byteLength: r.value.value.byteLength,
                  copyTo: (d: Uint8Array, o = 0) => {
                    d.set(r.value.value, o);
                    return r.value.value.byteLength;
                  },
                },
                expiresAt: r.value.expiresAt,
              }
            : { key: r.key, ok: false as const, code: r.code, message: r.message },
        ),
      );
      const oracle = create(GetManyResponseSchema, {
        results: mine.map((r) => ({
          key: r.key,
          result: r.ok
            ? {
                case: "value" as const,
                value: { value: r.value.value, expiresAtMs: BigInt(r.value.expiresAt ?? 0) },
              }
            : { case: "error" as const, value: { code: r.code, message: r.message } },
        })),
      });
      expect(Buffer.from(again).equals(Buffer.from(toBinary(GetManyResponseSchema, oracle)))).toBe(
        true,
      );
    }
  });

  it("GetManyRequest: 500 random requests encode and decode as protobuf-es's", () => {
    const next = rng(2);
    for (let round = 0; round < 500; round++) {
      const group = randomString(next, 20);
      const keys = Array.from({ length: Math.floor(next() * 10) }, () => randomString(next, 70));
      const max = next() < 0.3 ? 0 : Math.floor(next() * 2 ** 40);
      const timeoutMs = next() < 0.3 ? 0 : Math.floor(next() * 0xffffffff);
      const bytes = encodeGetManyRequest(group, keys, max, timeoutMs);
      const want = toBinary(
        GetManyRequestSchema,
        create(GetManyRequestSchema, { group, keys, maxAnswerBytes: BigInt(max), timeoutMs }),
      );
      expect(Buffer.from(bytes).equals(Buffer.from(want))).toBe(true);
      expect(decodeGetManyRequest(want)).toEqual({ group, keys, maxAnswerBytes: max, timeoutMs });
    }
  });

  it("reads invalid UTF-8 with U+FFFD, as a TextDecoder (BinaryReader.string) does", () => {
    const bad = [
      [0xff],
      [0xc3],
      [0xe4, 0xb8],
      [0xed, 0xa0, 0x80],
      [0x61, 0x80, 0x62],
      [0xf0, 0x9f],
    ];
    for (const b of bad) {
      const key = Uint8Array.from(b);
      // GetManyRequest{keys: [key]} by hand: tag 0x12, length, bytes.
      const body = Uint8Array.from([0x12, key.length, ...key]);
      expect(decodeGetManyRequest(body).keys).toEqual([new TextDecoder().decode(key)]);
      expect(decodeGetManyRequest(body).keys[0]).toContain("\ufffd");
    }
  });

  it("skips unknown fields of every wire type, at every level", () => {
    const unknown = [
      0x28,
      0x96,
      0x01, // field 5, varint 150
      0x31,
      1,
      2,
      3,
      4,
      5,
      6,
      7,
      8, // field 6, fixed64
      0x3a,
      0x02,
      0x68,
      0x69, // field 7, "hi"
      0x45,
      1,
      2,
      3,
      4, // field 8, fixed32
    ];
    // GetResponse{value: "v", unknown...}; GetManyResult{unknown..., key: "k", value};
    // GetManyResponse{unknown..., results}.
    const value = [0x0a, 0x01, 0x76, ...unknown];
    const result = [...unknown, 0x0a, 0x01, 0x6b, 0x12, value.length, ...value];
    const body = Uint8Array.from([...unknown, 0x0a, result.length, ...result, ...unknown]);
    const out = decodeGetManyResponse(body);
    expect(out).toHaveLength(1);
    expect(out[0]?.key).toBe("k");
    expect(out[0]?.ok && Buffer.from(out[0].value.value).toString()).toBe("v");
    const err = [...unknown, 0x0a, 0x01, 0x63, ...unknown, 0x12, 0x01, 0x6d];
    const withError = Uint8Array.from([0x0a, 2 + err.length + 1, 0x1a, err.length, ...err, 0x08]);
    // The trailing 0x08 (field 1 varint, no payload) lies inside the result: cut short.
    expect(() => decodeGetManyResponse(withError)).toThrow(MalformedMessage);
    const errOk = Uint8Array.from([0x0a, 2 + err.length, 0x1a, err.length, ...err]);
    expect(decodeGetManyResponse(errOk)).toEqual([{ key: "", ok: false, code: "c", message: "m" }]);
  });

  it("refuses malformed input with MalformedMessage, never another error or a wrong read", () => {
    const cases: [string, number[]][] = [
      ["varint over 10 bytes", [0x28, ...new Array(10).fill(0xff), 0x01]],
      ["varint cut short", [0x28, 0xff]],
      ["field 0", [0x02, 0x00]],
      ["wire type 6", [0x0e]],
      ["wire type 7", [0x0f]],
      ["a group", [0x0b, 0x0c]],
      ["fixed64 cut short", [0x31, 1, 2, 3]],
      ["fixed32 cut short", [0x45, 1]],
      ["a length past the end", [0x0a, 0x05, 0x00]],
      ["a huge length", [0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f]],
      ["a value past its result", [0x0a, 0x03, 0x12, 0x05, 0x0a, 0x03, 0x61, 0x62, 0x63]],
      ["a tag over 32 bits", [0x80, 0x80, 0x80, 0x80, 0x10]],
    ];
    for (const [what, bytes] of cases) {
      expect(() => decodeGetManyResponse(Uint8Array.from(bytes)), what).toThrow(MalformedMessage);
    }
    expect(() => decodeGetManyRequest(Uint8Array.from([0x12, 0x05, 0x61]))).toThrow(
      MalformedMessage,
    );
  });

  it("reads expiries: negative int64 is none, huge ones stay numbers, uint32 keeps low bits", () => {
    // GetManyResult{key "k", value: GetResponse{expires_at_ms}}.
    const withExpiry = (varint: number[]) => {
      const value = [0x10, ...varint];
      const result = [0x0a, 0x01, 0x6b, 0x12, value.length, ...value];
      return Uint8Array.from([0x0a, result.length, ...result]);
    };
    const minusOne = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
    const [neg] = decodeGetManyResponse(withExpiry(minusOne));
    expect(neg?.ok && neg.value.expiresAt).toBeUndefined();
    const [big] = decodeGetManyResponse(
      withExpiry([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]),
    );
    expect(big?.ok && big.value.expiresAt).toBe(2 ** 56 - 1);
    // timeout_ms of 2^32 + 5: protobuf-es keeps the low 32 bits.
    const body = Uint8Array.from([0x20, 0x85, 0x80, 0x80, 0x80, 0x10]);
    expect(decodeGetManyRequest(body).timeoutMs).toBe(
      fromBinary(GetManyRequestSchema, body).timeoutMs,
    );
    expect(decodeGetManyRequest(body).timeoutMs).toBe(5);
    // max_answer_bytes over 2^53: none.
    const huge = Uint8Array.from([0x18, ...new Array(9).fill(0xff), 0x01]);
    expect(decodeGetManyRequest(huge).maxAnswerBytes).toBe(0);
  });

  it("an empty body is an empty message", () => {
    expect(decodeGetManyResponse(new Uint8Array(0))).toEqual([]);
    expect(decodeGetManyRequest(new Uint8Array(0))).toEqual({
      group: "",
      keys: [],
      maxAnswerBytes: 0,
      timeoutMs: 0,
    });
    expect(encodeGetManyResponse([]).length).toBe(0);
  });
});

describe("reader helpers", () => {
  it("utf8 and utf8Length agree with TextDecoder and Buffer on every kind of string", () => {
    const strings = [
      "",
      "a",
      "user000001",
      "x".repeat(64),
      "x".repeat(65),
      "é",
      "🎉",
      "\ud800",
      "a\udc00b",
    ];
    for (const s of strings) {
      expect(utf8Length(s), s).toBe(Buffer.byteLength(s));
      const b = Buffer.from(s);
      expect(utf8(b, 0, b.length)).toBe(new TextDecoder().decode(b));
    }
  });

  it("varint reads exactly up to 2^53", () => {
    for (const n of [0, 1, 127, 128, 300, 2 ** 31, 2 ** 32 + 1, Number.MAX_SAFE_INTEGER]) {
      const buf = new Uint8Array(10);
      let len = 0;
      let x = n;
      while (x >= 0x80) {
        buf[len++] = (x % 0x80) | 0x80;
        x = Math.floor(x / 0x80);
      }
      buf[len++] = x;
      const r = new WireReader(buf.subarray(0, len));
      expect(r.varint()).toBe(n);
      expect(r.pos).toBe(len);
    }
  });
});
