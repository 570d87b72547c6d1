import type { ByteView } from "@tinycache/byteview";
import { LRU_ENTRY_OVERHEAD, LRUCache } from "@tinycache/lru";
import type { HotCacheView } from "./hotpolicy.js";
import type { CacheStats, CacheType, RecentKey } from "./stats.js";

/**
 * One cached answer. `view === undefined` is a negative entry ("not found"), kept for
 * `negativeTtlMs` to shield the source from requests for keys that do not exist.
 */
export interface Entry {
  readonly view: ByteView | undefined;
  /** Absolute expiry in ms since the epoch; 0 = never expires. */
  readonly expiresAt: number;
  /**
   * What the entry costs in memory, as {@link entrySize} makes it: key bytes (UTF-8) +
   * value bytes, as groupcache sizes an entry, + this entry's measured overhead. (The
   * LRU adds its own per-slot overhead on top.)
   */
  readonly size: number;
  /**
   * A promise already resolved with `view`, made at the entry's first fast hit and then
   * handed to every later hit: a resolved promise is immutable, so sharing it is safe,
   * and a hit then allocates nothing at all.
   */
  resolved: Promise<ByteView> | undefined;
  /**
   * The same for a peer's request (`serveGet`): a resolved, frozen `{ value, expiresAt }`
   * made at the first served hit, so the transport's hot path allocates nothing in core.
   */
  served: Promise<Readonly<{ value: ByteView; expiresAt?: number }>> | undefined;
  /** The frozen `{ value, expiresAt }` itself, for a synchronous served hit (`serveCached`). */
  servedValue: Readonly<{ value: ByteView; expiresAt?: number }> | undefined;
}

/**
 * Memory of a positive entry beyond its key's and value's bytes and the LRU's own
 * overhead (`LRU_ENTRY_OVERHEAD`, which the LRU counts): the {@link Entry} object, its
 * ByteView, the value's Buffer object, the string ByteView keeps for `toString`, the
 * resolved promises of a hit and of a served hit once made, and the request URL a key
 * sliced out of it by a server keeps alive. Measured on Node 20 x64 by
 * `bench/entry-overhead.ts`: `--expose-gc`, heapUsed + arrayBuffers before and after a
 * Group whose budget holds about n entries loaded 4n keys (so it churns), each key
 * sliced out of a URL as a server makes it, for n from 66k to 262k; the worst per entry
 * (582 bytes) minus the LRU's, rounded up.
 */
export const ENTRY_OVERHEAD = 400;
/**
 * The same for a negative ("not found") entry: the Entry object and the key's URL
 * (measured the same way: 303 bytes, minus the LRU's).
 */
export const NEGATIVE_ENTRY_OVERHEAD = 120;

/** An entry's accounted size: key bytes (UTF-8) + value bytes + its measured overhead. */
export function entrySize(key: string, view: ByteView | undefined): number {
  const keyBytes = Buffer.byteLength(key, "utf8");
  return view === undefined
    ? keyBytes + NEGATIVE_ENTRY_OVERHEAD
    : keyBytes + view.byteLength + ENTRY_OVERHEAD;
}

/**
 * Held entries looked at per tier, per add, by the incremental sweep of expired entries
 * (see {@link TwoTierCache.add}): bounded work on the write path, and enough that the
 * sweep walks a tier faster than entries can be added to it.
 */
export const SWEEP_CHECKS_PER_ADD = 8;

class Tier {
  /**
   * Unbounded by itself: {@link TwoTierCache} keeps the two tiers under one budget. Each
   * entry counts its size plus the LRU's own per-entry overhead.
   */
  readonly lru: LRUCache<string, Entry>;
  /** @param onGone told of every key that leaves the tier (evicted, expired, deleted, replaced) */
  constructor(onGone?: (key: string) => void) {
    this.lru = new LRUCache<string, Entry>({
      sizeOf: (_k, e) => e.size,
      entryOverhead: LRU_ENTRY_OVERHEAD,
      ...(onGone === undefined ? {} : { onEvicted: onGone }),
    });
  }
  gets = 0;
  hits = 0;
  /** Hits taken by {@link TwoTierCache.fastHit}: each is one get and one hit. */
  fastHits = 0;
  evictions = 0;
  snapshot(): CacheStats {
    return {
      bytes: this.lru.bytes,
      items: this.lru.size,
      gets: this.gets + this.fastHits,
      hits: this.hits + this.fastHits,
      evictions: this.evictions,
    };
  }
}

/**
 * The main cache (keys this node owns, or loaded itself) and the hot cache (copies of
 * keys owned elsewhere) under ONE byte budget, exactly as groupcache: after an add, while
 * main + hot exceed the budget, evict the oldest hot entry if hot > main/8, else the
 * oldest main entry. Lookups try main, then hot ({@link lookup}), or hot alone for a key
 * owned elsewhere that main was never given as such ({@link lookupHot}, see
 * {@link heldForOthers}). Expired entries are never returned.
 */
