/**
 * The batch messages of both transports (tinycache.v1 GetManyRequest / GetManyResponse,
 * @tinycache/protocol's codecs): our hand-written codecs beside @bufbuild/protobuf's
 * low-level `wire` BinaryWriter / BinaryReader (what the decoders were written on before:
 * a `[field, wireType]` array per tag, a reader and DataView per sub-message) and the
 * reflective toBinary / fromBinary. Batches of 20 keys as the peer path sends them; same
 * bytes from every encoder; one process, interleaved (method: docs/benchmarks.md). A
 * hand-written codec stays only while it measures faster than the library: the goal lines
 * say whether it still does. Counted per batch.
 */
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { BinaryReader, BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import { ByteView } from "@tinycache/core";
import {
  type BatchAnswerLike,
  decodeGetManyRequest,
  decodeGetManyResponse,
  encodeGetManyRequest,
  encodeGetManyResponse,
  tinycachev1 as pb,
} from "@tinycache/protocol";
import { makeKeys, raceProtobufCodecs } from "@tinycache/testkit";

const BATCHES = 2_000;
const KEYS = 20;
const allKeys = makeKeys(BATCHES * KEYS);
const batches = Array.from({ length: BATCHES }, (_, b) => allKeys.slice(b * KEYS, (b + 1) * KEYS));
// Answers as an owner gives them: small values, one in four expiring, one in 20 an error.
const answers: BatchAnswerLike[][] = batches.map((keys, b) =>
  keys.map((key, i): BatchAnswerLike => {
    if ((b + i) % 20 === 0)
      return { key, ok: false, code: "not_found", message: `${key} not exist` };
    const value = ByteView.from(String(100 + ((b * KEYS + i) % 900)));
    return (b + i) % 4 === 0
      ? { key, ok: true, value, expiresAt: 1_900_000_000_000 + i }
      : { key, ok: true, value };
  }),
);
const responses = answers.map((a) => encodeGetManyResponse(a));
const requests = batches.map((keys) => encodeGetManyRequest("scores", keys, 16 << 20, 5_000));

// ---- GetManyResponse ----

function writeResponseWire(list: BatchAnswerLike[]): Uint8Array {
  const w = new BinaryWriter();
  for (const a of list) {
    w.tag(1, WireType.LengthDelimited).fork();
    if (a.key) w.tag(1, WireType.LengthDelimited).string(a.key);
    w.tag(a.ok ? 2 : 3, WireType.LengthDelimited).fork();
    if (a.ok) {
      const v = (a.value as ByteView).byteSlice();
      if (v.length) w.tag(1, WireType.LengthDelimited).bytes(v);
      if (a.expiresAt) w.tag(2, WireType.Varint).int64(a.expiresAt);
    } else {
      if (a.code) w.tag(1, WireType.LengthDelimited).string(a.code);
      if (a.message) w.tag(2, WireType.LengthDelimited).string(a.message);
    }
    w.join().join();
  }
  return w.finish();
}

function responseMessage(list: BatchAnswerLike[]) {
  return create(pb.GetManyResponseSchema, {
    results: list.map((a) => ({
      key: a.key,
      result: a.ok
        ? {
            case: "value" as const,
            value: {
              value: (a.value as ByteView).byteSlice(),
              expiresAtMs: BigInt(a.expiresAt ?? 0),
            },
          }
        : { case: "error" as const, value: { code: a.code, message: a.message } },
    })),
  });
}

/** The BinaryReader decoder @tinycache/protocol had before its own reader. */
function readResponseWire(body: Uint8Array): number {
  let n = 0;
  const r = new BinaryReader(body);
  while (r.pos < r.len) {
    const [field, wt] = r.tag();
    if (field !== 1) {
      r.skip(wt, field);
      continue;
    }
    const end = r.uint32() + r.pos;
    while (r.pos < end) {
      const [f, w] = r.tag();
      if (f === 1) n += r.string().length;
      else if (f === 2) {
        const sub = new BinaryReader(r.bytes());
        while (sub.pos < sub.len) {
          const [g, x] = sub.tag();
          if (g === 1) n += sub.bytes().length;
          else if (g === 2) n += Number(BigInt(sub.int64())) > 0 ? 1 : 0;
          else sub.skip(x, g);
        }
      } else if (f === 3) {
        const sub = new BinaryReader(r.bytes());
        while (sub.pos < sub.len) {
          const [g, x] = sub.tag();
          if (g === 1 || g === 2) n += sub.string().length;
          else sub.skip(x, g);
        }
      } else r.skip(w, f);
    }
  }
  return n;
}

const loop = (body: (i: number) => number) => (): number => {
  let n = 0;
  for (let i = 0; i < BATCHES; i++) n += body(i);
  if (n < 0) throw new Error("unreachable");
  return BATCHES;
};

// ---- GetManyRequest ----

function writeRequestWire(keys: string[]): Uint8Array {
  const w = new BinaryWriter().tag(1, WireType.LengthDelimited).string("scores");
  for (const k of keys) w.tag(2, WireType.LengthDelimited).string(k);
  return w
    .tag(3, WireType.Varint)
    .uint64(16 << 20)
    .tag(4, WireType.Varint)
    .uint32(5_000)
    .finish();
}

/** The BinaryReader decoder @tinycache/protocol had before its own reader. */
function readRequestWire(body: Uint8Array): number {
  let n = 0;
  const keys: string[] = [];
  const r = new BinaryReader(body);
  while (r.pos < r.len) {
    const [field, wt] = r.tag();
    if (field === 2) keys.push(r.string());
    else if (field === 1) n += r.string().length;
    else if (field === 3) n += Number(r.uint64()) > 0 ? 1 : 0;
    else if (field === 4) n += r.uint32();
    else r.skip(wt, field);
  }
  return n + keys.length;
}

// Same bytes from every encoder, so the race is fair.
for (let b = 0; b < 50; b++) {
  const mine = Buffer.from(responses[b] as Uint8Array);
  const list = answers[b] as BatchAnswerLike[];
  if (
    !mine.equals(Buffer.from(writeResponseWire(list))) ||
    !mine.equals(Buffer.from(toBinary(pb.GetManyResponseSchema, responseMessage(list))))
  ) {
    throw new Error("GetManyResponse encoders differ");
  }
  if (
    !Buffer.from(requests[b] as Uint8Array).equals(
      Buffer.from(writeRequestWire(batches[b] as string[])),
    )
  ) {
    throw new Error("GetManyRequest encoders differ");
  }
}

await raceProtobufCodecs("tinycache.v1.GetManyResponse (20 keys)", "encode", {
  hand: loop((i) => encodeGetManyResponse(answers[i] as BatchAnswerLike[]).length),
  wire: loop((i) => writeResponseWire(answers[i] as BatchAnswerLike[]).length),
  reflective: loop(
    (i) =>
      toBinary(pb.GetManyResponseSchema, responseMessage(answers[i] as BatchAnswerLike[])).length,
  ),
});
await raceProtobufCodecs("tinycache.v1.GetManyResponse (20 keys)", "decode", {
  hand: loop((i) => decodeGetManyResponse(responses[i] as Uint8Array).length),
  wire: loop((i) => readResponseWire(responses[i] as Uint8Array)),
  reflective: loop(
    (i) => fromBinary(pb.GetManyResponseSchema, responses[i] as Uint8Array).results.length,
  ),
});
await raceProtobufCodecs("tinycache.v1.GetManyRequest (20 keys)", "encode", {
  hand: loop((i) => encodeGetManyRequest("scores", batches[i] as string[], 16 << 20, 5_000).length),
  wire: loop((i) => writeRequestWire(batches[i] as string[]).length),
  reflective: loop(
    (i) =>
      toBinary(
        pb.GetManyRequestSchema,
        create(pb.GetManyRequestSchema, {
          group: "scores",
          keys: batches[i] as string[],
          maxAnswerBytes: BigInt(16 << 20),
          timeoutMs: 5_000,
        }),
      ).length,
  ),
});
await raceProtobufCodecs("tinycache.v1.GetManyRequest (20 keys)", "decode", {
  hand: loop((i) => decodeGetManyRequest(requests[i] as Uint8Array).keys.length),
  wire: loop((i) => readRequestWire(requests[i] as Uint8Array)),
  reflective: loop(
    (i) => fromBinary(pb.GetManyRequestSchema, requests[i] as Uint8Array).keys.length,
  ),
});
