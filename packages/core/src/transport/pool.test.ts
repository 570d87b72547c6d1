import { HashRing } from "@tinycache/consistenthash";
import { makeKeys } from "@tinycache/testkit";
import { describe, expect, it } from "vitest";
import type { KeyRequest, PeerGetOptions, PeerGetter, PeerValue } from "../peers.js";
import { Batcher } from "./batch.js";
import { mountable } from "./mount.js";
import { PeerPoolBase, type PeerPoolOptions, resolvePoolOptions } from "./pool.js";

const A = "http://10.0.0.1:8001";
const B = "http://10.0.0.2:8001";
const C = "http://10.0.0.3:8001";
const enc = (s: string) => new TextEncoder().encode(s);
const dec = (v: PeerValue) => new TextDecoder().decode(v.value);

/**
 * A client that batches as the transports' do (core's Batcher), over a peer that answers
 * at once: `batch:<key>` through a batch call, `single:<key>` through a plain get.
 */
class BatchingPeer implements PeerGetter {
  readonly #batcher: Batcher;
  singles = 0;
  constructor(readonly id: string) {
    this.#batcher = new Batcher({
      id,
      send: async (_group, keys) =>
        keys.map((k) => ({ ok: true, value: { value: enc(`batch:${k}`) } })),
      single: async (req) => {
        this.singles++;
        return { value: enc(`single:${req.key}`) };
      },
    });
  }
  get(req: KeyRequest, opts?: PeerGetOptions): Promise<PeerValue> {
    return this.#batcher.get(req, opts);
  }
  async set(): Promise<void> {}
  async remove(): Promise<void> {}
  batchStats(): { batches: number; keys: number } {
    return { batches: this.#batcher.batches, keys: this.#batcher.batchedKeys };
  }
}

/** A client with no batch counters (a transport that does not batch). */
class PlainPeer implements PeerGetter {
  constructor(readonly id: string) {}
  async get(req: KeyRequest): Promise<PeerValue> {
    return { value: enc(`plain:${req.key}`) };
  }
  async set(): Promise<void> {}
  async remove(): Promise<void> {}
}

function makePool(
  connect: (url: string) => PeerGetter,
  extra: Partial<PeerPoolOptions> = {},
): PeerPoolBase<PeerGetter> {
  const o = resolvePoolOptions("TestPool", {
    self: A,
    registry: { getGroup: () => undefined },
    ...extra,
  });
  const pool = new PeerPoolBase(o, {
    name: "TestPool",
    connect,
    disconnect: () => {},
    handler: mountable(
      () => {},
      () => false,
    ),
    createServer: () => {
      throw new Error("not used");
    },
  });
  pool.setPeers(A, B, C);
  return pool;
}

/** `n` distinct keys the ring of A, B, C gives to `owner`. */
function keysOf(owner: string, n: number): string[] {
  const ring = new HashRing().set([A, B, C]);
  return makeKeys(5000)
    .filter((k) => ring.get(k) === owner)
    .slice(0, n);
}

describe("PeerPoolBase.stats().peerBatches", () => {
  for (const health of [true, false]) {
    it(`counts batch calls and their keys per peer; a lone get counts nothing (health ${health ? "on" : "off"})`, async () => {
      const pool = makePool((url) => new BatchingPeer(url), health ? {} : { health: false });
      expect(pool.stats().peerBatches).toEqual([
        { url: B, batches: 0, batchedKeys: 0 },
        { url: C, batches: 0, batchedKeys: 0 },
      ]);

      // A lone get goes as a plain single get: no batch.
      const [lone] = keysOf(B, 1) as [string];
      const v = await (pool.pickPeer(lone) as PeerGetter).get({ group: "g", key: lone });
      expect(dec(v)).toBe(`single:${lone}`);
      expect(pool.stats().peerBatches).toEqual([
        { url: B, batches: 0, batchedKeys: 0 },
        { url: C, batches: 0, batchedKeys: 0 },
      ]);

      // 10 concurrent gets of distinct keys of one peer: one batch call of 10 keys.
      const ten = keysOf(B, 10);
      expect(ten).toHaveLength(10);
      const got = await Promise.all(
        ten.map((key) => (pool.pickPeer(key) as PeerGetter).get({ group: "g", key })),
      );
      expect(got.map(dec)).toEqual(ten.map((k) => `batch:${k}`));
      expect(pool.stats().peerBatches).toEqual([
        { url: B, batches: 1, batchedKeys: 10 },
        { url: C, batches: 0, batchedKeys: 0 },
      ]);

      // Another turn, both peers at once: each peer counts its own.
      const [b1, b2] = keysOf(B, 2) as [string, string];
      const cs = keysOf(C, 3);
      await Promise.all(
        [b1, b2, ...cs].map((key) => (pool.pickPeer(key) as PeerGetter).get({ group: "g", key })),
      );
      expect(pool.stats().peerBatches).toEqual([
        { url: B, batches: 2, batchedKeys: 12 },
        { url: C, batches: 1, batchedKeys: 3 },
      ]);
      expect(pool.stats().health).toBe(health);
      await pool.close();
    });
  }

  it("follows the peer list: a peer that leaves is gone, one that stays keeps its counts", async () => {
    const pool = makePool((url) => new BatchingPeer(url));
    const two = keysOf(C, 2);
    await Promise.all(
      two.map((key) => (pool.pickPeer(key) as PeerGetter).get({ group: "g", key })),
    );
    pool.setPeers(A, C);
    expect(pool.stats().peerBatches).toEqual([{ url: C, batches: 1, batchedKeys: 2 }]);
    await pool.close();
    expect(pool.stats().peerBatches).toEqual([]);
  });

  it("leaves out peers whose client reports no batch counters", () => {
    const pool = makePool((url) => (url === B ? new PlainPeer(url) : new BatchingPeer(url)));
    expect(pool.stats().peerBatches).toEqual([{ url: C, batches: 0, batchedKeys: 0 }]);
  });
});
