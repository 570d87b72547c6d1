import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { BinaryReader, WireType } from "@bufbuild/protobuf/wire";
import { groupcachepb, varintLength, writeVarint } from "@tinycache/protocol";

/**
 * The groupcachepb messages on the wire. Each hot-path codec is the fastest that
 * bench/wire.bench.ts measured: encoding a GetResponse (the server's hot path) is written
 * by hand straight into the response buffer (one allocation, one copy of the value; ~3x
 * the library's BinaryWriter, which needs the value copied out of its ByteView first);
 * decoding it (the client's) is @bufbuild/protobuf's BinaryReader. SetRequest, off the hot
 * path, goes through protobuf-es's reflective API.
 */

/** What {@link encodeGetResponse} needs from a value: its length and a way to copy it. */
export interface CopyableBytes {
  readonly length: number;
  copyTo(dest: Uint8Array, offset?: number): number;
}

const NS_PER_MS = 1_000_000n;

/** The 10-byte-at-most varint of a non-negative int64 given as a bigint. */
function bigVarint(n: bigint): number[] {
  const out: number[] = [];
  while (n >= 0x80n) {
    out.push(Number(n & 0x7fn) | 0x80);
    n >>= 7n;
  }
  out.push(Number(n));
  return out;
}

/** Milliseconds since the epoch -> Unix nanoseconds, or undefined for "no expiry". */
export function msToNs(expiresAt: number | undefined): bigint | undefined {
  if (expiresAt === undefined || !Number.isFinite(expiresAt) || expiresAt <= 0) return undefined;
  return BigInt(Math.round(expiresAt)) * NS_PER_MS;
}

/** Unix nanoseconds (mailgun's `expire`) -> ms since the epoch; 0 or less means none. */
export function nsToMs(expire: bigint): number | undefined {
  return expire > 0n ? Number(expire / NS_PER_MS) : undefined;
}

/**
 * `GetResponse{value, expire?}` as Go's proto.Marshal writes it: field 1 always (an empty
 * value is `0a 00`), field 3 (mailgun's expiry, Unix ns) only when the value expires.
 */
export function encodeGetResponse(value: CopyableBytes, expiresAt?: number): Buffer {
  const n = value.length;
  const ns = msToNs(expiresAt);
  const tail = ns === undefined ? undefined : bigVarint(ns);
  const head = 1 + varintLength(n);
  const buf = Buffer.allocUnsafe(head + n + (tail === undefined ? 0 : 1 + tail.length));
  buf[0] = 0x0a;
  let pos = writeVarint(buf, 1, n);
  pos += value.copyTo(buf, pos);
  if (tail !== undefined) {
    buf[pos++] = 0x18; // field 3, varint
    for (const b of tail) buf[pos++] = b;
  }
  return buf;
}

/** A decoded GetResponse: the value and its absolute expiry, if any. */
export interface DecodedValue {
  value: Uint8Array;
  expiresAt?: number;
}

/** Thrown by {@link decodeGetResponse} for bytes that are not a GetResponse. */
export class MalformedMessage extends Error {
  override name = "MalformedMessage";
}

/**
 * Parses a GetResponse body (the client's hot path) with @bufbuild/protobuf's low-level
 * BinaryReader: field 1 bytes `value`, field 3 int64 `expire` (Unix ns); `minute_qps` and
 * unknown fields are skipped by wire type, as proto2 requires. bench/wire.bench.ts measured
 * this ~5x faster than our earlier hand-written parser and ~3.5x faster than the reflective
 * `fromBinary`. The returned value is a view into `body` (callers copy it into a ByteView).
 * @throws MalformedMessage on truncated or malformed input.
 */
export function decodeGetResponse(body: Uint8Array): DecodedValue {
  const r = new BinaryReader(body);
  let value: Uint8Array | undefined;
  let expire: bigint | string = 0n;
  try {
    while (r.pos < r.len) {
      const [field, wireType] = r.tag();
      if (field === 1 && wireType === WireType.LengthDelimited) value = r.bytes();
      else if (field === 3 && wireType === WireType.Varint) expire = r.int64();
      else if (wireType === WireType.StartGroup || wireType === WireType.EndGroup) {
        throw new MalformedMessage(`unsupported wire type ${wireType}`);
      } else r.skip(wireType, field);
    }
  } catch (err) {
    if (err instanceof MalformedMessage) throw err;
    throw new MalformedMessage(err instanceof Error ? err.message : String(err));
  }
  const v = value ?? body.subarray(0, 0);
  const expiresAt = nsToMs(BigInt(expire));
  return expiresAt === undefined ? { value: v } : { value: v, expiresAt };
}

