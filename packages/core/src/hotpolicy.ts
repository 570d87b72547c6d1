import type { ByteView } from "@tinycache/byteview";
import { crc32 } from "@tinycache/consistenthash";
import { LRUCache } from "@tinycache/lru";
import type { GroupStats } from "./stats.js";

/**
 * What a {@link HotCachePolicy} may read of the hot cache it decides for: live, read-only
 * (reading changes no recency and no counter).
 */
export interface HotCacheView {
  /** Entries held in the hot cache. */
  readonly items: number;
  /** Bytes the hot cache's entries account for (see the `cacheBytes` option). */
  readonly bytes: number;
  /**
   * Whether `key` with `value` can be kept now without evicting any hot entry: the hot
   * cache is under its share of the budget (main entries may still make way for it, as in
   * groupcache: the hot cache takes up to 1/8 of what main holds).
   */
  hasRoomFor(key: string, value: ByteView): boolean;
  /**
   * The hot key the next eviction would take (the least recently used live one), or
   * undefined when the hot cache is empty. Expired entries met on the way are dropped.
   */
  victimKey(): string | undefined;
}

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
  shouldPromote(
    key: string,
    value: ByteView,
    stats: Readonly<GroupStats>,
    hot: HotCacheView,
  ): boolean;
  /**
   * Optional: called on every hit of the hot cache (main-cache hits are not reported), so
   * that a policy that counts accesses sees hot keys keep being used. Must be cheap: it
   * runs on the hit path.
   */
  recordHit?(key: string): void;
}

export interface RandomPromotionOptions {
  /** Promote one in `oneIn` peer fetches on average. Default 10 (groupcache). */
  oneIn?: number;
  /** Source of randomness in [0, 1). Default `Math.random`; inject a seeded one in tests. */
  random?: () => number;
}

/**
 * groupcache's policy: promote a peer fetch with probability 1/`oneIn` (default 1/10),
 * whatever the key. Use it for groupcache-identical behaviour; a hot remote key then
 * costs about `oneIn` round trips before it stays local. (The default is
 * {@link FrequencyPromotion}.)
 */
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

export interface FrequencyPromotionOptions {
  /**
   * How many hot entries the frequency sketch is sized for at first. It grows (doubling,
   * and counting afresh) whenever the hot cache holds more entries than it is sized for,
   * up to `maxEntries`. An integer >= 1.
   * @default 1024
   */
  expectedEntries?: number;
  /**
   * The most hot entries the sketch grows to fit (it takes 8 bytes per entry: 8 MiB at
   * the default). An integer >= `expectedEntries`.
   * @default 1_048_576
   */
  maxEntries?: number;
  /**
   * Accesses recorded (peer fetches and hot hits) between two agings, per entry the
   * sketch is sized for: every `sampleFactor * entries` accesses all counts are halved, so
   * the sketch follows what is hot now, not what was hot an hour ago. A number >= 1.
   * @default 10
   */
  sampleFactor?: number;
}

/** Counters per sketch row, per entry sized for. */
const COUNTERS_PER_ENTRY = 4;
const ROWS = 4;
/** A counter's largest value (4 bits). */
const MAX_COUNT = 15;

/** murmur3's 32-bit finalizer (full avalanche), over a signed int32. */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
}

/** A well-mixed signed 32-bit hash of a key: the ring's CRC-32 through fmix32. */
function keyHash(key: string): number {
  return fmix32(crc32(key) | 0);
}

/**
 * TinyLFU-style admission (Einziger, Friedman, Manes: "TinyLFU: A Highly Efficient Cache
 * Admission Policy"): a count-min sketch of 4-bit counters (4 rows, indexes derived from
 * one 32-bit hash of the key) estimates how often each key was accessed recently: peer
 * fetches (counted by `shouldPromote`) and hot-cache hits (`recordHit`). A fetched key is
 * promoted when the hot cache has room for it, or when its estimated frequency is above
 * that of the hot entry the next eviction would take; otherwise it is not kept.
 *
 * So a hot remote key is kept after a fetch or two instead of groupcache's ~10, keys
 * fetched once never displace keys in use (a one-off scan over many keys does not flush
 * the hot cache), and every `sampleFactor` x entries accesses all counts are halved, so
 * keys that cooled down lose their place to keys hot now.
 *
 * Memory: 8 bytes per entry the sketch is sized for (it grows with the hot cache, see
 * {@link FrequencyPromotionOptions}). Cost per access: one CRC-32 of the key and 4
 * counter updates. Give each group its own instance.
 */
export class FrequencyPromotion implements HotCachePolicy {
  /** Counters, 8 per word, row r at words [r * #rowWords, (r + 1) * #rowWords). */
  #table: Uint32Array;
  /** Counters per row minus 1 (rows are a power of 2 long). */
  #mask: number;
  #rowWords: number;
  /** The current key's counter per row, as #locate finds them: word index, bit shift. */
  readonly #words = new Int32Array(ROWS);
  readonly #shifts = new Int32Array(ROWS);
  /** Entries the sketch is sized for. */
  #entries: number;
  readonly #maxEntries: number;
  readonly #sampleFactor: number;
  /** Accesses between agings. */
  #sampleSize: number;
  /** Accesses recorded since the last aging (halved with the counts). */
  #samples = 0;

