import type { SecureClientSessionOptions } from "node:http2";
import type { AgentOptions as HttpsAgentOptions } from "node:https";
import { create, toBinary } from "@bufbuild/protobuf";
import { type Client, Code, ConnectError, createClient, type Transport } from "@connectrpc/connect";
import {
  createConnectTransport,
  createGrpcTransport,
  createGrpcWebTransport,
  Http2SessionManager,
} from "@connectrpc/connect-node";
import {
  ANSWER_FRAMING_BYTES,
  type BatchEntry,
  Batcher,
  type ByteBudget,
  type CallOptions,
  createAgent,
  type KeyRequest,
  PeerError,
  type PeerGetOptions,
  type PeerGetter,
  type PeerValue,
  type SetRequest,
  UnaryClient,
} from "@tinycache/core/transport";
import {
  type DecodedResult,
  decodeGetManyResponse,
  decodeGetResponse,
  encodeGetManyRequest,
  encodeGetRequest,
  tinycachev1 as pb,
} from "@tinycache/protocol";
import { keyError, toPeerError } from "./codes.js";
import type { PeerProtocol } from "./options.js";
import { ConnectH1Caller } from "./private/connect-h1.js";
import { expiryIn, expiryOut } from "./server.js";

/** One key's outcome in {@link ConnectPeer.getMany}. */
export type GetManyEntry =
  | { key: string; ok: true; value: PeerValue }
  | { key: string; ok: false; error: PeerError };

/** How a {@link ConnectPeer} talks; built by {@link ConnectPool} from its options. */
export interface ConnectPeerOptions {
  protocol: PeerProtocol;
  httpVersion: "1.1" | "2";
  timeoutMs: number;
  /** Headers sent with every call (the shared secret). */
  headers: Record<string, string>;
  maxBodyBytes: number;
  /** The pool's budget of answer bytes in flight (honoured by the HTTP/1.1 Connect path). */
  inflightBudget?: ByteBudget;
  agentOptions: HttpsAgentOptions;
  http2Options: SecureClientSessionOptions | undefined;
  /** Batch concurrent gets through GetMany (core's Batcher). @default true */
  batch?: boolean;
}

/** The four calls, whatever the protocol; they throw ConnectErrors. */
interface Rpc {
  /** `maxBodyBytes`: this call's cap on the answer, when lower than the peer's. */
  get(
    req: KeyRequest,
    timeoutMs: number,
    signal?: AbortSignal,
    maxBodyBytes?: number,
  ): Promise<PeerValue>;
  /** One result per key of the answer, in its order (values are views into it). */
  getMany(req: GetMany, timeoutMs: number, signal?: AbortSignal): Promise<DecodedResult[]>;
  set(req: pb.SetRequest, timeoutMs: number, signal?: AbortSignal): Promise<void>;
  remove(req: pb.RemoveRequest, timeoutMs: number, signal?: AbortSignal): Promise<void>;
  close(): void;
}

/** A GetMany call's request, before encoding. */
interface GetMany {
  group: string;
  keys: readonly string[];
  maxAnswerBytes: number;
  timeoutMs: number;
}

/**
 * `decode` for a response message, a malformed one failing as `unavailable` (the peer is
 * not one of ours: the key loads here).
 */
function answerDecoder<T>(decode: (message: Buffer) => T): (message: Buffer) => T {
  return (message) => {
    try {
      return decode(message);
    } catch (err) {
      throw new ConnectError(`malformed response: ${(err as Error).message}`, Code.Unavailable);
    }
  };
}
const decodeGetAnswer: (message: Buffer) => PeerValue = answerDecoder(decodeGetResponse);
const decodeGetManyAnswer: (message: Buffer) => DecodedResult[] =
  answerDecoder(decodeGetManyResponse);

const GET = `/${pb.CacheService.typeName}/Get`;
const GET_MANY = `/${pb.CacheService.typeName}/GetMany`;
const SET = `/${pb.CacheService.typeName}/Set`;
const REMOVE = `/${pb.CacheService.typeName}/Remove`;

/** Connect protocol, binary, HTTP/1.1 keep-alive, through core's unary client. */
class H1Rpc implements Rpc {
  readonly #caller: ConnectH1Caller;

  constructor(url: string, o: ConnectPeerOptions) {
    const client = new UnaryClient({
      url,
      timeoutMs: o.timeoutMs,
      maxBodyBytes: o.maxBodyBytes,
      inflightBudget: o.inflightBudget,
      agentOptions: o.agentOptions,
    });
    this.#caller = new ConnectH1Caller(client, o.headers);
  }

