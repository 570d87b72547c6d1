import { ByteView } from "@tinycache/byteview";
import { SingleFlight } from "@tinycache/singleflight";
import { type Entry, TwoTierCache } from "./cache.js";
import { InvalidArgumentError, NotFoundError, PeerError, TinycacheError } from "./errors.js";
import { type HotCachePolicy, RandomPromotion } from "./hotpolicy.js";
import type {
  GetOptions,
  Getter,
  GetterResult,
  GetterValue,
  GroupOptions,
  PeerFailure,
  RemoveOptions,
  RemoveResult,
  SetOptions,
} from "./options.js";
import type { CallOptions, Logger, PeerGetter, PeerPicker, ServedGroup } from "./peers.js";
import { callSignal, raceSignal } from "./private/abort.js";
import { NOOP_LOGGER } from "./private/noop-logger.js";
import {
  type CacheStats,
  type CacheType,
  type GroupStats,
  liveGroupStats,
  newGroupStats,
} from "./stats.js";

const DEFAULT_MAX_KEY_BYTES = 4096;
const DEFAULT_PEER_TIMEOUT_MS = 10_000;

/** A value as the owner holds it, with its absolute expiry (absent = never). */
export interface ServedValue {
  value: ByteView;
  expiresAt?: number;
}

function toView(v: unknown): ByteView | undefined {
  if (v instanceof ByteView) return v;
  if (typeof v === "string" || v instanceof Uint8Array) return ByteView.from(v);
  return undefined;
}

/**
 * A peer's answer for a cached entry: one frozen, already-resolved `{ value, expiresAt }`
 * made at the entry's first serve and shared by every later one, so a served hit
 * allocates nothing; a negative entry rejects with NotFoundError.
 */
function served(key: string, e: Entry): Promise<ServedValue> {
  const value = e.view;
  if (value === undefined) return Promise.reject(new NotFoundError(key));
  let p = e.served;
  if (p === undefined) {
    p = Promise.resolve(
      Object.freeze(e.expiresAt !== 0 ? { value, expiresAt: e.expiresAt } : { value }),
    );
    e.served = p;
  }
  return p;
}

function checkNonNegative(name: string, v: unknown, allowInfinity = true): number | undefined {
  if (v === undefined) return undefined;
  if (
    typeof v !== "number" ||
    Number.isNaN(v) ||
    v < 0 ||
    (!allowInfinity && !Number.isFinite(v))
  ) {
    throw new RangeError(`${name} must be a number >= 0, got ${String(v)}`);
  }
  return v;
}

/**
 * A named cache namespace with a getter for its source of truth: a read-through cache
 * that a cluster shares. Each key has one owner (picked by the {@link PeerPicker});
 * concurrent misses for a key load once per node (singleflight) and once per cluster
 * (only the owner calls the getter). Create groups with {@link GroupRegistry.newGroup}.
 */
export class Group implements ServedGroup {
  readonly name: string;
  readonly #getter: Getter;
  readonly #cache: TwoTierCache;
  readonly #flight = new SingleFlight<string, Entry>();
  /** Loads asked for by peers for keys this node does not think it owns (never forwarded). */
  readonly #localFlight = new SingleFlight<string, Entry>();
  readonly #stats: GroupStats = newGroupStats();
  /** #stats plus the cache's fast hits, read live: for snapshots and the hot policy. */
  readonly #liveStats: Readonly<GroupStats>;
  readonly #ttlMs: number;
  readonly #ttlJitter: number;
  readonly #negativeTtlMs: number;
  readonly #maxKeyBytes: number;
  readonly #maxValueBytes: number;
  readonly #hotPolicy: HotCachePolicy | undefined;
  readonly #peerTimeoutMs: number;
  readonly #logger: Logger;
  readonly #now: () => number;
  readonly #random: () => number;
  #picker: PeerPicker | undefined;
  /**
   * Bumped by every set/remove. A load that started before a set/remove must not store
   * its (now stale) answer: it still answers its waiters, but leaves the caches alone.
   */
  #epoch = 0;

