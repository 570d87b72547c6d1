import type { Server as HttpServer } from "node:http";
import type { Server as HttpsServer } from "node:https";

/**
 * The limits every peer server applies to its connections, so that a peer port open to a
 * network cannot be exhausted by connections that send nothing, send slowly or just stay:
 * each one holds a file descriptor, and 20,000 idle sockets ran a node out of them.
 *
 * A connection that never sends a byte is closed after {@link ServerLimitsOptions.headersTimeoutMs}:
 * Node starts a connection's header clock when it opens, not at its first byte.
 */
export interface ServerLimitsOptions {
  /**
   * Longest wait for a request's complete head (request line and headers), in ms, counted
   * from the connection's opening or from the first byte of a request on a kept-alive
   * connection. It is also the idle timeout of a connection that never sends a byte.
   * Checked every `min(1000, headersTimeoutMs / 4)` ms, so a connection may live that
   * much longer. Must not exceed `requestTimeoutMs`.
   * @default 10_000 (Node's own: 60_000)
   */
  headersTimeoutMs?: number;
  /**
   * Longest time to receive a whole request, head and body, in ms (a `maxBodyBytes` body
   * on a LAN takes well under a second).
   * @default 30_000 (Node's own: 300_000)
   */
  requestTimeoutMs?: number;
  /**
   * How long an idle kept-alive connection (or an idle HTTP/2 session) stays open after
   * its last answer, in ms. Clients retry a request sent as the server closes, so a short
   * value costs a reconnect at most.
   * @default 30_000 (Node's own: 5_000)
   */
  keepAliveTimeoutMs?: number;
  /**
   * Most connections open at once; beyond, new ones are closed as soon as they are
   * accepted (peers fail over to a local load). Keep it under the process's file
   * descriptor limit (`ulimit -n`) with room for the client side and the rest.
   * Each peer's client opens at most 256 connections (its agent's `maxSockets`).
   * @default 8192
   */
  maxConnections?: number;
}

/** {@link ServerLimitsOptions} after checks and defaults. */
export interface ServerLimits {
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  keepAliveTimeoutMs: number;
  maxConnections: number;
}

/** The defaults of {@link ServerLimitsOptions}, as one object. */
export const DEFAULT_SERVER_LIMITS: Readonly<ServerLimits> = Object.freeze({
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  keepAliveTimeoutMs: 30_000,
  maxConnections: 8192,
});

const MAX_TIMEOUT_MS = 2_147_483_647; // setTimeout's ceiling

function msOption(owner: string, name: string, v: unknown, dflt: number): number {
  if (v === undefined) return dflt;
  if (typeof v !== "number" || !Number.isInteger(v) || v < 1 || v > MAX_TIMEOUT_MS) {
    throw new RangeError(
      `${owner}: ${name} must be an integer number of ms in [1, ${MAX_TIMEOUT_MS}], got ${String(v)}`,
    );
  }
  return v;
}

/**
 * Checks the server limits and fills in their defaults. Every limit is finite: a peer
 * server without them is the file-descriptor exhaustion the limits exist to prevent.
 * @throws RangeError naming `owner` and the option.
 */
export function resolveServerLimits(
  owner: string,
  o: ServerLimitsOptions | undefined,
): ServerLimits {
  if (o !== undefined && (typeof o !== "object" || o === null)) {
    throw new TypeError(`${owner}: serverLimits must be an object`);
  }
  const d = DEFAULT_SERVER_LIMITS;
  const requestTimeoutMs = msOption(
    owner,
    "requestTimeoutMs",
    o?.requestTimeoutMs,
    d.requestTimeoutMs,
  );
  const headersTimeoutMs = msOption(
    owner,
    "headersTimeoutMs",
    o?.headersTimeoutMs,
    Math.min(d.headersTimeoutMs, requestTimeoutMs),
  );
  if (headersTimeoutMs > requestTimeoutMs) {
    throw new RangeError(
      `${owner}: headersTimeoutMs (${headersTimeoutMs}) must not exceed requestTimeoutMs (${requestTimeoutMs})`,
    );
  }
  const maxConnections = o?.maxConnections ?? d.maxConnections;
  if (!Number.isSafeInteger(maxConnections) || maxConnections < 1) {
    throw new RangeError(
      `${owner}: maxConnections must be an integer >= 1, got ${String(maxConnections)}`,
    );
  }
  return {
    headersTimeoutMs,
    requestTimeoutMs,
    keepAliveTimeoutMs: msOption(
      owner,
      "keepAliveTimeoutMs",
      o?.keepAliveTimeoutMs,
      d.keepAliveTimeoutMs,
    ),
    maxConnections,
  };
}

/** How often Node checks the header and request clocks: often enough to keep them close. */
export function connectionsCheckingIntervalMs(limits: ServerLimits): number {
  return Math.max(10, Math.min(1000, Math.floor(limits.headersTimeoutMs / 4)));
}

/**
 * Applies `limits` to a node:http or node:https server (before it listens): header,
 * request and keep-alive timeouts, the checking interval of the first two, and
 * `maxConnections`. Returns the server.
 */
export function applyServerLimits<S extends HttpServer | HttpsServer>(
  server: S,
  limits: ServerLimits,
): S {
  server.requestTimeout = limits.requestTimeoutMs;
  server.headersTimeout = limits.headersTimeoutMs;
  server.keepAliveTimeout = limits.keepAliveTimeoutMs;
  server.maxConnections = limits.maxConnections;
  // Read by Node when the server starts listening (an option of createServer otherwise).
  (server as { connectionsCheckingInterval?: number }).connectionsCheckingInterval =
    connectionsCheckingIntervalMs(limits);
  return server;
}
