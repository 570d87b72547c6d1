import * as http from "node:http";
import * as https from "node:https";
import type { AddressInfo } from "node:net";
import { type PeerGetter, type PeerPicker, PeerSet } from "@tinycache/core";
import { HttpPeer } from "./client.js";
import { type HttpPoolOptions, type ResolvedOptions, resolveOptions } from "./options.js";
import { createHandler, type RequestHandler } from "./server.js";

/**
 * A groupcache-compatible HTTP peer pool: the {@link PeerPicker} a group uses to find a
 * key's owner and fetch from it, and the request handler that answers the other peers.
 * It speaks golang/groupcache's wire protocol (plus mailgun's PUT and DELETE), so Node
 * and Go processes can share one cluster.
 *
 * ```ts
 * const pool = new HttpPool({ self: "http://10.0.0.1:8001", registry });
 * pool.setPeers("http://10.0.0.1:8001", "http://10.0.0.2:8001");
 * await pool.listen(8001);
 * group.registerPeers(pool);
 * ```
 */
export class HttpPool implements PeerPicker {
  /** This process's base URL, as given. */
  readonly self: string;
  /**
   * The request listener serving `{basePath}{group}/{key}` (GET, PUT, DELETE). Give it
   * to `http.createServer`/`https.createServer`, or mount it under `basePath` in an
   * existing server; or call {@link listen}.
   */
  readonly handler: RequestHandler;
  readonly #opts: ResolvedOptions;
  /** The ring of peer URLs and one client per remote peer (self excluded). */
  readonly #peers: PeerSet<HttpPeer>;
  #server: http.Server | https.Server | undefined;
  #closed = false;

  constructor(options: HttpPoolOptions) {
    this.#opts = resolveOptions(options);
    this.self = this.#opts.self;
    this.#peers = new PeerSet({
      self: this.self,
      replicas: this.#opts.replicas,
      hash: this.#opts.hash,
      name: "HttpPool",
      connect: (url) => this.#makePeer(url),
      // A peer that leaves finishes its calls in flight first; close cuts them.
      disconnect: (peer, why) => {
        if (why === "left") peer.retire();
        else peer.destroy();
      },
    });
    this.handler = createHandler(this.#opts);
  }

  /**
   * Replaces the peer list (include `self`, as golang/groupcache expects: the keys that
   * land on `self` are loaded locally). Peers that stay keep their connections; peers
   * that leave close theirs once their calls in flight finish.
   * @throws TypeError, changing nothing, if a URL is not an http(s) URL.
   */
  setPeers(...urls: string[]): void {
    this.#peers.set(urls);
  }

  /** The peer URLs on the ring, self included, in the order given. */
  get peerUrls(): readonly string[] {
    return this.#peers.urls;
  }

  /** The owner of `key` when it is a remote peer; undefined when self owns it or no peers. */
  pickPeer(key: string): PeerGetter | undefined {
    return this.#peers.pickPeer(key);
  }

  /** Every remote peer (self excluded), for broadcasts. */
  peers(): readonly PeerGetter[] {
    return this.#peers.peers();
  }

  /**
   * Serves {@link handler} on `port` (0 = any free port) and `host` (default: all
   * interfaces), over HTTPS when the `tls` option is set. Resolves with the bound port.
   */
  async listen(port = 0, host?: string): Promise<number> {
    if (this.#closed) throw new Error("HttpPool: closed");
    if (this.#server !== undefined) throw new Error("HttpPool: already listening");
    const server =
      this.#opts.tls === undefined
        ? http.createServer(this.handler)
        : https.createServer(this.#opts.tls, this.handler);
    this.#server = server;
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, host, () => {
        server.off("error", reject);
        resolve();
      });
    }).catch((err: unknown) => {
      this.#server = undefined;
      throw err;
    });
    server.on("error", (err) => this.#opts.logger?.error({ err }, "tinycache http: server error"));
    return (server.address() as AddressInfo).port;
  }

  /**
   * Stops the server started by {@link listen} (closing idle keep-alive connections) and
   * every client connection to the peers. Safe to call twice.
   */
  async close(): Promise<void> {
    this.#closed = true;
    this.#peers.close();
    const server = this.#server;
    this.#server = undefined;
    if (server === undefined) return;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }

  #makePeer(url: string): HttpPeer {
    const u = new URL(url);
    const o = this.#opts;
    const agent =
      o.agent !== undefined
        ? o.agent(u)
        : u.protocol === "https:"
          ? new https.Agent({ scheduling: "lifo", ...o.agentOptions, keepAlive: true })
          : new http.Agent({ scheduling: "lifo", ...o.agentOptions, keepAlive: true });
    return new HttpPeer({
      url,
      basePath: o.basePath,
      timeoutMs: o.timeoutMs,
      maxBodyBytes: o.maxBodyBytes,
      agent,
      auth: o.auth,
    });
  }
}
