import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { groupcachepb } from "@tinycache/protocol";

/**
 * The groupcachepb messages on the wire. Encoding a GetResponse is the server's hot path,
 * so it is written by hand straight into the response buffer (one allocation, one copy of
 * the value); decoding goes through protobuf-es, which skips unknown fields as proto2 asks.
 */

/** What {@link encodeGetResponse} needs from a value: its length and a way to copy it. */
export interface CopyableBytes {
  readonly length: number;
  copyTo(dest: Uint8Array, offset?: number): number;
}

const NS_PER_MS = 1_000_000n;

function varintLength(n: number): number {
  let len = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 128);
    len++;
  }
  return len;
}

function writeVarint(buf: Uint8Array, pos: number, n: number): number {
  while (n >= 0x80) {
    buf[pos++] = (n & 0x7f) | 0x80;
    n = Math.floor(n / 128);
  }
  buf[pos++] = n;
  return pos;
}

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

/** Parses a GetResponse body. @throws on malformed protobuf. */
export function decodeGetResponse(body: Uint8Array): DecodedValue {
  const msg = fromBinary(groupcachepb.GetResponseSchema, body);
  const expiresAt = nsToMs(msg.expire);
  return expiresAt === undefined ? { value: msg.value } : { value: msg.value, expiresAt };
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
