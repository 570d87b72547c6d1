import type { Agent as HttpAgent } from "node:http";
import type {
  AgentOptions as HttpsAgentOptions,
  ServerOptions as HttpsServerOptions,
} from "node:https";
import type { HashFunction } from "@tinycache/consistenthash";
import type { GroupLookup, Logger, ResolvedSharedSecret } from "@tinycache/core";
import {
  checkPeerUrl,
  positiveIntOption,
  resolveSharedSecret,
  timeoutMsOption,
} from "@tinycache/core";

/** Shared-secret peer authentication. */
export interface HttpAuthOptions {
  /**
   * The secret every peer sends and expects, as a header value: printable ASCII (no
   * control characters). Compared in constant time (over SHA-256 digests).
   */
  secret: string;
  /**
   * Header that carries the secret.
   * @default "x-tinycache-auth"
   */
  header?: string;
}

/** Options of {@link HttpPool}. */
export interface HttpPoolOptions {
  /**
   * This process's base URL exactly as the other peers list it, e.g.
   * `"http://10.0.0.1:8001"`. The ring compares it with the peer URLs to recognise the keys
   * this process owns, as golang/groupcache does.
   */
  self: string;
  /** Where the server looks up the groups it serves (a core `GroupRegistry`). */
  registry: GroupLookup;
  /**
   * URL path prefix of peer requests; must start and end with `/`. Every peer of a
   * cluster must use the same one.
   * @default "/_groupcache/" (golang/groupcache's)
   */
  basePath?: string;
  /**
   * Ring points per peer. Must match the other peers (Go's default is 50).
   * @default 50
   */
  replicas?: number;
  /**
   * Ring hash. Keep the default (CRC-32, as Go) to agree with Go peers on key owners.
   * @default crc32 from @tinycache/consistenthash
   */
  hash?: HashFunction;
  /**
   * Timeout of one peer request (connect, send, answer, body), in ms. A timed-out get
   * fails as `unavailable`, so core loads the key locally.
   * @default 500
   */
  timeoutMs?: number;
  /**
   * Options of the keep-alive agent made for each peer (an https.Agent for `https:`
   * peers, so TLS options such as `ca`, `cert`, `key` go here). `keepAlive` is always on.
   * @default { keepAlive: true, scheduling: "lifo" }
   */
  agentOptions?: HttpsAgentOptions;
  /**
   * Makes the agent of one peer, instead of `agentOptions`: full control (proxies, custom
   * TLS checks). Called once per peer URL; the pool destroys the agent when the peer
   * leaves the ring or the pool closes.
   */
  agent?: (peer: URL) => HttpAgent;
  /** Shared-secret authentication; off by default (any client may ask). */
  auth?: HttpAuthOptions;
  /**
   * Longest key the server accepts, in UTF-8 bytes after decoding (400 beyond). Keep it
   * in line with the group's own `maxKeyBytes`.
   * @default 4096
   */
  maxKeyBytes?: number;
  /**
   * Largest request body (a PUT's SetRequest; 413 beyond) and the largest response body
   * the client reads (the get fails as `unavailable` beyond), in bytes.
   * @default 16 MiB
   */
  maxBodyBytes?: number;
  /**
   * TLS options for {@link HttpPool.listen}: when given, it serves HTTPS. (With your own
   * server, pass {@link HttpPool.handler} to `https.createServer` instead.)
   */
  tls?: HttpsServerOptions;
  /** pino-compatible logger. Default: silent. */
  logger?: Logger;
}

/** Options after defaults and checks. */
export interface ResolvedOptions {
  self: string;
  registry: GroupLookup;
  basePath: string;
  replicas: number;
  hash: HashFunction | undefined;
  timeoutMs: number;
  agentOptions: HttpsAgentOptions;
  agent: ((peer: URL) => HttpAgent) | undefined;
  auth: ResolvedSharedSecret | undefined;
  maxKeyBytes: number;
  maxBodyBytes: number;
  tls: HttpsServerOptions | undefined;
  logger: Logger | undefined;
}

export const DEFAULT_BASE_PATH = "/_groupcache/";

const OWNER = "HttpPool";

export function resolveOptions(o: HttpPoolOptions): ResolvedOptions {
  if (typeof o !== "object" || o === null) throw new TypeError("HttpPool: options required");
  checkPeerUrl(o.self, "self", OWNER);
  if (typeof o.registry?.getGroup !== "function") {
    throw new TypeError("HttpPool: registry must have getGroup(name) (a GroupRegistry)");
  }
  const basePath = o.basePath ?? DEFAULT_BASE_PATH;
  if (
    typeof basePath !== "string" ||
    !basePath.startsWith("/") ||
    !basePath.endsWith("/") ||
    /[?#%\s]/.test(basePath)
  ) {
    throw new TypeError(
      `HttpPool: basePath must start and end with "/" and hold no ?, #, % or spaces, got ${String(basePath)}`,
    );
  }
  const timeoutMs = timeoutMsOption(OWNER, o.timeoutMs, 500);
  if (o.hash !== undefined && typeof o.hash !== "function") {
    throw new TypeError("HttpPool: hash must be a function (s: string) => number");
  }
  if (o.agent !== undefined && typeof o.agent !== "function") {
    throw new TypeError("HttpPool: agent must be a function (peer: URL) => http.Agent");
  }
  const auth = resolveSharedSecret(OWNER, o.auth);
  return {
    self: o.self,
    registry: o.registry,
    basePath,
    replicas: positiveIntOption(OWNER, "replicas", o.replicas, 50),
    hash: o.hash,
    timeoutMs,
    agentOptions: o.agentOptions ?? {},
    agent: o.agent,
    auth,
    maxKeyBytes: positiveIntOption(OWNER, "maxKeyBytes", o.maxKeyBytes, 4096),
    maxBodyBytes: positiveIntOption(OWNER, "maxBodyBytes", o.maxBodyBytes, 16 * 1024 * 1024),
    tls: o.tls,
    logger: o.logger,
  };
}
