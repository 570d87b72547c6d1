/**
 * The groupcache wire's hot message, GetResponse: our hand-written encoder beside
 * @bufbuild/protobuf's own two ways, its low-level `wire` BinaryWriter and the reflective
 * toBinary; our decoder (on the library's BinaryReader, which replaced a hand-written
 * parser that measured 5x slower) beside fromBinary. Same values, one process,
 * interleaved (method: docs/benchmarks.md). The hand-written encoder stays only while it
 * measures faster than the library: the goal line says whether it still does.
 */
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import { ByteView } from "@tinycache/core";
import { groupcachepb } from "@tinycache/protocol";
import { makeKeys, raceProtobufCodecs } from "@tinycache/testkit";
import { decodeGetResponse, encodeGetResponse, msToNs, nsToMs } from "../dist/wire.js";

const N = 50_000;
// Values as a cache holds them: ByteViews of ~20-100 bytes; half of them expire.
const views = makeKeys(N).map((k, i) => ByteView.from(k.repeat(1 + (i % 5))));
const expiries = views.map((_, i) => (i % 2 === 0 ? undefined : 1_900_000_000_000 + i));
const encoded = views.map((v, i) => encodeGetResponse(v, expiries[i]));

function encodeHand(): number {
  let n = 0;
  for (let i = 0; i < N; i++) n += encodeGetResponse(views[i] as ByteView, expiries[i]).length;
  if (n < 0) throw new Error("unreachable");
  return N;
}

function encodeWire(): number {
  let n = 0;
  for (let i = 0; i < N; i++) {
    // The library needs the bytes as a Uint8Array: one copy out of the view first.
    const w = new BinaryWriter()
      .tag(1, WireType.LengthDelimited)
      .bytes((views[i] as ByteView).byteSlice());
    const ns = msToNs(expiries[i]);
    if (ns !== undefined) w.tag(3, WireType.Varint).int64(ns);
    n += w.finish().length;
  }
  if (n < 0) throw new Error("unreachable");
  return N;
}

function encodeReflective(): number {
  let n = 0;
  for (let i = 0; i < N; i++) {
    const msg = create(groupcachepb.GetResponseSchema, {
      value: (views[i] as ByteView).byteSlice(),
    });
    const ns = msToNs(expiries[i]);
    if (ns !== undefined) msg.expire = ns;
    n += toBinary(groupcachepb.GetResponseSchema, msg).length;
  }
  if (n < 0) throw new Error("unreachable");
  return N;
}

// Our decoder is built on the library's BinaryReader: it is the `wire` contender.
function decodeWire(): number {
  let n = 0;
  for (let i = 0; i < N; i++) {
    const d = decodeGetResponse(encoded[i] as Uint8Array);
    n += d.value.length + (d.expiresAt === undefined ? 0 : 1);
  }
  if (n < 0) throw new Error("unreachable");
  return N;
}

function decodeReflective(): number {
  let n = 0;
  for (let i = 0; i < N; i++) {
    const m = fromBinary(groupcachepb.GetResponseSchema, encoded[i] as Uint8Array);
    n += m.value.length + (nsToMs(m.expire) === undefined ? 0 : 1);
  }
  if (n < 0) throw new Error("unreachable");
  return N;
}

// Same bytes from all three encoders, so the race is fair.
for (let i = 0; i < 100; i++) {
  const v = views[i] as ByteView;
  const w = new BinaryWriter().tag(1, WireType.LengthDelimited).bytes(v.byteSlice());
  const ns = msToNs(expiries[i]);
  if (ns !== undefined) w.tag(3, WireType.Varint).int64(ns);
  if (!Buffer.from(w.finish()).equals(encoded[i] as Buffer)) throw new Error("encoders differ");
}

await raceProtobufCodecs("groupcachepb.GetResponse", "encode", {
  hand: encodeHand,
  wire: encodeWire,
  reflective: encodeReflective,
});
await raceProtobufCodecs("groupcachepb.GetResponse", "decode", {
  wire: decodeWire,
  reflective: decodeReflective,
});
