import { once } from "node:events";
import { createServer as createHttpServer, type Server as HttpServer } from "node:http";
import { createServer as createHttp2Server, type Http2Server } from "node:http2";
import type { AddressInfo, Socket } from "node:net";
import {
  applyServerLimits,
  type LaneHandlers,
  LeanServer,
  type Logger,
  type PoolServer,
  type ServerLimits,
} from "@tinycache/core/transport";
import type { RequestListener } from "../server.js";

/** The client connection preface of HTTP/2 (RFC 9113, 3.4). */
const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1");

/**
 * One cleartext port for HTTP/1.1 and HTTP/2 ("h2c with prior knowledge", as gRPC
 * clients use): the HTTP/1.1 server listens, reads the first bytes of each connection,
 * puts them back, and hands the socket to an HTTP/2 server when they are the HTTP/2
 * preface, else to its own HTTP/1.1 handling. Both run the same handler.
 *
 * (Node 20's `http2.createServer({ allowHTTP1: true })` only falls back to HTTP/1.1 over
 * TLS, by ALPN: in cleartext it answers an HTTP/1.1 request with a protocol error.)
 *
 * Limits: the listening server counts every connection against `maxConnections`; a
 * connection that sends nothing (not even enough to tell the protocol) is closed after
 * `headersTimeoutMs`; HTTP/1.1 then has Node's header, request and keep-alive timeouts,
 * an HTTP/2 session is closed after `keepAliveTimeoutMs` without traffic.
 */
export class DualServer implements PoolServer {
  readonly #h1: HttpServer;
  readonly #h2: Http2Server;
  readonly #limits: ServerLimits;
  readonly #logger: Logger | undefined;
  readonly #sockets = new Set<Socket>();
  /** The lean lane in front, when given: it listens, and hands the rest to #h1's routing. */
  readonly #lane: LeanServer | undefined;

  constructor(
    handler: RequestListener,
    limits: ServerLimits,
    logger?: Logger,
    lane?: LaneHandlers,
  ) {
    this.#limits = limits;
    this.#logger = logger;
    this.#h1 = applyServerLimits(createHttpServer({ noDelay: true }, handler), limits);
    this.#h2 = createHttp2Server({}, handler);
    // Session inactivity: an idle HTTP/2 connection is closed like an idle HTTP/1.1 one.
    this.#h2.setTimeout(limits.keepAliveTimeoutMs);
    // Node's own connection handling of the HTTP/1.1 server, called for HTTP/1.1 sockets
    // once sniffed; every accepted socket goes through #route first.
    const h1Connection = this.#h1.listeners("connection")[0];
    if (typeof h1Connection !== "function") {
      throw new Error("DualServer: node:http server without its connection listener");
    }
    this.#h1.removeAllListeners("connection");
    this.#h1.on("connection", (socket: Socket) =>
      this.#route(socket, h1Connection as (s: Socket) => void),
    );
    this.#lane =
      lane === undefined
        ? undefined
        : new LeanServer({
            ...lane,
            fallback: this.#h1,
            keepAliveTimeoutMs: limits.keepAliveTimeoutMs,
            headersTimeoutMs: limits.headersTimeoutMs,
            maxConnections: limits.maxConnections,
          });
  }

  #route(socket: Socket, h1Connection: (s: Socket) => void): void {
    this.#sockets.add(socket);
    socket.once("close", () => this.#sockets.delete(socket));
    let seen: Buffer = Buffer.alloc(0);
    const onError = () => socket.destroy();
    const onData = (chunk: Buffer) => {
      seen = seen.length === 0 ? chunk : Buffer.concat([seen, chunk]);
      const n = Math.min(seen.length, PREFACE.length);
      const h2 = seen.subarray(0, n).equals(PREFACE.subarray(0, n));
      if (h2 && seen.length < PREFACE.length) return; // could still be either: read more
      socket.off("data", onData);
      socket.off("error", onError);
      socket.setTimeout(0);
      socket.pause();
      socket.unshift(seen);
      if (h2) {
        // http2 hands the socket's buffered bytes to its native session itself.
        this.#h2.emit("connection", socket);
      } else {
        // http reads through the stream: let the bytes put back flow again.
        h1Connection.call(this.#h1, socket);
        socket.resume();
      }
    };
    socket.on("data", onData);
    socket.on("error", onError);
    socket.setTimeout(this.#limits.headersTimeoutMs, () => socket.destroy());
  }

  async listen(port: number, host?: string): Promise<AddressInfo> {
    const lane = this.#lane;
    if (lane !== undefined) {
      // The lane listens and counts every connection; what it hands over (HTTP/2's
      // preface included) comes to #route through #h1's 'connection'.
      await lane.listen(port, host);
      lane.onError((err) => this.#logger?.error({ err }, "tinycache: Connect peer server error"));
      return lane.address() as AddressInfo;
    }
    this.#h1.listen(port, host);
    await Promise.race([
      once(this.#h1, "listening"),
      once(this.#h1, "error").then(([err]) => Promise.reject(err)),
    ]);
    // Later errors (e.g. out of file descriptors) are logged: an unhandled one would end
    // the process.
    this.#h1.on("error", (err) =>
      this.#logger?.error({ err }, "tinycache: Connect peer server error"),
    );
    return this.#h1.address() as AddressInfo;
  }

  /** Stops listening and drops every open connection (peers reconnect elsewhere). */
  async close(): Promise<void> {
    if (this.#lane !== undefined) {
      const closing = this.#lane.close(0);
      for (const s of this.#sockets) s.destroy();
      this.#sockets.clear();
      await closing;
      return;
    }
    const closed = this.#h1.listening ? once(this.#h1, "close") : Promise.resolve();
    this.#h1.close();
    this.#h1.closeAllConnections();
    for (const s of this.#sockets) s.destroy();
    this.#sockets.clear();
    await closed;
  }
}
