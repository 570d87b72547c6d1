import type { AddressInfo } from "node:net";
import { type PeerGetter, type PeerPicker, PeerSet } from "@tinycache/core";
import { type ConnectPoolOptions, type ResolvedOptions, resolveOptions } from "./options.js";
import { ConnectPeer, type ConnectPeerOptions } from "./peer.js";
import { DualServer } from "./private/dual-server.js";
import { CacheServer, type PeerHandler } from "./server.js";

/**
 * A tinycache peer pool over Connect: the {@link PeerPicker} core asks for key owners
 * (a consistent-hash ring of peer URLs, one reused {@link ConnectPeer} client per remote
 * peer), and the server that answers the other peers (`handler`, or `listen`).
 *
 * ```ts
 * const pool = new ConnectPool({ self: "http://127.0.0.1:8001", registry });
 * pool.setPeers("http://127.0.0.1:8001", "http://127.0.0.1:8002");
 * await pool.listen(8001);
 * registry.registerPeers(pool);
 * ```
 */
export class ConnectPool implements PeerPicker {
  readonly #o: ResolvedOptions;
  /** The ring of peer URLs and one client per remote peer (self excluded). */
  readonly #peers: PeerSet<ConnectPeer>;
  #server: DualServer | undefined;
  #closed = false;

  /**
   * Serves CacheService over Connect, gRPC and gRPC-Web (HTTP/1.1 and HTTP/2) for
   * `http.createServer`, `http2.createServer` / `createSecureServer({ allowHTTP1: true })`
   * or `https.createServer`. gRPC clients need HTTP/2: use {@link ConnectPool.listen}
   * (which speaks both on one cleartext port) or an http2 server.
   */
  readonly handler: PeerHandler;

  constructor(options: ConnectPoolOptions) {
    this.#o = resolveOptions(options);
    const auth = this.#o.auth;
    const peerOptions: ConnectPeerOptions = {
      protocol: this.#o.protocol,
      httpVersion: this.#o.httpVersion,
      timeoutMs: this.#o.timeoutMs,
      headers: auth ? { [auth.header]: auth.secret } : {},
      maxMessageBytes: this.#o.maxMessageBytes,
      agentOptions: this.#o.agentOptions,
      http2Options: this.#o.http2Options,
    };
    this.#peers = new PeerSet({
      self: this.#o.self,
      replicas: this.#o.replicas,
      hash: this.#o.hash,
      name: "ConnectPool",
      connect: (url) => new ConnectPeer(url, peerOptions),
      disconnect: (peer) => peer.close(),
    });
    this.handler = new CacheServer({
      registry: this.#o.registry,
      auth,
      maxKeyBytes: this.#o.maxKeyBytes,
      maxMessageBytes: this.#o.maxMessageBytes,
      maxBatchKeys: this.#o.maxBatchKeys,
      logger: this.#o.logger,
    }).handler;
  }

  /** This process's URL, as given in the options. */
  get self(): string {
    return this.#o.self;
  }

  /**
   * Replaces the peer set (this process's own URL included, as in groupcache). Clients of
   * peers that stay are kept, with their open connections; clients of peers that leave
   * are closed. Duplicates count once. With no URLs, every key is owned locally.
   * @throws TypeError for a URL that is not http(s), leaving the peers unchanged.
   */
  setPeers(...urls: string[]): void {
    this.#peers.set(urls);
    this.#o.logger?.info({ peers: this.#peers.urls }, "tinycache peers set");
  }

  /** The owner's client, or undefined when this process owns `key` or has no peers. */
  pickPeer(key: string): PeerGetter | undefined {
    return this.#peers.pickPeer(key);
  }

  /** The owner of `key` as a ConnectPeer (with `getMany`), or undefined as pickPeer. */
  pickConnectPeer(key: string): ConnectPeer | undefined {
    return this.#peers.pickPeer(key);
  }

  /** Every remote peer (not this process). */
  peers(): readonly ConnectPeer[] {
    return this.#peers.peers();
  }

  /**
   * Serves {@link ConnectPool.handler} on `port` (0 = any free port), HTTP/1.1 and
   * cleartext HTTP/2 on the same port. For TLS, pass the handler to your own
   * `http2.createSecureServer({ allowHTTP1: true, ... })` instead.
   */
  async listen(port: number, host?: string): Promise<AddressInfo> {
    if (this.#closed) throw new Error("ConnectPool: closed");
    if (this.#server) throw new Error("ConnectPool: already listening");
    if (!Number.isInteger(port) || port < 0 || port > 65535) {
      throw new RangeError(`ConnectPool: port must be an integer in [0, 65535], got ${port}`);
    }
    const server = new DualServer(this.handler);
    this.#server = server;
    try {
      return await server.listen(port, host);
    } catch (err) {
      this.#server = undefined;
      throw err;
    }
  }

  /** Stops the server (if listening) and closes every peer client. Idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#peers.close();
    const server = this.#server;
    this.#server = undefined;
    await server?.close();
  }
}
