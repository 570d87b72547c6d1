import { PeerPoolBase, type PoolServer } from "@tinycache/core/transport";
import { type ConnectPoolOptions, resolveOptions } from "./options.js";
import { ConnectPeer } from "./peer.js";
import { DualServer } from "./private/dual-server.js";
import { CacheServer, type PeerHandler, type RequestListener } from "./server.js";

/**
 * A tinycache peer pool over Connect: the PeerPicker core asks for key owners (a
 * consistent-hash ring of peer URLs, one reused {@link ConnectPeer} client per remote
 * peer), and the server that answers the other peers (`handler`, or `listen`).
 * Everything but the wire is core's `PeerPoolBase`.
 *
 * `handler` serves CacheService over Connect, gRPC and gRPC-Web (HTTP/1.1 and HTTP/2)
 * for `http.createServer`, `http2.createServer` / `createSecureServer({ allowHTTP1: true })`
 * or `https.createServer`. gRPC clients need HTTP/2: use `listen` (which speaks both on
 * one cleartext port, with the pool's `serverLimits`), `createCleartextServer` (the same
 * server for a handler of yours), or an http2 server.
 *
 * ```ts
 * const pool = new ConnectPool({ self: "http://127.0.0.1:8001", registry });
 * pool.setPeers("http://127.0.0.1:8001", "http://127.0.0.1:8002");
 * await pool.listen(8001);
 * registry.registerPeers(pool);
 * ```
 */
export class ConnectPool extends PeerPoolBase<ConnectPeer> {
  /** The request listener, for HTTP/1.1 and HTTP/2 servers alike. */
  declare readonly handler: PeerHandler;
  readonly #peerServer: (handler: RequestListener) => PoolServer;

  constructor(options: ConnectPoolOptions) {
    const o = resolveOptions(options);
    const auth = o.auth;
    const server = new CacheServer(o);
    const handler = server.handler;
    const lane = o.lane ? server.lane : undefined;
    const peerServer = (h: RequestListener): PoolServer =>
      new DualServer(h, o.serverLimits, o.logger, lane);
    super(o, {
      name: "ConnectPool",
      connect: (url) =>
        new ConnectPeer(url, {
          protocol: o.protocol,
          httpVersion: o.httpVersion,
          timeoutMs: o.timeoutMs,
          headers: auth ? { [auth.header]: auth.secret } : {},
          maxBodyBytes: o.maxBodyBytes,
          inflightBudget: o.inflightBudget,
          agentOptions: o.agentOptions,
          http2Options: o.http2Options,
          batch: o.batch,
        }),
      disconnect: (peer) => peer.close(),
      handler,
      createServer: () => peerServer(handler),
    });
    this.#peerServer = peerServer;
  }

  /**
   * The server {@link ConnectPool.listen} runs, for a handler of your own (e.g. the pool's
   * `handler` behind routes of yours): HTTP/1.1 and h2c on one port with the pool's
   * `serverLimits`, and (with the `lane` option, the default) the lean lane in front for
   * plain Connect unary calls. Start and stop it through the result:
   *
   * ```ts
   * const server = pool.peerServer((req, res) => {
   *   if (req.url === "/healthz") res.end("ok");
   *   else pool.handler(req, res);
   * });
   * await server.listen(8001);
   * ```
   */
  peerServer(handler: RequestListener): PoolServer {
    return this.#peerServer(handler);
  }

  /**
   * The owner of `key` as a ConnectPeer (with `getMany`), or undefined as pickPeer (an
   * unhealthy owner included). Calls made through it are not watched by peer health.
   */
  pickConnectPeer(key: string): ConnectPeer | undefined {
    return this.pickClient(key);
  }
}
