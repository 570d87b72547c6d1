import type { ByteView } from "@tinycache/byteview";
import type { HotCachePolicy } from "./hotpolicy.js";
import type { GroupObserver } from "./observer.js";
import type { Logger, PeerPicker } from "./peers.js";

/** What a getter may return: the value alone, or the value with its own expiry. */
export type GetterValue = string | Uint8Array | ByteView;

/** A getter's answer. `ttlMs` (relative) or `expiresAt` (absolute, ms since epoch). */
export type GetterResult =
  | GetterValue
  | {
      value: GetterValue;
      /**
       * Relative TTL in ms, spread by the group's `ttlJitter`; default the group's
       * `ttlMs`. `Infinity` = never expires; `0` = expires at once (returned to the
       * waiting callers, not cached). Negative: RangeError (a load error).
       */
      ttlMs?: number;
      /**
       * Absolute expiry (ms since the epoch), used as is (no jitter). Wins over ttlMs.
       * `Infinity` = never; a time not after now = already expired (not cached).
       */
      expiresAt?: number;
    };

/**
 * Loads a key from the source of truth. Throw {@link NotFoundError} to say "no such key"
 * (cached for `negativeTtlMs`); any other error is a load failure (never cached). Pass
 * `signal` on to your I/O: it aborts when every caller waiting for this load gave up.
 */
export type Getter = (key: string, opts: { signal: AbortSignal }) => Promise<GetterResult>;

/**
 * Options of {@link GroupRegistry.newGroup}. Every number means what it says: `0` is zero
 * (a zero TTL expires at once, a zero budget caches nothing), "no limit" or "never" is
 * `Infinity` (or leaving the option out, where that is the default), and a `0` with no
 * useful meaning (`peerTimeoutMs`) is a RangeError that says what to use instead.
 * Negative numbers are RangeErrors.
 */