export class TwoTierCache {
  /**
   * The keys main holds that were stored as owned by another node (`add`'s
   * `ownedElsewhere`): a local load after their owner failed, a peer's set. Every other
   * main key was this node's own when stored, so for a key owned elsewhere and not in
   * here, a main lookup can only miss. Kept exact: a key leaves with its main entry.
   */
  readonly #forOthers = new Set<string>();
  readonly main = new Tier((key) => {
    if (this.#forOthers.size !== 0) this.#forOthers.delete(key);
  });
  readonly hot = new Tier();
  readonly #budget: number;
  readonly #now: () => number;
  /** Whether an entry with an expiry was ever added (else there is nothing to sweep). */
  #expiring = false;
  /** For the sweep: whether an entry has expired by the clock. */
  readonly #isExpired: (key: string, e: Entry) => boolean;
  /** Told of every hot-cache hit (the hot policy's `recordHit`), if given. */
  readonly #onHotHit: ((key: string) => void) | undefined;
  /** The hot cache as a hot policy may read it. */
  readonly hotView: HotCacheView;

  /**
   * @param cacheBytes the budget of main + hot: `0` stores nothing, `Infinity` never
   *   evicts. Negative or NaN is a RangeError.
   */
  constructor(cacheBytes: number, now: () => number, onHotHit?: (key: string) => void) {
    if (!(cacheBytes >= 0)) {
      throw new RangeError(
        `cacheBytes must be >= 0 (0 caches nothing); use Infinity for no limit, got ${cacheBytes}`,
      );
    }
    this.#budget = cacheBytes;
    this.#now = now;
    this.#isExpired = (_key, e) => e.expiresAt !== 0 && e.expiresAt <= now();
    this.#onHotHit = onHotHit;
    const hot = this.hot.lru;
    const main = this.main.lru;
    const budget = cacheBytes;
    this.hotView = Object.freeze({
      get items() {
        return hot.size;
      },
      get bytes() {
        return hot.bytes;
      },
      hasRoomFor(key: string, value: ByteView): boolean {
        const size = entrySize(key, value) + LRU_ENTRY_OVERHEAD;
        if (budget === 0 || size > budget) return false;
        const hotAfter = hot.bytes + size;
        // No eviction at all, or evictions that #shrink takes from main only: it evicts
        // hot while hot > main / 8, and main settles at budget - hot.
        return main.bytes + hotAfter <= budget || 9 * hotAfter <= budget;
      },
      victimKey(): string | undefined {
        for (;;) {
          const key = hot.peekOldestKey();
          if (key === undefined) return undefined;
          const e = hot.peek(key) as Entry;
          if (e.expiresAt === 0 || e.expiresAt > now()) return key;
          hot.delete(key); // expired: it gives its place back, it is no rival
        }
      },
    });
  }

  /**
   * The hottest path: a live, never-expiring positive entry of the main cache, counted
   * with ONE increment (the snapshots add it to gets and hits). Anything else returns
   * undefined without counting, and the caller does a full {@link TwoTierCache.lookup}.
   */
  fastHit(key: string): Entry | undefined {
    const main = this.main;
    const e = main.lru.get(key);
    if (e !== undefined && e.expiresAt === 0 && e.view !== undefined) {
      main.fastHits++;
      return e;
    }
    return undefined;
  }

  /** Hits counted by fastHit (for the group's gets/cacheHits). */
  get fastHits(): number {
    return this.main.fastHits;
  }

  /** Looks in main, then hot; counts gets/hits per cache like groupcache. Synchronous. */
  lookup(key: string): Entry | undefined {
    // Main inline (the common hit); hot and expiry handling out of line.
    const main = this.main;
    main.gets++;
    const e = main.lru.get(key);
    if (e !== undefined && e.expiresAt === 0) {
      main.hits++;
      return e;
    }
    return this.#slowLookup(key, e);
  }

  #slowLookup(key: string, fromMain: Entry | undefined): Entry | undefined {
    if (fromMain !== undefined) {
      if (fromMain.expiresAt > this.#now()) {
        this.main.hits++;
        return fromMain;
      }
      this.main.lru.delete(key);
    }
    return this.lookupHot(key);
  }

