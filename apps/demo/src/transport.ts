import { once } from "node:events";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { GroupRegistry, PeerPicker } from "@tinycache/core";
import type { PeerPool, PoolServer, ServerLimitsOptions } from "@tinycache/core/transport";
import { HttpPool } from "@tinycache/transport-http";
import type { TransportName } from "./cli.js";
import type { Logger } from "./log.js";
import type { Route } from "./routes.js";

export interface PeerServerOptions {
  transport: TransportName;
  /** This node's base URL, as it appears in `peers`. */
  self: string;
  peers: readonly string[];
  registry: GroupRegistry;
  host: string;
  port: number;
  /** Per-request timeout of peer calls, in ms. */
  timeoutMs: number;
  /** Most bytes of peers' answers buffered at once (the pool's maxInflightBodyBytes). */
  maxInflightBodyBytes: number;
  logger: Logger;
  /** Routes served on the peer port before the transport's own (/metrics, /stats). */
  routes: Route;
  /** Shared peer secret (both directions); undefined = unauthenticated. */
  secret: string | undefined;
  /** Limits of the peer server's connections. */
  serverLimits: ServerLimitsOptions;
  /** Batch concurrent gets to one peer (the pools' `batch` option). */
  batch: boolean;
  /** The pool's lean lane on the peer port (its `lane` option). */
  lane: boolean;
}

/** A running peer transport: its picker (for `group.registerPeers`) and how to stop it. */
export interface PeerServer {
  picker: PeerPicker;
  /** The pool itself, for a membership source to drive (`setPeers`). */
  pool: PeerPool;
  /** Where /metrics and /stats are served for this transport. */
  observabilityUrl: string;
  close(): Promise<void>;
}

async function listen(server: Server, port: number, host: string): Promise<void> {
  server.listen(port, host);
  await Promise.race([
    once(server, "listening"),
    once(server, "error").then(([err]) => {
      throw err;
    }),
  ]);
}

async function closeServer(server: Server, graceMs = 2000): Promise<void> {
  if (!server.listening) return;
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeIdleConnections();
  const force = setTimeout(() => server.closeAllConnections(), graceMs);
  await closed;
  clearTimeout(force);
}

/**
 * Starts the peer transport on `port`, with /metrics, /stats and /healthz beside it. The
 * Connect port speaks HTTP/1.1 and h2c (HTTP/2 cleartext, what gRPC clients use) at once.
 */
export async function startPeerServer(opts: PeerServerOptions): Promise<PeerServer> {
  const { self, registry, timeoutMs, maxInflightBodyBytes, logger, serverLimits, batch } = opts;
  const auth = opts.secret === undefined ? undefined : { secret: opts.secret };
  const common = {
    self,
    registry,
    timeoutMs,
    maxInflightBodyBytes,
    logger,
    auth,
    serverLimits,
    batch,
  };
  let pool: PeerPool;
  let server: PoolServer;
  if (opts.transport === "http") {
    const http = new HttpPool({ ...common, lane: opts.lane });
    pool = http;
    const handler = http.handler;
    server = http.peerServer(
      createServer((req, res) => {
        if (!opts.routes(req, res)) handler(req, res);
      }),
    );
  } else {
    // Loaded on demand so that an http-only node does not pay for the Connect stack.
    const { ConnectPool } = await import("@tinycache/transport-connect");
    const connect = new ConnectPool({ ...common, lane: opts.lane });
    pool = connect;
    server = connect.peerServer((req, res) => {
      // The routes write through the API both HTTP/1.1 and HTTP/2 (compat) share.
      if (!opts.routes(req as IncomingMessage, res as ServerResponse)) connect.handler(req, res);
    });
  }
  pool.setPeers(...opts.peers);
  await server.listen(opts.port, opts.host);
  return {
    picker: pool,
    pool,
    observabilityUrl: `http://${opts.host}:${opts.port}`,
    async close() {
      await server.close();
      await pool.close();
    },
  };
}

export { closeServer, listen };