  /** @internal use {@link GroupRegistry.newGroup}. */
  constructor(opts: GroupOptions) {
    if (opts === null || typeof opts !== "object") throw new TypeError("options are required");
    if (typeof opts.name !== "string") throw new TypeError("name must be a string");
    if (typeof opts.getter !== "function") throw new TypeError("getter must be a function");
    if (typeof opts.cacheBytes !== "number" || Number.isNaN(opts.cacheBytes)) {
      throw new TypeError(`cacheBytes must be a number, got ${String(opts.cacheBytes)}`);
    }
    const jitter = checkNonNegative("ttlJitter", opts.ttlJitter) ?? 0;
    if (jitter > 1) throw new RangeError(`ttlJitter must be in [0, 1], got ${jitter}`);
    this.name = opts.name;
    this.#getter = opts.getter;
    this.#ttlMs = checkNonNegative("ttlMs", opts.ttlMs) ?? 0;
    this.#ttlJitter = jitter;
    this.#negativeTtlMs = checkNonNegative("negativeTtlMs", opts.negativeTtlMs) ?? 0;
    this.#maxKeyBytes = checkNonNegative("maxKeyBytes", opts.maxKeyBytes) ?? DEFAULT_MAX_KEY_BYTES;
    this.#maxValueBytes =
      checkNonNegative("maxValueBytes", opts.maxValueBytes) ?? Number.POSITIVE_INFINITY;
    this.#peerTimeoutMs =
      checkNonNegative("peerTimeoutMs", opts.peerTimeoutMs) ?? DEFAULT_PEER_TIMEOUT_MS;
    this.#logger = opts.logger ?? NOOP_LOGGER;
    this.#now = opts.now ?? Date.now;
    this.#random = opts.random ?? Math.random;
    this.#hotPolicy =
      opts.hotCache === false
        ? undefined
        : (opts.hotCache ?? new RandomPromotion({ random: this.#random }));
    this.#cache = new TwoTierCache(opts.cacheBytes, this.#now);
    const cache = this.#cache;
    this.#liveStats = liveGroupStats(this.#stats, () => cache.fastHits);
    this.#picker = opts.peers;
  }

  /**
   * Sets the peers of this group, once (like groupcache's RegisterPeerPicker, a second
   * call is a programming error and throws). Until then the group has no peers and loads
   * every key itself.
   */
  registerPeers(picker: PeerPicker): void {
    if (picker === null || typeof picker !== "object" || typeof picker.pickPeer !== "function") {
      throw new TypeError("registerPeers expects a PeerPicker");
    }
    if (this.#picker !== undefined) {
      throw new TinycacheError(
        "peers_already_registered",
        `registerPeers called more than once for group ${this.name}`,
      );
    }
    this.#picker = picker;
  }

  /** Whether peers were registered. */
  get hasPeers(): boolean {
    return this.#picker !== undefined;
  }

  /**
   * The value of `key`: from the main or hot cache, else loaded once (per node, and per
   * cluster by the owner) and cached. Rejects with {@link NotFoundError} when the source
   * has no such key, {@link InvalidArgumentError} for a key over `maxKeyBytes`, the
   * getter's (or owner's) error when loading failed, or `signal.reason` when this
   * caller's signal aborted (the shared load goes on for the other callers).
   */
  get(key: string, opts?: GetOptions): Promise<ByteView> {
    // The hit path is synchronous, small enough to inline, counts with one increment and
    // allocates nothing (the entry keeps a resolved promise); the rest lives in #slowGet.
    if (opts === undefined && typeof key === "string" && key.length * 3 <= this.#maxKeyBytes) {
      const e = this.#cache.fastHit(key);
      if (e !== undefined) {
        let p = e.resolved;
        if (p === undefined) {
          p = Promise.resolve(e.view as ByteView);
          e.resolved = p;
        }
        return p;
      }
    }
    return this.#slowGet(key, opts?.signal);
  }

  /** Everything but a plain hit of a non-expiring main-cache entry. */
  #slowGet(key: string, signal: AbortSignal | undefined): Promise<ByteView> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    const bad = this.#keyError(key);
    if (bad !== undefined) return Promise.reject(bad);
    const stats = this.#stats;
    stats.gets++;
    const e = this.#cache.lookup(key);
    if (e !== undefined) {
      stats.cacheHits++;
      if (e.view !== undefined) return Promise.resolve(e.view);
      stats.negativeHits++;
      return Promise.reject(new NotFoundError(key));
    }
    return this.#load(key, signal).then(entryView);
  }

  /**
   * Stores `value` for `key` at the owner (through the peer when remote, where it goes to
   * the owner's main cache) and locally (main cache when this node owns the key, else hot
   * cache). Other nodes' hot copies are not touched: use {@link Group.remove} for that.
   * @throws InvalidArgumentError for a key over `maxKeyBytes` or a value over
   *   `maxValueBytes` (nothing stored); the owner's error when it could not be reached
   *   (nothing stored locally either).
   */
  async set(key: string, value: GetterValue, opts: SetOptions = {}): Promise<void> {
    const bad = this.#keyError(key);
    if (bad !== undefined) throw bad;
    const view = toView(value);
    if (view === undefined) {
      throw new TypeError("value must be a string, a Uint8Array or a ByteView");
    }
    this.#checkValue(key, view);
    const ttlMs = checkNonNegative("ttlMs", opts.ttlMs);
    const expiresAt = this.#expiry(ttlMs, opts.expiresAt, this.#ttlMs);
    const signal = opts.signal;
    if (signal?.aborted) throw signal.reason;
    this.#invalidate(key);
    const owner = this.#picker?.pickPeer(key);
    if (owner !== undefined) {
      const req = {
        group: this.name,
        key,
        value: view.byteSlice(),
        ...(expiresAt !== 0 ? { expiresAt } : {}),
      };
      const call = callSignal(signal, this.#peerTimeoutMs);
      try {
        await raceSignal(owner.set(req, call.signal ? { signal: call.signal } : {}), call.signal);
      } finally {
        call.done();
      }
      this.#invalidate(key);
      this.#store("hot", key, view, expiresAt);
    } else {
      this.#store("main", key, view, expiresAt);
    }
  }

  /**
   * Removes `key` at the owner, locally, then from every other peer (their hot copies),
   * best effort with `peerTimeoutMs` per peer. Never throws for peer failures: they are
   * reported in the result.
   * @throws InvalidArgumentError for a key over `maxKeyBytes`.
   */
  async remove(key: string, opts: RemoveOptions = {}): Promise<RemoveResult> {
    const bad = this.#keyError(key);
    if (bad !== undefined) throw bad;
    const picker = this.#picker;
    const owner = picker?.pickPeer(key);
    const failures: PeerFailure[] = [];
    let asked = 0;
    if (owner !== undefined) {
      // The owner first: a node that reloads after losing its copy must find it gone there.
      asked++;
      const err = await this.#tryRemove(owner, key, opts.signal);
      if (err !== undefined) failures.push({ peer: owner.id, owner: true, error: err });
    }
    this.#invalidate(key);
    this.#cache.remove(key);
    const others = (picker?.peers() ?? []).filter((p) => p !== owner && p.id !== owner?.id);
    asked += others.length;
    const errs = await Promise.all(others.map((p) => this.#tryRemove(p, key, opts.signal)));
    errs.forEach((err, i) => {
      if (err !== undefined)
        failures.push({ peer: (others[i] as PeerGetter).id, owner: false, error: err });
    });
    if (failures.length > 0) {
      this.#logger.warn(
        { group: this.name, key, failures: failures.map((f) => f.peer) },
        "tinycache: remove not acknowledged by every peer",
      );
    }
    return { key, owner: owner?.id, peersAsked: asked, failures, ok: failures.length === 0 };
  }

  /** A snapshot of the group's counters (a plain object). */
  get stats(): GroupStats {
    return { ...this.#liveStats };
  }

  /** A snapshot of one cache's counters (a plain object). */
  cacheStats(which: CacheType): CacheStats {
    if (which !== "main" && which !== "hot") {
      throw new TypeError(`cacheStats expects "main" or "hot", got ${String(which)}`);
    }
    return this.#cache.stats(which);
  }

  // ---- ServedGroup: what transports call on behalf of peers ----

  /**
   * Answers a peer's get with the value and its absolute expiry. When this node owns the
   * key (by its own ring) this is a normal get; otherwise (the rings disagree for a
   * moment) it loads locally and never forwards, so two nodes cannot bounce a request.
   */
  serveGet(key: string, opts?: CallOptions): Promise<ServedValue> {
    this.#stats.serverRequests++;
    const signal = opts?.signal;
    if (signal?.aborted) return Promise.reject(signal.reason);
    const bad = this.#keyError(key);
    if (bad !== undefined) return Promise.reject(bad);
    this.#stats.gets++;
    const e = this.#cache.lookup(key);
    let p: Promise<Entry>;
    if (e !== undefined) {
      this.#stats.cacheHits++;
      if (e.view === undefined) this.#stats.negativeHits++;
      return served(key, e);
    }
    if (this.#picker?.pickPeer(key) === undefined) {
      p = this.#load(key, signal);
    } else {
      this.#stats.loads++;
      p = this.#localFlight.do(
        key,
        (s) => this.#loadLocally(key, s, this.#epoch),
        signal ? { signal } : undefined,
      );
    }
    return p.then((entry) => served(key, entry));
  }

  /**
   * Stores a value a peer set on us (we are its owner, or hold a copy) in the main cache.
   * @throws InvalidArgumentError for a key or value over the limits.
   */
  serveSet(key: string, value: Uint8Array, expiresAt?: number): void {
    const bad = this.#keyError(key);
    if (bad !== undefined) throw bad;
    const view = toView(value);
    if (view === undefined) throw new TypeError("value must be a Uint8Array");
    this.#checkValue(key, view);
    this.#invalidate(key);
    this.#store("main", key, view, this.#expiry(undefined, expiresAt, 0));
  }

  /** Drops this node's copies (main and hot) of `key`. */
  serveRemove(key: string): void {
    const bad = this.#keyError(key);
    if (bad !== undefined) throw bad;
    this.#invalidate(key);
    this.#cache.remove(key);
  }

  // ---- internals ----

  #keyError(key: string): Error | undefined {
    if (typeof key !== "string") return new TypeError(`key must be a string, got ${typeof key}`);
    const max = this.#maxKeyBytes;
    // A UTF-16 unit is at most 3 UTF-8 bytes: short keys skip the byte count entirely.
    if (key.length * 3 <= max) return undefined;
    if (key.length <= max && Buffer.byteLength(key, "utf8") <= max) return undefined;
    return new InvalidArgumentError(`key of group ${this.name} is longer than ${max} bytes`);
  }

  #checkValue(key: string, view: ByteView): void {
    if (view.byteLength > this.#maxValueBytes) {
      throw new InvalidArgumentError(
        `value of ${key} in group ${this.name} is ${view.byteLength} bytes, over maxValueBytes ${this.#maxValueBytes}`,
      );
    }
  }

  /** A later load must not store what it read before this point; new gets start afresh. */
  #invalidate(key: string): void {
    this.#epoch++;
    this.#flight.forget(key);
    this.#localFlight.forget(key);
  }

  /**
   * Absolute expiry (0 = never) from an absolute `expiresAt` (as is), else a relative TTL
   * (or `defaultTtl`) shortened by up to `ttlJitter`.
   */
  #expiry(ttlMs: number | undefined, expiresAt: number | undefined, defaultTtl: number): number {
    if (expiresAt !== undefined) {
      if (typeof expiresAt !== "number" || Number.isNaN(expiresAt)) {
        throw new TypeError(`expiresAt must be a number, got ${String(expiresAt)}`);
      }
      // 0 or negative: already expired (1 is in the past), never "no expiry".
      return expiresAt === Number.POSITIVE_INFINITY ? 0 : Math.max(1, expiresAt);
    }
    return this.#expiryFromTtl(ttlMs ?? defaultTtl);
  }