  // By hand both ways, as getMany below: with the reflective codecs (and a message made
  // per call) a get at light load cost 1.4x the HTTP transport's (measured). A promise
  // chain, not async functions: at light load each hop of a get shows (see #get).
  get(
    req: KeyRequest,
    _timeoutMs: number,
    signal?: AbortSignal,
    maxBodyBytes?: number,
  ): Promise<PeerValue> {
    let body: Uint8Array;
    try {
      body = encodeGetRequest(req.group, req.key);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.#caller.call(GET, body, signal, maxBodyBytes, decodeGetAnswer);
  }

  // By hand (@tinycache/protocol's codecs, as the HTTP transport): the reflective
  // toBinary/fromBinary were ~5% of the API node on the peer path (profiled).
  getMany(req: GetMany, _timeoutMs: number, signal?: AbortSignal): Promise<DecodedResult[]> {
    let body: Uint8Array;
    try {
      body = encodeGetManyRequest(req.group, req.keys, req.maxAnswerBytes, req.timeoutMs);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.#caller.call(GET_MANY, body, signal, undefined, decodeGetManyAnswer);
  }

  async set(req: pb.SetRequest, _timeoutMs: number, signal?: AbortSignal) {
    await this.#caller.call(SET, toBinary(pb.SetRequestSchema, req), signal);
  }

  async remove(req: pb.RemoveRequest, _timeoutMs: number, signal?: AbortSignal) {
    await this.#caller.call(REMOVE, toBinary(pb.RemoveRequestSchema, req), signal);
  }

  close() {
    this.#caller.close();
  }
}

/** Clients with their own read cap kept per peer (one per group limit, in practice). */
const MAX_CAPPED_CLIENTS = 8;

/**
 * Any protocol through connect-node's transports (one per peer, reused). connect-node
 * caps a message's size per transport (`readMaxBytes`), not per call, so a get with a
 * lower cap (a group's `maxValueBytes`) goes through a client made for that cap, over
 * the same connections (the same agent or HTTP/2 session).
 */
class TransportRpc implements Rpc {
  readonly #client: Client<typeof pb.CacheService>;
  /** Clients by read cap, made on first use; at most MAX_CAPPED_CLIENTS. */
  readonly #capped = new Map<number, Client<typeof pb.CacheService>>();
  readonly #makeClient: (readMaxBytes: number) => Client<typeof pb.CacheService>;
  readonly #maxBodyBytes: number;
  readonly #headers: Record<string, string>;
  readonly #close: () => void;

  constructor(url: string, o: ConnectPeerOptions) {
    const common = {
      baseUrl: url,
      // No interceptors, no compression (the values are small and on a LAN), binary.
      acceptCompression: [],
      writeMaxBytes: o.maxBodyBytes,
    };
    let make: (readMaxBytes: number) => Transport;
    let close: () => void;
    if (o.httpVersion === "2") {
      const sessionManager = guardSessions(new Http2SessionManager(url, {}, o.http2Options));
      close = () => sessionManager.abort();
      const h2 = { ...common, httpVersion: "2" as const, sessionManager };
      make = (readMaxBytes) =>
        o.protocol === "grpc"
          ? createGrpcTransport({ ...h2, readMaxBytes })
          : o.protocol === "grpcweb"
            ? createGrpcWebTransport({ ...h2, readMaxBytes })
            : createConnectTransport({ ...h2, readMaxBytes });
    } else {
      const agent = createAgent(url, o.agentOptions);
      close = () => agent.destroy();
      const h1 = { ...common, httpVersion: "1.1" as const, nodeOptions: { agent } };
      make = (readMaxBytes) =>
        o.protocol === "grpcweb"
          ? createGrpcWebTransport({ ...h1, readMaxBytes })
          : createConnectTransport({ ...h1, readMaxBytes });
    }
    this.#makeClient = (readMaxBytes) => createClient(pb.CacheService, make(readMaxBytes));
    this.#maxBodyBytes = o.maxBodyBytes;
    this.#client = this.#makeClient(o.maxBodyBytes);
    this.#headers = o.headers;
    this.#close = close;
  }

  async get(req: KeyRequest, timeoutMs: number, signal?: AbortSignal, maxBodyBytes?: number) {
    const res = await this.#clientFor(maxBodyBytes).get(
      { group: req.group, key: req.key },
      { timeoutMs, signal, headers: this.#headers },
    );
    const expiresAt = expiryIn(res.expiresAtMs);
    return expiresAt === undefined ? { value: res.value } : { value: res.value, expiresAt };
  }

  #clientFor(maxBodyBytes: number | undefined): Client<typeof pb.CacheService> {
    if (maxBodyBytes === undefined || maxBodyBytes >= this.#maxBodyBytes) return this.#client;
    let client = this.#capped.get(maxBodyBytes);
    if (client === undefined) {
      // Many distinct caps (unusual): forget the oldest client; it holds no connection.
      if (this.#capped.size >= MAX_CAPPED_CLIENTS) {
        this.#capped.delete(this.#capped.keys().next().value as number);
      }
      client = this.#makeClient(maxBodyBytes);
      this.#capped.set(maxBodyBytes, client);
    }
    return client;
  }

  async getMany(req: GetMany, timeoutMs: number, signal?: AbortSignal) {
    const res = await this.#client.getMany(
      create(pb.GetManyRequestSchema, {
        group: req.group,
        keys: req.keys.slice(),
        maxAnswerBytes: BigInt(req.maxAnswerBytes),
        timeoutMs: req.timeoutMs,
      }),
      { timeoutMs, signal, headers: this.#headers },
    );
    return res.results.map((r): DecodedResult => {
      const v = r.result;
      if (v.case === "value") {
        const expiresAt = expiryIn(v.value.expiresAtMs);
        return {
          key: r.key,
          ok: true,
          value:
            expiresAt === undefined
              ? { value: v.value.value }
              : { value: v.value.value, expiresAt },
        };
      }
      if (v.case === "error") {
        return { key: r.key, ok: false, code: v.value.code, message: v.value.message };
      }
      return {
        key: r.key,
        ok: false,
        code: "unavailable",
        message: "result without value or error",
      };
    });
  }

  async set(req: pb.SetRequest, timeoutMs: number, signal?: AbortSignal) {
    await this.#client.set(req, { timeoutMs, signal, headers: this.#headers });
  }

  async remove(req: pb.RemoveRequest, timeoutMs: number, signal?: AbortSignal) {
    await this.#client.remove(req, { timeoutMs, signal, headers: this.#headers });
  }

  close() {
    this.#close();
  }
}

/**
 * Keeps a session's late errors from ending the process. An HTTP/2 session to something
 * that is not an HTTP/2 server (an HTTP/1.1-only server on a peer's URL) reports its
 * protocol error twice; connect-node's manager listens for the first only, so the second
 * was an uncaught exception. Each session the manager opens gets one listener that does
 * nothing: the call itself still fails (as `unavailable`) through the manager.
 */
function guardSessions(manager: Http2SessionManager): Http2SessionManager {
  const request = manager.request.bind(manager);
  const guarded = new WeakSet<object>();
  manager.request = async (...args: Parameters<Http2SessionManager["request"]>) => {
    const stream = await request(...args);
    const session = stream.session;
    if (session !== undefined && !guarded.has(session)) {
      guarded.add(session);
      session.on("error", () => {});
    }
    return stream;
  };
  return manager;
}

/**
 * A GetMany answer for the Batcher: the entries themselves when they answer the keys in the
 * order asked (tinycache's servers keep it), else a map by key.
 */
function inKeyOrder(
  keys: readonly string[],
  entries: GetManyEntry[],
): readonly BatchEntry[] | ReadonlyMap<string, BatchEntry> {
  if (entries.length === keys.length && entries.every((e, i) => e.key === keys[i])) {
    return entries;
  }
  const m = new Map<string, BatchEntry>();
  for (const e of entries) m.set(e.key, e);
  return m;
}

/**
 * One remote peer: a {@link PeerGetter} over one reused transport (keep-alive agent or
 * HTTP/2 session). Every call has the pool's deadline and honours the caller's signal;
 * failures are {@link PeerError}s whose `kind` tells core what to do.
 */
export class ConnectPeer implements PeerGetter {
  /** The peer's base URL, as given to `setPeers`. */
  readonly id: string;
  /** Every get rejects as soon as its signal aborts (the batcher's and the RPC's abort). */
  readonly honoursSignals = true;
  readonly #rpc: Rpc;
  readonly #timeoutMs: number;
  readonly #maxBodyBytes: number;
  /** Batches concurrent gets into GetMany calls; undefined with batching off. */
  readonly #batcher: Batcher | undefined;
  #closed = false;

  constructor(url: string, o: ConnectPeerOptions) {
    this.id = url;
    this.#timeoutMs = o.timeoutMs;
    this.#maxBodyBytes = o.maxBodyBytes;
    this.#batcher =
      o.batch === false
        ? undefined
        : new Batcher({
            id: url,
            send: (group, keys, opts) =>
              this.getMany(group, keys, opts).then((entries) => inKeyOrder(keys, entries)),
            single: (req, opts) => this.#get(req, opts),
          });
    this.#rpc =
      o.protocol === "connect" && o.httpVersion === "1.1"
        ? new H1Rpc(url, o)
        : new TransportRpc(url, o);
  }

  /**
   * The owner's value. With `maxValueBytes`, the answer is not read beyond that plus its
   * framing, and a longer value fails as `unavailable`.
   */
  get(req: KeyRequest, opts?: PeerGetOptions): Promise<PeerValue> {
    const batcher = this.#batcher;
    return batcher === undefined || this.#closed ? this.#get(req, opts) : batcher.get(req, opts);
  }

  /**
   * GetMany calls sent to this peer so far by the batcher, and the keys they carried (a
   * lone key sent as a plain Get counts in neither; zeros with batching off). The pool
   * reports them per peer in `pool.stats().peerBatches` (core's `PeerGetter.batchStats`).
   */
  batchStats(): { batches: number; keys: number } {
    return { batches: this.#batcher?.batches ?? 0, keys: this.#batcher?.batchedKeys ?? 0 };
  }

  /**
   * One key, one Get call. A promise chain rather than an async function (as core's
   * flight): at light load, where every remote key is its own call, the Connect client's
   * extra hops over the HTTP transport's showed (Connect/HTTP 0.93 in the benchmark).
   */
  #get(req: KeyRequest, opts?: PeerGetOptions): Promise<PeerValue> {
    const signal = opts?.signal;
    const max = opts?.maxValueBytes;
    let call: Promise<PeerValue>;
    try {
      this.#checkOpen();
      call = this.#rpc.get(
        req,
        this.#timeoutMs,
        signal,
        max === undefined ? undefined : max + ANSWER_FRAMING_BYTES,
      );
    } catch (err) {
      return Promise.reject(toPeerError(err, this.id, signal));
    }
    return call.then(
      (res) => {
        if (max !== undefined && res.value.byteLength > max) {
          throw new PeerError("unavailable", this.id, `value over maxValueBytes (${max})`, {
            local: true,
          });
        }
        return res;
      },
      (err: unknown) => {
        throw toPeerError(err, this.id, signal);
      },
    );
  }

  /**
   * Batched get: one call for many keys of one group. Resolves with one entry per key, in
   * order; a key that fails does not fail the others. Rejects (with a PeerError) only
   * when the call itself fails.
   */
  getMany(group: string, keys: readonly string[], opts?: CallOptions): Promise<GetManyEntry[]> {
    // A promise chain, as #get: one hop fewer per batch call.
    const signal = opts?.signal;
    let call: Promise<DecodedResult[]>;
    try {
      this.#checkOpen();
      call = this.#rpc.getMany(
        {
          group,
          keys,
          maxAnswerBytes: this.#maxBodyBytes,
          timeoutMs: Math.min(Math.floor(this.#timeoutMs), 0xffffffff),
        },
        this.#timeoutMs,
        signal,
      );
    } catch (err) {
      return Promise.reject(toPeerError(err, this.id, signal));
    }
    // A result with neither value nor error comes as "unavailable" (the key loads here).
    // A decoded value is already a GetManyEntry: only errors need one of their own.
    return call.then(
      (results) =>
        results.map(
          (r): GetManyEntry =>
            r.ok ? r : { key: r.key, ok: false, error: keyError(this.id, r.code, r.message) },
        ),
      (err: unknown) => {
        throw toPeerError(err, this.id, signal);
      },
    );
  }

  async set(req: SetRequest, opts?: CallOptions): Promise<void> {
    const signal = opts?.signal;
    try {
      this.#checkOpen();
      await this.#rpc.set(
        create(pb.SetRequestSchema, {
          group: req.group,
          key: req.key,
          value: req.value,
          expiresAtMs: expiryOut(req.expiresAt),
        }),
        this.#timeoutMs,
        signal,
      );
    } catch (err) {
      throw toPeerError(err, this.id, signal);
    }
  }

  async remove(req: KeyRequest, opts?: CallOptions): Promise<void> {
    const signal = opts?.signal;
    try {
      this.#checkOpen();
      await this.#rpc.remove(
        create(pb.RemoveRequestSchema, { group: req.group, key: req.key }),
        this.#timeoutMs,
        signal,
      );
    } catch (err) {
      throw toPeerError(err, this.id, signal);
    }
  }

  #checkOpen(): void {
    if (this.#closed) throw new ConnectError("peer was closed", Code.Unavailable);
  }

  /** Closes the peer's connections; later calls fail as `unavailable`. */
  close(): void {
    this.#closed = true;
    this.#rpc.close();
  }
}
