/**
 * The default hot policy (FrequencyPromotion) inside a Group with a scripted remote owner:
 * hot keys are kept after few fetches, and hot entries still obey TTLs, remove broadcasts
 * and the hot cache's share of the budget.
 */

import { ByteView } from "@tinycache/byteview";
import { LRU_ENTRY_OVERHEAD } from "@tinycache/lru";
import { describe, expect, it } from "vitest";
import { entrySize } from "./cache.js";
import { FrequencyPromotion } from "./hotpolicy.js";
import type { GroupOptions } from "./options.js";
import type { KeyRequest, PeerGetter, PeerValue, SetRequest } from "./peers.js";
import { GroupRegistry } from "./registry.js";
import { fakeClock } from "./testing.test-util.js";

/** A remote owner of every key that answers `v:<key>`, optionally with an expiry. */
class Owner implements PeerGetter {
  constructor(readonly id = "owner") {}
  gets: string[] = [];
  removes: string[] = [];
  expiresAt: number | undefined;
  get(req: KeyRequest): Promise<PeerValue> {
    this.gets.push(req.key);
    const value = new TextEncoder().encode(`v:${req.key}`);
    return Promise.resolve(
      this.expiresAt === undefined ? { value } : { value, expiresAt: this.expiresAt },
    );
  }
  set(_req: SetRequest): Promise<void> {
    return Promise.resolve();
  }
  remove(req: KeyRequest): Promise<void> {
    this.removes.push(req.key);
    return Promise.resolve();
  }
  fetches(key: string): number {
    return this.gets.filter((k) => k === key).length;
  }
}

function group(opts: Partial<GroupOptions> = {}, other?: PeerGetter) {
  const owner = new Owner();
  const g = new GroupRegistry().newGroup({
    name: "g",
    cacheBytes: 1 << 20,
    getter: async () => {
      throw new Error("the owner answers every key");
    },
    peers: { pickPeer: () => owner, peers: () => (other ? [owner, other] : [owner]) },
    ...opts,
  });
  return { g, owner };
}

/** Size of a hot entry `v:<key>` of `key` as the budget counts it. */
const slot = (key: string) => entrySize(key, ByteView.from(`v:${key}`)) + LRU_ENTRY_OVERHEAD;

