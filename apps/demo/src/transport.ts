import { once } from "node:events";
import { createServer, type Server } from "node:http";
import type { GroupRegistry, PeerPicker } from "@tinycache/core";
import type { PeerPool } from "@tinycache/core/transport";
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

/** Starts the peer transport on `port`, with /metrics and /stats beside it. */
export async function startPeerServer(opts: PeerServerOptions): Promise<PeerServer> {
  const { self, registry, timeoutMs, maxInflightBodyBytes, logger } = opts;
  let pool: PeerPool;
  if (opts.transport === "http") {
    pool = new HttpPool({ self, registry, timeoutMs, maxInflightBodyBytes, logger });
  } else {
    // Loaded on demand so that an http-only node does not pay for the Connect stack.
    const { ConnectPool } = await import("@tinycache/transport-connect");
    pool = new ConnectPool({ self, registry, timeoutMs, maxInflightBodyBytes, logger });
  }
  pool.setPeers(...opts.peers);
  const handler = pool.handler;
  const server = createServer({ keepAliveTimeout: 30_000 }, (req, res) => {
    if (!opts.routes(req, res)) handler(req, res);
  });
  await listen(server, opts.port, opts.host);
  return {
    picker: pool,
    pool,
    observabilityUrl: `http://${opts.host}:${opts.port}`,
    async close() {
      await closeServer(server);
      await pool.close();
    },
  };
}

export { closeServer, listen };
