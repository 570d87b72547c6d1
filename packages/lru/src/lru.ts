import { keyBytes, valueBytes } from "./size.js";

/** Why an entry left the cache, as passed to {@link LRUCacheOptions.onEvicted}. */
export type EvictionReason =
  /** Pushed out to respect `maxBytes`/`maxEntries`, or taken by `removeOldest()`. */
  | "evict"
  /** Removed by `delete()`, or by a `set()` whose new value is too large to store. */
  | "delete"
  /** Overwritten by `set()` with a different value. */
  | "replace"
  /** Removed by `clear()`. */
  | "clear"
  /** Found past its TTL (by an access, an eviction, an overwrite or `purgeExpired()`). */
  | "expire";

export interface LRUCacheOptions<K, V> {
  /**
   * Upper bound on {@link LRUCache.bytes}, the sum of entry sizes. A positive safe integer,
   * or `Infinity` (the default, also when absent) for no byte bound. `0` is a RangeError:
   * a cache that can hold no byte is a mistake, not a setting.
   */
  maxBytes?: number;
  /**
   * Upper bound on the number of entries. A positive safe integer, or `Infinity` (the
   * default, also when absent) for no entry bound; `0` is a RangeError. When finite, slot
   * arrays never grow past it.
   */
  maxEntries?: number;
  /**
   * Size of an entry in bytes, a non-negative safe integer (else RangeError at `set`, with
   * the cache unchanged). Default: UTF-8 bytes of the key if it is a string (other keys
   * count 0) plus, for the value, a string's UTF-8 length or the `byteLength` of any
   * object that has a numeric one (Uint8Array, Buffer, ArrayBuffer, DataView, ByteView).
   * Any other value is a TypeError at `set` unless you pass `sizeOf`.
   */
  sizeOf?: (key: K, value: V) => number;
  /**
   * Bytes added to the size of every entry, on top of the default or given `sizeOf`: what
   * an entry costs beyond its key and value bytes, so that `maxBytes` bounds memory
   * rather than payload. A non-negative safe integer; default 0 (sizes are key + value
   * bytes only). This cache's own cost per entry (its Map entry, slot arrays and a short
   * string key's header) is measured at about {@link LRU_ENTRY_OVERHEAD} bytes on Node 20
   * x64: see the README.
   */
  entryOverhead?: number;
  /**
   * Called once for every entry that leaves the cache, after it has left and the cache is
   * consistent again, so it may call back into the cache. Not called when `set` stores
   * the very same value (`Object.is`) again under its key. If it throws, the remaining
   * notifications still run and the first error is rethrown by the call that caused them.
   */
  onEvicted?: (key: K, value: V, reason: EvictionReason) => void;
  /**
   * Default time to live in milliseconds for entries set without their own `ttlMs`: a
   * number > 0, or `Infinity` (the default, also when absent) for entries that never
   * expire. `0` is a RangeError (an entry that expires as it is stored is never useful).
   * Expired entries are never returned and leave lazily, when something touches them (no
   * timers).
   */
  ttlMs?: number;
  /**
   * The clock for TTLs, in milliseconds. Default `performance.now()` (monotonic, so wall
   * clock jumps do not expire or revive entries). Meant for tests, to move time without
   * sleeping.
   */
  now?: () => number;
}

export interface SetOptions {
  /**
   * Time to live of this entry in milliseconds from now, overriding the cache's `ttlMs`:
   * a number > 0, or `Infinity` for an entry that never expires. Absent: the cache's
   * `ttlMs`. `0` is a RangeError, with the cache unchanged. To store an absolute
   * wall-clock expiry, pass `expiresAtEpochMs - Date.now()`.
   */
  ttlMs?: number;
}

const NONE = -1;

/**
 * This cache's own memory per entry, in bytes, beyond the key's UTF-8 bytes and the
 * value: the Map entry (with the deleted slots a churning Map keeps until it rehashes),
 * one slot of each parallel array (with the slack of doubling), and the header of a short
 * string key. Measured on Node 20 x64 by `bench/entry-overhead.ts`: `--expose-gc`,
 * heapUsed + arrayBuffers of `process.memoryUsage()` before and after a cache bounded to
 * n entries took 4n fresh 10-character keys, for n from 66k to 262k; the worst (178)
 * rounded up. Pass it (plus your values' own overhead) as `entryOverhead` to bound memory.
 */
