import { varintLength, writeVarint } from "./varint.js";

/**
 * The one hand-written encoder of a batch answer, shared by both transports: a
 * `tinycache.v1.GetManyResponse` written straight into one buffer, each value copied once
 * from its ByteView (pinned against protobuf-es's toBinary by transport-http's tests).
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
