import { type HashFunction, HashRing } from "@tinycache/consistenthash";
import type { PeerGetter, PeerPicker } from "../peers.js";
import type { PeerBatchStats } from "./batch.js";
import {
  MonitoredPeer,
  type PeerHealthOptions,
  type PeerHealthStats,
  type ResolvedHealthOptions,
  resolveHealthOptions,
} from "./health.js";
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
  /**
   * Per-peer health (see health.ts for the policy): an unhealthy peer's keys are owned
   * locally until a probe finds it answering. `false` turns it off.
   * @default on, with the defaults of {@link PeerHealthOptions}
   */
  health?: PeerHealthOptions | false;
}

/** One remote peer: the transport's client, and what core is handed (watched or not). */
interface Entry<P extends PeerGetter> {
  client: P;
  peer: PeerGetter;
  monitored: MonitoredPeer<P> | undefined;
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
  readonly #health: ResolvedHealthOptions | undefined;
  /** Remote peers by URL (self excluded). */
  #clients = new Map<string, Entry<P>>();
  #remote: readonly PeerGetter[] = EMPTY;
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
    this.#health = resolveHealthOptions(name, options.health, Number.POSITIVE_INFINITY);
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
    const next = new Map<string, Entry<P>>();
    try {
      for (const url of unique) {
        if (url === this.self) continue;
        next.set(url, old.get(url) ?? this.#entry(this.#connect(url)));
      }
    } catch (err) {
      for (const [url, e] of next) if (!old.has(url)) this.#disconnect?.(e.client, "left");
      throw err;
    }
    this.#ring.set(unique);
    this.#clients = next;
    this.#remote = Object.freeze([...next.values()].map((e) => e.peer));
    for (const [url, e] of old) if (!next.has(url)) this.#disconnect?.(e.client, "left");
  }

  #entry(client: P): Entry<P> {
    const h = this.#health;
    if (h === undefined) return { client, peer: client, monitored: undefined };
    const monitored = new MonitoredPeer(client, h);
    return { client, peer: monitored, monitored };
  }

  /** The peer URLs on the ring, self included, in the order given (a frozen array). */
  get urls(): readonly string[] {
    return this.#ring.nodes;
  }

  /**
   * The getter of `key`'s owner, or undefined when this process owns it, has no remote
   * peers, or the owner is unhealthy (then the key is loaded locally, and a probe of the
   * owner may be sent in the background). With health on, the getter is the owner's
   * client watched by its health ({@link MonitoredPeer}). The hot path of every get: a
   * ring lookup and a map lookup, no allocation.
   */
  pickPeer(key: string): PeerGetter | undefined {
    const e = this.#owner(key);
    if (e === undefined) return undefined;
    const m = e.monitored;
    if (m === undefined || m.health.healthy) return e.peer;
    if (m.health.route() === "probe") m.ping();
    return undefined;
  }

  /**
   * The transport's own client of `key`'s owner, when {@link pickPeer} would send the
   * key to it (for calls beyond PeerGetter's, such as a batch get); calls made through it
   * are not watched.
   */
  pickClient(key: string): P | undefined {
    const e = this.#owner(key);
    if (e === undefined) return undefined;
    return e.monitored === undefined || e.monitored.health.healthy ? e.client : undefined;
  }

  /**
   * The owner's entry, health aside. The ring is only consulted when there are remote
   * peers.
   */
  #owner(key: string): Entry<P> | undefined {
    if (this.#clients.size === 0) return undefined;
    const owner = this.#ring.get(key);
    if (owner === undefined || owner === this.self) return undefined;
    return this.#clients.get(owner);
  }

  /**
   * Every remote peer (self excluded), for broadcasts, healthy or not: a frozen array of
   * the getters {@link pickPeer} hands out.
   */
  peers(): readonly PeerGetter[] {
    return this.#remote;
  }

  /** The transport's own clients of every remote peer (self excluded). */
  clients(): P[] {
    return [...this.#clients.values()].map((e) => e.client);
  }

  /** The health of every remote peer, in list order; empty with health off. */
  health(): PeerHealthStats[] {
    const out: PeerHealthStats[] = [];
    for (const e of this.#clients.values()) if (e.monitored) out.push(e.monitored.health.stats());
    return out;
  }

  /**
   * The batch counters of every remote peer whose client reports them (has
   * `batchStats()`, see `PeerGetter.batchStats`), in list order, health aside: a peer
   * whose client does not batch is left out; one that batches nothing yet shows zeros.
   */
  batchStats(): PeerBatchStats[] {
    const out: PeerBatchStats[] = [];
    for (const [url, e] of this.#clients) {
      const s = e.client.batchStats?.();
      if (s !== undefined) out.push({ url, batches: s.batches, batchedKeys: s.keys });
    }
    return out;
  }

  /** Whether per-peer health is on. */
  get healthEnabled(): boolean {
    return this.#health !== undefined;
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
    for (const e of clients.values()) this.#disconnect?.(e.client, "closed");
  }
}