export const LRU_ENTRY_OVERHEAD = 184;
const INITIAL_SLOTS = 256;

type NumberArray = Float64Array | Int32Array | Uint32Array;

/**
 * A byte-bounded LRU map.
 *
 * Layout (the one the fastest JS LRUs share): a `Map` from key to slot index; keys, values
 * and sizes in parallel arrays indexed by slot; a doubly linked recency list as two
 * `Int32Array`s; freed slots chained through `next` and reused. `get` allocates nothing.
 * TTL expiries live in a `Float64Array` allocated the first time a TTL is used, so a cache
 * without TTL pays one `undefined` check per access.
 */
export class LRUCache<K, V> implements Iterable<[K, V]> {
  readonly #map = new Map<K, number>();
  #keys: (K | undefined)[] = [];
  #values: (V | undefined)[] = [];
  #sizes: Float64Array;
  /**
   * UTF-8 bytes of each slot's key under the default `sizeOf`, so overwriting a key does
   * not re-scan its characters.
   */
  #keyBytes: Uint32Array;
  /**
   * Recency links: `#next` toward the tail, `#prev` toward the head. The head's `#prev`
   * and the tail's `#next` are stale (ends are found by comparing with `#head`/`#tail`),
   * which saves writes on every move to the head.
   */
  #next: Int32Array;
  #prev: Int32Array;
  /** Absolute expiry per slot on the `now` clock; 0 = never. Undefined until a TTL is used. */
  #expires: Float64Array | undefined = undefined;
  #capacity: number;
  /** Slots `[0, #top)` have been handed out at least once. */
  #top = 0;
  /** Head of the free-slot chain (through `#next`). */
  #free = NONE;
  /** Most recent entry. */
  #head = NONE;
  /** Least recent entry. */
  #tail = NONE;
  #bytes = 0;
  /** Next slot {@link LRUCache.sweepExpired} looks at. */
  #hand = 0;

  readonly #maxBytes: number;
  readonly #overhead: number;
  readonly #maxEntries: number;
  readonly #sizeOf: ((key: K, value: V) => number) | undefined;
  readonly #onEvicted: ((key: K, value: V, reason: EvictionReason) => void) | undefined;
  /** Default TTL; `Infinity` = never expires. */
  readonly #ttlMs: number;
  readonly #now: () => number;

  // Notifications collected during a mutation and delivered once the state is consistent.
  // Reused across calls so a set that evicts one entry allocates nothing for it.
  #pendingKeys: (K | undefined)[] = [];
  #pendingValues: (V | undefined)[] = [];
  #pendingReasons: EvictionReason[] = [];
  #pendingCount = 0;
  #delivering = false;

  constructor(options: LRUCacheOptions<K, V> = {}) {
    if (typeof options !== "object" || options === null) {
      throw new TypeError("LRUCache options must be an object");
    }
    const {
      maxBytes = Number.POSITIVE_INFINITY,
      maxEntries = Number.POSITIVE_INFINITY,
      sizeOf,
      entryOverhead = 0,
      onEvicted,
      ttlMs = Number.POSITIVE_INFINITY,
      now,
    } = options;
    if (typeof entryOverhead !== "number") {
      throw new TypeError(`entryOverhead must be a number, got ${typeof entryOverhead}`);
    }
    if (!Number.isSafeInteger(entryOverhead) || entryOverhead < 0) {
      throw new RangeError(`entryOverhead must be an integer >= 0, got ${entryOverhead}`);
    }
    checkBound("maxBytes", maxBytes);
    checkBound("maxEntries", maxEntries);
    checkTtl("ttlMs", ttlMs);
    if (sizeOf !== undefined && typeof sizeOf !== "function") {
      throw new TypeError("sizeOf must be a function");
    }
    if (onEvicted !== undefined && typeof onEvicted !== "function") {
      throw new TypeError("onEvicted must be a function");
    }
    if (now !== undefined && typeof now !== "function") {
      throw new TypeError("now must be a function");
    }
    this.#maxBytes = maxBytes;
    this.#maxEntries = maxEntries;
    this.#sizeOf = sizeOf;
    this.#overhead = entryOverhead;
    this.#onEvicted = onEvicted;
    this.#ttlMs = ttlMs;
    this.#now = now ?? (() => performance.now());
    this.#capacity = Math.min(INITIAL_SLOTS, this.#maxEntries);
    this.#sizes = new Float64Array(this.#capacity);
    this.#keyBytes = new Uint32Array(this.#capacity);
    this.#next = new Int32Array(this.#capacity);
    this.#prev = new Int32Array(this.#capacity);
    if (this.#ttlMs !== Number.POSITIVE_INFINITY) {
      this.#expires = new Float64Array(this.#capacity);
    }
  }