describe("FrequencyPromotion as a Group's default hot policy", () => {
  it("keeps a remote key after its first fetch while the hot cache has room", async () => {
    const { g, owner } = group();
    await g.get("a");
    expect(g.stats.hotPromotions).toBe(1);
    for (let i = 0; i < 5; i++) expect((await g.get("a")).toString()).toBe("v:a");
    expect(owner.fetches("a")).toBe(1);
    expect(g.cacheStats("hot")).toMatchObject({ items: 1, hits: 5 });
  });

  it("in a full hot cache, a key fetched again takes the place of a cold one; keys fetched once do not", async () => {
    // Main is empty, so the hot cache may take the whole budget: 4 entries of one size.
    const budget = 4 * slot("k00");
    const { g, owner } = group({ cacheBytes: budget });
    for (const k of ["k00", "k01", "k02", "k03"]) await g.get(k);
    expect(g.cacheStats("hot").items).toBe(4);
    // The hot keys are used...
    for (let r = 0; r < 3; r++) for (const k of ["k01", "k02", "k03"]) await g.get(k);
    // ...so a scan of keys fetched once never gets in, and never flushes them.
    for (let i = 10; i < 60; i++) await g.get(`k${i}`);
    expect(
      g
        .recentKeys("hot", 10)
        .map((k) => k.key)
        .sort(),
    ).toEqual(["k00", "k01", "k02", "k03"]);
    // A key fetched twice beats the coldest hot key (k00, never hit) and replaces it.
    await g.get("k99");
    await g.get("k99");
    expect(
      g
        .recentKeys("hot", 10)
        .map((k) => k.key)
        .sort(),
    ).toEqual(["k01", "k02", "k03", "k99"]);
    await g.get("k99");
    expect(owner.fetches("k99")).toBe(2);
    expect(g.cacheStats("hot").bytes).toBeLessThanOrEqual(budget);
  });

  it("hot hits defend a key: the victim's hits count against the candidate", async () => {
    const p = new FrequencyPromotion();
    const { g } = group({ cacheBytes: 2 * slot("h0"), hotCache: p });
    await g.get("h0");
    await g.get("h1");
    for (let i = 0; i < 6; i++) await g.get("h0"); // h0's hits
    await g.get("h1"); // h1 now most recent: h0 is the victim, with 7 accesses
    expect(p.frequency("h0")).toBeGreaterThanOrEqual(7);
    for (let i = 0; i < 5; i++) await g.get("c"); // 5 fetches: not enough
    expect(g.recentKeys("hot", 5).map((k) => k.key)).toEqual(["h1", "h0"]);
    for (let i = 0; i < 3; i++) await g.get("c"); // 8 > 7
    expect(g.recentKeys("hot", 5).map((k) => k.key)).toEqual(["c", "h1"]);
  });

  it("a hot entry expires with the owner's expiry, and the key is fetched again", async () => {
    const clock = fakeClock();
    const { g, owner } = group({ now: clock.now });
    owner.expiresAt = clock.now() + 1000;
    await g.get("t");
    await g.get("t");
    expect(owner.fetches("t")).toBe(1);
    clock.advance(1000);
    owner.expiresAt = clock.now() + 1000;
    await g.get("t");
    expect(owner.fetches("t")).toBe(2);
    expect(g.cacheStats("hot").items).toBe(1);
  });

  it("an expired hot entry is no rival: the candidate takes its place", async () => {
    const clock = fakeClock();
    const p = new FrequencyPromotion();
    const { g, owner } = group({ now: clock.now, cacheBytes: slot("e"), hotCache: p });
    owner.expiresAt = clock.now() + 10;
    await g.get("e");
    for (let i = 0; i < 5; i++) p.recordHit("e");
    owner.expiresAt = undefined;
    clock.advance(10);
    await g.get("f");
    expect(g.recentKeys("hot", 5).map((k) => k.key)).toEqual(["f"]);
  });

  it("remove drops the hot copy here, broadcasts to the other peers, and the next get fetches again", async () => {
    const other = new Owner("other");
    const { g, owner } = group({}, other);
    await g.get("r");
    await g.get("r");
    expect(owner.fetches("r")).toBe(1);
    const res = await g.remove("r");
    expect(res.ok).toBe(true);
    expect(other.removes).toEqual(["r"]);
    expect(g.cacheStats("hot").items).toBe(0);
    await g.get("r");
    expect(owner.fetches("r")).toBe(2);
  });

  it("a peer's remove (serveRemove) drops the hot copy", async () => {
    const { g, owner } = group();
    await g.get("s");
    g.serveRemove("s");
    await g.get("s");
    expect(owner.fetches("s")).toBe(2);
  });

  it("the hot cache stays within its share of the budget next to a full main cache", async () => {
    const budget = 90 * slot("m00");
    const { g } = group({ cacheBytes: budget });
    // Fill main by sets on keys this node owns? Every key is remote here: serveSet stores
    // in main, as a peer's set does.
    for (let i = 0; i < 90; i++) g.serveSet(`m${String(i).padStart(2, "0")}`, new Uint8Array(3));
    for (let i = 0; i < 200; i++) await g.get(`h${String(i).padStart(2, "0")}`);
    for (let r = 0; r < 5; r++)
      for (let i = 0; i < 200; i++) await g.get(`h${String(i).padStart(2, "0")}`);
    const main = g.cacheStats("main");
    const hot = g.cacheStats("hot");
    expect(main.bytes + hot.bytes).toBeLessThanOrEqual(budget);
    expect(hot.bytes).toBeLessThanOrEqual(main.bytes / 8 + slot("h000"));
    expect(hot.items).toBeGreaterThan(0);
  });

  it("a hotCache that is not a policy object is a TypeError", () => {
    expect(() => group({ hotCache: 42 as unknown as false })).toThrow(TypeError);
  });

  it("the default policy counts hot hits: a group's own FrequencyPromotion sees them", async () => {
    const p = new FrequencyPromotion();
    const { g } = group({ hotCache: p });
    await g.get("n");
    for (let i = 0; i < 4; i++) await g.get("n");
    expect(p.frequency("n")).toBe(5); // one fetch + four hot hits
  });

  it("hotCache: false keeps nothing; a policy without recordHit still works", async () => {
    const { g, owner } = group({ hotCache: false });
    await g.get("x");
    await g.get("x");
    expect(owner.fetches("x")).toBe(2);
    const seen: number[] = [];
    const { g: g2 } = group({
      hotCache: {
        shouldPromote: (_k, _v, _s, hot) => {
          seen.push(hot.items);
          return true;
        },
      },
    });
    await g2.get("y");
    await g2.get("z");
    expect(seen).toEqual([0, 1]);
  });
});
