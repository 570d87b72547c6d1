import { balancedHash, balancedHashInt } from "./balanced.js";
import { crc32, crc32Int } from "./crc32.js";

/**
 * A ring hash: maps a string to an unsigned 32-bit integer. It must be deterministic,
 * and every member of a cluster must use the same one. Results are coerced with `>>> 0`.
 */
export type HashFunction = (s: string) => number;

/** Options of {@link HashRing}. */
export interface HashRingOptions {
  /**
   * Points ("virtual nodes") per node. More points spread keys more evenly at the cost
   * of memory and rebuild time. Must be an integer >= 1.
   * @default 50 (golang/groupcache's default)
   */
  replicas?: number;
  /**
   * Hash of node points and keys. Keep the default to pick the same owners as
   * golang/groupcache; {@link balancedHash} spreads keys more evenly but is not
   * Go-compatible.
   * @default crc32
   */
  hash?: HashFunction;
}

/** Bucket table size bounds: 2^MIN_BITS .. 2^MAX_BITS entries (Uint32, so <= 256 KiB). */
const MIN_BITS = 4;
const MAX_BITS = 16;

const EMPTY_POINTS = new Uint32Array(0);
const EMPTY_NODES: readonly string[] = Object.freeze([]);

function checkNode(node: unknown): asserts node is string {
  if (typeof node !== "string") {
    throw new TypeError(`HashRing: a node must be a string, got ${typeof node}`);
  }
  if (node.length === 0) throw new TypeError("HashRing: a node must be a non-empty string");
}

/**
 * A consistent-hash ring, bit-compatible with golang/groupcache's `consistenthash.Map`
 * when used with the default options.
 *
 * Point `i` of node `N` is `hash(String(i) + N)` for `i` in `0 .. replicas-1`; the owner
 * of a key is the node of the first point `>= hash(key)`, wrapping around past the last
 * point. When two points have the same value, the node added later wins (Go overwrites
 * its map entry). The ring is always rebuilt from the node list in insertion order, so a
 * ring after any sequence of `add`/`remove`/`set` owns keys exactly as a fresh ring with
 * the same `nodes` added in that order.
 *
 * Lookups allocate nothing for ASCII keys: the key is hashed straight from its UTF-16
 * code units, and the owner is found through a bucket table indexed by the top bits of
 * the hash, which narrows the binary search over the sorted points to about one entry.
 */
export class HashRing {
  readonly #replicas: number;
  /**
   * The hash, returning the same bits as a signed int32. Lookups stay in int32 because V8
   * boxes a returned uint32 above 2^31 as a heap number: one allocation per lookup.
   */
  readonly #hashInt: HashFunction;
  /** Nodes in insertion order; `nodes` hands out this frozen array. */
  #nodes: readonly string[] = EMPTY_NODES;
  /** Node -> its `replicas` point values, so a rebuild does not rehash every node. */
  readonly #pointCache = new Map<string, Uint32Array>();
  /** Distinct point values, ascending. */
  #points: Uint32Array = EMPTY_POINTS;
  /** #points with the sign bit flipped (`v ^ 0x80000000`), so signed order = unsigned order. */
  #keys: Int32Array = new Int32Array(0);
  /** Parallel to #points: the index in #nodes of the node that owns the point. */
  #owners: Uint32Array = EMPTY_POINTS;
  /** #buckets[j] = index of the first point >= j << #shift; one extra entry = #points.length. */
  #buckets: Uint32Array = new Uint32Array(2);
  #shift = 32 - MIN_BITS;
  /** Scratch for getN's "already taken" marks, stamped with #epoch to avoid clearing. */
  #seen: Uint32Array = EMPTY_POINTS;
  #epoch = 0;

  constructor(options: HashRingOptions = {}) {
    if (typeof options !== "object" || options === null) {
      throw new TypeError("HashRing: options must be an object");
    }
    const { replicas = 50, hash = crc32 } = options;
    if (typeof replicas !== "number" || !Number.isInteger(replicas) || replicas < 1) {
      throw new RangeError(`HashRing: replicas must be an integer >= 1, got ${String(replicas)}`);
    }
    if (replicas > 0x10000) {
      // Keeps point count * node count well inside typed-array and sort limits.
      throw new RangeError(`HashRing: replicas must be <= 65536, got ${replicas}`);
    }
    if (typeof hash !== "function") {
      throw new TypeError("HashRing: hash must be a function (s: string) => number");
    }
    this.#replicas = replicas;
    this.#hashInt =
      hash === crc32 ? crc32Int : hash === balancedHash ? balancedHashInt : (s) => hash(s) | 0;
  }

