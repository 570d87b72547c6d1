import { type DescMessage, fromBinary, type MessageShape } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import type { ByteView } from "@tinycache/core";
import { varintLength, writeVarint } from "@tinycache/protocol";

/**
 * The tinycache.v1 messages on the wire, for both the client and the server side.
 *
 * The one hot message, tinycache.v1.GetResponse (`bytes value = 1; int64 expires_at_ms =
 * 2;`), gets the fastest codec bench/wire.bench.ts measured: a hand-rolled encoder straight
 * from the group's ByteView into the response buffer (no intermediate copy of the value,
 * no message object; ~5x @bufbuild/protobuf's BinaryWriter, byte-for-byte what `toBinary`
 * writes: a test pins it), and a decoder on @bufbuild/protobuf's BinaryReader (~5x the
 * reflective `fromBinary`). Every other message goes through protobuf-es's reflective API.
 */

/** Encodes GetResponse{value, expiresAtMs}; `expiresAt` absent, <= 0 or not finite = 0 (none). */
export function encodeGetResponse(value: ByteView, expiresAt: number | undefined): Buffer {
  const len = value.length;
  const exp =
    expiresAt !== undefined && Number.isFinite(expiresAt) && expiresAt > 0
      ? Math.min(Math.floor(expiresAt), Number.MAX_SAFE_INTEGER)
      : 0;
  // proto3 omits default values: an empty value and a zero expiry are not written.
  const size = (len > 0 ? 1 + varintLength(len) + len : 0) + (exp > 0 ? 1 + varintLength(exp) : 0);
  const buf = Buffer.allocUnsafe(size);
  let off = 0;
  if (len > 0) {
    buf[off++] = 0x0a; // field 1, wire type 2 (length-delimited)
    off = writeVarint(buf, off, len);
    off += value.copyTo(buf, off);
  }
  if (exp > 0) {
    buf[off++] = 0x10; // field 2, wire type 0 (varint)
    off = writeVarint(buf, off, exp);
  }
  return buf;
}

/**
 * Reads one message off the wire. What cannot be read says whose fault it is: a malformed
 * request is the caller's (`invalid_argument`); a malformed response means the peer is not
 * one of ours, or is broken (`unavailable`, so core loads the key locally).
 */
export function decodeMessage<Desc extends DescMessage>(
  schema: Desc,
  bytes: Uint8Array,
  what: "request" | "response",
): MessageShape<Desc> {
  try {
    return fromBinary(schema, bytes);
  } catch (err) {
    throw new ConnectError(
      `malformed ${what}: ${err instanceof Error ? err.message : String(err)}`,
      what === "request" ? Code.InvalidArgument : Code.Unavailable,
    );
  }
}
