import { ByteView } from "@tinycache/byteview";
import { SingleFlight } from "@tinycache/singleflight";
import { type Entry, entrySize, TwoTierCache } from "./cache.js";
import { InvalidArgumentError, NotFoundError, PeerError, TinycacheError } from "./errors.js";
import { FrequencyPromotion, type HotCachePolicy } from "./hotpolicy.js";
import { ObserverCalls, peerCallOutcome, startTimer } from "./observer.js";
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
import type {
  CallOptions,
  KeyRequest,
  Logger,
  PeerGetter,
  PeerPicker,
  PeerValue,
  ServedGroup,
} from "./peers.js";
import { type CallSignal, callSignal, raceSignal } from "./private/abort.js";
import { Bulkhead } from "./private/bulkhead.js";
import { hasLoneSurrogate, overKeyBytes } from "./private/key-bytes.js";
import { NOOP_LOGGER } from "./private/noop-logger.js";
import { SharedTimeout } from "./private/shared-timeout.js";
import {
  type CacheStats,
  type CacheType,
  type GroupStats,
  type LoadLimitStats,
  liveGroupStats,
  MAX_RECENT_KEYS,
  newGroupStats,
  type RecentKey,
} from "./stats.js";

const DEFAULT_MAX_KEY_BYTES = 4096;
const DEFAULT_PEER_TIMEOUT_MS = 10_000;
const DEFAULT_MAX_CONCURRENT_LOADS = 64;
const DEFAULT_MAX_QUEUED_LOADS = 10_000;

/**
 * The default `maxValueBytes`: the hot cache's share of the budget, `cacheBytes / 8`
 * (at least 1), or `Infinity` when there is no finite, non-zero budget to share.
 */
export function defaultMaxValueBytes(cacheBytes: number): number {
  if (!(cacheBytes > 0) || cacheBytes === Number.POSITIVE_INFINITY) {
    return Number.POSITIVE_INFINITY;
  }
  return Math.max(1, Math.floor(cacheBytes / 8));
}

/** A value as the owner holds it, with its absolute expiry (absent = never). */
export interface ServedValue {
  value: ByteView;
  expiresAt?: number;
}

function toView(v: unknown): ByteView | undefined {
  if (v instanceof ByteView) return v;
  if (typeof v === "string" || v instanceof Uint8Array) return ByteView.from(v);
  // A ByteView of another copy of @tinycache/byteview (an app loading the ES module and
  // the CommonJS builds both): its private bytes are out of this copy's reach, so copy them.
  if (
    typeof v === "object" &&
    v !== null &&
    Object.prototype.toString.call(v) === "[object ByteView]" &&
    typeof (v as { byteSlice?: unknown }).byteSlice === "function"
  ) {
    const bytes = (v as { byteSlice(): unknown }).byteSlice();
    if (bytes instanceof Uint8Array) return ByteView.from(bytes);
  }
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
    p = Promise.resolve(servedValue(e, value));
    e.served = p;
  }
  return p;
}

/** A positive entry's frozen `{ value, expiresAt }`, made once and kept on the entry. */
function servedValue(e: Entry, value: ByteView): ServedValue {
  let v = e.servedValue;
  if (v === undefined) {
    v = Object.freeze(e.expiresAt !== 0 ? { value, expiresAt: e.expiresAt } : { value });
    e.servedValue = v;
  }
  return v;
}

/** A positive entry as is; a negative one ("not found" cached) as NotFoundError. */
function found(key: string, e: Entry): Entry {
  if (e.view === undefined) throw new NotFoundError(key);
  return e;
}

/** `v` if it is a number >= 0 (`Infinity` included), undefined if absent, else RangeError. */
function checkNonNegative(name: string, v: unknown): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== "number" || !(v >= 0)) {
    throw new RangeError(`${name} must be a number >= 0, got ${String(v)}`);
  }
  return v;
}

/** A count: an integer >= `min`, or `Infinity`; undefined if absent, else RangeError. */
function checkCount(name: string, v: unknown, min: number): number | undefined {
  if (v === undefined) return undefined;
  if (
    typeof v !== "number" ||
    !(v === Number.POSITIVE_INFINITY || (Number.isSafeInteger(v) && v >= min))
  ) {
    throw new RangeError(`${name} must be an integer >= ${min} or Infinity, got ${String(v)}`);
  }
  return v;
}

