/**
 * Model-based randomized test: a deliberately simple reference (an array kept in recency
 * order, linear scans everywhere) against the real cache, over 100k random operations of
 * every kind, comparing results, contents, order, size, bytes and onEvicted notifications
 * after every step. Time is an injected clock, so TTLs are exercised without sleeping.
 */
import { prng } from "@tinycache/testkit";
import { describe, expect, it } from "vitest";
import { type EvictionReason, LRUCache } from "./index.js";

type Event = [string, string, EvictionReason];
interface Entry {
  key: string;
  value: string;
  size: number;
  expires: number; // Infinity = never
}

const enc = new TextEncoder();
const sizeOf = (k: string, v: string) => enc.encode(k).length + enc.encode(v).length;

class Model {
  entries: Entry[] = []; // most recent first
  events: Event[] = [];
  constructor(
    readonly maxBytes: number,
    readonly maxEntries: number,
    readonly now: () => number,
  ) {}

  get bytes(): number {
    return this.entries.reduce((s, e) => s + e.size, 0);
  }
  #expired(e: Entry): boolean {
    return e.expires <= this.now();
  }
  #index(key: string): number {
    return this.entries.findIndex((e) => e.key === key);
  }
  #remove(i: number, reason: EvictionReason): Entry {
    const [e] = this.entries.splice(i, 1) as [Entry];
    this.events.push([e.key, e.value, reason]);
    return e;
  }
  #evictLast(): void {
    const i = this.entries.length - 1;
    this.#remove(i, this.#expired(this.entries[i] as Entry) ? "expire" : "evict");
  }
  /** Index of a live entry, removing it if expired. */
  #live(key: string): number {
    const i = this.#index(key);
    if (i < 0) return -1;
    if (this.#expired(this.entries[i] as Entry)) {
      this.#remove(i, "expire");
      return -1;
    }
    return i;
  }

  set(key: string, value: string, ttl: number): boolean {
    const size = sizeOf(key, value);
    const i = this.#index(key);
    if (size > this.maxBytes) {
      if (i >= 0) this.#remove(i, this.#expired(this.entries[i] as Entry) ? "expire" : "delete");
      return false;
    }
    const expires = this.now() + ttl; // Infinity stays Infinity
    if (i >= 0) {
      const [old] = this.entries.splice(i, 1) as [Entry];
      if (old.value !== value) {
        this.events.push([key, old.value, this.#expired(old) ? "expire" : "replace"]);
      }
    } else if (this.entries.length >= this.maxEntries) {
      this.#evictLast();
    }
    this.entries.unshift({ key, value, size, expires });
    while (this.bytes > this.maxBytes) this.#evictLast();
    return true;
  }
  get(key: string): string | undefined {
    const i = this.#live(key);
    if (i < 0) return undefined;
    const [e] = this.entries.splice(i, 1) as [Entry];
    this.entries.unshift(e);
    return e.value;
  }
  peek(key: string): string | undefined {
    const i = this.#live(key);
    return i < 0 ? undefined : (this.entries[i] as Entry).value;
  }
  has(key: string): boolean {
    return this.#live(key) >= 0;
  }
  delete(key: string): boolean {
    const i = this.#index(key);
    if (i < 0) return false;
    const expired = this.#expired(this.entries[i] as Entry);
    this.#remove(i, expired ? "expire" : "delete");
    return !expired;
  }
  removeOldest(): [string, string] | undefined {
    while (this.entries.length > 0) {
      const last = this.entries[this.entries.length - 1] as Entry;
      if (this.#expired(last)) {
        this.#remove(this.entries.length - 1, "expire");
        continue;
      }
      this.#remove(this.entries.length - 1, "evict");
      return [last.key, last.value];
    }
    return undefined;
  }
  peekOldestKey(): string | undefined {
    while (this.entries.length > 0) {
      const last = this.entries[this.entries.length - 1] as Entry;
      if (!this.#expired(last)) return last.key;
      this.#remove(this.entries.length - 1, "expire");
    }
    return undefined;
  }
  clear(): void {
    for (let i = this.entries.length - 1; i >= 0; i--) {
      const e = this.entries[i] as Entry;
      this.events.push([e.key, e.value, "clear"]);
    }
    this.entries = [];
  }
  purgeExpired(): number {
    let n = 0;
    for (let i = this.entries.length - 1; i >= 0; i--) {
      if (this.#expired(this.entries[i] as Entry)) {
        this.#remove(i, "expire");
        n++;
      }
    }
    return n;
  }
  live(): [string, string][] {
    return this.entries.filter((e) => !this.#expired(e)).map((e) => [e.key, e.value]);
  }
}

const KEYS = [...Array.from({ length: 24 }, (_, i) => `k${i}`), "ключ", "鍵", "🔑", "x".repeat(30)];
const VALUES = [
  "",
  "v",
  "é",
  "日本語",
  "😀😀",
  "abcdefghij",
  "0123456789abcdefghij",
  "z".repeat(45),
];

function run(seed: number, ops: number, maxBytes: number, maxEntries: number, defaultTtl: number) {
  const rnd = prng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)] as T;
  let t = 0;
  const now = () => t;
  const model = new Model(maxBytes, maxEntries, now);
  const events: Event[] = [];
  // The default sizeOf for string keys and values must agree with the model's TextEncoder.
  const cache = new LRUCache<string, string>({
    maxBytes,
    maxEntries,
    now,
    ttlMs: defaultTtl,
    onEvicted: (k, v, r) => void events.push([k, v, r]),
  });
  const modelTtl = (ttl: number | undefined) => (ttl === undefined ? defaultTtl : ttl);

  for (let step = 0; step < ops; step++) {
    const r = rnd();
    const key = pick(KEYS);
    let got: unknown;
    let want: unknown;
    let op: string;
    if (r < 0.3) {
      op = "set";
      const value = pick(VALUES);
      const ttl = rnd() < 0.3 ? pick([Number.POSITIVE_INFINITY, 1, 5, 20, 100]) : undefined;
      got = cache.set(key, value, ttl === undefined ? undefined : { ttlMs: ttl });
      want = model.set(key, value, modelTtl(ttl));
    } else if (r < 0.55) {
      op = "get";
      got = cache.get(key);
      want = model.get(key);
    } else if (r < 0.65) {
      op = "peek";
      got = cache.peek(key);
      want = model.peek(key);
    } else if (r < 0.75) {
      op = "has";
      got = cache.has(key);
      want = model.has(key);
    } else if (r < 0.83) {
      op = "delete";
      got = cache.delete(key);
      want = model.delete(key);
    } else if (r < 0.86) {
      op = "removeOldest";
      got = cache.removeOldest();
      want = model.removeOldest();
    } else if (r < 0.88) {
      op = "peekOldestKey";
      got = cache.peekOldestKey();
      want = model.peekOldestKey();
    } else if (r < 0.885) {
      op = "clear";
      cache.clear();
      model.clear();
    } else if (r < 0.9) {
      op = "purgeExpired";
      got = cache.purgeExpired();
      want = model.purgeExpired();
    } else {
      op = "tick";
      t += pick([0, 1, 2, 5, 10, 50]);
    }
    const where = `seed ${seed} step ${step} op ${op} key ${key}`;
    expect(got, where).toEqual(want);
    expect([...cache], where).toEqual(model.live());
    expect(cache.size, where).toBe(model.entries.length);
    expect(cache.bytes, where).toBe(model.bytes);
    expect(events, where).toEqual(model.events);
    expect(cache.bytes).toBeLessThanOrEqual(maxBytes);
    expect(cache.size).toBeLessThanOrEqual(maxEntries);
    events.length = 0;
    model.events.length = 0;
  }
}

describe("LRUCache vs a reference model (100k random operations in total)", () => {
  const NONE = Number.POSITIVE_INFINITY;
  it("byte-bounded", () => run(1, 30_000, 60, NONE, NONE), 60_000);
  it("entry-bounded", () => run(2, 25_000, NONE, 7, NONE), 60_000);
  it("both bounds, default ttl", () => run(3, 25_000, 50, 5, 30), 60_000);
  it("tight byte bound (most entries barely fit)", () => run(4, 20_000, 12, NONE, NONE), 60_000);
});