export interface GroupOptions {
  /** Group name, unique in its registry; peers address the group by it. */
  name: string;
  /** The source of truth, called on the owner once per missing key (see {@link Getter}). */
  getter: Getter;
  /**
   * One byte budget for the main and hot caches together, each entry sized key bytes
   * (UTF-8) + value bytes, as groupcache. `0` caches nothing (every get loads);
   * `Infinity` = no limit (nothing is ever evicted). Negative: RangeError; not a number
   * (or NaN): TypeError.
   */
  cacheBytes: number;
  /**
   * Default TTL in ms of loaded values whose getter gave none, and of `set` values given
   * none. Default `Infinity` (also when left out) = never expire; `0` = expire at once:
   * every loaded value is returned to the callers waiting for its load but not cached,
   * and a `set` keeps no copy (a getter's or a set's own `ttlMs`/`expiresAt` still
   * applies).
   */
  ttlMs?: number;
  /**
   * Spreads relative TTLs so that keys loaded together do not expire together (avalanche):
   * each TTL is shortened by a random fraction in [0, ttlJitter), i.e. `ttl * (1 - j*r)`.
   * Shortening (not lengthening) keeps the TTL an upper bound on staleness. In [0, 1];
   * default 0. Absolute `expiresAt` values and peers' expiries are never jittered.
   */
  ttlJitter?: number;
  /**
   * How long "not found" is cached, in ms (penetration defence). Default `0` = not
   * cached; `Infinity` = cached until evicted or replaced by a set. Jittered like `ttlMs`.
   */
  negativeTtlMs?: number;
  /**
   * Longest key in UTF-8 bytes; longer keys get an InvalidArgumentError. Default 4096;
   * `Infinity` = no limit. Readable as {@link Group.maxKeyBytes}.
   */
  maxKeyBytes?: number;
  /**
   * Largest value in bytes: of a set, of a getter's result (InvalidArgumentError beyond),
   * and of a peer's answer, which the transport stops reading as soon as it is known to be
   * over (the owner's answer then counts as a peer error and the key is loaded locally,
   * where the getter's value meets the same limit). `0` allows only empty values;
   * `Infinity` = no limit of the group's own (the transport's `maxBodyBytes` still caps
   * peers' answers).
   *
   * Default: `cacheBytes / 8` (rounded down, at least 1), the hot cache's share of the
   * budget: a peer's value larger than that could never be kept in the hot cache, and one
   * value cannot take more than an eighth of the cache. With `cacheBytes` `0` or
   * `Infinity` (no budget to take a share of) the default is `Infinity`.
   */
  maxValueBytes?: number;
  /**
   * Which values fetched from peers are kept in the hot cache. `false` = no hot cache.
   * Default: `new FrequencyPromotion()`, TinyLFU-style admission (a key is kept when the
   * hot cache has room, or when it was accessed recently more often than the hot entry it
   * would evict). `new RandomPromotion()` is groupcache's 1 in 10, for groupcache-identical
   * behaviour.
   * @default new FrequencyPromotion()
   */
  hotCache?: HotCachePolicy | false;
  /** Peers; same as calling `registerPeers` (which may then not be called again). */
  peers?: PeerPicker;
  /**
   * Timeout per call to a peer (get, set, remove and the remove broadcast), in ms, on top
   * of the transport's own. A timed-out get counts a peer error and loads locally, so keep
   * it above the owner's slowest getter. Default 10_000; `Infinity` = no timeout of its
   * own. `0` is a RangeError (it would time out every call): use `Infinity` for none.
   * The gets of callers that passed no signal share one timer per 1/16 of this time (an
   * AbortController and a timer per call cost more than the rest of a remote get), so
   * theirs fires between `peerTimeoutMs` and `peerTimeoutMs * 17/16` after the call.
   */
  peerTimeoutMs?: number;
  /**
   * Most getter calls this group runs at once (a bulkhead for the source of truth: a
   * burst of cold keys, or a peer's keys falling back here, cannot open more than this
   * many calls). The rest wait in FIFO order. An integer >= 1, or `Infinity` (no limit).
   * @default 64
   */
  maxConcurrentLoads?: number;
  /**
   * Most getter calls waiting for a slot; beyond, a load fails at once with
   * `OverloadedError` (counted as `loadsRejected`; a peer asking is answered
   * `unavailable` and loads the key itself). A waiting load whose callers all gave up
   * leaves the queue. An integer >= 0 (0: never wait), or `Infinity`.
   * @default 10_000
   */
  maxQueuedLoads?: number;
  /** pino-compatible logger (peer failures at warn). Default: silent. */
  logger?: Logger;
  /**
   * Told how long each peer get and each getter call took and how it ended (for latency
   * histograms; see {@link GroupObserver}). Default: the registry's, else none, and then
   * the group reads no clock at all.
   */
  observer?: GroupObserver;
  /** Clock in ms since the epoch. Default `Date.now`; inject a fake one in tests. */
  now?: () => number;
  /** Randomness in [0, 1) for TTL jitter. Default Math.random. */
  random?: () => number;
}

/** Options of {@link Group.get}. */
export interface GetOptions {
  /** Aborts this caller's wait at once (rejects with `signal.reason`); others keep waiting. */
  signal?: AbortSignal;
}

/** Options of {@link Group.set}. */
export interface SetOptions {
  /**
   * TTL in ms (jittered); default the group's `ttlMs`. `Infinity` = never expires; `0` =
   * expires at once: the owner and this node drop their copies and keep none.
   */
  ttlMs?: number;
  /**
   * Absolute expiry (ms since the epoch); wins over `ttlMs`; not jittered. `Infinity` =
   * never; a time not after now = already expired (stored nowhere).
   */
  expiresAt?: number;
  /** Aborts the call to the owner. */
  signal?: AbortSignal;
}

/** Options of {@link Group.remove}. */
export interface RemoveOptions {
  /** Aborts the calls to peers (each is then reported as a failure). */
  signal?: AbortSignal;
}

/** One peer that did not acknowledge a remove. */
export interface PeerFailure {
  /** The peer's id. */
  peer: string;
  /** Whether this peer was the key's owner (else a broadcast target). */
  owner: boolean;
  /** Why it failed (usually a PeerError). */
  error: unknown;
}

/** The outcome of {@link Group.remove}: never thrown, always reported. */
export interface RemoveResult {
  key: string;
  /** The owner's id, or undefined when this node owns the key. */
  owner: string | undefined;
  /** Peers asked (owner + broadcast). */
  peersAsked: number;
  /** Peers that failed or timed out; empty when every peer acknowledged. */
  failures: PeerFailure[];
  /** `failures.length === 0`. */
  ok: boolean;
}
