import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { ByteView } from "@tinycache/core";
import {
  type BatchAnswerLike,
  decodeGetManyRequest,
  decodeGetManyResponse,
  encodeGetManyRequest,
  encodeGetManyResponse,
  tinycachev1 as pb,
} from "@tinycache/protocol";
import { describe, expect, it } from "vitest";
import { MalformedMessage } from "./wire.js";

const answers: BatchAnswerLike[] = [
  { key: "Tom", ok: true, value: ByteView.from("630"), expiresAt: 1_900_000_000_123 },
  { key: "empty", ok: true, value: ByteView.from("") },
  { key: "", ok: true, value: ByteView.from(new Uint8Array(300).map((_, i) => i & 255)) },
  { key: "nobody", ok: false, code: "not_found", message: "nobody not exist" },
  { key: "ünï/%+ 🎉", ok: false, code: "internal", message: "" },
];

describe("batch wire: pinned against protobuf-es", () => {
  it("encodeGetManyResponse writes what toBinary writes", () => {
    const msg = create(pb.GetManyResponseSchema, {
      results: answers.map((a) =>
        create(pb.GetManyResultSchema, {
          key: a.key,
          result: a.ok
            ? {
                case: "value",
                value: create(pb.GetResponseSchema, {
                  value: (a.value as ByteView).byteSlice(),
                  expiresAtMs: BigInt(a.expiresAt ?? 0),
                }),
              }
            : {
                case: "error",
                value: create(pb.KeyErrorSchema, { code: a.code, message: a.message }),
              },
        }),
      ),
    });
    const mine = encodeGetManyResponse(answers);
    expect(Buffer.from(mine).equals(Buffer.from(toBinary(pb.GetManyResponseSchema, msg)))).toBe(
      true,
    );
    const back = fromBinary(pb.GetManyResponseSchema, mine);
    expect(back.results.map((r) => [r.key, r.result.case])).toEqual(
      msg.results.map((r) => [r.key, r.result.case]),
    );
    expect(encodeGetManyResponse([]).length).toBe(0);
  });

  it("decodeGetManyResponse reads what toBinary writes, unknown fields skipped", () => {
    const bytes = encodeGetManyResponse(answers);
    const out = decodeGetManyResponse(bytes);
    expect(out.map((r) => r.key)).toEqual(answers.map((a) => a.key));
    expect(out[0]?.ok && Buffer.from(out[0].value.value).toString()).toBe("630");
    expect(out[0]?.ok && out[0].value.expiresAt).toBe(1_900_000_000_123);
    expect(out[1]?.ok && out[1].value.value.length).toBe(0);
    expect(out[2]?.ok && [...out[2].value.value]).toEqual([
      ...new Uint8Array(300).map((_, i) => i & 255),
    ]);
    expect(out[3]).toEqual({
      key: "nobody",
      ok: false,
      code: "not_found",
      message: "nobody not exist",
    });
    expect(out[4]).toMatchObject({ ok: false, code: "internal" });
    // A result with neither value nor error, and an unknown field: readable, not a value.
    const odd = toBinary(
      pb.GetManyResponseSchema,
      create(pb.GetManyResponseSchema, { results: [create(pb.GetManyResultSchema, { key: "k" })] }),
    );
    const withUnknown = Buffer.concat([Buffer.from([0x20, 0x05]), odd]);
    expect(decodeGetManyResponse(withUnknown)).toEqual([
      { key: "k", ok: false, code: "unavailable", message: "result without value or error" },
    ]);
  });

  it("decodeGetManyResponse throws MalformedMessage on truncated or garbage input", () => {
    const bytes = encodeGetManyResponse(answers);
    expect(() => decodeGetManyResponse(bytes.subarray(0, bytes.length - 3))).toThrow(
      MalformedMessage,
    );
    expect(() => decodeGetManyResponse(Buffer.from([0x0a, 0x7f, 0x01]))).toThrow(MalformedMessage);
  });

  it("GetManyRequest round-trips through protobuf-es", () => {
    const bytes = encodeGetManyRequest("scores", ["a", "b/ü"], 1234, 500);
    expect(fromBinary(pb.GetManyRequestSchema, bytes)).toMatchObject({
      group: "scores",
      keys: ["a", "b/ü"],
      maxAnswerBytes: 1234n,
      timeoutMs: 500,
    });
    expect(decodeGetManyRequest(bytes)).toEqual({
      group: "scores",
      keys: ["a", "b/ü"],
      maxAnswerBytes: 1234,
      timeoutMs: 500,
    });
    expect(() => decodeGetManyRequest(Buffer.from([0x12, 0x05, 0x61]))).toThrow();
  });

  it("GetManyRequest bytes are protobuf-es's, byte for byte (the hand encoder's oracle)", () => {
    const cases: [string, string[], number, number][] = [
      ["scores", ["a", "b/ü", "", "🙂".repeat(3)], 1234, 500],
      ["", [], 0, 0],
      ["g", ["x".repeat(300)], 2 ** 40, 0xffffffff],
      ["grüppe", Array.from({ length: 64 }, (_, i) => `user${i}`), 0, 1],
    ];
    for (const [group, keys, maxAnswerBytes, timeoutMs] of cases) {
      const want = toBinary(
        pb.GetManyRequestSchema,
        create(pb.GetManyRequestSchema, {
          group,
          keys,
          maxAnswerBytes: BigInt(maxAnswerBytes),
          timeoutMs,
        }),
      );
      expect(Buffer.from(encodeGetManyRequest(group, keys, maxAnswerBytes, timeoutMs))).toEqual(
        Buffer.from(want),
      );
    }
    // The decoder reads protobuf-es's bytes back, and skips fields it does not know.
    const known = toBinary(
      pb.GetManyRequestSchema,
      create(pb.GetManyRequestSchema, {
        group: "grüppe",
        keys: ["", "a", "🙂"],
        maxAnswerBytes: 99n,
        timeoutMs: 7,
      }),
    );
    const unknownFields = Buffer.from([0x28, 0x05, 0x3a, 0x02, 0x68, 0x69]); // 5: 5, 7: "hi"
    expect(decodeGetManyRequest(Buffer.concat([unknownFields, known, unknownFields]))).toEqual({
      group: "grüppe",
      keys: ["", "a", "🙂"],
      maxAnswerBytes: 99,
      timeoutMs: 7,
    });
    for (const bad of [
      Buffer.from([0x12, 0x05, 0x61]), // a key longer than the body
      Buffer.from([0x0b]), // a group (wire type 3)
      Buffer.from([0x18, 0xff]), // a varint cut short
    ]) {
      expect(() => decodeGetManyRequest(bad)).toThrow(MalformedMessage);
    }
    // Out of range: clamped as before (no negative varints, timeout within uint32).
    expect(decodeGetManyRequest(encodeGetManyRequest("g", ["k"], -5, 2 ** 40))).toEqual({
      group: "g",
      keys: ["k"],
      maxAnswerBytes: 0,
      timeoutMs: 0xffffffff,
    });
  });
});
