import type { SecureClientSessionOptions } from "node:http2";
import type { AgentOptions as HttpsAgentOptions } from "node:https";
import type { HashFunction } from "@tinycache/consistenthash";
import type { GroupLookup, Logger, ResolvedSharedSecret } from "@tinycache/core";
import {
  checkPeerUrl,
  positiveIntOption,
  resolveSharedSecret,
  timeoutMsOption,
} from "@tinycache/core";

/**
 * The protocol the client speaks to its peers. The server always serves all three.
 * - `"connect"`: the Connect protocol, binary (application/proto), unary POST.
 * - `"grpc"`: gRPC over HTTP/2 (httpVersion must be "2").
 * - `"grpcweb"`: gRPC-Web, binary.
 */
export type PeerProtocol = "connect" | "grpc" | "grpcweb";

/** Shared-secret peer authentication (same scheme as @tinycache/transport-http). */
export interface ConnectAuthOptions {
  /**
   * The secret every peer sends and expects, as a header value: printable ASCII (no
   * control characters). Compared in constant time (over SHA-256 digests).
   */
  secret: string;
  /**
   * Header (gRPC: metadata key) that carries the secret.
   * @default "x-tinycache-auth"
   */
  header?: string;
}

/** Options of {@link ConnectPool}. */
export interface ConnectPoolOptions {
  /**
   * This process's base URL exactly as the other peers list it, e.g.
   * `"http://10.0.0.1:8001"`. The ring compares it with the peer URLs to recognise the
   * keys this process owns.
   */
  self: string;
  /** Where the server looks up the groups it serves (a core `GroupRegistry`). */
  registry: GroupLookup;
  /**
   * Ring points per peer; every peer of a cluster must use the same value.
   * @default 50
   */
  replicas?: number;
  /**
   * Ring hash; every peer of a cluster must use the same one.
   * @default crc32 from @tinycache/consistenthash (golang/groupcache's)
   */
  hash?: HashFunction;
  /**
   * Deadline of one peer call, in ms (sent to the server as the Connect/gRPC timeout).
   * A timed-out call fails as `unavailable`, so core loads the key locally.
   * @default 500
   */
  timeoutMs?: number;
  /**
   * Protocol of the client side. The server answers all three on one port.
   * @default "connect" (measured fastest: see the README)
   */
  protocol?: PeerProtocol;
  /**
   * HTTP version of the client side. `"grpc"` needs `"2"` (chosen automatically when
   * left out).
   * @default "1.1" for connect and grpcweb, "2" for grpc
   */
  httpVersion?: "1.1" | "2";
  /** Shared-secret authentication; off by default (any client may ask). */
  auth?: ConnectAuthOptions;
  /**
   * Longest key the server accepts, in UTF-8 bytes (`invalid_argument` beyond). Keep it in
   * line with the group's own `maxKeyBytes`.
   * @default 4096
   */
  maxKeyBytes?: number;
  /**
   * Largest message either side reads or writes (a Set's value, a GetMany answer), in
   * bytes. A server answers `resource_exhausted` beyond, the client fails as
   * `unavailable`.
   * @default 16 MiB
   */
  maxMessageBytes?: number;
  /**
   * Most keys in one GetMany (`invalid_argument` beyond).
   * @default 1000
   */
  maxBatchKeys?: number;
  /**
   * HTTP/1.1 client: options of the keep-alive agent made for each peer (an https.Agent
   * for `https:` peers, so TLS options such as `ca`, `cert`, `key` go here). `keepAlive`
   * is always on.
   * @default { keepAlive: true, maxSockets: 256, scheduling: "lifo" }
   */
  agentOptions?: HttpsAgentOptions;
  /**
   * HTTP/2 client: options of `http2.connect` for each peer's session (TLS options such
   * as `ca` for `https:` peers go here).
   */
  http2Options?: SecureClientSessionOptions;
  /** pino-compatible logger. Default: silent. */
  logger?: Logger;
}

/** Options after defaults and checks. */
export interface ResolvedOptions {
  self: string;
  registry: GroupLookup;
  replicas: number;
  hash: HashFunction | undefined;
  timeoutMs: number;
  protocol: PeerProtocol;
  httpVersion: "1.1" | "2";
  auth: ResolvedSharedSecret | undefined;
  maxKeyBytes: number;
  maxMessageBytes: number;
  maxBatchKeys: number;
  agentOptions: HttpsAgentOptions;
  http2Options: SecureClientSessionOptions | undefined;
  logger: Logger | undefined;
}

const OWNER = "ConnectPool";

export function resolveOptions(o: ConnectPoolOptions): ResolvedOptions {
  if (typeof o !== "object" || o === null) throw new TypeError("ConnectPool: options required");
  checkPeerUrl(o.self, "self", OWNER);
  if (typeof o.registry?.getGroup !== "function") {
    throw new TypeError("ConnectPool: registry must have getGroup(name) (a GroupRegistry)");
  }
  const timeoutMs = timeoutMsOption(OWNER, o.timeoutMs, 500);
  if (o.hash !== undefined && typeof o.hash !== "function") {
    throw new TypeError("ConnectPool: hash must be a function (s: string) => number");
  }
  const protocol = o.protocol ?? "connect";
  if (protocol !== "connect" && protocol !== "grpc" && protocol !== "grpcweb") {
    throw new TypeError(
      `ConnectPool: protocol must be "connect", "grpc" or "grpcweb", got ${String(protocol)}`,
    );
  }
  const httpVersion = o.httpVersion ?? (protocol === "grpc" ? "2" : "1.1");
  if (httpVersion !== "1.1" && httpVersion !== "2") {
    throw new TypeError(
      `ConnectPool: httpVersion must be "1.1" or "2", got ${String(httpVersion)}`,
    );
  }
  if (protocol === "grpc" && httpVersion !== "2") {
    throw new TypeError('ConnectPool: the gRPC protocol needs httpVersion "2"');
  }
  const auth = resolveSharedSecret(OWNER, o.auth);
  return {
    self: o.self,
    registry: o.registry,
    replicas: positiveIntOption(OWNER, "replicas", o.replicas, 50),
    hash: o.hash,
    timeoutMs,
    protocol,
    httpVersion,
    auth,
    maxKeyBytes: positiveIntOption(OWNER, "maxKeyBytes", o.maxKeyBytes, 4096),
    maxMessageBytes: positiveIntOption(
      OWNER,
      "maxMessageBytes",
      o.maxMessageBytes,
      16 * 1024 * 1024,
    ),
    maxBatchKeys: positiveIntOption(OWNER, "maxBatchKeys", o.maxBatchKeys, 1000),
    agentOptions: o.agentOptions ?? {},
    http2Options: o.http2Options,
    logger: o.logger,
  };
}