  /** Points per node, as configured. */
  get replicas(): number {
    return this.#replicas;
  }

  /** The nodes, in insertion order (a frozen array; a new one after each change). */
  get nodes(): readonly string[] {
    return this.#nodes;
  }

  /** Number of nodes. */
  get size(): number {
    return this.#nodes.length;
  }

  /** Whether `node` is on the ring. */
  has(node: string): boolean {
    return this.#pointCache.has(node);
  }

  /**
   * Adds nodes after the existing ones. A node already on the ring keeps its place (no
   * duplicate points). Throws a TypeError, leaving the ring unchanged, if any node is not
   * a non-empty string.
   */
  add(...nodes: string[]): this {
    for (const n of nodes) checkNode(n);
    const next = this.#nodes.slice();
    const seen = new Set(next);
    for (const n of nodes) {
      if (!seen.has(n)) {
        seen.add(n);
        next.push(n);
      }
    }
    if (next.length !== this.#nodes.length) this.#rebuild(next);
    return this;
  }

  /**
   * Removes nodes; unknown ones are ignored. Only the removed nodes' keys move. Throws a
   * TypeError, leaving the ring unchanged, if any argument is not a non-empty string.
   */
  remove(...nodes: string[]): this {
    for (const n of nodes) checkNode(n);
    const gone = new Set(nodes);
    const next = this.#nodes.filter((n) => !gone.has(n));
    if (next.length !== this.#nodes.length) this.#rebuild(next);
    return this;
  }

  /**
   * Replaces all nodes with `nodes`, in that order (like groupcache's `HTTPPool.Set`,
   * which builds a fresh ring). Duplicates keep their first position. Throws a
   * TypeError, leaving the ring unchanged, if any node is not a non-empty string.
   */
  set(nodes: Iterable<string>): this {
    // A lone string is iterable (as characters) but is surely a mistake for set([node]).
    if (
      typeof nodes === "string" ||
      nodes === null ||
      typeof (nodes as Iterable<string>)?.[Symbol.iterator] !== "function"
    ) {
      throw new TypeError("HashRing: set() takes an iterable (e.g. an array) of node names");
    }
    const list = [...nodes];
    for (const n of list) checkNode(n);
    const next = [...new Set(list)];
    const same = next.length === this.#nodes.length && next.every((n, i) => n === this.#nodes[i]);
    if (!same) this.#rebuild(next);
    return this;
  }

  /** The node that owns `key`, or `undefined` when the ring is empty. */
  get(key: string): string | undefined {
    if (typeof key !== "string") throw new TypeError("HashRing: key must be a string");
    const keys = this.#keys;
    const n = keys.length;
    if (n === 0) return undefined;
    const x = this.#hashInt(key);
    const j = x >>> this.#shift;
    const b = x ^ 0x80000000;
    const buckets = this.#buckets;
    let lo = buckets[j] as number;
    let hi = buckets[j + 1] as number;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((keys[mid] as number) < b) lo = mid + 1;
      else hi = mid;
    }
    if (lo === n) lo = 0;
    return this.#nodes[this.#owners[lo] as number];
  }

  /**
   * Up to `n` distinct nodes for `key`, walking the ring clockwise: the owner first, then
   * the nodes a client would fall back to. Returns `[]` on an empty ring or for `n = 0`.
   */
  getN(key: string, n: number): string[] {
    if (typeof key !== "string") throw new TypeError("HashRing: key must be a string");
    if (typeof n !== "number" || !Number.isInteger(n) || n < 0) {
      throw new RangeError(`HashRing: n must be an integer >= 0, got ${String(n)}`);
    }
    const points = this.#points;
    const count = points.length;
    const want = Math.min(n, this.#nodes.length);
    const out: string[] = [];
    if (count === 0 || want === 0) return out;
    const start = this.#locate(this.#hashInt(key));
    const seen = this.#seen;
    const epoch = this.#nextEpoch();
    for (let k = 0, p = start; k < count; k++, p = p + 1 === count ? 0 : p + 1) {
      const owner = this.#owners[p] as number;
      if (seen[owner] !== epoch) {
        seen[owner] = epoch;
        out.push(this.#nodes[owner] as string);
        if (out.length === want) break;
      }
    }
    return out;
  }

  /**
   * Each node's share of the hash space (fractions summing to 1), in `nodes` order: the
   * share of uniformly hashed keys it owns. Useful to compare replicas and hashes.
   */
  shares(): Map<string, number> {
    const out = new Map<string, number>(this.#nodes.map((n) => [n, 0]));
    const points = this.#points;
    const count = points.length;
    if (count === 0) return out;
    const arcs = new Float64Array(this.#nodes.length);
    for (let p = 0; p < count; p++) {
      // Point p owns the arc (previous point, p]; the first one wraps from the last.
      const prev =
        p === 0 ? (points[count - 1] as number) - 0x1_0000_0000 : (points[p - 1] as number);
      const o = this.#owners[p] as number;
      arcs[o] = (arcs[o] as number) + (points[p] as number) - prev;
    }
    this.#nodes.forEach((n, i) => {
      out.set(n, (arcs[i] as number) / 0x1_0000_0000);
    });
    return out;
  }

  /** Index of the first point >= the signed-int32 hash `x`, wrapping to 0. */
  #locate(x: number): number {
    const keys = this.#keys;
    const j = x >>> this.#shift;
    const b = x ^ 0x80000000;
    let lo = this.#buckets[j] as number;
    let hi = this.#buckets[j + 1] as number;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((keys[mid] as number) < b) lo = mid + 1;
      else hi = mid;
    }
    return lo === keys.length ? 0 : lo;
  }

  #nextEpoch(): number {
    this.#epoch = (this.#epoch + 1) >>> 0;
    if (this.#epoch === 0) {
      this.#seen.fill(0);
      this.#epoch = 1;
    }
    return this.#epoch;
  }

