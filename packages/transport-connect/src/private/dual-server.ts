import { once } from "node:events";
import { createServer as createHttpServer, type Server as HttpServer } from "node:http";
import { createServer as createHttp2Server, type Http2Server } from "node:http2";
import {
  type AddressInfo,
  createServer as createNetServer,
  type Server,
  type Socket,
} from "node:net";
import type { PeerHandler } from "../server.js";

/** The client connection preface of HTTP/2 (RFC 9113, 3.4). */
const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1");
/** A connection that has not said which protocol it speaks within this time is dropped. */
const SNIFF_TIMEOUT_MS = 10_000;

/**
 * One cleartext port for HTTP/1.1 and HTTP/2 ("h2c with prior knowledge", as gRPC
 * clients use): a TCP server reads the first bytes of each connection, puts them back,
 * and hands the socket to an HTTP/2 server when they are the HTTP/2 preface, else to an
 * HTTP/1.1 server. Both servers run the same handler.
 */
export class DualServer {
  readonly #net: Server;
  readonly #h1: HttpServer;
  readonly #h2: Http2Server;
  readonly #sockets = new Set<Socket>();

  constructor(handler: PeerHandler) {
    // Keep idle keep-alive connections longer than clients' agents do, so a client never
    // sends a request on a socket the server is closing at that moment.
    this.#h1 = createHttpServer({ keepAliveTimeout: 65_000, noDelay: true }, handler);
    this.#h2 = createHttp2Server({}, handler);
    this.#net = createNetServer({ noDelay: true }, (socket) => this.#route(socket));
  }

  #route(socket: Socket): void {
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
        this.#h1.emit("connection", socket);
        socket.resume();
      }
    };
    socket.on("data", onData);
    socket.on("error", onError);
    socket.setTimeout(SNIFF_TIMEOUT_MS, () => socket.destroy());
  }

  async listen(port: number, host?: string): Promise<AddressInfo> {
    this.#net.listen(port, host);
    await Promise.race([
      once(this.#net, "listening"),
      once(this.#net, "error").then(([err]) => Promise.reject(err)),
    ]);
    return this.#net.address() as AddressInfo;
  }

  /** Stops listening and drops every open connection (peers reconnect elsewhere). */
  async close(): Promise<void> {
    const closed = this.#net.listening ? once(this.#net, "close") : Promise.resolve();
    this.#net.close();
    this.#h1.closeAllConnections();
    for (const s of this.#sockets) s.destroy();
    this.#sockets.clear();
    await closed;
  }
}