/** `SetRequest{group, key, value, expire?}`, the body of a mailgun-style PUT. */
export function encodeSetRequest(
  group: string,
  key: string,
  value: Uint8Array,
  expiresAt?: number,
): Uint8Array {
  const ns = msToNs(expiresAt);
  const msg = create(groupcachepb.SetRequestSchema, { group, key, value });
  if (ns !== undefined) msg.expire = ns;
  return toBinary(groupcachepb.SetRequestSchema, msg);
}

/** A decoded SetRequest. */
export interface DecodedSet {
  group: string;
  key: string;
  value: Uint8Array;
  expiresAt?: number;
}

/** Parses a SetRequest body. @throws on malformed protobuf. */
export function decodeSetRequest(body: Uint8Array): DecodedSet {
  const msg = fromBinary(groupcachepb.SetRequestSchema, body);
  const expiresAt = nsToMs(msg.expire);
  const out: DecodedSet = { group: msg.group, key: msg.key, value: msg.value };
  if (expiresAt !== undefined) out.expiresAt = expiresAt;
  return out;
}

// ---- batches: tinycache.v1 GetManyRequest / GetManyResponse on POST {basePath}_batch/{group} ----

/** A decoded GetManyRequest. */
export interface DecodedGetMany {
  group: string;
  keys: string[];
  /** The asker's cap on the answer, in bytes; 0 = none given. */
  maxAnswerBytes: number;
  /** The asker's deadline for the batch, in ms; 0 = none given. */
  timeoutMs: number;
}

/**
 * `GetManyRequest{group, keys, max_answer_bytes, timeout_ms}` as protobuf-es writes it
 * (proto3: zero scalars and an empty group left out; every key written, "" too). By hand:
 * once per batch, but the reflective `toBinary` cost ~1 us per key on the peer path
 * (profiled); the test pins these bytes to protobuf-es's. Keys must be well-formed
 * Unicode (the client checks), as their UTF-8 is written with Buffer.write.
 */
export function encodeGetManyRequest(
  group: string,
  keys: readonly string[],
  maxAnswerBytes: number,
  timeoutMs = 0,
): Uint8Array {
  const max = Math.max(0, Math.floor(maxAnswerBytes));
  const timeout = Math.min(Math.max(0, Math.floor(timeoutMs)), 0xffffffff);
  const groupBytes = Buffer.byteLength(group);
  let size = groupBytes === 0 ? 0 : 1 + varintLength(groupBytes) + groupBytes;
  const keyBytes: number[] = new Array(keys.length);
  for (let i = 0; i < keys.length; i++) {
    const n = Buffer.byteLength(keys[i] as string);
    keyBytes[i] = n;
    size += 1 + varintLength(n) + n;
  }
  if (max > 0) size += 1 + varintLength(max);
  if (timeout > 0) size += 1 + varintLength(timeout);
  const buf = Buffer.allocUnsafe(size);
  let pos = 0;
  if (groupBytes > 0) {
    buf[pos++] = 0x0a; // field 1, length-delimited
    pos = writeVarint(buf, pos, groupBytes);
    pos += buf.write(group, pos, "utf8");
  }
  for (let i = 0; i < keys.length; i++) {
    buf[pos++] = 0x12; // field 2, length-delimited
    pos = writeVarint(buf, pos, keyBytes[i] as number);
    pos += buf.write(keys[i] as string, pos, "utf8");
  }
  if (max > 0) {
    buf[pos++] = 0x18; // field 3, varint
    pos = writeVarint(buf, pos, max);
  }
  if (timeout > 0) {
    buf[pos++] = 0x20; // field 4, varint
    pos = writeVarint(buf, pos, timeout);
  }
  return buf;
}

/**
 * Parses a GetManyRequest body (the owner's side of every batch) with the low-level
 * BinaryReader, as {@link decodeGetResponse}: the reflective `fromBinary` was ~9% of a
 * peer node's CPU on the peer path (profiled). Unknown fields are skipped; a key that is
 * not valid UTF-8 decodes with U+FFFD, as protobuf-es's does.
 * @throws MalformedMessage on truncated or malformed input.
 */