  #pointsOf(node: string): Uint32Array {
    let pts = this.#pointCache.get(node);
    if (pts === undefined) {
      pts = new Uint32Array(this.#replicas);
      for (let i = 0; i < this.#replicas; i++) pts[i] = this.#hashInt(String(i) + node) >>> 0;
    }
    return pts;
  }

  /**
   * Rebuilds every table from `nodes` (in insertion order). All work happens on new
   * arrays and is swapped in at the end, so a throwing custom hash leaves the ring as it was.
   */
  #rebuild(nodes: string[]): void {
    const replicas = this.#replicas;
    const total = nodes.length * replicas;
    const pointSets = nodes.map((n) => this.#pointsOf(n));
    // Sort (value, node index) pairs packed into one float64: value * 2^21 + index is
    // exact below 2^53, and ties on value order by insertion, so the last of a run of
    // equal values belongs to the node added last -- the one Go's map overwrite keeps.
    if (nodes.length >= 0x20_0000) throw new RangeError("HashRing: too many nodes");
    const packed = new Float64Array(total);
    for (let i = 0, k = 0; i < nodes.length; i++) {
      const pts = pointSets[i] as Uint32Array;
      for (let r = 0; r < replicas; r++) packed[k++] = (pts[r] as number) * 0x20_0000 + i;
    }
    packed.sort();
    const values = new Uint32Array(total);
    const owners = new Uint32Array(total);
    let m = 0;
    for (let k = 0; k < total; k++) {
      const x = packed[k] as number;
      const v = Math.floor(x / 0x20_0000);
      const owner = x - v * 0x20_0000;
      if (m > 0 && values[m - 1] === v) owners[m - 1] = owner;
      else {
        values[m] = v;
        owners[m] = owner;
        m++;
      }
    }
    const points = values.slice(0, m);
    // Bucket table: about 4 buckets per point, so a lookup's binary search spans ~1 point.
    let bits = MIN_BITS;
    while (bits < MAX_BITS && 1 << bits < 4 * m) bits++;
    const shift = 32 - bits;
    const nb = 1 << bits;
    const buckets = new Uint32Array(nb + 1);
    for (let j = 0, p = 0; j <= nb; j++) {
      const bound = j * 2 ** shift; // exact; j = nb gives 2^32, past every point
      while (p < m && (points[p] as number) < bound) p++;
      buckets[j] = p;
    }
    // Swap in: nothing above mutates the ring.
    const cache = this.#pointCache;
    cache.clear();
    nodes.forEach((n, i) => {
      cache.set(n, pointSets[i] as Uint32Array);
    });
    this.#nodes = Object.freeze(nodes.slice());
    this.#points = points;
    const keys = new Int32Array(m);
    for (let p = 0; p < m; p++) keys[p] = (points[p] as number) ^ 0x80000000;
    this.#keys = keys;
    this.#owners = owners.slice(0, m);
    this.#buckets = buckets;
    this.#shift = shift;
    this.#seen = new Uint32Array(nodes.length);
    this.#epoch = 0;
  }
}
