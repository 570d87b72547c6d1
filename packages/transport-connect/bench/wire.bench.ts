/**
 * tinycache.v1.GetResponse, the one message on the cluster's hot path: our hand-written
 * encoder (server) beside @bufbuild/protobuf's low-level `wire` BinaryWriter and the
 * reflective toBinary, and the client's decoder (@tinycache/protocol's decodeGetResponse,
 * in place) beside one on the library's BinaryReader (the client's before it) and
 * fromBinary; then the same races for GetRequest, the body of every single-key call
 * (@tinycache/protocol's encodeGetRequest / decodeGetRequest): same values, one process, interleaved
 * (method: docs/benchmarks.md). A hand-written piece stays only while it measures faster
 * than the library; the goal lines say whether it still does.
 */
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { BinaryReader, BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import { ByteView } from "@tinycache/core";
import {
  decodeGetRequest,
  decodeGetResponse,
  encodeGetRequest,
  tinycachev1 as pb,
} from "@tinycache/protocol";
import { makeKeys, raceProtobufCodecs } from "@tinycache/testkit";
import { encodeGetResponse } from "../dist/private/wire.js";

const N = 50_000;
const views = makeKeys(N).map((k, i) => ByteView.from(k.repeat(1 + (i % 5))));
const expiries = views.map((_, i) => (i % 2 === 0 ? undefined : 1_900_000_000_000 + i));
const encoded = views.map((v, i) => encodeGetResponse(v, expiries[i]));

function writeWire(v: ByteView, expiresAt: number | undefined): Uint8Array {
  // The library needs the bytes as a Uint8Array: one copy out of the view first.
  const w = new BinaryWriter().tag(1, WireType.LengthDelimited).bytes(v.byteSlice());
  if (expiresAt !== undefined) w.tag(2, WireType.Varint).int64(expiresAt);
  return w.finish();
}

function encodeHand(): number {
  let n = 0;
  for (let i = 0; i < N; i++) n += encodeGetResponse(views[i] as ByteView, expiries[i]).length;
  if (n < 0) throw new Error("unreachable");
  return N;
}

function encodeWire(): number {
  let n = 0;
  for (let i = 0; i < N; i++) n += writeWire(views[i] as ByteView, expiries[i]).length;
  if (n < 0) throw new Error("unreachable");
  return N;
}

function encodeReflective(): number {
  let n = 0;
  for (let i = 0; i < N; i++) {
    const e = expiries[i];
    const msg = create(pb.GetResponseSchema, {
      value: (views[i] as ByteView).byteSlice(),
      expiresAtMs: e === undefined ? 0n : BigInt(e),
    });
    n += toBinary(pb.GetResponseSchema, msg).length;
  }
  if (n < 0) throw new Error("unreachable");
  return N;
}

function decodeReflective(): number {
  let n = 0;
  for (let i = 0; i < N; i++) {
    const m = fromBinary(pb.GetResponseSchema, encoded[i] as Uint8Array);
    n += m.value.length + (m.expiresAtMs > 0n ? 1 : 0);
  }
  if (n < 0) throw new Error("unreachable");
  return N;
}

function decodeHand(): number {
  let n = 0;
  for (let i = 0; i < N; i++) {
    const m = decodeGetResponse(encoded[i] as Uint8Array);
    n += m.value.length + (m.expiresAt !== undefined ? 1 : 0);
  }
  if (n < 0) throw new Error("unreachable");
  return N;
}

/** The client's decoder before the hand-written one: on the library's BinaryReader. */
function readWire(bytes: Uint8Array): { value: Uint8Array; expiresAtMs: bigint } {
  const r = new BinaryReader(bytes);
  let value: Uint8Array = new Uint8Array(0);
  let expiresAtMs: bigint | string = 0n;
  while (r.pos < r.len) {
    const [field, wireType] = r.tag();
    if (field === 1 && wireType === WireType.LengthDelimited) value = r.bytes();
    else if (field === 2 && wireType === WireType.Varint) expiresAtMs = r.int64();
    else r.skip(wireType, field);
  }
  return { value, expiresAtMs: BigInt(expiresAtMs) };
}

function decodeWire(): number {
  let n = 0;
  for (let i = 0; i < N; i++) {
    const m = readWire(encoded[i] as Uint8Array);
    n += m.value.length + (m.expiresAtMs > 0n ? 1 : 0);
  }
  if (n < 0) throw new Error("unreachable");
  return N;
}

// Same bytes from every encoder, so the race is fair.
for (let i = 0; i < 100; i++) {
  const v = views[i] as ByteView;
  if (!Buffer.from(writeWire(v, expiries[i])).equals(encoded[i] as Buffer)) {
    throw new Error("encoders differ");
  }
}

await raceProtobufCodecs("tinycache.v1.GetResponse", "encode", {
  hand: encodeHand,
  wire: encodeWire,
  reflective: encodeReflective,
});
await raceProtobufCodecs("tinycache.v1.GetResponse", "decode", {
  hand: decodeHand,
  wire: decodeWire,
  reflective: decodeReflective,
});

// ---- GetRequest{group, key}: the asker encodes it, the owner decodes it ----

const GROUP = "scores";
const keys = makeKeys(N);
const requests = keys.map((key) => encodeGetRequest(GROUP, key));
for (let i = 0; i < 100; i++) {
  const lib = toBinary(
    pb.GetRequestSchema,
    create(pb.GetRequestSchema, { group: GROUP, key: keys[i] as string }),
  );
  if (!Buffer.from(lib).equals(requests[i] as Buffer))
    throw new Error("GetRequest encoders differ");
}

function encodeRequestHand(): number {
  let n = 0;
  for (let i = 0; i < N; i++) n += encodeGetRequest(GROUP, keys[i] as string).length;
  if (n < 0) throw new Error("unreachable");
  return N;
}

function encodeRequestWire(): number {
  let n = 0;
  for (let i = 0; i < N; i++) {
    const w = new BinaryWriter().tag(1, WireType.LengthDelimited).string(GROUP);
    n += w
      .tag(2, WireType.LengthDelimited)
      .string(keys[i] as string)
      .finish().length;
  }
  if (n < 0) throw new Error("unreachable");
  return N;
}

function encodeRequestReflective(): number {
  let n = 0;
  for (let i = 0; i < N; i++) {
    const msg = create(pb.GetRequestSchema, { group: GROUP, key: keys[i] as string });
    n += toBinary(pb.GetRequestSchema, msg).length;
  }
  if (n < 0) throw new Error("unreachable");
  return N;
}

function decodeRequestHand(): number {
  let n = 0;
  for (let i = 0; i < N; i++) n += decodeGetRequest(requests[i] as Uint8Array).key.length;
  if (n < 0) throw new Error("unreachable");
  return N;
}

function decodeRequestWire(): number {
  let n = 0;
  for (let i = 0; i < N; i++) {
    const r = new BinaryReader(requests[i] as Uint8Array);
    let key = "";
    while (r.pos < r.len) {
      const [field, wireType] = r.tag();
      if (field === 2 && wireType === WireType.LengthDelimited) key = r.string();
      else r.skip(wireType, field);
    }
    n += key.length;
  }
  if (n < 0) throw new Error("unreachable");
  return N;
}

function decodeRequestReflective(): number {
  let n = 0;
  for (let i = 0; i < N; i++)
    n += fromBinary(pb.GetRequestSchema, requests[i] as Uint8Array).key.length;
  if (n < 0) throw new Error("unreachable");
  return N;
}

await raceProtobufCodecs("tinycache.v1.GetRequest", "encode", {
  hand: encodeRequestHand,
  wire: encodeRequestWire,
  reflective: encodeRequestReflective,
});
await raceProtobufCodecs("tinycache.v1.GetRequest", "decode", {
  hand: decodeRequestHand,
  wire: decodeRequestWire,
  reflective: decodeRequestReflective,
});
