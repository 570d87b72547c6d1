import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { groupcachepb, tinycachev1 } from "./index.js";

const hex = (u8: Uint8Array) => Buffer.from(u8).toString("hex");

describe("groupcachepb", () => {
  it("encodes a value exactly as Go peers do", () => {
    const res = create(groupcachepb.GetResponseSchema, {
      value: new TextEncoder().encode("v:somekey"),
    });
    expect(hex(toBinary(groupcachepb.GetResponseSchema, res))).toBe("0a09763a736f6d656b6579");
  });

  it("encodes an empty value as 0a 00 and long values with a varint length", () => {
    const empty = create(groupcachepb.GetResponseSchema, { value: new Uint8Array(0) });
    expect(hex(toBinary(groupcachepb.GetResponseSchema, empty))).toBe("0a00");
    const encode = (n: number) =>
      hex(
        toBinary(
          groupcachepb.GetResponseSchema,
          create(groupcachepb.GetResponseSchema, { value: new Uint8Array(n) }),
        ),
      ).slice(0, 6);
    expect(encode(200)).toBe("0ac801");
    // Go's tests answer "v:" + key; for a 200-byte key that is 202 bytes: 0a ca 01.
    expect(encode(202)).toBe("0aca01");
  });

  it("reads minute_qps and the mailgun expiry, and skips unknown fields", () => {
    // value "x", minute_qps 1.5, expire 42, then unknown field 9 (varint 7)
    const bytes = Buffer.from("0a0178" + "11000000000000f83f" + "182a" + "4807", "hex");
    const res = fromBinary(groupcachepb.GetResponseSchema, bytes);
    expect(new TextDecoder().decode(res.value)).toBe("x");
    expect(res.minuteQps).toBe(1.5);
    expect(res.expire).toBe(42n);
  });

  it("round-trips a GetRequest with a non-ASCII key", () => {
    const req = create(groupcachepb.GetRequestSchema, { group: "scores", key: "键 a+b/?#%" });
    const back = fromBinary(
      groupcachepb.GetRequestSchema,
      toBinary(groupcachepb.GetRequestSchema, req),
    );
    expect(back.key).toBe("键 a+b/?#%");
  });
});

describe("tinycache.v1", () => {
  it("describes the CacheService with Get, GetMany, Set and Remove", () => {
    expect(Object.keys(tinycachev1.CacheService.method).sort()).toEqual([
      "get",
      "getMany",
      "remove",
      "set",
    ]);
  });
});

describe("varint", () => {
  it("matches protobuf-es for 0, 1-byte, 2-byte and > 2^32 values", async () => {
    const { varintLength, writeVarint } = await import("./index.js");
    for (const n of [0, 1, 127, 128, 200, 300, 2 ** 31, 2 ** 32 + 5, Number.MAX_SAFE_INTEGER]) {
      const buf = new Uint8Array(10);
      const end = writeVarint(buf, 0, n);
      expect(end).toBe(varintLength(n));
      const want = toBinary(
        tinycachev1.GetResponseSchema,
        create(tinycachev1.GetResponseSchema, { expiresAtMs: BigInt(n) }),
      );
      // field 2 varint: tag 0x10 then the varint (absent for 0 in proto3)
      expect(hex(buf.subarray(0, end))).toBe(n === 0 ? "00" : hex(want.subarray(1)));
    }
  });
});