  #expiryFromTtl(ttl: number): number {
    if (!(ttl > 0) || ttl === Number.POSITIVE_INFINITY) return 0;
    const spread = this.#ttlJitter > 0 ? ttl * (1 - this.#ttlJitter * this.#random()) : ttl;
    return this.#now() + Math.max(1, Math.round(spread));
  }

  #makeEntry(key: string, view: ByteView | undefined, expiresAt: number): Entry {
    const size = Buffer.byteLength(key, "utf8") + (view === undefined ? 0 : view.byteLength);
    return { view, expiresAt, size, resolved: undefined, served: undefined };
  }

  #store(which: CacheType, key: string, view: ByteView | undefined, expiresAt: number): Entry {
    const entry = this.#makeEntry(key, view, expiresAt);
    this.#cache.add(which, key, entry);
    return entry;
  }

  #load(key: string, signal: AbortSignal | undefined): Promise<Entry> {
    this.#stats.loads++;
    return this.#flight.do(
      key,
      (flightSignal) => this.#loadOnce(key, flightSignal),
      signal ? { signal } : undefined,
    );
  }

  /** One flight: re-check the caches, then the owner, else the getter. */
  async #loadOnce(key: string, signal: AbortSignal): Promise<Entry> {
    const stats = this.#stats;
    const hit = this.#cache.lookup(key);
    if (hit !== undefined) {
      stats.cacheHits++;
      if (hit.view !== undefined) return hit;
      stats.negativeHits++;
      throw new NotFoundError(key);
    }
    stats.loadsDeduped++;
    const epoch = this.#epoch;
    const peer = this.#picker?.pickPeer(key);
    if (peer !== undefined) {
      const fromPeer = await this.#loadFromPeer(peer, key, signal, epoch);
      if (fromPeer !== undefined) return fromPeer;
    }
    return this.#loadLocally(key, signal, epoch);
  }

  /** The owner's answer, or undefined when the owner could not answer (load locally). */
  async #loadFromPeer(
    peer: PeerGetter,
    key: string,
    signal: AbortSignal,
    epoch: number,
  ): Promise<Entry | undefined> {
    const stats = this.#stats;
    const call = callSignal(signal, this.#peerTimeoutMs);
    try {
      const got = await raceSignal(
        peer.get({ group: this.name, key }, { signal: call.signal ?? signal }),
        call.signal,
      );
      const view = toView(got?.value);
      if (view === undefined) {
        throw new PeerError("unavailable", peer.id, "answer without a value");
      }
      stats.peerLoads++;
      const expiresAt = got.expiresAt === undefined ? 0 : this.#expiry(undefined, got.expiresAt, 0);
      const entry = this.#makeEntry(key, view, expiresAt);
      const policy = this.#hotPolicy;
      if (
        epoch === this.#epoch &&
        policy !== undefined &&
        policy.shouldPromote(key, view, this.#liveStats)
      ) {
        if (this.#cache.add("hot", key, entry)) stats.hotPromotions++;
      }
      return entry;
    } catch (err) {
      if (signal.aborted) throw signal.reason; // every caller gave up: nobody to serve
      if (err instanceof PeerError) {
        if (err.kind === "not_found") {
          // The owner asked its source: pass "not found" on, never ask our own source too.
          stats.notFounds++;
          this.#storeNegative("hot", key, epoch);
          throw new NotFoundError(key);
        }
        if (err.kind === "getter_failed" || err.kind === "invalid_argument") throw err;
      }
      // Unreachable, timed out, or an answer we cannot read: the owner may be dying. Count
      // it and load locally so the caller never sees the peer failure (avalanche defence).
      stats.peerErrors++;
      this.#logger.warn(
        { err, peer: peer.id, group: this.name, key },
        "tinycache: peer fetch failed, loading locally",
      );
      return undefined;
    } finally {
      call.done();
    }
  }

  /** Undefined when the peer acknowledged the remove, else why it did not. */
  async #tryRemove(
    peer: PeerGetter,
    key: string,
    signal: AbortSignal | undefined,
  ): Promise<unknown> {
    const call = callSignal(signal, this.#peerTimeoutMs);
    try {
      await raceSignal(
        peer.remove({ group: this.name, key }, call.signal ? { signal: call.signal } : {}),
        call.signal,
      );
      return undefined;
    } catch (err) {
      return err ?? new Error("remove failed");
    } finally {
      call.done();
    }
  }

  #storeNegative(which: CacheType, key: string, epoch: number): void {
    if (this.#negativeTtlMs <= 0 || epoch !== this.#epoch) return;
    this.#cache.add(
      which,
      key,
      this.#makeEntry(key, undefined, this.#expiryFromTtl(this.#negativeTtlMs)),
    );
  }

  async #loadLocally(key: string, signal: AbortSignal, epoch: number): Promise<Entry> {
    const stats = this.#stats;
    let result: GetterResult;
    try {
      result = await this.#getter(key, { signal });
    } catch (err) {
      if (err instanceof NotFoundError) {
        stats.localLoads++;
        stats.notFounds++;
        this.#storeNegative("main", key, epoch);
      } else {
        stats.localLoadErrs++;
      }
      throw err;
    }
    let entry: Entry;
    try {
      entry = this.#entryFromResult(key, result);
    } catch (err) {
      stats.localLoadErrs++;
      throw err;
    }
    stats.localLoads++;
    if (epoch === this.#epoch) this.#cache.add("main", key, entry);
    return entry;
  }

  #entryFromResult(key: string, result: GetterResult): Entry {
    let view = toView(result);
    let expiresAt: number;
    if (view !== undefined) {
      expiresAt = this.#expiryFromTtl(this.#ttlMs);
    } else if (result !== null && typeof result === "object" && "value" in result) {
      view = toView(result.value);
      if (view === undefined) {
        throw new TypeError(`getter of group ${this.name} returned a value that is not bytes`);
      }
      const ttlMs = checkNonNegative("getter ttlMs", result.ttlMs);
      expiresAt = this.#expiry(ttlMs, result.expiresAt, this.#ttlMs);
    } else {
      throw new TypeError(
        `getter of group ${this.name} must return a string, a Uint8Array or { value }`,
      );
    }
    this.#checkValue(key, view);
    return this.#makeEntry(key, view, expiresAt);
  }
}

/** Flights only resolve with positive entries (a negative one is thrown as NotFoundError). */
function entryView(e: Entry): ByteView {
  return e.view as ByteView;
}
