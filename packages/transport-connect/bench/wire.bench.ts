/**
 * tinycache.v1.GetResponse, the one message on the cluster's hot path: our hand-written
 * encoder (server) beside @bufbuild/protobuf's low-level `wire` BinaryWriter and the
 * reflective toBinary, and the client's decoder (on the library's BinaryReader, ~5x the
 * `fromBinary` it replaced) beside fromBinary: same values, one process, interleaved
 * (method: docs/benchmarks.md). A hand-written piece stays only while it measures faster
 * than the library; the goal lines say whether it still does.
 */
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import { ByteView } from "@tinycache/core";
import { tinycachev1 as pb } from "@tinycache/protocol";
import { makeKeys, raceProtobufCodecs } from "@tinycache/testkit";
import { decodeGetResponse, encodeGetResponse } from "../src/private/wire.js";

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

// The client's decoder is built on the library's BinaryReader: it is the `wire` contender.
function decodeWire(): number {
  let n = 0;
  for (let i = 0; i < N; i++) {
    const m = decodeGetResponse(encoded[i] as Uint8Array);
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
  wire: decodeWire,
  reflective: decodeReflective,
});
