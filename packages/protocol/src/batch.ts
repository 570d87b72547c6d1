import { BinaryReader, WireType } from "@bufbuild/protobuf/wire";
import { varintLength, writeVarint } from "./varint.js";

/**
 * The hand-written codecs of batches, shared by both transports (`tinycache.v1`
 * GetManyRequest / GetManyResponse; pinned against protobuf-es's by transport-http's
 * tests): the reflective toBinary/fromBinary cost more per key than the rest of a batched
 * get on the peer path.
 */

/** One key's answer as {@link encodeGetManyResponse} takes it (core's BatchAnswer). */
export type BatchAnswerLike =
  | {
      key: string;
      ok: true;
      value: { readonly byteLength: number; copyTo(dest: Uint8Array, offset?: number): number };
      expiresAt?: number;
    }
  | { key: string; ok: false; code: string; message: string };

const utf8 = new TextEncoder();

/** Bytes of a length-delimited field: tag, length varint, payload. */
const fieldLength = (n: number): number => 1 + varintLength(n) + n;

/**
 * `GetManyResponse{results: [GetManyResult{key, value: GetResponse{value, expires_at_ms} |
 * error: KeyError{code, message}}]}`, written by hand into one buffer: each value copied
 * once, straight from its ByteView (the server's hot path when batching).
 */
export function encodeGetManyResponse(answers: readonly BatchAnswerLike[]): Uint8Array {
  const n = answers.length;
  const keys: Uint8Array[] = new Array(n);
  const errs: [Uint8Array, Uint8Array][] = new Array(n);
  const inner: number[] = new Array(n); // GetResponse or KeyError length
  const entry: number[] = new Array(n); // GetManyResult length
  let total = 0;
  for (let i = 0; i < n; i++) {
    const a = answers[i] as BatchAnswerLike;
    const k = utf8.encode(a.key);
    keys[i] = k;
    let body: number;
    if (a.ok) {
      const len = valueLength(a.value);
      body = len === 0 ? 0 : fieldLength(len);
      const ms = expiryMs(a.expiresAt);
      if (ms > 0) body += 1 + varintLength(ms);
    } else {
      const c = utf8.encode(a.code);
      const m = utf8.encode(a.message);
      errs[i] = [c, m];
      body = (c.length ? fieldLength(c.length) : 0) + (m.length ? fieldLength(m.length) : 0);
    }
    inner[i] = body;
    const e = (k.length ? fieldLength(k.length) : 0) + fieldLength(body);
    entry[i] = e;
    total += fieldLength(e);
  }
  const buf = new Uint8Array(total);
  let pos = 0;
  for (let i = 0; i < n; i++) {
    const a = answers[i] as BatchAnswerLike;
    const k = keys[i] as Uint8Array;
    buf[pos++] = 0x0a; // results, field 1
    pos = writeVarint(buf, pos, entry[i] as number);
    if (k.length) {
      buf[pos++] = 0x0a; // key, field 1
      pos = writeVarint(buf, pos, k.length);
      buf.set(k, pos);
      pos += k.length;
    }
    buf[pos++] = a.ok ? 0x12 : 0x1a; // value (2) or error (3)
    pos = writeVarint(buf, pos, inner[i] as number);
    if (a.ok) {
      const len = valueLength(a.value);
      if (len > 0) {
        buf[pos++] = 0x0a;
        pos = writeVarint(buf, pos, len);
        pos += a.value.copyTo(buf, pos);
      }
      const ms = expiryMs(a.expiresAt);
      if (ms > 0) {
        buf[pos++] = 0x10; // expires_at_ms, field 2, varint
        pos = writeVarint(buf, pos, ms);
      }
    } else {
      const [c, m] = errs[i] as [Uint8Array, Uint8Array];
      for (const [tag, bytes] of [
        [0x0a, c],
        [0x12, m],
      ] as const) {
        if (bytes.length === 0) continue;
        buf[pos++] = tag;
        pos = writeVarint(buf, pos, bytes.length);
        buf.set(bytes, pos);
        pos += bytes.length;
      }
    }
  }
  return buf;
}

function valueLength(v: { byteLength: number }): number {
  return v.byteLength;
}

function expiryMs(expiresAt: number | undefined): number {
  return expiresAt !== undefined && Number.isFinite(expiresAt) && expiresAt > 0
    ? Math.floor(expiresAt)
    : 0;
}

/** A decoded value: the value and its absolute expiry, if any. */
export interface DecodedValue {
  value: Uint8Array;
  expiresAt?: number;
}

/** Thrown by the decoders for bytes that are not the message they read. */
export class MalformedMessage extends Error {
  override name = "MalformedMessage";
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

/** One key of a decoded GetManyResponse. */
export type DecodedResult =
  | { key: string; ok: true; value: DecodedValue }
  | { key: string; ok: false; code: string; message: string };

const utf8Decoder = new TextDecoder();

/**
 * Parses a GetManyResponse body (the client's side of a batch) with the BinaryReader;
 * values are views into `body`. A result with neither value nor error is an error
 * `unavailable` ("an answer we cannot read": the asker loads the key itself).
 * @throws MalformedMessage.
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
      // Neither value nor error: an answer we cannot read, so the asker loads the key
      // itself ("unavailable"), never a verdict of the owner's getter.
      result ??= {
        key: "",
        ok: false,
        code: "unavailable",
        message: "result without value or error",
      };
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
