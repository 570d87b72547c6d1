import * as http from "node:http";
import * as https from "node:https";
import * as tls from "node:tls";
import {
  applyServerLimits,
  LeanServer,
  leanPoolServer,
  nodeServer,
  PeerPoolBase,
  type PoolServer,
  RequestCheck,
  UnaryClient,
} from "@tinycache/core/transport";
import { HttpPeer } from "./client.js";
import { type HttpPoolOptions, resolveOptions } from "./options.js";
import { createHandler, createLane } from "./server.js";

/**
 * A groupcache-compatible HTTP peer pool: the PeerPicker a group uses to find a key's
 * owner and fetch from it, and the request handler that answers the other peers. It
 * speaks golang/groupcache's wire protocol (plus mailgun's PUT and DELETE), so Node and Go
 * processes can share one cluster. Everything but the wire is core's `PeerPoolBase`.
 *
 * ```ts
 * const pool = new HttpPool({ self: "http://10.0.0.1:8001", registry });
 * pool.setPeers("http://10.0.0.1:8001", "http://10.0.0.2:8001");
 * await pool.listen(8001);
 * registry.registerPeers(pool);
 * ```
 */
export class HttpPool extends PeerPoolBase<HttpPeer> {
  readonly #peerServer: (fallback: http.Server) => PoolServer;

  constructor(options: HttpPoolOptions) {
    const o = resolveOptions(options);
    const cfg = {
      registry: o.registry,
      basePath: o.basePath,
      check: new RequestCheck({ auth: o.auth, maxBodyBytes: o.maxBodyBytes }),
      logger: o.logger,
      maxBatchKeys: o.maxBatchKeys,
      timeoutMs: o.timeoutMs,
    };
    const handler = createHandler(cfg);
    const lane = createLane(cfg);
    const limits = o.serverLimits;
    const peerServer = (fallback: http.Server): PoolServer => {
      // The lane reads plain HTTP/1.1 off the socket: in front of TLS it would read the
      // ClientHello, hand it over, and the handshake would hang (https.Server is an
      // http.Server to TypeScript). So an HTTPS server is always node:https alone.
      if (!o.lane || o.tls !== undefined || fallback instanceof tls.Server) {
        return nodeServer(fallback, o.logger, limits);
      }
      applyServerLimits(fallback, limits);
      return leanPoolServer(
        new LeanServer({
          ...lane,
          fallback,
          keepAliveTimeoutMs: limits.keepAliveTimeoutMs,
          headersTimeoutMs: limits.headersTimeoutMs,
          maxConnections: limits.maxConnections,
        }),
        o.logger,
      );
    };
    super(o, {
      name: "HttpPool",
      connect: (url) =>
        new HttpPeer(
          new UnaryClient({
            url,
            timeoutMs: o.timeoutMs,
            maxBodyBytes: o.maxBodyBytes,
            inflightBudget: o.inflightBudget,
            agent: o.agent?.(new URL(url)),
            agentOptions: o.agentOptions,
          }),
          o.basePath,
          o.auth,
          { batch: o.batch, maxBodyBytes: o.maxBodyBytes },
        ),
      // A peer that leaves finishes its calls in flight first; close cuts them.
      disconnect: (peer, why) => (why === "left" ? peer.retire() : peer.destroy()),
      handler,
      createServer: () =>
        o.tls === undefined
          ? peerServer(http.createServer(handler))
          : nodeServer(https.createServer(o.tls, handler), o.logger, limits),
    });
    this.#peerServer = peerServer;
  }

  /**
   * A server for a peer port you serve yourself (e.g. with your own routes beside the
   * pool's {@link HttpPool.handler}): `fallback`, a node:http server that has not
   * listened, behind the batch lane (see the `lane` option; with `lane: false` or `tls`,
   * or for an https server, `fallback` alone), with the pool's `serverLimits` applied.
   * Start and stop it through the result:
   *
   * ```ts
   * const server = pool.peerServer(http.createServer((req, res) => {
   *   if (req.url === "/healthz") res.end("ok");
   *   else pool.handler(req, res);
   * }));
   * await server.listen(8001);
   * ```
   */
  peerServer(fallback: http.Server): PoolServer {
    return this.#peerServer(fallback);
  }
}
