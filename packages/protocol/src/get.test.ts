import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { GetRequestSchema, GetResponseSchema } from "./gen/tinycache/v1/cache_pb.js";
import { decodeGetRequest, decodeGetResponse, encodeGetRequest } from "./get.js";
import { MalformedMessage } from "./private/reader.js";
import { randomString, rng } from "./random.test-util.js";

describe("GetRequest codec: the same bytes and readings as protobuf-es", () => {
  it("encodes 500 random requests to toBinary's bytes, and decodes them back", () => {
    const next = rng(3);
    for (let i = 0; i < 500; i++) {
      const group = randomString(next, 20);
      const key = randomString(next, i % 50 === 0 ? 400 : 60); // some keys need 2-byte lengths
      const ours = encodeGetRequest(group, key);
      expect(
        Buffer.from(ours).equals(
          toBinary(GetRequestSchema, create(GetRequestSchema, { group, key })),
        ),
      ).toBe(true);
      expect(decodeGetRequest(ours)).toEqual({ group, key });
    }
  });

  it("leaves out empty strings, as proto3 does", () => {
    expect(encodeGetRequest("", "")).toHaveLength(0);
    expect(decodeGetRequest(new Uint8Array(0))).toEqual({ group: "", key: "" });
    expect([...encodeGetRequest("", "k")]).toEqual([0x12, 0x01, 0x6b]);
    expect([...encodeGetRequest("g", "")]).toEqual([0x0a, 0x01, 0x67]);
  });

  it("writes a lone surrogate as U+FFFD, as TextEncoder does", () => {
    const key = "a\ud800b";
    expect(
      Buffer.from(encodeGetRequest("g", key)).equals(
        toBinary(GetRequestSchema, create(GetRequestSchema, { group: "g", key })),
      ),
    ).toBe(true);
    expect(decodeGetRequest(encodeGetRequest("g", key)).key).toBe("a\ufffdb");
  });

  it("reads what fromBinary reads: unknown fields skipped, the last of a repeated field", () => {
    const unknown = [
      0x28, 0x96, 0x01, 0x31, 1, 2, 3, 4, 5, 6, 7, 8, 0x3a, 0x02, 0x68, 0x69, 0x45, 1, 2, 3, 4,
    ];
    const cases: number[][] = [
      [...unknown, 0x0a, 0x01, 0x67, ...unknown, 0x12, 0x01, 0x6b, ...unknown],
      [0x12, 0x01, 0x61, 0x12, 0x01, 0x62, 0x0a, 0x01, 0x67, 0x0a, 0x00], // key "b", group ""
      [0x12, 0x02, 0xc3, 0xa9], // é
    ];
    for (const bytes of cases) {
      const body = Uint8Array.from(bytes);
      const want = fromBinary(GetRequestSchema, body);
      expect(decodeGetRequest(body)).toEqual({ group: want.group, key: want.key });
    }
  });

  it("refuses malformed input with MalformedMessage, as fromBinary refuses it", () => {
    const cases: number[][] = [
      [0x12, 0x05, 0x61], // a length past the end
      [0x12], // a tag without its field
      [0x28, 0xff], // a varint cut short
      [0x0b, 0x0c], // a group
      [0x0e], // wire type 6
      [0x02, 0x00], // field 0
      [0x12, 0x03, 0x61, 0xff, 0x62], // a key that is not UTF-8
      [0x0a, 0x02, 0xc3, 0x28], // a group that is not UTF-8
    ];
    for (const bytes of cases) {
      const body = Uint8Array.from(bytes);
      expect(() => fromBinary(GetRequestSchema, body)).toThrow();
      expect(() => decodeGetRequest(body)).toThrow(MalformedMessage);
    }
  });
});

describe("decodeGetResponse: what fromBinary reads", () => {
  it("reads 500 random responses as fromBinary does (an expiry of 0 or below is none)", () => {
    const next = rng(4);
    for (let i = 0; i < 500; i++) {
      const kind = next();
      const expiresAtMs =
        kind < 0.4
          ? 0n
          : kind < 0.5
            ? -BigInt(Math.floor(next() * 1e12))
            : BigInt(Math.floor(next() * 2 ** 52));
      const value = new Uint8Array(Math.floor(next() * (i % 50 === 0 ? 5000 : 200))).map(
        () => next() * 256,
      );
      const body = toBinary(GetResponseSchema, create(GetResponseSchema, { value, expiresAtMs }));
      const want = fromBinary(GetResponseSchema, body);
      const got = decodeGetResponse(body);
      expect(Buffer.from(got.value).equals(Buffer.from(want.value))).toBe(true);
      expect(got.expiresAt).toBe(want.expiresAtMs > 0n ? Number(want.expiresAtMs) : undefined);
    }
  });

  it("reads an empty body as an empty value, skips unknown fields, and refuses malformed bytes", () => {
    expect(decodeGetResponse(new Uint8Array(0))).toEqual({ value: new Uint8Array(0) });
    const body = Uint8Array.from([
      0x28, 0x96, 0x01, 0x0a, 0x01, 0x76, 0x3a, 0x02, 0x68, 0x69, 0x10, 0x05,
    ]);
    const got = decodeGetResponse(body);
    expect(Buffer.from(got.value).toString()).toBe("v");
    expect(got.expiresAt).toBe(5);
    for (const bytes of [[0x0a, 0x05, 0x61], [0x10], [0x10, 0xff], [0x0b], [0x0f]]) {
      expect(() => decodeGetResponse(Uint8Array.from(bytes))).toThrow(MalformedMessage);
    }
  });
});
