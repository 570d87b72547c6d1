import type { ByteView } from "@tinycache/byteview";
import { LRUCache } from "@tinycache/lru";
import type { GroupStats } from "./stats.js";

/**
 * Decides whether a value just fetched from its owning peer is kept in this node's hot
 * cache. Keeping every remote value would fill the budget with keys this node does not
 * own; keeping none makes a hot key cost one network round trip per get on every node.
 */
export interface HotCachePolicy {
  /**
   * Called once per successful peer fetch (after singleflight de-duplication).
   * @param key the key fetched.
   * @param value the value the owner returned.
   * @param stats the group's counters, live and read-only (spread it to keep a snapshot).
   * @returns true to keep the value in the hot cache.
   */
  shouldPromote(key: string, value: ByteView, stats: Readonly<GroupStats>): boolean;
}

export interface RandomPromotionOptions {
  /** Promote one in `oneIn` peer fetches on average. Default 10 (groupcache). */
  oneIn?: number;
  /** Source of randomness in [0, 1). Default `Math.random`; inject a seeded one in tests. */
  random?: () => number;
}

/** groupcache's policy: promote a peer fetch with probability 1/`oneIn` (default 1/10). */
export class RandomPromotion implements HotCachePolicy {
  readonly #p: number;
  readonly #random: () => number;
  constructor({ oneIn = 10, random = Math.random }: RandomPromotionOptions = {}) {
    if (!(oneIn >= 1) || !Number.isFinite(oneIn)) {
      throw new RangeError(`oneIn must be a finite number >= 1, got ${oneIn}`);
    }
    this.#p = 1 / oneIn;
    this.#random = random;
  }
  shouldPromote(_key?: string, _value?: ByteView, _stats?: Readonly<GroupStats>): boolean {
    return this.#random() < this.#p;
  }
}

export interface RatePromotionOptions {
  /** Promote a key once it was fetched from its owner at least this many times in a window. */
  minFetches: number;
  /**
   * Window length in ms (> 0), counted from the key's first fetch in the window. Default
   * 60_000; `Infinity` = counts never reset.
   */
  windowMs?: number;
  /**
   * Most keys whose counts are tracked at once (least recent dropped): an integer >= 1, or
   * `Infinity` for no limit. Default 10_000.
   */
  maxTrackedKeys?: number;
  /** Clock in ms. Default `Date.now`. */
  now?: () => number;
}

interface Window {
  start: number;
  count: number;
}

/**
 * Promote by observed key rate (galaxycache's idea): a key is promoted once this node had
 * to fetch it from the owner `minFetches` times within `windowMs`. Cold keys never enter
 * the hot cache; genuinely hot ones do after a few round trips.
 */
export class RatePromotion implements HotCachePolicy {
  readonly #min: number;
  readonly #windowMs: number;
  readonly #now: () => number;
  readonly #seen: LRUCache<string, Window>;
  constructor({
    minFetches,
    windowMs = 60_000,
    maxTrackedKeys = 10_000,
    now = Date.now,
  }: RatePromotionOptions) {
    if (!(minFetches >= 1)) throw new RangeError(`minFetches must be >= 1, got ${minFetches}`);
    if (!(windowMs > 0)) {
      throw new RangeError(`windowMs must be > 0; use Infinity for no window, got ${windowMs}`);
    }
    if (
      maxTrackedKeys !== Number.POSITIVE_INFINITY &&
      !(Number.isSafeInteger(maxTrackedKeys) && maxTrackedKeys >= 1)
    ) {
      throw new RangeError(
        `maxTrackedKeys must be an integer >= 1; use Infinity for no limit, got ${maxTrackedKeys}`,
      );
    }
    this.#min = minFetches;
    this.#windowMs = windowMs;
    this.#now = now;
    // Bounded by entries only (no byte bound); the default sizeOf cannot measure a Window.
    this.#seen = new LRUCache<string, Window>({ maxEntries: maxTrackedKeys, sizeOf: () => 1 });
  }
  shouldPromote(key: string, _value?: ByteView, _stats?: Readonly<GroupStats>): boolean {
    const now = this.#now();
    let w = this.#seen.get(key);
    if (w === undefined || now - w.start >= this.#windowMs) {
      w = { start: now, count: 0 };
      this.#seen.set(key, w);
    }
    w.count++;
    if (w.count >= this.#min) {
      this.#seen.delete(key);
      return true;
    }
    return false;
  }
}
