import type { SecureClientSessionOptions } from "node:http2";
import type { AgentOptions as HttpsAgentOptions } from "node:https";
import type { HashFunction } from "@tinycache/consistenthash";
import type { GroupLookup, Logger } from "@tinycache/core";

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
  auth: { secret: string; header: string } | undefined;
  maxKeyBytes: number;
  maxMessageBytes: number;
  maxBatchKeys: number;
  agentOptions: HttpsAgentOptions;
  http2Options: SecureClientSessionOptions | undefined;
  logger: Logger | undefined;
}

export const DEFAULT_AUTH_HEADER = "x-tinycache-auth";

// Header value: visible ASCII and spaces/tabs, as RFC 9110 field-value (no CR/LF/NUL).
const HEADER_VALUE = /^[\t\x20-\x7e]+$/;
const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

function positiveInt(name: string, v: unknown, dflt: number): number {
  if (v === undefined) return dflt;
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 1) {
    throw new RangeError(`ConnectPool: ${name} must be an integer >= 1, got ${String(v)}`);
  }
  return v;
}

/** Checks a peer URL: http(s), with a host, no query or fragment; returns it unchanged. */
export function checkPeerUrl(url: unknown, what = "peer URL"): string {
  if (typeof url !== "string" || url.length === 0) {
    throw new TypeError(`ConnectPool: ${what} must be a non-empty string, got ${String(url)}`);
  }
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new TypeError(`ConnectPool: ${what} is not a URL: ${url}`);
  }
  if (u.protocol !== "http:" && u.protocol !== "https:") {
    throw new TypeError(`ConnectPool: ${what} must be http: or https:, got ${url}`);
  }
  if (u.search !== "" || u.hash !== "") {
    throw new TypeError(`ConnectPool: ${what} must not have a query or fragment: ${url}`);
  }
  return url;
}

export function resolveOptions(o: ConnectPoolOptions): ResolvedOptions {
  if (typeof o !== "object" || o === null) throw new TypeError("ConnectPool: options required");
  checkPeerUrl(o.self, "self");
  if (typeof o.registry?.getGroup !== "function") {
    throw new TypeError("ConnectPool: registry must have getGroup(name) (a GroupRegistry)");
  }
  const timeoutMs = o.timeoutMs ?? 500;
  if (typeof timeoutMs !== "number" || !Number.isFinite(timeoutMs) || timeoutMs <= 0) {
    throw new RangeError(
      `ConnectPool: timeoutMs must be a finite number > 0, got ${String(timeoutMs)}`,
    );
  }
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
  let auth: ResolvedOptions["auth"];
  if (o.auth !== undefined) {
    const { secret, header = DEFAULT_AUTH_HEADER } = o.auth;
    if (typeof secret !== "string" || !HEADER_VALUE.test(secret)) {
      throw new TypeError("ConnectPool: auth.secret must be a non-empty printable ASCII string");
    }
    if (typeof header !== "string" || !HEADER_NAME.test(header)) {
      throw new TypeError(`ConnectPool: auth.header is not a valid header name: ${String(header)}`);
    }
    auth = { secret, header: header.toLowerCase() };
  }
  return {
    self: o.self,
    registry: o.registry,
    replicas: positiveInt("replicas", o.replicas, 50),
    hash: o.hash,
    timeoutMs,
    protocol,
    httpVersion,
    auth,
    maxKeyBytes: positiveInt("maxKeyBytes", o.maxKeyBytes, 4096),
    maxMessageBytes: positiveInt("maxMessageBytes", o.maxMessageBytes, 16 * 1024 * 1024),
    maxBatchKeys: positiveInt("maxBatchKeys", o.maxBatchKeys, 1000),
    agentOptions: o.agentOptions ?? {},
    http2Options: o.http2Options,
    logger: o.logger,
  };
}
