import { readGetResponse } from "./get.js";
import {
  asMalformed,
  LEN,
  MalformedMessage,
  utf8Length,
  VARINT,
  WireReader,
  wireTypeOf,
  writeUtf8,
} from "./private/reader.js";
import { varintLength, writeVarint } from "./varint.js";

export { MalformedMessage };

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

/** Bytes of a length-delimited field: tag, length varint, payload. */
const fieldLength = (n: number): number => 1 + varintLength(n) + n;

/**
 * `GetManyResponse{results: [GetManyResult{key, value: GetResponse{value, expires_at_ms} |
 * error: KeyError{code, message}}]}`, written by hand into one buffer: each value copied
 * once, straight from its ByteView (the server's hot path when batching). ASCII keys are
 * measured and written in JS, with no TextEncoder buffer per key (transport-http bench/batch-wire.bench.ts).
 */
export function encodeGetManyResponse(answers: readonly BatchAnswerLike[]): Buffer {
  const n = answers.length;
  // Per answer: its key's UTF-8 length, and its GetResponse or KeyError length.
  const keyLen: number[] = new Array(n);
  const inner: number[] = new Array(n);
  let total = 0;
  for (let i = 0; i < n; i++) {
    const a = answers[i] as BatchAnswerLike;
    const k = utf8Length(a.key);
    keyLen[i] = k;
    let body: number;
    if (a.ok) {
      const len = a.value.byteLength;
      body = len === 0 ? 0 : fieldLength(len);
      const ms = expiryMs(a.expiresAt);
      if (ms > 0) body += 1 + varintLength(ms);
    } else {
      const c = utf8Length(a.code);
      const m = utf8Length(a.message);
      body = (c ? fieldLength(c) : 0) + (m ? fieldLength(m) : 0);
    }
    inner[i] = body;
    total += fieldLength((k ? fieldLength(k) : 0) + fieldLength(body));
  }
  const buf = Buffer.allocUnsafe(total);
  let pos = 0;
  for (let i = 0; i < n; i++) {
    const a = answers[i] as BatchAnswerLike;
    const k = keyLen[i] as number;
    const body = inner[i] as number;
    buf[pos++] = 0x0a; // results, field 1
    pos = writeVarint(buf, pos, (k ? fieldLength(k) : 0) + fieldLength(body));
    if (k) {
      buf[pos++] = 0x0a; // key, field 1
      pos = writeVarint(buf, pos, k);
      pos = writeUtf8(buf, pos, a.key, k);
    }
    buf[pos++] = a.ok ? 0x12 : 0x1a; // value (2) or error (3)
    pos = writeVarint(buf, pos, body);
    if (a.ok) {
      const len = a.value.byteLength;
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
      pos = writeStringField(buf, pos, 0x0a, a.code); // code, field 1
      pos = writeStringField(buf, pos, 0x12, a.message); // message, field 2
    }
  }
  return buf;
}

/** A string field (left out when empty, as proto3 does); returns the position after it. */
function writeStringField(buf: Buffer, pos: number, tag: number, s: string): number {
  const len = utf8Length(s);
  if (len === 0) return pos;
  buf[pos++] = tag;
  pos = writeVarint(buf, pos, len);
  return writeUtf8(buf, pos, s, len);
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
  const groupBytes = utf8Length(group);
  let size = groupBytes === 0 ? 0 : 1 + varintLength(groupBytes) + groupBytes;
  const keyBytes: number[] = new Array(keys.length);
  for (let i = 0; i < keys.length; i++) {
    const n = utf8Length(keys[i] as string);
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
    pos = writeUtf8(buf, pos, group, groupBytes);
  }
  for (let i = 0; i < keys.length; i++) {
    buf[pos++] = 0x12; // field 2, length-delimited
    pos = writeVarint(buf, pos, keyBytes[i] as number);
    pos = writeUtf8(buf, pos, keys[i] as string, keyBytes[i] as number);
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
 * Parses a GetManyRequest body (the owner's side of every batch) with the in-place reader
 * (private/reader.ts): the reflective `fromBinary` was ~9% of a peer node's CPU on the
 * peer path (profiled), protobuf-es's BinaryReader still ~2x this. Unknown fields are
 * skipped; a key that is not valid UTF-8 decodes with U+FFFD, as protobuf-es's does.
 * @throws MalformedMessage on truncated or malformed input.
 */
export function decodeGetManyRequest(body: Uint8Array): DecodedGetMany {
  let group = "";
  const keys: string[] = [];
  let max = 0;
  let timeoutMs = 0;
  try {
    const r = new WireReader(body);
    while (r.pos < r.end) {
      const tag = r.tag();
      if (tag === KEYS) keys.push(r.string());
      else if (tag === GROUP) group = r.string();
      else if (tag === MAX_ANSWER_BYTES) max = r.varint();
      else if (tag === TIMEOUT_MS) timeoutMs = r.uint32();
      else r.skip(wireTypeOf(tag));
    }
  } catch (err) {
    throw asMalformed(err);
  }
  return {
    group,
    keys,
    maxAnswerBytes: max > Number.MAX_SAFE_INTEGER ? 0 : max,
    timeoutMs,
  };
}

// Tags (field * 8 + wire type) of the batch messages' fields.
const GROUP = 1 * 8 + LEN;
const KEYS = 2 * 8 + LEN;
const MAX_ANSWER_BYTES = 3 * 8 + VARINT;
const TIMEOUT_MS = 4 * 8 + VARINT;
const RESULTS = 1 * 8 + LEN;
const RESULT_KEY = 1 * 8 + LEN;
const RESULT_VALUE = 2 * 8 + LEN;
const RESULT_ERROR = 3 * 8 + LEN;
const ERROR_CODE = 1 * 8 + LEN;
const ERROR_MESSAGE = 2 * 8 + LEN;

/** One key of a decoded GetManyResponse. */
export type DecodedResult =
  | { key: string; ok: true; value: DecodedValue }
  | { key: string; ok: false; code: string; message: string };

/**
 * Parses a GetManyResponse body (the client's side of a batch) in place (no reader or
 * array per field); values are views into `body`. A result with neither value nor error
 * is an error `unavailable` ("an answer we cannot read": the asker loads the key itself).
 * @throws MalformedMessage.
 */
export function decodeGetManyResponse(body: Uint8Array): DecodedResult[] {
  const out: DecodedResult[] = [];
  const r = new WireReader(body);
  try {
    while (r.pos < body.length) {
      r.end = body.length;
      const tag = r.tag();
      if (tag !== RESULTS) {
        r.skip(wireTypeOf(tag));
        continue;
      }
      const end = r.len();
      r.end = end;
      let key = "";
      let result: DecodedResult | undefined;
      while (r.pos < end) {
        const t = r.tag();
        if (t === RESULT_KEY) key = r.string();
        else if (t === RESULT_VALUE) {
          result = { key: "", ok: true, value: readGetResponse(r, r.len()) };
        } else if (t === RESULT_ERROR) {
          const errorEnd = r.len();
          r.end = errorEnd;
          let code = "";
          let message = "";
          while (r.pos < errorEnd) {
            const g = r.tag();
            if (g === ERROR_CODE) code = r.string();
            else if (g === ERROR_MESSAGE) message = r.string();
            else r.skip(wireTypeOf(g));
          }
          r.end = end;
          result = { key: "", ok: false, code, message };
        } else r.skip(wireTypeOf(t));
      }
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
    throw asMalformed(err);
  }
  return out;
}
