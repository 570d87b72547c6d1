import type { Agent as HttpAgent } from "node:http";
import type { ServerOptions as HttpsServerOptions } from "node:https";
import {
  type PeerPoolOptions,
  type ResolvedPoolOptions,
  resolvePoolOptions,
} from "@tinycache/core/transport";

/** Options of {@link HttpPool}: core's pool options plus the groupcache wire's own. */
export interface HttpPoolOptions extends PeerPoolOptions {
  /**
   * URL path prefix of peer requests; must start and end with `/`. Every peer of a
   * cluster must use the same one.
   * @default "/_groupcache/" (golang/groupcache's)
   */
  basePath?: string;
  /**
   * Makes the agent of one peer, instead of `agentOptions`: full control (proxies, custom
   * TLS checks). Called once per peer URL; the pool destroys the agent when the peer
   * leaves the ring or the pool closes.
   */
  agent?: (peer: URL) => HttpAgent;
  /**
   * TLS options for {@link HttpPool.listen}: when given, it serves HTTPS. (With your own
   * server, pass {@link HttpPool.handler} to `https.createServer` instead.)
   */
  tls?: HttpsServerOptions;
  /**
   * Serve the batch endpoint (what tinycache peers send by the thousand) through a lean
   * HTTP/1.1 lane in front of node:http (core's `LeanServer`): about half an owner's CPU
   * per batch is node:http's request and response objects. Every other request, and any
   * request the lane does not fully understand, is node:http's. Plain HTTP only: ignored
   * with `tls`, and by {@link HttpPool.peerServer} for an https server. Used by
   * {@link HttpPool.listen} and {@link HttpPool.peerServer}.
   * @default true
   */
  lane?: boolean;
}

/** Options after defaults and checks. */
export interface ResolvedOptions extends ResolvedPoolOptions {
  basePath: string;
  agent: ((peer: URL) => HttpAgent) | undefined;
  tls: HttpsServerOptions | undefined;
  lane: boolean;
}

export const DEFAULT_BASE_PATH = "/_groupcache/";

export function resolveOptions(o: HttpPoolOptions): ResolvedOptions {
  const common = resolvePoolOptions("HttpPool", o);
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
  if (o.agent !== undefined && typeof o.agent !== "function") {
    throw new TypeError("HttpPool: agent must be a function (peer: URL) => http.Agent");
  }
  if (o.lane !== undefined && typeof o.lane !== "boolean") {
    throw new TypeError(`HttpPool: lane must be a boolean, got ${String(o.lane)}`);
  }
  return { ...common, basePath, agent: o.agent, tls: o.tls, lane: o.lane ?? true };
}
