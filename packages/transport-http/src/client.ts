import type { OutgoingHttpHeaders } from "node:http";
import {
  ANSWER_FRAMING_BYTES,
  type CallOptions,
  type KeyRequest,
  PeerError,
  type PeerGetOptions,
  type PeerGetter,
  type PeerValue,
  peerErrorFor,
  protobufFirstFieldEnd,
  type SetRequest,
  type StatusCode,
  type UnaryClient,
  type UnaryResponse,
} from "@tinycache/core/transport";
import { escapeSegment } from "./escape.js";
import { VERDICT_HEADER, VERDICT_NOT_FOUND } from "./server.js";
import { decodeGetResponse, encodeSetRequest } from "./wire.js";

const PROTOBUF = "application/x-protobuf";
/** Bytes of an error body kept for the error message. */
const ERROR_TEXT_BYTES = 1024;

/**
 * The status a groupcache peer means by an HTTP status (the codec's half of core's
 * mapping). A 404 is "not found" only with tinycache's marker header: any other 404 (an
 * intercepting proxy's, a server that is not a peer, golang/groupcache's unknown group)
 * is no verdict about the key, so the caller loads it itself, as Go's groupcache does
 * after any non-200. (A Go peer's getter errors are 500s; a mailgun peer's unmarked
 * "not found" 404 costs one local load, which finds the same nothing.)
 */
function statusOfHttp(status: number, notFoundMarked: boolean): StatusCode {
  switch (status) {
    case 404:
      return notFoundMarked ? "not_found" : "unavailable";
    case 400:
    case 413:
      return "invalid_argument";
    case 500:
      return "internal";
    default:
      return "unavailable"; // 401, 405, 502, 503, ...
  }
}

/** Maps a non-200 answer to a PeerError. */
function statusError(peer: string, res: UnaryResponse): PeerError {
  const { status, body } = res;
  const text = body.toString("utf8", 0, Math.min(body.length, ERROR_TEXT_BYTES)).trimEnd();
  return peerErrorFor(
    statusOfHttp(status, res.headers[VERDICT_HEADER] === VERDICT_NOT_FOUND),
    peer,
    `HTTP ${status}${text ? `: ${text}` : ""}`,
    true,
  );
}

/**
 * The client side of one peer, golang/groupcache's wire: GET, PUT and DELETE on
 * `{peer}{basePath}{group}/{key}`. Only the codec lives here; deadline, abort, body cap
 * and keep-alive are core's {@link UnaryClient}. Failures are PeerErrors: `unavailable`
 * (core loads locally), `not_found`, `getter_failed`, `invalid_argument` (passed on),
 * `aborted` (the caller's signal).
 */
export class HttpPeer implements PeerGetter {
  readonly id: string;
  readonly #client: UnaryClient;
  readonly #basePath: string;
  /** Headers of a GET or DELETE (the auth header, if any): one object for every call. */
  readonly #headers: OutgoingHttpHeaders;
  readonly #auth: { header: string; secret: string } | undefined;

  constructor(
    client: UnaryClient,
    basePath: string,
    auth: { header: string; secret: string } | undefined,
  ) {
    this.id = client.url;
    this.#client = client;
    this.#basePath = basePath;
    this.#auth = auth;
    this.#headers = auth ? { [auth.header]: auth.secret } : {};
  }

  /**
   * Fetches a value from the peer (the key's owner). With `maxValueBytes`, the answer is
   * not read beyond that plus its framing (the connection is dropped), and a longer value
   * fails as `unavailable`.
   */
  async get(req: KeyRequest, opts?: PeerGetOptions): Promise<PeerValue> {
    const max = opts?.maxValueBytes;
    const res = await this.#client.request({
      method: "GET",
      path: this.#path(req),
      headers: this.#headers,
      signal: opts?.signal,
      maxBodyBytes: max === undefined ? undefined : max + ANSWER_FRAMING_BYTES,
      // A streamed GetResponse (Go's groupcache streams large ones) says its value's
      // length first: an oversized one is cut off before its body is read.
      announcedLength: protobufFirstFieldEnd,
    });
    if (res.status !== 200) throw statusError(this.id, res);
    let got: PeerValue;
    try {
      got = decodeGetResponse(res.body);
    } catch (err) {
      throw new PeerError("unavailable", this.id, "malformed GetResponse", { cause: err });
    }
    if (max !== undefined && got.value.byteLength > max) {
      throw new PeerError("unavailable", this.id, `value over maxValueBytes (${max})`, {
        local: true,
      });
    }
    return got;
  }

  /** Stores a value at the peer (mailgun's PUT with a SetRequest body). */
  async set(req: SetRequest, opts?: CallOptions): Promise<void> {
    const path = this.#path(req);
    let body: Uint8Array;
    try {
      body = encodeSetRequest(req.group, req.key, req.value, req.expiresAt);
    } catch (err) {
      throw new PeerError("invalid_argument", this.id, "cannot encode SetRequest", { cause: err });
    }
    const headers: OutgoingHttpHeaders = {
      "content-type": PROTOBUF,
      "content-length": String(body.length),
    };
    if (this.#auth !== undefined) headers[this.#auth.header] = this.#auth.secret;
    const res = await this.#client.request({
      method: "PUT",
      path,
      headers,
      body,
      signal: opts?.signal,
    });
    if (res.status !== 200) throw statusError(this.id, res);
  }

  /** Drops the peer's copies of a key (mailgun's DELETE). */
  async remove(req: KeyRequest, opts?: CallOptions): Promise<void> {
    const res = await this.#client.request({
      method: "DELETE",
      path: this.#path(req),
      headers: this.#headers,
      signal: opts?.signal,
    });
    if (res.status !== 200) throw statusError(this.id, res);
  }

  /** Stops using the connections once the calls in flight are done (the peer left). */
  retire(): void {
    this.#client.retire();
  }

  /** Closes every connection now, failing calls in flight as `unavailable`. */
  destroy(): void {
    this.#client.destroy();
  }

  #path(req: KeyRequest): string {
    try {
      return `${this.#basePath}${escapeSegment(req.group)}/${escapeSegment(req.key)}`;
    } catch (err) {
      // Lone surrogates have no UTF-8 form, so the key cannot travel; the caller can
      // still load it locally.
      throw new PeerError("unavailable", this.id, "key or group is not well-formed Unicode", {
        cause: err,
      });
    }
  }
}
