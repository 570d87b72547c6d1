import type { OutgoingHttpHeaders } from "node:http";
import {
  ANSWER_FRAMING_BYTES,
  type BatchCallOptions,
  type BatchEntry,
  Batcher,
  type CallOptions,
  HeaderBlock,
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
import {
  type DecodedResult,
  decodeGetManyResponse,
  encodeGetManyRequest,
} from "@tinycache/protocol";
import { escapeSegment } from "./escape.js";
import {
  BATCH_HEADER,
  BATCH_HEADER_VALUE,
  BATCH_SEGMENT,
  VERDICT_HEADER,
  VERDICT_NOT_FOUND,
} from "./server.js";
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
  /** Every get rejects as soon as its signal aborts (the batcher's and the client's abort). */
  readonly honoursSignals = true;
  readonly #client: UnaryClient;
  readonly #basePath: string;
  /** Headers of a GET or DELETE (the auth header, if any), checked once. */
  readonly #headers: HeaderBlock;
  /** Headers of a call with a protobuf body (its length is added per call), checked once. */
  readonly #bodyHeaders: HeaderBlock;
  /** Batches gets to this peer once it is known to speak them; undefined with batching off. */
  readonly #batcher: Batcher | undefined;
  readonly #maxBodyBytes: number;
  /**
   * Whether the peer speaks batches: set by the {@link BATCH_HEADER} on its answers (a
   * tinycache server's), cleared by an answer without it (a Go groupcache peer took over
   * the URL) or a batch refused as unknown.
   */
  #batchCapable = false;

  constructor(
    client: UnaryClient,
    basePath: string,
    auth: { header: string; secret: string } | undefined,
    options: { batch?: boolean; maxBodyBytes?: number } = {},
  ) {
    this.id = client.url;
    this.#client = client;
    this.#basePath = basePath;
    const authHeaders: OutgoingHttpHeaders = auth ? { [auth.header]: auth.secret } : {};
    this.#headers = new HeaderBlock(authHeaders);
    this.#bodyHeaders = new HeaderBlock({ "content-type": PROTOBUF, ...authHeaders });
    this.#maxBodyBytes = options.maxBodyBytes ?? 16 * 1024 * 1024;
    this.#batcher =
      options.batch === false
        ? undefined
        : new Batcher({
            id: this.id,
            send: (group, keys, opts) => this.#sendBatch(group, keys, opts),
            single: (req, opts) => this.#get(req, opts),
          });
  }

  /** Whether gets to this peer are batched now (it answered as a tinycache server). */
  get batching(): boolean {
    return this.#batcher !== undefined && this.#batchCapable;
  }

  /**
   * Batch calls sent to this peer so far, and the keys they carried (a lone key sent as a
   * plain get counts in neither; zeros with batching off). The pool reports them per peer in
   * `pool.stats().peerBatches` (core's `PeerGetter.batchStats`).
   */
  batchStats(): { batches: number; keys: number } {
    return { batches: this.#batcher?.batches ?? 0, keys: this.#batcher?.batchedKeys ?? 0 };
  }

  /** Notes from an answer whether the peer speaks batches. */
  #learn(res: UnaryResponse): void {
    this.#batchCapable = res.headers[BATCH_HEADER] === BATCH_HEADER_VALUE;
  }

  /**
   * Fetches a value from the peer (the key's owner). With `maxValueBytes`, the answer is
   * not read beyond that plus its framing (the connection is dropped), and a longer value
   * fails as `unavailable`.
   */
  get(req: KeyRequest, opts?: PeerGetOptions): Promise<PeerValue> {
    const batcher = this.#batcher;
    return batcher !== undefined && this.#batchCapable
      ? batcher.get(req, opts)
      : this.#get(req, opts);
  }

  /** One key, one request: golang/groupcache's GET. */
  async #get(req: KeyRequest, opts?: PeerGetOptions): Promise<PeerValue> {
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
    if (this.#batcher !== undefined) this.#learn(res);
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

  /**
   * One batch: `POST {basePath}_batch/{group}` with a GetManyRequest, answered per key. A
   * refusal of the whole batch rejects (the Batcher makes it `unavailable`: each key is
   * loaded locally); a 404 or 405 without our header means the peer no longer speaks
   * batches, so the next gets go one by one.
   */
  async #sendBatch(
    group: string,
    keys: readonly string[],
    opts: BatchCallOptions,
  ): Promise<BatchEntry[]> {
    let path: string;
    try {
      path = `${this.#basePath}${BATCH_SEGMENT}${escapeSegment(group)}`;
    } catch (err) {
      throw new PeerError("unavailable", this.id, "group is not well-formed Unicode", {
        cause: err,
      });
    }
    // Keys that cannot travel (lone surrogates) would make the body unreadable: they
    // fail alone, as single gets of them would. (A Group never sends one.)
    let sendable: readonly string[] = keys;
    let bad: Set<string> | undefined;
    for (const k of keys) {
      if (wellFormed(k)) continue;
      bad ??= new Set();
      bad.add(k);
    }
    if (bad !== undefined) {
      const refused = bad;
      sendable = keys.filter((k) => !refused.has(k));
    }
    let decoded: DecodedResult[] = [];
    if (sendable.length > 0) {
      const body = encodeGetManyRequest(
        group,
        sendable,
        this.#maxBodyBytes,
        this.#client.timeoutMs,
      );
      const res = await this.#client.request({
        method: "POST",
        path,
        headers: this.#bodyHeaders,
        body,
        signal: opts.signal,
      });
      this.#learn(res);
      if (res.status !== 200) throw statusError(this.id, res);
      try {
        decoded = decodeGetManyResponse(res.body);
      } catch (err) {
        throw new PeerError("unavailable", this.id, "malformed GetManyResponse", { cause: err });
      }
    }
    const entry = (r: DecodedResult): BatchEntry =>
      r.ok ? r : { ok: false, error: peerErrorFor(r.code, this.id, r.message, true) };
    if (bad === undefined && decoded.length === keys.length) {
      // The usual answer: every key, in the order asked (tinycache's servers keep it), so
      // no map by key is needed.
      let inOrder = true;
      for (let i = 0; i < keys.length; i++) {
        if ((decoded[i] as DecodedResult).key !== keys[i]) {
          inOrder = false;
          break;
        }
      }
      if (inOrder) return decoded.map(entry);
    }
    const answers = new Map<string, BatchEntry>();
    for (const k of bad ?? []) {
      answers.set(k, {
        ok: false,
        error: new PeerError("unavailable", this.id, "key is not well-formed Unicode", {
          local: true,
        }),
      });
    }
    for (const r of decoded) answers.set(r.key, entry(r));
    return keys.map(
      (k) =>
        answers.get(k) ?? {
          ok: false,
          error: new PeerError("unavailable", this.id, "batch answer without this key"),
        },
    );
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
    const res = await this.#client.request({
      method: "PUT",
      path,
      headers: this.#bodyHeaders,
      body,
      signal: opts?.signal,
    });
    if (this.#batcher !== undefined) this.#learn(res);
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

/** Whether `s` has a UTF-8 form (no lone surrogates). */
function wellFormed(s: string): boolean {
  try {
    encodeURIComponent(s);
    return true;
  } catch {
    return false;
  }
}