  /**
   * Looks in hot alone, counting as {@link lookup} counts a hot lookup: for a key owned
   * elsewhere that {@link heldForOthers} says main cannot hold.
   */
  lookupHot(key: string): Entry | undefined {
    const e = this.#lookupIn(this.hot, key);
    if (e !== undefined && this.#onHotHit !== undefined) this.#onHotHit(key);
    return e;
  }

  /**
   * Whether main may hold `key` though another node owns it: it was stored there as owned
   * elsewhere and has not left since. False for every key main was given as its own (a
   * key that changed owner since is then asked of its new owner: the copy there is the
   * one sets and removes keep current).
   */
  heldForOthers(key: string): boolean {
    return this.#forOthers.size !== 0 && this.#forOthers.has(key);
  }

  /** How many keys {@link heldForOthers} holds (for tests: it never outgrows main). */
  get heldForOthersCount(): number {
    return this.#forOthers.size;
  }

  #lookupIn(tier: Tier, key: string): Entry | undefined {
    tier.gets++;
    const e = tier.lru.get(key);
    if (e === undefined) return undefined;
    if (e.expiresAt !== 0 && e.expiresAt <= this.#now()) {
      // Dropped at once so an expired value can never be served, and its bytes return to
      // the budget.
      tier.lru.delete(key);
      return undefined;
    }
    tier.hits++;
    return e;
  }

  /**
   * Stores `entry` in one cache and drops any copy in the other. Returns false when
   * nothing was stored: an already expired entry, or an entry larger than the whole
   * budget (storing it would only flush everything else; groupcache would), or any entry
   * under a zero budget. Either way the entry is the key's newest answer, so any older
   * copy of the key is dropped from both caches: it must not outlive its successor.
   *
   * Expired entries leave when a lookup meets them, and by an incremental sweep done
   * here: once any entry has an expiry, each add looks at the next
   * {@link SWEEP_CHECKS_PER_ADD} entries of each tier (round robin) and drops the expired
   * ones, so entries nobody asks for again (typically negative ones) give their bytes
   * back without a timer, at a bounded cost per write.
   *
   * @param ownedElsewhere for main: whether another node owns `key` (see
   *   {@link heldForOthers}); ignored for hot.
   */
  add(which: CacheType, key: string, entry: Entry, ownedElsewhere = false): boolean {
    const tier = which === "main" ? this.main : this.hot;
    const other = which === "main" ? this.hot : this.main;
    other.lru.delete(key);
    if (
      this.#budget === 0 ||
      entry.size + LRU_ENTRY_OVERHEAD > this.#budget ||
      (entry.expiresAt !== 0 && entry.expiresAt <= this.#now())
    ) {
      tier.lru.delete(key);
      return false;
    }
    tier.lru.set(key, entry);
    // After the set (whose notice of a replaced entry drops the key) and before the
    // evictions below (which may take this very entry, and drop it again).
    if (ownedElsewhere && tier === this.main) this.#forOthers.add(key);
    if (entry.expiresAt !== 0) this.#expiring = true;
    if (this.#expiring) this.sweep(SWEEP_CHECKS_PER_ADD);
    this.#shrink();
    return true;
  }

  /**
   * Drops the expired entries among the next `checks` entries of each tier (round robin
   * over the tiers' slots). Returns how many left.
   */
  sweep(checks: number): number {
    return (
      this.main.lru.sweepExpired(checks, this.#isExpired) +
      this.hot.lru.sweepExpired(checks, this.#isExpired)
    );
  }

  #shrink(): void {
    const main = this.main;
    const hot = this.hot;
    for (;;) {
      const mainBytes = main.lru.bytes;
      const hotBytes = hot.lru.bytes;
      if (mainBytes + hotBytes <= this.#budget) return;
      const victim = hotBytes > mainBytes / 8 ? hot : main;
      if (victim.lru.removeOldest() === undefined) return; // nothing left to evict
      victim.evictions++;
    }
  }

  /** Drops the key from both caches. */
  remove(key: string): void {
    this.main.lru.delete(key);
    this.hot.lru.delete(key);
  }

  stats(which: CacheType): CacheStats {
    return which === "main" ? this.main.snapshot() : this.hot.snapshot();
  }

  /**
   * Up to `limit` live keys of one cache, most recently used first, read without
   * changing recency or any counter. Expired entries are skipped; the walk looks at no
   * more than `4 * limit + 16` entries, so a head full of expired entries cannot make a
   * status read walk the whole cache (it then returns fewer keys).
   */
  recent(which: CacheType, limit: number): RecentKey[] {
    const out: RecentKey[] = [];
    if (limit === 0) return out;
    const now = this.#now();
    let budget = 4 * limit + 16;
    for (const [key, e] of (which === "main" ? this.main : this.hot).lru.entries()) {
      if (budget-- === 0) break;
      if (e.expiresAt !== 0 && e.expiresAt <= now) continue;
      out.push({ key, notFound: e.view === undefined });
      if (out.length === limit) break;
    }
    return out;
  }
}
