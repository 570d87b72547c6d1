import { type HashFunction, HashRing } from "@tinycache/consistenthash";
import type { PeerGetter, PeerPicker } from "../peers.js";
import { checkPeerUrl } from "./options.js";

/** Options of {@link PeerSet}. */
export interface PeerSetOptions<P extends PeerGetter> {
  /**
   * This process's URL exactly as the peer lists give it. Keys that land on it are
   * owned locally ({@link PeerSet.pickPeer} answers undefined); no client is made for it.
   */
  self: string;
  /**
   * Ring points per peer; every peer of a cluster must use the same value.
   * @default 50 (golang/groupcache's)
   */
  replicas?: number;
  /**
   * Ring hash; every peer of a cluster must use the same one.
   * @default crc32 from @tinycache/consistenthash (golang/groupcache's)
   */
  hash?: HashFunction;
  /** Makes the client of a remote peer. Called once per URL while the URL stays listed. */
  connect(url: string): P;
  /**
   * Lets go of a client: `"left"` when its peer left the list (calls in flight may still
   * finish), `"closed"` when the whole set closes. Default: nothing to release.
   */
  disconnect?(peer: P, why: "left" | "closed"): void;
  /**
   * Who owns the set, for error messages (e.g. `"HttpPool: peer URL ..."`).
   * @default "PeerSet"
   */
  name?: string;
}

const EMPTY: readonly never[] = Object.freeze([]);

/**
 * The peers of a process as a transport keeps them: a consistent-hash ring of peer URLs
 * (this process's own included, as in golang/groupcache) and one reused client per remote
 * peer, made by the transport's `connect`. It is the {@link PeerPicker} a group asks for
 * key owners; the transport only has to say how to reach one URL.
 *
 * ```ts
 * const set = new PeerSet({ self: "http://10.0.0.1:8001", connect: (url) => new MyPeer(url) });
 * set.set(["http://10.0.0.1:8001", "http://10.0.0.2:8001"]);
 * registry.registerPeers(set);
 * ```
 */
export class PeerSet<P extends PeerGetter> implements PeerPicker {
  /** This process's URL, as given. */
  readonly self: string;
  readonly #ring: HashRing;
  readonly #connect: (url: string) => P;
  readonly #disconnect: ((peer: P, why: "left" | "closed") => void) | undefined;
  readonly #name: string;
  /** Remote peers by URL (self excluded). */
  #clients = new Map<string, P>();
  #remote: readonly P[] = EMPTY;
  #closed = false;

  /** @throws TypeError for a bad `self` or `connect`, RangeError for bad ring options. */
  constructor(options: PeerSetOptions<P>) {
    if (typeof options !== "object" || options === null) {
      throw new TypeError("PeerSet: options required");
    }
    const name = options.name ?? "PeerSet";
    if (typeof name !== "string") throw new TypeError("PeerSet: name must be a string");
    this.#name = name;
    checkPeerUrl(options.self, "self", name);
    if (typeof options.connect !== "function") {
      throw new TypeError(`${name}: connect must be a function (url: string) => PeerGetter`);
    }
    if (options.disconnect !== undefined && typeof options.disconnect !== "function") {
      throw new TypeError(`${name}: disconnect must be a function`);
    }
    this.self = options.self;
    // HashRing checks both (and defaults them when undefined).
    this.#ring = new HashRing({ replicas: options.replicas, hash: options.hash });
    this.#connect = options.connect;
    this.#disconnect = options.disconnect;
  }

  /**
   * Replaces the peer list (include {@link self}; duplicates count once, in first
   * position). Clients of peers that stay are kept, with their open connections; peers
   * that join get a client from `connect`; clients of peers that leave are handed to
   * `disconnect(peer, "left")`. With no URLs, every key is owned locally.
   * @throws TypeError, changing nothing, if a URL is not an http(s) URL (see
   *   {@link checkPeerUrl}); Error once the set is closed; whatever `connect` throws,
   *   changing nothing (the clients it made so far are disconnected).
   */
  set(urls: Iterable<string>): void {
    if (this.#closed) throw new Error(`${this.#name}: closed`);
    const list = [...urls];
    for (const u of list) checkPeerUrl(u, "peer URL", this.#name);
    const unique = [...new Set(list)];
    const old = this.#clients;
    const next = new Map<string, P>();
    try {
      for (const url of unique) {
        if (url === this.self) continue;
        next.set(url, old.get(url) ?? this.#connect(url));
      }
    } catch (err) {
      for (const [url, peer] of next) if (!old.has(url)) this.#disconnect?.(peer, "left");
      throw err;
    }
    this.#ring.set(unique);
    this.#clients = next;
    this.#remote = Object.freeze([...next.values()]);
    for (const [url, peer] of old) if (!next.has(url)) this.#disconnect?.(peer, "left");
  }

  /** The peer URLs on the ring, self included, in the order given (a frozen array). */
  get urls(): readonly string[] {
    return this.#ring.nodes;
  }

  /**
   * The client of `key`'s owner, or undefined when this process owns it or has no remote
   * peers. The hot path of every get: a ring lookup and a map lookup, no allocation.
   */
  pickPeer(key: string): P | undefined {
    if (this.#clients.size === 0) return undefined;
    const owner = this.#ring.get(key);
    if (owner === undefined || owner === this.self) return undefined;
    return this.#clients.get(owner);
  }

  /** Every remote client (self excluded), for broadcasts: a frozen array. */
  peers(): readonly P[] {
    return this.#remote;
  }

  /**
   * Hands every client to `disconnect(peer, "closed")`; from then on every key is owned
   * locally, {@link peers} is empty and {@link set} throws ({@link urls} keeps the last
   * list, for diagnostics). Safe to call twice.
   */
  close(): void {
    const clients = this.#clients;
    this.#closed = true;
    this.#clients = new Map();
    this.#remote = EMPTY;
    for (const peer of clients.values()) this.#disconnect?.(peer, "closed");
  }
}