  constructor({
    expectedEntries = 1024,
    maxEntries = 1 << 20,
    sampleFactor = 10,
  }: FrequencyPromotionOptions = {}) {
    if (!(Number.isSafeInteger(expectedEntries) && expectedEntries >= 1)) {
      throw new RangeError(`expectedEntries must be an integer >= 1, got ${expectedEntries}`);
    }
    if (!(Number.isSafeInteger(maxEntries) && maxEntries >= expectedEntries)) {
      throw new RangeError(
        `maxEntries must be an integer >= expectedEntries (${expectedEntries}), got ${maxEntries}`,
      );
    }
    if (!(sampleFactor >= 1) || !Number.isFinite(sampleFactor)) {
      throw new RangeError(`sampleFactor must be a finite number >= 1, got ${sampleFactor}`);
    }
    this.#maxEntries = maxEntries;
    this.#sampleFactor = sampleFactor;
    this.#table = new Uint32Array(0);
    this.#mask = 0;
    this.#rowWords = 0;
    this.#entries = 0;
    this.#sampleSize = 0;
    this.#resize(expectedEntries);
  }

  /** Entries the sketch is sized for now. */
  get sizedFor(): number {
    return this.#entries;
  }

  /** Accesses between two agings now (`sampleFactor` x {@link sizedFor}). */
  get sampleSize(): number {
    return this.#sampleSize;
  }

  /**
   * Records a peer fetch of `key`; true when the hot cache has room for it or its
   * estimated frequency (this fetch included) beats the eviction victim's.
   */
  shouldPromote(
    key: string,
    value: ByteView,
    _stats: Readonly<GroupStats> | undefined,
    hot: HotCacheView,
  ): boolean {
    if (hot.items > this.#entries && this.#entries < this.#maxEntries) {
      this.#resize(Math.min(this.#maxEntries, hot.items));
    }
    const freq = this.#increment(keyHash(key));
    if (hot.hasRoomFor(key, value)) return true;
    const victim = hot.victimKey();
    return victim === undefined || freq > this.#estimateHash(keyHash(victim));
  }

  /** Records a hit of `key` in the hot cache. */
  recordHit(key: string): void {
    this.#increment(keyHash(key));
  }

  /** Records one access of `key` (what a fetch or a hit does) and returns its estimate. */
  record(key: string): number {
    return this.#increment(keyHash(key));
  }

  /** The estimated number of recent accesses of `key` (0..15); records nothing. */
  frequency(key: string): number {
    return this.#estimateHash(keyHash(key));
  }

  /** Sizes the sketch for `entries` (rounded up to a power of 2) and clears it. */
  #resize(entries: number): void {
    let n = 1;
    while (n < entries) n *= 2;
    const counters = Math.max(8, n * COUNTERS_PER_ENTRY);
    this.#entries = n;
    this.#mask = counters - 1;
    this.#rowWords = counters / 8;
    this.#table = new Uint32Array(this.#rowWords * ROWS);
    this.#sampleSize = Math.max(1, Math.round(this.#sampleFactor * n));
    this.#samples = 0;
  }

  /**
   * Where the key's counter is in each row: word index into #table and bit shift, written
   * into #words / #shifts (preallocated: no allocation per call).
   */
  #locate(h: number): void {
    const mask = this.#mask;
    const rowWords = this.#rowWords;
    // Kirsch-Mitzenmacher: row r's index is h1 + r * h2, from the one 32-bit hash.
    const h2 = (Math.imul(h, 0x9e3779b1) >>> 16) | 1;
    for (let r = 0; r < ROWS; r++) {
      const i = (h + r * h2) & mask;
      this.#words[r] = r * rowWords + (i >>> 3);
      this.#shifts[r] = (i & 7) << 2;
    }
  }

  /**
   * Adds one to the key's counter in each row (conservative update: only the smallest
   * ones grow, which keeps collisions from inflating estimates) and returns the new
   * estimate. Ages the sketch every #sampleSize calls.
   */
  #increment(h: number): number {
    const min = this.#estimateHash(h); // locates the counters too
    if (min < MAX_COUNT) {
      const table = this.#table;
      for (let r = 0; r < ROWS; r++) {
        const w = this.#words[r] as number;
        const shift = this.#shifts[r] as number;
        if ((((table[w] as number) >>> shift) & 15) === min) {
          table[w] = (table[w] as number) + (1 << shift);
        }
      }
    }
    if (++this.#samples >= this.#sampleSize) this.#age();
    return min < MAX_COUNT ? min + 1 : MAX_COUNT;
  }

  /** The key's estimated count: the smallest of its counters. */
  #estimateHash(h: number): number {
    this.#locate(h);
    const table = this.#table;
    let min = MAX_COUNT;
    for (let r = 0; r < ROWS; r++) {
      const c = ((table[this.#words[r] as number] as number) >>> (this.#shifts[r] as number)) & 15;
      if (c < min) min = c;
    }
    return min;
  }

  /** Halves every counter (8 per word: shift, then clear what crossed a nibble). */
  #age(): void {
    const table = this.#table;
    for (let i = 0; i < table.length; i++) table[i] = ((table[i] as number) >>> 1) & 0x77777777;
    this.#samples = this.#samples >>> 1;
  }
}