export function decodeGetManyRequest(body: Uint8Array): DecodedGetMany {
  let group = "";
  const keys: string[] = [];
  let max: bigint | string = 0n;
  let timeoutMs = 0;
  try {
    const r = new BinaryReader(body);
    while (r.pos < r.len) {
      const [field, wt] = r.tag();
      if (field === 2 && wt === WireType.LengthDelimited) keys.push(r.string());
      else if (field === 1 && wt === WireType.LengthDelimited) group = r.string();
      else if (field === 3 && wt === WireType.Varint) max = r.uint64();
      else if (field === 4 && wt === WireType.Varint) timeoutMs = r.uint32();
      else skip(r, field, wt);
    }
  } catch (err) {
    if (err instanceof MalformedMessage) throw err;
    throw new MalformedMessage(err instanceof Error ? err.message : String(err));
  }
  const big = BigInt(max);
  return {
    group,
    keys,
    maxAnswerBytes: big > BigInt(Number.MAX_SAFE_INTEGER) ? 0 : Number(big),
    timeoutMs,
  };
}

export { type BatchAnswerLike, encodeGetManyResponse } from "@tinycache/protocol";

/** One key of a decoded GetManyResponse. */
export type DecodedResult =
  | { key: string; ok: true; value: DecodedValue }
  | { key: string; ok: false; code: string; message: string };

const utf8Decoder = new TextDecoder();

/**
 * Parses a GetManyResponse body (the client's side of a batch) with the BinaryReader;
 * values are views into `body`. A result with neither value nor error is an error
 * `unknown` ("an answer we cannot read"). @throws MalformedMessage.
 */
export function decodeGetManyResponse(body: Uint8Array): DecodedResult[] {
  const out: DecodedResult[] = [];
  try {
    const r = new BinaryReader(body);
    while (r.pos < r.len) {
      const [field, wt] = r.tag();
      if (field !== 1 || wt !== WireType.LengthDelimited) {
        skip(r, field, wt);
        continue;
      }
      const end = r.uint32() + r.pos;
      if (end > r.len) throw new MalformedMessage("truncated result");
      let key = "";
      let result: DecodedResult | undefined;
      while (r.pos < end) {
        const [f, w] = r.tag();
        if (f === 1 && w === WireType.LengthDelimited) key = utf8Decoder.decode(r.bytes());
        else if (f === 2 && w === WireType.LengthDelimited) {
          const sub = new BinaryReader(r.bytes());
          let value: Uint8Array = body.subarray(0, 0);
          let ms = 0n;
          while (sub.pos < sub.len) {
            const [g, x] = sub.tag();
            if (g === 1 && x === WireType.LengthDelimited) value = sub.bytes();
            else if (g === 2 && x === WireType.Varint) ms = BigInt(sub.int64());
            else skip(sub, g, x);
          }
          const v: DecodedValue = ms > 0n ? { value, expiresAt: Number(ms) } : { value };
          result = { key: "", ok: true, value: v };
        } else if (f === 3 && w === WireType.LengthDelimited) {
          const sub = new BinaryReader(r.bytes());
          let code = "";
          let message = "";
          while (sub.pos < sub.len) {
            const [g, x] = sub.tag();
            if (g === 1 && x === WireType.LengthDelimited) code = sub.string();
            else if (g === 2 && x === WireType.LengthDelimited) message = sub.string();
            else skip(sub, g, x);
          }
          result = { key: "", ok: false, code, message };
        } else skip(r, f, w);
      }
      if (r.pos !== end) throw new MalformedMessage("result overruns its length");
      result ??= { key: "", ok: false, code: "unknown", message: "result without value or error" };
      result.key = key;
      out.push(result);
    }
  } catch (err) {
    if (err instanceof MalformedMessage) throw err;
    throw new MalformedMessage(err instanceof Error ? err.message : String(err));
  }
  return out;
}

function skip(r: BinaryReader, field: number, wt: WireType): void {
  if (wt === WireType.StartGroup || wt === WireType.EndGroup) {
    throw new MalformedMessage(`unsupported wire type ${wt}`);
  }
  r.skip(wt, field);
}