  /** Number of entries held (expired entries count until they are noticed). */
  get size(): number {
    return this.#map.size;
  }

  /** Sum of the sizes of the entries held; never above `maxBytes` after a call returns. */
  get bytes(): number {
    return this.#bytes;
  }

  /** The byte bound (`Infinity` = none). */
  get maxBytes(): number {
    return this.#maxBytes;
  }

  /** The entry bound (`Infinity` = none). */
  get maxEntries(): number {
    return this.#maxEntries;
  }

  /** The value for `key` and makes it the most recent entry; `undefined` if absent or expired. */
  get(key: K): V | undefined {
    const i = this.#map.get(key);
    if (i === undefined) return undefined;
    const expires = this.#expires;
    if (expires !== undefined) {
      const at = expires[i] as number;
      if (at !== 0 && at <= this.#now()) {
        this.#remove(i, "expire");
        this.#deliver();
        return undefined;
      }
    }
    if (i !== this.#head) this.#moveToHead(i);
    return this.#values[i];
  }

  /** The value for `key` without changing recency; `undefined` if absent or expired. */
  peek(key: K): V | undefined {
    const i = this.#live(key);
    return i === NONE ? undefined : this.#values[i];
  }

  /** Whether `key` is held and not expired. Does not change recency. */
  has(key: K): boolean {
    return this.#live(key) !== NONE;
  }

  /**
   * Milliseconds until `key` expires: `Infinity` if it has no TTL, `undefined` if it is
   * absent or expired. Does not change recency.
   */
  remainingTtl(key: K): number | undefined {
    const i = this.#live(key);
    if (i === NONE) return undefined;
    const at = this.#expires === undefined ? 0 : (this.#expires[i] as number);
    return at === 0 ? Number.POSITIVE_INFINITY : at - this.#now();
  }

  /**
   * Stores `value` under `key` as the most recent entry, then evicts least recent entries
   * until `bytes <= maxBytes` and `size <= maxEntries`.
   *
   * @returns `true` if stored; `false` if the entry alone is larger than `maxBytes`: then it
   *   is not stored, nothing is evicted, and any old value of `key` is removed (reported
   *   with reason `"delete"`, or `"expire"` if it had already expired).
   * @throws TypeError if the default `sizeOf` cannot measure `value`; RangeError if the
   *   size or `ttlMs` is invalid. The cache is unchanged when it throws.
   */
  set(key: K, value: V, options?: SetOptions): boolean {
    const i = this.#map.get(key);
    // Measure before changing anything, so a throwing sizeOf leaves the cache unchanged.
    let kBytes = 0;
    let size: number;
    if (this.#sizeOf === undefined) {
      kBytes = i !== undefined ? (this.#keyBytes[i] as number) : keyBytes(key);
      size = kBytes + valueBytes(value) + this.#overhead;
    } else {
      size = this.#measure(key, value) + this.#overhead;
    }
    // Rare cases (TTLs ever used, per-call options, an entry too large) take the general
    // path; the common ones below stay small enough for V8 to inline into callers.
    if (options !== undefined || this.#expires !== undefined || size > this.#maxBytes) {
      return this.#setGeneral(key, value, i, size, kBytes, options);
    }
    if (i !== undefined) {
      this.#replace(i, value, size);
      return true;
    }
    this.#insert(key, value, size, kBytes);
    return true;
  }

  /** Removes `key`. Returns whether a live (unexpired) entry was removed. */
  delete(key: K): boolean {
    const i = this.#map.get(key);
    if (i === undefined) return false;
    const expired = this.#expired(i);
    this.#remove(i, expired ? "expire" : "delete");
    this.#deliver();
    return !expired;
  }

  /**
   * Removes the least recent live entry and returns it as `[key, value]` (reason
   * `"evict"`), or `undefined` if there is none. Expired entries met on the way leave with
   * reason `"expire"`.
   */
  removeOldest(): [K, V] | undefined {
    let result: [K, V] | undefined;
    while (this.#tail !== NONE) {
      const i = this.#tail;
      if (this.#expired(i)) {
        this.#remove(i, "expire");
        continue;
      }
      result = [this.#keys[i] as K, this.#values[i] as V];
      this.#remove(i, "evict");
      break;
    }
    this.#deliver();
    return result;
  }

  /**
   * The least recent live key (the one the next eviction takes), without changing recency,
   * or `undefined` if there is none. O(1): like `peek`, it removes the expired entries it
   * meets at the old end (reason `"expire"`), each at most once.
   */
  peekOldestKey(): K | undefined {
    let i = this.#tail;
    if (i === NONE) return undefined;
    if (this.#expires !== undefined) {
      while (i !== NONE && this.#expired(i)) {
        this.#remove(i, "expire");
        i = this.#tail;
      }
      this.#deliver();
      if (i === NONE) return undefined;
    }
    return this.#keys[i] as K;
  }

  /** Removes every entry (reason `"clear"`, least recent first). */
  clear(): void {
    if (this.#onEvicted !== undefined) {
      for (
        let i = this.#tail;
        i !== NONE;
        i = i === this.#head ? NONE : (this.#prev[i] as number)
      ) {
        this.#enqueue(this.#keys[i] as K, this.#values[i] as V, "clear");
      }
    }
    this.#map.clear();
    this.#keys = [];
    this.#values = [];
    this.#top = 0;
    this.#hand = 0;
    this.#free = NONE;
    this.#head = NONE;
    this.#tail = NONE;
    this.#bytes = 0;
    this.#deliver();
  }

  /** Removes every expired entry now (reason `"expire"`). Returns how many left. */
  purgeExpired(): number {
    if (this.#expires === undefined) return 0;
    const now = this.#now();
    let n = 0;
    for (let i = this.#tail; i !== NONE; ) {
      const older = i;
      i = older === this.#head ? NONE : (this.#prev[older] as number);
      const at = this.#expires[older] as number;
      if (at !== 0 && at <= now) {
        this.#remove(older, "expire");
        n++;
      }
    }
    this.#deliver();
    return n;
  }

  /**
   * Removes expired entries met among the next `maxChecks` held entries, visited in slot
   * order from where the previous call stopped (round robin), so that repeated small calls
   * sweep the whole cache at a bounded cost each: a cheap periodic sweep for a timer tick
   * or a write, where {@link purgeExpired} walks everything at once. An entry is expired
   * when its TTL has passed or, when given, `isExpired(key, value)` says so (for values
   * that carry their own expiry). Leaving entries are reported with reason `"expire"`.
   * Returns how many left. Does not change recency.
   */
  sweepExpired(maxChecks: number, isExpired?: (key: K, value: V) => boolean): number {
    if (!(maxChecks > 0) || this.#map.size === 0) return 0;
    if (this.#expires === undefined && isExpired === undefined) return 0;
    const now = this.#expires === undefined ? 0 : this.#now();
    const checks = Math.min(maxChecks, this.#top);
    let n = 0;
    for (let c = 0; c < checks; c++) {
      if (this.#hand >= this.#top) this.#hand = 0;
      const i = this.#hand++;
      const key = this.#keys[i] as K;
      // A freed slot, or one reused for another key, is not this key's slot.
      if (this.#map.get(key) !== i) continue;
      const at = this.#expires === undefined ? 0 : (this.#expires[i] as number);
      if ((at !== 0 && at <= now) || isExpired?.(key, this.#values[i] as V) === true) {
        this.#remove(i, "expire");
        n++;
      }
    }
    this.#deliver();
    return n;
  }

  /**
   * Keys, most recent first, skipping expired entries (without removing them) and without
   * changing recency. Walks the order as it was when iteration started; entries removed
   * meanwhile are skipped.
   */
  *keys(): IterableIterator<K> {
    for (const i of this.#liveSlots()) yield this.#keys[i] as K;
  }

  /** Values, most recent first; see {@link keys}. */
  *values(): IterableIterator<V> {
    for (const i of this.#liveSlots()) yield this.#values[i] as V;
  }

  /** `[key, value]` pairs, most recent first; see {@link keys}. */
  *entries(): IterableIterator<[K, V]> {
    for (const i of this.#liveSlots()) yield [this.#keys[i] as K, this.#values[i] as V];
  }

  [Symbol.iterator](): IterableIterator<[K, V]> {
    return this.entries();
  }

  get [Symbol.toStringTag](): string {
    return "LRUCache";
  }

  // --- internals ---

  /** `set` of a held key, no TTL in play: overwrite in place, then restore the bounds. */
  #replace(i: number, value: V, size: number): void {
    if (this.#onEvicted !== undefined) {
      const old = this.#values[i] as V;
      if (!Object.is(old, value)) this.#enqueue(this.#keys[i] as K, old, "replace");
    }
    this.#values[i] = value;
    this.#bytes += size - (this.#sizes[i] as number);
    this.#sizes[i] = size;
    if (i !== this.#head) this.#moveToHead(i);
    // The entry fits alone, so this stops before reaching it at the head.
    if (this.#bytes > this.#maxBytes) {
      while (this.#bytes > this.#maxBytes) this.#evictTail();
    }
    if (this.#pendingCount !== 0) this.#deliver();
  }

  /**
   * `set` of a new key, no TTL in play. When the cache is full, the least recent entries
   * leave first and the last one's slot is reused in place for the new entry (the same
   * entries leave, in the same order, as inserting first and evicting after would).
   */
  #insert(key: K, value: V, size: number, kBytes: number): void {
    let i: number;
    if (this.#map.size >= this.#maxEntries || this.#bytes + size > this.#maxBytes) {
      i = this.#reclaim(size);
      this.#keys[i] = key;
      this.#values[i] = value;
      this.#sizes[i] = size;
      this.#keyBytes[i] = kBytes;
      // The reclaimed slot is still linked, as the tail.
      if (i !== this.#head) this.#moveToHead(i);
    } else {
      i = this.#allocate();
      this.#keys[i] = key;
      this.#values[i] = value;
      this.#sizes[i] = size;
      this.#keyBytes[i] = kBytes;
      this.#linkHead(i);
    }
    this.#map.set(key, i);
    this.#bytes += size;
    if (this.#pendingCount !== 0) this.#deliver();
  }

  /**
   * Evicts least recent entries (none is expired: no TTL has been used) until an entry of
   * `size` fits, and returns the slot of the last one evicted, left linked as the tail for
   * the caller to fill. Slots evicted before it go to the free list.
   */
  #reclaim(size: number): number {
    const keys = this.#keys;
    const onEvicted = this.#onEvicted;
    for (;;) {
      const t = this.#tail;
      const key = keys[t] as K;
      this.#map.delete(key);
      this.#bytes -= this.#sizes[t] as number;
      if (onEvicted !== undefined) this.#enqueue(key, this.#values[t] as V, "evict");
      if (this.#map.size < this.#maxEntries && this.#bytes + size <= this.#maxBytes) return t;
      // Still too full: t was not the only entry (an empty cache has room for an entry
      // that fits alone), so it has a predecessor that becomes the tail.
      const p = this.#prev[t] as number;
      this.#tail = p;
      keys[t] = undefined;
      this.#values[t] = undefined;
      this.#next[t] = this.#free;
      this.#free = t;
    }
  }

  #linkHead(i: number): void {
    const head = this.#head;
    this.#next[i] = head;
    if (head !== NONE) this.#prev[head] = i;
    else this.#tail = i;
    this.#head = i;
  }

  /** `set` with TTLs in play, per-call options, or an entry larger than `maxBytes`. */
  #setGeneral(
    key: K,
    value: V,
    slot: number | undefined,
    size: number,
    kBytes: number,
    options: SetOptions | undefined,
  ): boolean {
    let i = slot;
    let ttl = this.#ttlMs;
    if (options !== undefined && options.ttlMs !== undefined) {
      checkTtl("ttlMs", options.ttlMs);
      ttl = options.ttlMs;
    }
    if (size > this.#maxBytes) {
      if (i !== undefined) {
        this.#remove(i, this.#expired(i) ? "expire" : "delete");
        this.#deliver();
      }
      return false;
    }
    let expiresAt = 0; // never
    if (ttl !== Number.POSITIVE_INFINITY) {
      expiresAt = this.#now() + ttl;
      if (this.#expires === undefined) this.#expires = new Float64Array(this.#capacity);
    }
    if (i !== undefined) {
      const old = this.#values[i] as V;
      if (this.#onEvicted !== undefined && !Object.is(old, value)) {
        this.#enqueue(this.#keys[i] as K, old, this.#expired(i) ? "expire" : "replace");
      }
      this.#values[i] = value;
      this.#bytes += size - (this.#sizes[i] as number);
      this.#sizes[i] = size;
      if (this.#expires !== undefined) this.#expires[i] = expiresAt;
      if (i !== this.#head) this.#moveToHead(i);
    } else {
      if (this.#map.size >= this.#maxEntries) this.#evictTail();
      i = this.#allocate();
      this.#keys[i] = key;
      this.#values[i] = value;
      this.#sizes[i] = size;
      this.#keyBytes[i] = kBytes;
      if (this.#expires !== undefined) this.#expires[i] = expiresAt;
      this.#linkHead(i);
      this.#map.set(key, i);
      this.#bytes += size;
    }
    // The new entry fits alone, so this stops before reaching it at the head.
    while (this.#bytes > this.#maxBytes) this.#evictTail();
    if (this.#pendingCount !== 0) this.#deliver();
    return true;
  }

  /** Slots of live entries in recency order, checked against a key snapshot per step. */
  *#liveSlots(): Generator<number> {
    // Snapshot the keys so that callers may touch the cache while iterating without
    // looping forever (a get() moves the entry to the head of the list being walked).
    const order: K[] = [];
    for (let i = this.#head; i !== NONE; i = i === this.#tail ? NONE : (this.#next[i] as number)) {
      order.push(this.#keys[i] as K);
    }
    for (const key of order) {
      const i = this.#map.get(key);
      if (i === undefined || this.#expired(i)) continue;
      yield i;
    }
  }

  /** Size from the user's `sizeOf`, validated. */
  #measure(key: K, value: V): number {
    const size = (this.#sizeOf as (key: K, value: V) => number)(key, value);
    if (typeof size !== "number") {
      throw new TypeError(`sizeOf must return a number, got ${typeof size}`);
    }
    if (!Number.isSafeInteger(size) || size < 0) {
      throw new RangeError(`sizeOf must return a non-negative integer, got ${size}`);
    }
    return size;
  }

  /** Slot of `key` if held and unexpired; removes it (reason "expire") if expired. */
  #live(key: K): number {
    const i = this.#map.get(key);
    if (i === undefined) return NONE;
    if (this.#expired(i)) {
      this.#remove(i, "expire");
      this.#deliver();
      return NONE;
    }
    return i;
  }

  #expired(i: number): boolean {
    if (this.#expires === undefined) return false;
    const at = this.#expires[i] as number;
    return at !== 0 && at <= this.#now();
  }

  #evictTail(): void {
    const i = this.#tail;
    this.#remove(i, this.#expired(i) ? "expire" : "evict");
  }

  /** Moves slot `i`, which is not the head, to the head: at most five writes. */
  #moveToHead(i: number): void {
    const next = this.#next;
    const prev = this.#prev;
    const p = prev[i] as number;
    if (i === this.#tail) {
      this.#tail = p;
    } else {
      const n = next[i] as number;
      next[p] = n;
      prev[n] = p;
    }
    const head = this.#head;
    next[i] = head;
    prev[head] = i;
    this.#head = i;
  }

  /** Unlinks slot `i`, frees it, and queues the notification. */
  #remove(i: number, reason: EvictionReason): void {
    const next = this.#next;
    const prev = this.#prev;
    if (i === this.#head) {
      if (i === this.#tail) {
        this.#head = NONE;
        this.#tail = NONE;
      } else {
        this.#head = next[i] as number;
      }
    } else if (i === this.#tail) {
      this.#tail = prev[i] as number;
    } else {
      const p = prev[i] as number;
      const n = next[i] as number;
      next[p] = n;
      prev[n] = p;
    }
    const key = this.#keys[i] as K;
    this.#map.delete(key);
    this.#bytes -= this.#sizes[i] as number;
    if (this.#onEvicted !== undefined) this.#enqueue(key, this.#values[i] as V, reason);
    // Drop the references so the key and value can be collected.
    this.#keys[i] = undefined;
    this.#values[i] = undefined;
    next[i] = this.#free;
    this.#free = i;
  }

  #allocate(): number {
    const free = this.#free;
    if (free !== NONE) {
      this.#free = this.#next[free] as number;
      return free;
    }
    if (this.#top === this.#capacity) this.#grow();
    return this.#top++;
  }

  #grow(): void {
    const capacity = Math.min(this.#capacity * 2, this.#maxEntries);
    this.#sizes = resized(this.#sizes, capacity);
    this.#keyBytes = resized(this.#keyBytes, capacity);
    this.#next = resized(this.#next, capacity);
    this.#prev = resized(this.#prev, capacity);
    if (this.#expires !== undefined) this.#expires = resized(this.#expires, capacity);
    this.#capacity = capacity;
  }

  #enqueue(key: K, value: V, reason: EvictionReason): void {
    const n = this.#pendingCount++;
    this.#pendingKeys[n] = key;
    this.#pendingValues[n] = value;
    this.#pendingReasons[n] = reason;
  }

  /**
   * Delivers queued notifications. A callback that mutates the cache queues more; the
   * outermost delivery loop picks them up, so each runs once, in order, after the state
   * that produced it is consistent.
   */
  #deliver(): void {
    if (this.#delivering || this.#pendingCount === 0) return;
    const onEvicted = this.#onEvicted as (key: K, value: V, reason: EvictionReason) => void;
    this.#delivering = true;
    let failed = false;
    let error: unknown;
    try {
      for (let j = 0; j < this.#pendingCount; j++) {
        const key = this.#pendingKeys[j] as K;
        const value = this.#pendingValues[j] as V;
        this.#pendingKeys[j] = undefined;
        this.#pendingValues[j] = undefined;
        try {
          onEvicted(key, value, this.#pendingReasons[j] as EvictionReason);
        } catch (e) {
          if (!failed) {
            failed = true;
            error = e;
          }
        }
      }
    } finally {
      if (this.#pendingCount > 1024) {
        // Do not keep a huge queue around after a clear() of a big cache.
        this.#pendingKeys = [];
        this.#pendingValues = [];
        this.#pendingReasons = [];
      }
      this.#pendingCount = 0;
      this.#delivering = false;
    }
    if (failed) throw error;
  }
}

function resized<T extends NumberArray>(a: T, length: number): T {
  const b = new (a.constructor as new (n: number) => T)(length);
  b.set(a);
  return b;
}

/** A bound: a positive safe integer, or Infinity for none. */
function checkBound(name: string, v: unknown): asserts v is number {
  if (typeof v !== "number") throw new TypeError(`${name} must be a number, got ${typeof v}`);
  if (v !== Number.POSITIVE_INFINITY && !(Number.isSafeInteger(v) && v > 0)) {
    throw new RangeError(
      `${name} must be an integer > 0; use Infinity (or leave it out) for no limit, got ${v}`,
    );
  }
}

/** A TTL: milliseconds > 0, or Infinity for no expiry. */
function checkTtl(name: string, v: unknown): asserts v is number {
  if (typeof v !== "number") throw new TypeError(`${name} must be a number, got ${typeof v}`);
  if (!(v > 0)) {
    throw new RangeError(
      `${name} must be > 0 milliseconds; use Infinity (or leave it out) for no expiry, got ${v}`,
    );
  }
}