/** What `#loadFromPeer` holds instead of a CallSignal when the timeout is shared. */
const NO_CALL_SIGNAL: CallSignal = { signal: undefined, done: () => {} };

/** A timeout: `v` if > 0 (`Infinity` = none), undefined if absent; `0` is refused. */
function checkTimeout(name: string, v: unknown): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== "number" || !(v > 0)) {
    throw new RangeError(`${name} must be > 0 ms; use Infinity for no timeout, got ${String(v)}`);
  }
  return v;
}

/**
 * What the loads of one key in flight share. A set or remove of the key marks it stale:
 * a stale load still answers its waiters but stores nothing, since its answer may
 * predate the write. Loads of other keys are not affected.
 */
interface LoadToken {
  stale: boolean;
  /** Loads holding this token: the token leaves {@link Group}'s map when this is 0. */
  loads: number;
}

/** Test hook, set by Group's static block: see {@link keysLoading}. */
let loadingSize: (group: Group) => number;

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
  /** The peer timeout of gets whose callers passed no signal; undefined without a timeout. */
  readonly #sharedTimeout: SharedTimeout | undefined;
  /** Bounds the getter calls running at once (and those waiting). */
  readonly #loads: Bulkhead;
  readonly #logger: Logger;
  /** The `observer` option, guarded; undefined without one (then nothing is timed). */
  readonly #observer: ObserverCalls | undefined;
  readonly #now: () => number;
  readonly #random: () => number;
  #picker: PeerPicker | undefined;
  /**
   * The token of each key with a load in flight that no set/remove has invalidated
   * since it started. Holds only keys being loaded: a token leaves when its last load
   * ends, or when a set/remove of its key marks it stale. A null-prototype object as a
   * dictionary, not a Map: every remote get adds and removes its key turns of the event
   * loop apart, and a Map with that churn made V8 promote what it was done with by the
   * megabyte (singleflight's CallTable says more).
   */
  readonly #loading: Record<string, LoadToken | undefined> = Object.create(null);
  #loadingKeys = 0;

  static {
    loadingSize = (group) => group.#loadingKeys;
  }

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
    this.#ttlMs = checkNonNegative("ttlMs", opts.ttlMs) ?? Number.POSITIVE_INFINITY;
    this.#ttlJitter = jitter;
    this.#negativeTtlMs = checkNonNegative("negativeTtlMs", opts.negativeTtlMs) ?? 0;
    this.#maxKeyBytes = checkNonNegative("maxKeyBytes", opts.maxKeyBytes) ?? DEFAULT_MAX_KEY_BYTES;
    this.#maxValueBytes =
      checkNonNegative("maxValueBytes", opts.maxValueBytes) ??
      defaultMaxValueBytes(opts.cacheBytes);
    this.#peerTimeoutMs =
      checkTimeout("peerTimeoutMs", opts.peerTimeoutMs) ?? DEFAULT_PEER_TIMEOUT_MS;
    this.#sharedTimeout =
      this.#peerTimeoutMs > 0 && Number.isFinite(this.#peerTimeoutMs)
        ? new SharedTimeout(this.#peerTimeoutMs)
        : undefined;
    this.#loads = new Bulkhead(
      checkCount("maxConcurrentLoads", opts.maxConcurrentLoads, 1) ?? DEFAULT_MAX_CONCURRENT_LOADS,
      checkCount("maxQueuedLoads", opts.maxQueuedLoads, 0) ?? DEFAULT_MAX_QUEUED_LOADS,
      `getter of group ${opts.name} overloaded`,
    );
    this.#logger = opts.logger ?? NOOP_LOGGER;
    if (
      opts.observer !== undefined &&
      (opts.observer === null || typeof opts.observer !== "object")
    ) {
      throw new TypeError("observer must be an object with peerCall and/or load methods");
    }
    this.#observer =
      opts.observer === undefined
        ? undefined
        : new ObserverCalls(opts.observer, opts.name, this.#logger);
    this.#now = opts.now ?? Date.now;
    this.#random = opts.random ?? Math.random;
    this.#hotPolicy =
      opts.hotCache === false ? undefined : (opts.hotCache ?? new FrequencyPromotion());
    const policy = this.#hotPolicy;
    if (policy !== undefined && (typeof policy !== "object" || policy === null)) {
      throw new TypeError("hotCache must be a HotCachePolicy or false");
    }
    const recordHit =
      typeof policy?.recordHit === "function" ? policy.recordHit.bind(policy) : undefined;
    this.#cache = new TwoTierCache(opts.cacheBytes, this.#now, recordHit);
    const cache = this.#cache;
    const loads = this.#loads;
    this.#liveStats = liveGroupStats(
      this.#stats,
      () => cache.fastHits,
      () => loads,
    );
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
   * The longest key this group accepts, in UTF-8 bytes: the `maxKeyBytes` option, else
   * 4096 (`Infinity` when the option says so). Longer keys are refused with
   * InvalidArgumentError by every method; transport servers read it to refuse them
   * before doing any work.
   */
  get maxKeyBytes(): number {
    return this.#maxKeyBytes;
  }

  /**
   * The largest value this group accepts, in bytes: the `maxValueBytes` option, else
   * `cacheBytes / 8` (see {@link GroupOptions.maxValueBytes}). Peers' answers are cut off
   * beyond it.
   */
  get maxValueBytes(): number {
    return this.#maxValueBytes;
  }

  // ---- The get path, top to bottom: get -> #slowGet -> #load (-> #loadFromPeer,
  // #loadLocally). ----

  /**
   * The value of `key`: from the main or hot cache, else loaded once (per node, and per
   * cluster by the owner) and cached. Rejects with {@link NotFoundError} when the source
   * has no such key, {@link InvalidArgumentError} for a key over `maxKeyBytes` or with a
   * lone surrogate (no UTF-8 form, so no wire could carry it), the
   * getter's (or owner's) error when loading failed, or `signal.reason` when this
   * caller's signal aborted (the shared load goes on for the other callers).
   */
  get(key: string, opts?: GetOptions): Promise<ByteView> {
    // The hit path is synchronous, small enough to inline, counts with one increment and
    // allocates nothing (the entry keeps a resolved promise); the rest lives in #slowGet.
    if (opts === undefined && typeof key === "string" && key.length * 3 <= this.#maxKeyBytes) {
      if (this.#elsewhere(key)) return this.#slowGet(key, undefined, true);
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

  /**
   * Everything but a plain hit of a non-expiring main-cache entry.
   * @param elsewhere `#elsewhere(key)` when the caller has asked it already
   */
  #slowGet(key: string, signal: AbortSignal | undefined, elsewhere?: boolean): Promise<ByteView> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    const bad = this.#keyError(key);
    if (bad !== undefined) return Promise.reject(bad);
    this.#stats.gets++;
    const e = this.#lookup(key, elsewhere ?? this.#elsewhere(key));
    if (e !== undefined) {
      return e.view !== undefined
        ? Promise.resolve(e.view)
        : Promise.reject(new NotFoundError(key));
    }
    return this.#load(key, signal, true).then(entryView);
  }

  /**
   * Loads `key` after a cache miss. The whole get path, in groupcache's order (its
   * `Group.Get` and `Group.load`), each step for a reason:
   *
   * 0. The caches, main then hot, looked up by the caller before it comes here (`get`'s
   *    fast path then `#slowGet`, or `serveGet`): a hit never pays for a flight. For a
   *    key owned elsewhere, main only when it holds a copy stored as such (`#elsewhere`).
   * 1. Singleflight: every concurrent miss of the key on this node joins one flight, so
   *    the key is loaded once however many callers wait. A caller's `signal` ends only its
   *    own wait; the flight's signal aborts when every caller has given up.
   * 2. The caches again, inside the flight: singleflight merges only calls that overlap,
   *    so a flight starting just after another one stored the key finds it here instead
   *    of loading it twice.
   * 3. The owner, when the peer picker names another node (and `forward` allows it): only
   *    the owner calls its getter, so a key is loaded once per cluster. An owner that
   *    cannot answer (unreachable, timed out) makes this node load the key itself.
   * 4. Else the local getter, whose value goes to the main cache.
   *
   * A set/remove of the key during the load marks its token stale: the answer still goes
   * to the waiters, but is not cached (it may predate the write).
   *
   * @param forward false for a peer's request for a key this node thinks another owns:
   *   it is loaded here, on a flight of its own, so two nodes whose rings disagree for a
   *   moment cannot bounce the request (or wait on each other's flights).
   */
  #load(key: string, signal: AbortSignal | undefined, forward: boolean): Promise<Entry> {
    this.#stats.loads++;
    return (forward ? this.#flight : this.#localFlight).do(
      key,
      (flightSignal) => this.#flightLoad(key, flightSignal, forward, signal !== undefined),
      signal ? { signal } : undefined,
    );
  }

  /**
   * The work of one flight (steps 2 to 4 of {@link #load}). Promise chains rather than
   * async functions, here and in {@link #loadFromPeer}: on the peer path, their generators
   * and the promises of each await were most of a remote get's garbage (~3 KB per get).
   */
  #flightLoad(
    key: string,
    flightSignal: AbortSignal,
    forward: boolean,
    abortable: boolean,
  ): Entry | Promise<Entry> {
    let owner: PeerGetter | undefined;
    try {
      owner = forward ? this.#picker?.pickPeer(key) : undefined;
    } catch (err) {
      return Promise.reject(err);
    }
    const hit = this.#lookup(key, owner !== undefined && !this.#cache.heldForOthers(key));
    if (hit !== undefined) return found(key, hit);
    this.#stats.loadsDeduped++;
    const token = this.#beginLoad(key);
    const done = (entry: Entry): Entry => {
      this.#endLoad(key, token);
      return entry;
    };
    const failed = (err: unknown): never => {
      this.#endLoad(key, token);
      throw err;
    };
    let fromOwner: Promise<Entry | undefined> | undefined;
    try {
      // A flight started without a signal gets one that never aborts (singleflight): its
      // peer call can then share a coarse timeout with others (SharedTimeout).
      if (owner !== undefined) {
        fromOwner = this.#loadFromPeer(owner, key, flightSignal, token, abortable);
      }
    } catch (err) {
      return failed(err);
    }
    if (fromOwner === undefined) {
      return this.#loadLocally(key, flightSignal, token).then(done, failed);
    }
    return fromOwner.then(
      (entry) =>
        entry !== undefined
          ? done(entry)
          : this.#loadLocally(key, flightSignal, token).then(done, failed),
      failed,
    );
  }

  /** The owner's answer, or undefined when the owner could not answer (load locally). */
  #loadFromPeer(
    peer: PeerGetter,
    key: string,
    signal: AbortSignal,
    token: LoadToken,
    abortable: boolean,
  ): Promise<Entry | undefined> {
    const shared = abortable ? undefined : this.#sharedTimeout;
    const call = shared === undefined ? callSignal(signal, this.#peerTimeoutMs) : NO_CALL_SIGNAL;
    const max = this.#maxValueBytes;
    const req = { group: this.name, key };
    // Timed from here to the answer's use or refusal: one event per call, in either branch.
    const observer = this.#observer;
    const start = observer === undefined ? 0 : startTimer();
    let timeoutSignal: AbortSignal | undefined;
    let asked: Promise<PeerValue>;
    if (shared === undefined) {
      asked = raceSignal(askPeer(peer, req, call.signal ?? signal, max), call.signal);
    } else if (peer.honoursSignals === true) {
      // The call rejects once the slot's signal aborts: no race of our own needed.
      timeoutSignal = shared.signal();
      asked = askPeer(peer, req, timeoutSignal, max);
    } else {
      asked = shared.run((s) => {
        timeoutSignal = s;
        return askPeer(peer, req, s, max);
      });
    }
    const failed = (err: unknown): undefined => {
      try {
        return this.#peerFailed(err, peer, key, signal, token, start, call.signal ?? timeoutSignal);
      } finally {
        call.done();
      }
    };
    return asked.then((got) => {
      let entry: Entry;
      try {
        entry = this.#peerAnswer(peer, key, got, token, start);
      } catch (err) {
        return failed(err);
      }
      call.done();
      return entry;
    }, failed);
  }

  /** The entry of an owner's answer (may throw a PeerError for one we cannot use). */
  #peerAnswer(
    peer: PeerGetter,
    key: string,
    got: PeerValue,
    token: LoadToken,
    start: number,
  ): Entry {
    const max = this.#maxValueBytes;
    const value = got?.value;
    // Checked before any copy, for a transport that did not cut the answer off itself.
    if (value instanceof Uint8Array && value.byteLength > max) {
      throw new PeerError("unavailable", peer.id, `value over maxValueBytes (${max})`, {
        local: true,
      });
    }
    const view = toView(value);
    if (view === undefined) {
      throw new PeerError("unavailable", peer.id, "answer without a value");
    }
    this.#stats.peerLoads++;
    this.#observer?.peerCall(peer.id, "ok", start);
    const expiresAt = this.#expiry(undefined, got.expiresAt, Number.POSITIVE_INFINITY);
    const entry = this.#makeEntry(key, view, expiresAt);
    const policy = this.#hotPolicy;
    if (
      !token.stale &&
      policy !== undefined &&
      policy.shouldPromote(key, view, this.#liveStats, this.#cache.hotView)
    ) {
      if (this.#cache.add("hot", key, entry)) this.#stats.hotPromotions++;
    }
    return entry;
  }

  /**
   * After a peer call failed (or answered what we cannot use): undefined to load the key
   * locally, or the error to pass on (the owner's verdict, or every caller gave up).
   */
  #peerFailed(
    err: unknown,
    peer: PeerGetter,
    key: string,
    signal: AbortSignal,
    token: LoadToken,
    start: number,
    callSignal: AbortSignal | undefined,
  ): undefined {
    const stats = this.#stats;
    this.#observer?.peerCall(peer.id, peerCallOutcome(err, signal, callSignal), start);
    if (signal.aborted) throw signal.reason; // every caller gave up: nobody to serve
    if (err instanceof PeerError) {
      if (err.kind === "not_found") {
        // The owner asked its source: pass "not found" on, never ask our own source too.
        stats.notFounds++;
        this.#storeNegative("hot", key, token);
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
  }

  /**
   * The getter's answer, stored in the main cache unless `token` went stale meanwhile.
   * The call waits for a slot of the getter limit (`maxConcurrentLoads`); a full queue
   * fails it at once with OverloadedError, and a flight whose callers all gave up leaves
   * the queue.
   */
  async #loadLocally(key: string, signal: AbortSignal, token: LoadToken): Promise<Entry> {
    const stats = this.#stats;
    const release = await this.#loads.acquire(signal);
    // Timed after the wait for a slot: the event is about the getter call alone.
    const observer = this.#observer;
    const start = observer === undefined ? 0 : startTimer();
    let result: GetterResult;
    try {
      result = await this.#getter(key, { signal });
    } catch (err) {
      if (err instanceof NotFoundError) {
        stats.localLoads++;
        stats.notFounds++;
        observer?.load("not_found", start);
        this.#storeNegative("main", key, token);
      } else {
        stats.localLoadErrs++;
        observer?.load("error", start);
      }
      throw err;
    } finally {
      release();
    }
    let entry: Entry;
    try {
      entry = this.#entryFromResult(key, result);
    } catch (err) {
      stats.localLoadErrs++;
      observer?.load("error", start);
      throw err;
    }
    stats.localLoads++;
    observer?.load("ok", start);
    if (!token.stale) this.#add("main", key, entry);
    return entry;
  }

  // ---- set, remove, stats ----

  /**
   * Stores `value` for `key` at the owner (through the peer when remote, where it goes to
   * the owner's main cache) and locally (main cache when this node owns the key, else hot
   * cache). Other nodes' hot copies are not touched: use {@link Group.remove} for that.
   * A `ttlMs` of 0 (or an `expiresAt` not after now) stores a value that has already
   * expired: the owner and this node drop their copies of the key and keep none.
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
      // Loads that started while the owner was being told may have read the old value.
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

  /** The getter limit now: calls running and waiting, and the two options. */
  get loadLimit(): LoadLimitStats {
    const b = this.#loads;
    return {
      active: b.active,
      waiting: b.waiting,
      maxConcurrentLoads: b.limit,
      maxQueuedLoads: b.queueLimit,
    };
  }

  /** A snapshot of one cache's counters (a plain object). */
  cacheStats(which: CacheType): CacheStats {
    if (which !== "main" && which !== "hot") {
      throw new TypeError(`cacheStats expects "main" or "hot", got ${String(which)}`);
    }
    return this.#cache.stats(which);
  }

  /**
   * Up to `limit` keys held in one cache, most recently used first, each with whether
   * it is a cached "not found". Reading them changes no recency and no counter, so a
   * status page may poll it. Costs O(limit): the walk stops after `limit` live keys (or
   * `4 * limit + 16` entries, expired ones skipped). The keys are your users' keys: show
   * them only to whom may see them.
   * @param limit an integer from 0 to 1000.
   */
  recentKeys(which: CacheType, limit: number): RecentKey[] {
    if (which !== "main" && which !== "hot") {
      throw new TypeError(`recentKeys expects "main" or "hot", got ${String(which)}`);
    }
    if (!Number.isInteger(limit) || limit < 0 || limit > MAX_RECENT_KEYS) {
      throw new RangeError(
        `recentKeys: limit must be an integer from 0 to ${MAX_RECENT_KEYS}, got ${String(limit)}`,
      );
    }
    return this.#cache.recent(which, limit);
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
    const e = this.#lookup(key);
    if (e !== undefined) return served(key, e);
    const owned = this.#picker?.pickPeer(key) === undefined;
    return this.#load(key, signal, owned).then((entry) => served(key, entry));
  }

  /**
   * A peer's get answered from the caches alone, synchronously (see
   * `ServedGroup.serveCached`): the value, `null` for a cached "not found", `undefined`
   * when not cached or refused (then {@link serveGet} answers, and counts).
   */
  serveCached(key: string): ServedValue | null | undefined {
    if (this.#keyError(key) !== undefined) return undefined;
    const e = this.#lookup(key); // counts the hit (and a negative one); a miss counts nothing
    if (e === undefined) return undefined;
    this.#stats.serverRequests++;
    this.#stats.gets++;
    return e.view === undefined ? null : servedValue(e, e.view);
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
    this.#store("main", key, view, this.#expiry(undefined, expiresAt, Number.POSITIVE_INFINITY));
  }

  /** Drops this node's copies (main and hot) of `key`. */
  serveRemove(key: string): void {
    const bad = this.#keyError(key);
    if (bad !== undefined) throw bad;
    this.#invalidate(key);
    this.#cache.remove(key);
  }

  // ---- internals ----

  /**
   * The caches' entry for `key` (main, then hot; positive or negative), counting a hit
   * and, for a negative entry, a negative hit.
   * @param elsewhere hot alone: `#elsewhere(key)` said main cannot hold it
   */
  #lookup(key: string, elsewhere = false): Entry | undefined {
    const e = elsewhere ? this.#cache.lookupHot(key) : this.#cache.lookup(key);
    if (e !== undefined) {
      this.#stats.cacheHits++;
      if (e.view === undefined) this.#stats.negativeHits++;
    }
    return e;
  }

  /** The token of a load of `key` starting now, shared with the key's other fresh loads. */
  #beginLoad(key: string): LoadToken {
    let token = this.#loading[key];
    if (token === undefined) {
      token = { stale: false, loads: 0 };
      this.#loading[key] = token;
      this.#loadingKeys++;
    }
    token.loads++;
    return token;
  }

  #endLoad(key: string, token: LoadToken): void {
    if (--token.loads === 0 && this.#loading[key] === token) this.#forgetLoading(key);
  }

  /**
   * After a set/remove of `key`: loads of the key in flight must not store what they
   * read (their token goes stale), and new gets start a flight of their own. Loads of
   * other keys go on as if nothing happened.
   */
  #invalidate(key: string): void {
    const token = this.#loading[key];
    if (token !== undefined) {
      token.stale = true;
      this.#forgetLoading(key);
    }
    this.#flight.forget(key);
    this.#localFlight.forget(key);
  }

  #forgetLoading(key: string): void {
    delete this.#loading[key];
    this.#loadingKeys--;
  }

  #keyError(key: string): Error | undefined {
    if (typeof key !== "string") return new TypeError(`key must be a string, got ${typeof key}`);
    // A lone surrogate has no UTF-8 form: every transport would send it as U+FFFD, so
    // the owner would answer for another key (and cache under it). Refused here, once,
    // rather than per transport.
    if (hasLoneSurrogate(key)) {
      return new InvalidArgumentError(
        `key of group ${this.name} is not well-formed Unicode (it has a lone surrogate)`,
      );
    }
    const max = this.#maxKeyBytes;
    if (!overKeyBytes(key, max)) return undefined;
    return new InvalidArgumentError(`key of group ${this.name} is longer than ${max} bytes`);
  }

  #checkValue(key: string, view: ByteView): void {
    if (view.byteLength > this.#maxValueBytes) {
      throw new InvalidArgumentError(
        `value of ${key} in group ${this.name} is ${view.byteLength} bytes, over maxValueBytes ${this.#maxValueBytes}`,
      );
    }
  }

  /**
   * Absolute expiry (0 = never) from an absolute `expiresAt` (as is), else a relative TTL
   * (or `defaultTtl`), as `#expiryFromTtl` makes it.
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

  /**
   * Absolute expiry of a relative TTL: 0 (never) for `Infinity`; now (already expired:
   * the value answers its callers but is not cached) for 0; else now + the TTL shortened
   * by up to `ttlJitter`, at least 1 ms.
   */
  #expiryFromTtl(ttl: number): number {
    if (ttl === Number.POSITIVE_INFINITY) return 0;
    const now = this.#now();
    // Never 0, which would read "never expires".
    if (ttl === 0) return Math.max(1, now);
    const spread = this.#ttlJitter > 0 ? ttl * (1 - this.#ttlJitter * this.#random()) : ttl;
    return now + Math.max(1, Math.round(spread));
  }

  #makeEntry(key: string, view: ByteView | undefined, expiresAt: number): Entry {
    return {
      view,
      expiresAt,
      size: entrySize(key, view),
      resolved: undefined,
      served: undefined,
      servedValue: undefined,
    };
  }

  /**
   * Stores a set value. One the cache refuses (expired, or over the budget) still
   * replaces the key: the older copies go.
   */
  #store(which: CacheType, key: string, view: ByteView, expiresAt: number): void {
    this.#add(which, key, this.#makeEntry(key, view, expiresAt));
  }

  /**
   * Stores an entry in one cache. For main, the cache is told whether another node owns
   * the key (as `get` would see it now), so that lookups of keys owned elsewhere still
   * find this copy.
   */
  #add(which: CacheType, key: string, entry: Entry): void {
    if (which === "hot") {
      this.#cache.add("hot", key, entry);
      return;
    }
    let ownedElsewhere: boolean;
    try {
      ownedElsewhere = this.#picker?.pickPeer(key) !== undefined;
    } catch {
      ownedElsewhere = true; // a picker that throws: lookups keep looking in main
    }
    this.#cache.add("main", key, entry, ownedElsewhere);
  }

  /**
   * Whether a get of `key` can skip the main cache: the picker names another node as its
   * owner, and main holds no copy stored as owned elsewhere. Main holds the keys this node
   * owns (and the copies tracked by the cache's {@link TwoTierCache.heldForOthers}), so a
   * main lookup of any other key can only miss. On a node that asks peers for most of
   * its keys, that miss is a walk of a large table through cache lines the rest of the
   * process evicted: skipping it gave the demo's peer path 2-5% more requests per second
   * (two clusters side by side).
   * A picker that throws means no: the load reports the error.
   */
  #elsewhere(key: string): boolean {
    const picker = this.#picker;
    if (picker === undefined) return false;
    try {
      return picker.pickPeer(key) !== undefined && !this.#cache.heldForOthers(key);
    } catch {
      return false;
    }
  }

  /** Caches "not found" for `negativeTtlMs` (0: not at all), unless `token` went stale. */
  #storeNegative(which: CacheType, key: string, token: LoadToken): void {
    if (this.#negativeTtlMs === 0 || token.stale) return;
    this.#add(
      which,
      key,
      this.#makeEntry(key, undefined, this.#expiryFromTtl(this.#negativeTtlMs)),
    );
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

/** `peer.get` with the call's signal and value limit; a synchronous throw rejects. */
function askPeer(
  peer: PeerGetter,
  req: KeyRequest,
  signal: AbortSignal,
  max: number,
): Promise<PeerValue> {
  try {
    return peer.get(
      req,
      max === Number.POSITIVE_INFINITY ? { signal } : { signal, maxValueBytes: max },
    );
  } catch (err) {
    return Promise.reject(err);
  }
}

/** Flights only resolve with positive entries (a negative one is thrown as NotFoundError). */
function entryView(e: Entry): ByteView {
  return e.view as ByteView;
}

/**
 * For tests, not exported by the package: how many keys have a load in flight that no
 * set/remove invalidated (the size of the map behind per-key invalidation). 0 once every
 * load has ended.
 * @internal
 */
export function keysLoading(group: Group): number {
  return loadingSize(group);
}
