import type { DecodedValue } from "./batch.js";
import {
  asMalformed,
  LEN,
  strictUtf8,
  utf8Length,
  VARINT,
  WireReader,
  wireTypeOf,
  writeUtf8,
} from "./private/reader.js";
import { varintLength, writeVarint } from "./varint.js";

/**
 * The hand-written codecs of a single-key Connect call (a batch of one key, and every get
 * at light load): `tinycache.v1.GetRequest{group, key}` both ways, and the asker's reading
 * of `GetResponse`. With the reflective toBinary/fromBinary, a Connect get at light load
 * cost 1.4x an HTTP one (see transport-connect's README); the tests pin these bytes and
 * readings to protobuf-es's.
 */

/** A decoded GetRequest. */
export interface DecodedGet {
  group: string;
  key: string;
}

// Tags (field * 8 + wire type).
const GROUP = 1 * 8 + LEN;
const KEY = 2 * 8 + LEN;
const VALUE = 1 * 8 + LEN;
const EXPIRES_AT_MS = 2 * 8 + VARINT;

const EMPTY = new Uint8Array(0);

/**
 * `GetRequest{group, key}` as protobuf-es writes it (proto3: an empty string is left out).
 * Strings must be well-formed Unicode to round-trip: a lone surrogate is written as
 * U+FFFD, as protobuf-es (TextEncoder) writes it.
 */
export function encodeGetRequest(group: string, key: string): Buffer {
  const g = utf8Length(group);
  const k = utf8Length(key);
  const buf = Buffer.allocUnsafe(field(g) + field(k));
  let pos = 0;
  if (g > 0) {
    buf[pos++] = GROUP;
    pos = writeVarint(buf, pos, g);
    pos = writeUtf8(buf, pos, group, g);
  }
  if (k > 0) {
    buf[pos++] = KEY;
    pos = writeVarint(buf, pos, k);
    writeUtf8(buf, pos, key, k);
  }
  return buf;
}

/** Bytes of a string field of UTF-8 length n; 0 for an empty one (not written). */
const field = (n: number): number => (n === 0 ? 0 : 1 + varintLength(n) + n);

/** A length-delimited field as UTF-8, refusing malformed bytes. */
function strictString(r: WireReader): string {
  const end = r.len(); // reads the length: the field starts at r.pos
  const start = r.pos;
  r.pos = end;
  return strictUtf8(r.buf, start, end);
}

/**
 * Parses a GetRequest body in place. Unknown fields are skipped and a field written twice
 * keeps its last value, as protobuf-es's `fromBinary` reads it; like it, a string that is
 * not valid UTF-8 is refused (the owner answers invalid_argument, as before).
 * @throws MalformedMessage on truncated or malformed input.
 */
export function decodeGetRequest(body: Uint8Array): DecodedGet {
  let group = "";
  let key = "";
  try {
    const r = new WireReader(body);
    while (r.pos < r.end) {
      const tag = r.tag();
      if (tag === KEY) key = strictString(r);
      else if (tag === GROUP) group = strictString(r);
      else r.skip(wireTypeOf(tag));
    }
  } catch (err) {
    throw asMalformed(err);
  }
  return { group, key };
}

/**
 * Parses a `GetResponse{value, expires_at_ms}` body (the asker's side of a single Get) in
 * place: the value is a view into `body`; an expiry of 0 or below is none.
 * @throws MalformedMessage.
 */
export function decodeGetResponse(body: Uint8Array): DecodedValue {
  try {
    return readGetResponse(new WireReader(body), body.length);
  } catch (err) {
    throw asMalformed(err);
  }
}

/**
 * Reads a GetResponse that ends at `end` (a whole body, or one inside a GetManyResult);
 * leaves `r` after it, its `end` as it was.
 */
export function readGetResponse(r: WireReader, end: number): DecodedValue {
  const outer = r.end;
  r.end = end;
  let value: Uint8Array = EMPTY;
  let ms = 0;
  while (r.pos < end) {
    const tag = r.tag();
    if (tag === VALUE) value = r.bytes();
    else if (tag === EXPIRES_AT_MS) ms = r.positiveInt64();
    else r.skip(wireTypeOf(tag));
  }
  r.end = outer;
  return ms > 0 ? { value, expiresAt: ms } : { value };
}
