import { once } from "node:events";
import type { Server as HttpServer, IncomingMessage, ServerResponse } from "node:http";
import type { AgentOptions as HttpsAgentOptions, Server as HttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import type { HashFunction } from "@tinycache/consistenthash";
import type { GroupLookup, Logger, PeerGetter, PeerPicker } from "../peers.js";
import { NOOP_LOGGER } from "../private/noop-logger.js";
import type { PeerBatchStats } from "./batch.js";
import { DEFAULT_MAX_BATCH_KEYS } from "./batch-server.js";
import { ByteBudget } from "./byte-budget.js";
import {
  type PeerHealthOptions,
  type PeerHealthStats,
  type ResolvedHealthOptions,
  resolveHealthOptions,
} from "./health.js";
import type { LeanServer } from "./lean-server.js";
import type { MountableHandler } from "./mount.js";
import {
  checkPeerUrl,
  positiveIntOption,
  type ResolvedSharedSecret,
  resolveSharedSecret,
  type SharedSecretOptions,
  timeoutMsOption,
} from "./options.js";
import { PeerSet } from "./peer-set.js";
import {
  applyServerLimits,
  resolveServerLimits,
  type ServerLimits,
  type ServerLimitsOptions,
} from "./server-limits.js";

/**
 * A pool's request listener: a Node request listener, as `http.createServer` takes it,
 * that also takes a `next` fallback for the requests that are not peer calls and tells
 * them apart with `handles(req)` (see {@link MountableHandler}; make one with `mountable`).
 */
export type PeerHandler = MountableHandler<IncomingMessage, ServerResponse>;

/**
 * The contract of every transport's pool: what a service (or the demo, or a test) needs
 * from it, whatever the wire. A pool is the {@link PeerPicker} a group asks for key
 * owners, and the server that answers the other peers.
 */
export interface PeerPool extends PeerPicker {
  /** This process's URL exactly as the peer lists give it. */
  readonly self: string;
  /**
   * The request listener that answers the other peers: give it to `http.createServer`
   * (or an https/http2 server), or call `listen`. To share a server with an app, call it
   * with a third argument, `next`: it answers peer paths and hands every other request
   * to `next` untouched (body unread), so it mounts as an Express middleware or in front
   * of any request listener. `handler.handles(req)` says whether a request is a peer call.
   */
  readonly handler: PeerHandler;
  /**
   * Replaces the peer list (include `self`; the keys that land on it are loaded locally).
   * Peers that stay keep their connections.
   * @throws TypeError, changing nothing, if a URL is not an http(s) URL.
   */
  setPeers(...urls: string[]): void;
  /** The peer URLs on the ring, self included, in the order given. */
  readonly peerUrls: readonly string[];
  /** Serves `handler` on `port` (0 or left out: any free port) and `host`. */
  listen(port?: number, host?: string): Promise<AddressInfo>;
  /** Stops the server started by `listen` and every client connection. Safe to call twice. */
  close(): Promise<void>;
  /** A snapshot of the pool's state: per-peer health and batch counters (a plain object). */
  stats(): PeerPoolStats;
}

/** What {@link PeerPool.stats} reports. */
export interface PeerPoolStats {
  /** Whether per-peer health is on (the `health` option). */
  health: boolean;
  /** Each remote peer's health, in list order (empty with health off). */
  peers: PeerHealthStats[];
  /**
   * Each remote peer's batch counters, in list order, health on or off: batch calls sent
   * to it and the keys they carried (see {@link PeerBatchStats}). Zeros with the `batch`
   * option off; a peer whose client does not batch (no `batchStats()`) is left out.
   */
  peerBatches: PeerBatchStats[];
}

/** The options every pool takes, whatever its wire. */
export interface PeerPoolOptions {
  /**
   * This process's base URL exactly as the other peers list it, e.g.
   * `"http://10.0.0.1:8001"`. The ring compares it with the peer URLs to recognise the keys
   * this process owns, as golang/groupcache does.
   */
  self: string;
  /**
   * Where the server looks up the groups it serves (a core `GroupRegistry`). Each group's
   * own `maxKeyBytes` is the key limit its server applies.
   */
  registry: GroupLookup;
  /**
   * Ring points per peer; every peer of a cluster must use the same value.
   * @default 50 (golang/groupcache's)
   */
  replicas?: number;
  /**
   * Ring hash; every peer of a cluster must use the same one. Keep the default to agree
   * with Go groupcache peers on key owners.
   * @default crc32 from @tinycache/consistenthash (golang/groupcache's)
   */
  hash?: HashFunction;
  /**
   * Deadline of one peer call (connect, send, answer, body), in ms: finite and > 0, since
   * every network call needs one. A timed-out get fails as `unavailable`, so core loads
   * the key locally.
   * @default 500
   */
  timeoutMs?: number;
  /** Shared-secret authentication of every peer call; off when left out. */
  auth?: SharedSecretOptions;
  /**
   * Largest body either side reads, in bytes: a request's (a set's value; the server
   * refuses beyond) and an answer's (the client stops reading and fails as `unavailable`).
   * @default 16 MiB
   */
  maxBodyBytes?: number;
  /**
   * Most bytes of peer answers buffered at once, across every call in flight to every
   * peer of this pool, in bytes (an integer >= 1, or `Infinity` for no bound). An answer
   * takes its declared length (else each chunk as it comes) from this budget and gives it
   * back when its call ends; an answer that does not fit fails at once as `unavailable`
   * (core loads the key locally) rather than waiting. With `maxBodyBytes` and each
   * group's `maxValueBytes`, it bounds the memory a burst of large answers can take.
   * HTTP/1.1 clients honour it (HttpPool, and ConnectPool's default connect over 1.1);
   * connect-node's HTTP/2 and gRPC clients buffer on their own and do not.
   * @default 64 MiB
   */
  maxInflightBodyBytes?: number;
  /**
   * Options of the keep-alive agent made for each peer (an https.Agent for `https:`
   * peers, so TLS options such as `ca`, `cert`, `key` go here). `keepAlive` is always on.
   * @default { keepAlive: true, maxSockets: 256, scheduling: "lifo" }
   */
  agentOptions?: HttpsAgentOptions;
  /**
   * Limits of the server `listen` starts: header, request and keep-alive timeouts (a
   * connection that never sends a byte is closed after `headersTimeoutMs`) and
   * `maxConnections`. See {@link ServerLimitsOptions}.
   * @default { headersTimeoutMs: 10_000, requestTimeoutMs: 30_000, keepAliveTimeoutMs: 30_000, maxConnections: 8192 }
   */
  serverLimits?: ServerLimitsOptions;
  /** pino-compatible logger. Default: silent. */
  logger?: Logger;
  /**
   * Per-peer health from recent call outcomes: a peer that stops answering (hung,
   * partitioned, refusing) is judged unhealthy and its keys are loaded locally at once,
   * without waiting, until a background probe finds it answering again (exponential
   * backoff, capped, jittered). See {@link PeerHealthOptions} for the policy and its
   * knobs; `false` turns it off (every key goes to its owner, whatever its state).
   * @default on, with the defaults of {@link PeerHealthOptions}
   */
  health?: PeerHealthOptions | false;
  /**
   * Batched peer gets: concurrent gets to one peer are sent as one batch call once the
   * requests that make them stop coming (two event-loop turns without a new get, six at
   * most; at most 64 keys / 64 KiB of keys each), answered per key; callers see
   * exactly what single gets give them. Only with peers known to speak batches (the HTTP
   * transport learns it from their answers; Go groupcache peers keep one request per key).
   * `false` sends one call per key.
   * @default true
   */
  batch?: boolean;
  /**
   * Serve the peer calls other tinycache nodes send by the thousand (gets, batches, sets,
   * removes; for Connect: its unary binary calls over HTTP/1.1) through a lean HTTP/1.1
   * lane in front of node:http ({@link LeanServer}): node:http's request and response
   * objects were about half an owner's CPU per batch. Every other request, and any the
   * lane does not fully understand, is node:http's, with its own checks and errors. Plain
   * HTTP only (ignored with TLS). Used by `listen` and the pools' `peerServer`.
   * @default true
   */
  lane?: boolean;
  /**
   * Most keys this node's server answers in one batch call; a larger batch is refused as a
   * whole (HTTP 413 / `resource_exhausted`). An integer >= 1.
   * @default 1000
   */
  maxBatchKeys?: number;
}

/** {@link PeerPoolOptions} after defaults and checks. */
export interface ResolvedPoolOptions {
  self: string;
  registry: GroupLookup;
  replicas: number;
  hash: HashFunction | undefined;
  timeoutMs: number;
  auth: ResolvedSharedSecret | undefined;
  maxBodyBytes: number;
  /** The budget of {@link PeerPoolOptions.maxInflightBodyBytes}, one per pool. */
  inflightBudget: ByteBudget;
  agentOptions: HttpsAgentOptions;
  serverLimits: ServerLimits;
  logger: Logger;
  /** Undefined: health off. */
  health: ResolvedHealthOptions | undefined;
  batch: boolean;
  lane: boolean;
  maxBatchKeys: number;
}

/** Default deadline of one peer call, in ms. */
export const DEFAULT_TIMEOUT_MS = 500;
/** Default body cap, in bytes. */
export const DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024;
/** Default budget of answer bytes buffered at once per pool (64 MiB). */
export const DEFAULT_MAX_INFLIGHT_BODY_BYTES = 64 * 1024 * 1024;

/**
 * Checks the options every pool takes and fills in their defaults. Each message names
 * `owner` (e.g. `"HttpPool"`): the user sees which constructor refused what.
 * @throws TypeError or RangeError naming `owner` and the option.
 */
export function resolvePoolOptions(owner: string, o: PeerPoolOptions): ResolvedPoolOptions {
  if (typeof o !== "object" || o === null) throw new TypeError(`${owner}: options required`);
  checkPeerUrl(o.self, "self", owner);
  if (typeof o.registry?.getGroup !== "function") {
    throw new TypeError(`${owner}: registry must have getGroup(name) (a GroupRegistry)`);
  }
  if (o.hash !== undefined && typeof o.hash !== "function") {
    throw new TypeError(`${owner}: hash must be a function (s: string) => number`);
  }
  const timeoutMs = timeoutMsOption(owner, o.timeoutMs, DEFAULT_TIMEOUT_MS);
  return {
    self: o.self,
    registry: o.registry,
    replicas: positiveIntOption(owner, "replicas", o.replicas, 50),
    hash: o.hash,
    timeoutMs,
    auth: resolveSharedSecret(owner, o.auth),
    maxBodyBytes: positiveIntOption(owner, "maxBodyBytes", o.maxBodyBytes, DEFAULT_MAX_BODY_BYTES),
    inflightBudget: new ByteBudget(
      o.maxInflightBodyBytes === Number.POSITIVE_INFINITY
        ? Number.POSITIVE_INFINITY
        : positiveIntOption(
            owner,
            "maxInflightBodyBytes",
            o.maxInflightBodyBytes,
            DEFAULT_MAX_INFLIGHT_BODY_BYTES,
          ),
    ),
    agentOptions: o.agentOptions ?? {},
    serverLimits: resolveServerLimits(owner, o.serverLimits),
    logger: o.logger ?? NOOP_LOGGER,
    health: resolveHealthOptions(owner, o.health, timeoutMs),
    batch: booleanOption(owner, "batch", o.batch, true),
    lane: booleanOption(owner, "lane", o.lane, true),
    maxBatchKeys: positiveIntOption(owner, "maxBatchKeys", o.maxBatchKeys, DEFAULT_MAX_BATCH_KEYS),
  };
}

function booleanOption(owner: string, name: string, v: unknown, dflt: boolean): boolean {
  if (v === undefined) return dflt;
  if (typeof v !== "boolean")
    throw new TypeError(`${owner}: ${name} must be a boolean, got ${String(v)}`);
  return v;
}

/** A server a pool can start and stop: see {@link nodeServer}. */
export interface PoolServer {
  listen(port: number, host?: string): Promise<AddressInfo>;
  close(): Promise<void>;
}

/**
 * A node:http or node:https server as a {@link PoolServer}: `close` stops listening and
 * drops every connection, idle or not (peers reconnect elsewhere). Server errors after
 * listening go to `logger`. With `limits` (a pool's `serverLimits`), they are applied to
 * the server first (see `applyServerLimits`).
 */
export function nodeServer(
  server: HttpServer | HttpsServer,
  logger: Logger,
  limits?: ServerLimits,
): PoolServer {
  if (limits !== undefined) applyServerLimits(server, limits);
  return {
    async listen(port, host) {
      server.listen(port, host);
      await Promise.race([
        once(server, "listening"),
        once(server, "error").then(([err]) => Promise.reject(err)),
      ]);
      // Later errors (e.g. out of file descriptors) are logged: an unhandled one would
      // end the process.
      server.on("error", (err) => logger.error({ err }, "tinycache: peer server error"));
      return server.address() as AddressInfo;
    },
    async close() {
      if (!server.listening) return;
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    },
  };
}

/** What a transport gives {@link PeerPoolBase}: how to reach a peer, and how to serve. */
export interface PoolParts<P extends PeerGetter> {
  /** The transport's name, for messages and logs (e.g. `"HttpPool"`). */
  name: string;
  /** Makes the client of a remote peer (once per URL while it stays listed). */
  connect(url: string): P;
  /** Lets go of a client: `"left"` (calls in flight may finish) or `"closed"` (cut now). */
  disconnect(peer: P, why: "left" | "closed"): void;
  /**
   * The request listener answering the other peers, with the `next` fallback and
   * `handles`: make it with `mountable(serve, handles)`.
   */
  handler: PeerHandler;
  /** Makes the server of {@link PeerPool.listen} (called once per listen). */
  createServer(): PoolServer;
}

/**
 * The part of a pool that does not depend on the wire: the ring and clients
 * ({@link PeerSet}), `setPeers`, `listen` and `close`. A transport extends it with its
 * codec: a client per peer and a request handler.
 *
 * ```ts
 * class MyPool extends PeerPoolBase<MyPeer> {
 *   constructor(options: PeerPoolOptions) {
 *     const o = resolvePoolOptions("MyPool", options);
 *     super(o, { name: "MyPool", connect: (url) => new MyPeer(url, o), ... });
 *   }
 * }
 * ```
 */
export class PeerPoolBase<P extends PeerGetter> implements PeerPool {
  readonly self: string;
  readonly handler: PeerHandler;
  readonly #name: string;
  readonly #logger: Logger;
  readonly #peers: PeerSet<P>;
  readonly #createServer: () => PoolServer;
  #server: PoolServer | undefined;
  #closed = false;

  constructor(o: ResolvedPoolOptions, parts: PoolParts<P>) {
    this.self = o.self;
    this.handler = parts.handler;
    this.#name = parts.name;
    this.#logger = o.logger;
    this.#createServer = parts.createServer;
    this.#peers = new PeerSet({
      self: o.self,
      replicas: o.replicas,
      hash: o.hash,
      name: parts.name,
      connect: parts.connect,
      disconnect: parts.disconnect,
      health: o.health ?? false,
    });
  }

  setPeers(...urls: string[]): void {
    const before = this.#peers.urls;
    this.#peers.set(urls);
    const after = this.#peers.urls;
    const joined = after.filter((u) => !before.includes(u));
    const left = before.filter((u) => !after.includes(u));
    if (joined.length > 0 || left.length > 0) {
      this.#logger.debug({ peers: after, joined, left }, "tinycache: peers set");
    }
  }

  get peerUrls(): readonly string[] {
    return this.#peers.urls;
  }

  /**
   * The owner's getter (its client, watched by its health), or undefined when this
   * process owns `key`, has no peers, or the owner is unhealthy (load it locally).
   */
  pickPeer(key: string): PeerGetter | undefined {
    return this.#peers.pickPeer(key);
  }

  /** Every remote peer's getter (self excluded), for broadcasts. */
  peers(): readonly PeerGetter[] {
    return this.#peers.peers();
  }

  /**
   * The transport's own client of `key`'s owner when {@link pickPeer} would name it, for
   * calls beyond PeerGetter's (not watched by health).
   */
  protected pickClient(key: string): P | undefined {
    return this.#peers.pickClient(key);
  }

  /** The transport's own client of every remote peer (self excluded; not watched by health). */
  peerClients(): P[] {
    return this.#peers.clients();
  }

  stats(): PeerPoolStats {
    return {
      health: this.#peers.healthEnabled,
      peers: this.#peers.health(),
      peerBatches: this.#peers.batchStats(),
    };
  }

  async listen(port = 0, host?: string): Promise<AddressInfo> {
    if (this.#closed) throw new Error(`${this.#name}: closed`);
    if (this.#server !== undefined) throw new Error(`${this.#name}: already listening`);
    if (!Number.isInteger(port) || port < 0 || port > 65535) {
      throw new RangeError(`${this.#name}: port must be an integer in [0, 65535], got ${port}`);
    }
    const server = this.#createServer();
    this.#server = server;
    try {
      return await server.listen(port, host);
    } catch (err) {
      this.#server = undefined;
      throw err;
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#peers.close();
    const server = this.#server;
    this.#server = undefined;
    await server?.close();
  }
}
