import type { ByteView } from "@tinycache/byteview";
import type { HotCachePolicy } from "./hotpolicy.js";
import type { Logger, PeerPicker } from "./peers.js";

/** What a getter may return: the value alone, or the value with its own expiry. */
export type GetterValue = string | Uint8Array | ByteView;

/** A getter's answer. `ttlMs` (relative) or `expiresAt` (absolute, ms since epoch). */
export type GetterResult =
  | GetterValue
  | {
      value: GetterValue;
      /** Relative TTL in ms, spread by the group's `ttlJitter`. 0 = never expires. */
      ttlMs?: number;
      /** Absolute expiry (ms since the epoch), used as is (no jitter). Wins over ttlMs. */
      expiresAt?: number;
    };

/**
 * Loads a key from the source of truth. Throw {@link NotFoundError} to say "no such key"
 * (cached for `negativeTtlMs`); any other error is a load failure (never cached). Pass
 * `signal` on to your I/O: it aborts when every caller waiting for this load gave up.
 */
export type Getter = (key: string, opts: { signal: AbortSignal }) => Promise<GetterResult>;

/** Options of {@link GroupRegistry.newGroup}. */
export interface GroupOptions {
  /** Group name, unique in its registry; peers address the group by it. */
  name: string;
  /** The source of truth, called on the owner once per missing key (see {@link Getter}). */
  getter: Getter;
  /**
   * One byte budget for the main and hot caches together, each entry sized key bytes
   * (UTF-8) + value bytes, as groupcache. `<= 0` caches nothing (every get loads).
   */
  cacheBytes: number;
  /** Default TTL in ms for values whose getter gave none. Default 0 = never expire. */
  ttlMs?: number;
  /**
   * Spreads relative TTLs so that keys loaded together do not expire together (avalanche):
   * each TTL is shortened by a random fraction in [0, ttlJitter), i.e. `ttl * (1 - j*r)`.
   * Shortening (not lengthening) keeps the TTL an upper bound on staleness. In [0, 1];
   * default 0. Absolute `expiresAt` values and peers' expiries are never jittered.
   */
  ttlJitter?: number;
  /**
   * How long "not found" is cached, in ms (penetration defence). Default 0 = never cached.
   * Jittered like `ttlMs`.
   */
  negativeTtlMs?: number;
  /** Longest key in UTF-8 bytes; longer keys get an InvalidArgumentError. Default 4096. */
  maxKeyBytes?: number;
  /** Largest value in bytes (set and getter results). Default Infinity (no limit). */
  maxValueBytes?: number;
  /**
   * Which values fetched from peers are kept in the hot cache. Default:
   * `new RandomPromotion({ random })`, groupcache's 1 in 10. `false` = no hot cache.
   */
  hotCache?: HotCachePolicy | false;
  /** Peers; same as calling `registerPeers` (which may then not be called again). */
  peers?: PeerPicker;
  /**
   * Timeout per call to a peer (get, set, remove and the remove broadcast), in ms, on top
   * of the transport's own. A timed-out get counts a peer error and loads locally, so keep
   * it above the owner's slowest getter. Default 10_000; 0 = none.
   */
  peerTimeoutMs?: number;
  /** pino-compatible logger (peer failures at warn). Default: silent. */
  logger?: Logger;
  /** Clock in ms since the epoch. Default `Date.now`; inject a fake one in tests. */
  now?: () => number;
  /** Randomness in [0, 1) for TTL jitter and the default hot policy. Default Math.random. */
  random?: () => number;
}

/** Options of {@link Group.get}. */
export interface GetOptions {
  /** Aborts this caller's wait at once (rejects with `signal.reason`); others keep waiting. */
  signal?: AbortSignal;
}

/** Options of {@link Group.set}. */
export interface SetOptions {
  /** TTL in ms (jittered); default the group's `ttlMs`. 0 = never expires. */
  ttlMs?: number;
  /** Absolute expiry (ms since the epoch); wins over `ttlMs`; not jittered. */
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
