import { describe, expect, it, vi } from "vitest";
import { InvalidArgumentError, NotFoundError, PeerError } from "../errors.js";
import type { Group } from "../group.js";
import type { GroupOptions } from "../options.js";
import { GroupRegistry } from "../registry.js";
import { deferred, flush } from "../testing.test-util.js";
import { InMemoryNetwork, type InMemoryNetworkOptions } from "./memory-peers.js";

const NODES = ["node-a", "node-b", "node-c"] as const;
type NodeId = (typeof NODES)[number];

/** Three registries = three nodes, each with a "scores" group over one shared source. */
function cluster(opts: Partial<GroupOptions> = {}, netOpts: InMemoryNetworkOptions = {}) {
  const net = new InMemoryNetwork(netOpts);
  const calls: { node: NodeId; key: string }[] = [];
  const db = new Map([
    ["Tom", "630"],
    ["Jack", "589"],
    ["Sam", "567"],
  ]);
  let gate: Promise<void> | undefined;
  const groups = {} as Record<NodeId, Group>;
  for (const node of NODES) {
    const registry = new GroupRegistry();
    registry.registerPeers(net.join(node, registry));
    groups[node] = registry.newGroup({
      name: "scores",
      cacheBytes: 1 << 20,
      getter: async (key) => {
        calls.push({ node, key });
        if (gate) await gate;
        const v = db.get(key);
        if (v === undefined) throw new NotFoundError(key);
        return v;
      },
      ...opts,
    });
  }
  return {
    net,
    groups,
    calls,
    db,
    hold() {
      const d = deferred<void>();
      gate = d.promise;
      return () => d.resolve();
    },
  };
}

describe("InMemoryNetwork: a 3-node cluster in one process", () => {
  it("1,000 concurrent gets of one cold key from all three nodes call the getter once, on the owner", async () => {
    const c = cluster();
    const release = c.hold();
    const owner = c.net.ownerOf("Tom") as NodeId;
    expect(NODES).toContain(owner);
    const gets: Promise<{ toString(): string }>[] = [];
    for (let i = 0; i < 1000; i++) gets.push(c.groups[NODES[i % 3] as NodeId].get("Tom"));
    await flush();
    release();
    const views = await Promise.all(gets);
    expect(views.every((v) => v.toString() === "630")).toBe(true);
    expect(c.calls).toEqual([{ node: owner, key: "Tom" }]);
    const others = NODES.filter((n) => n !== owner);
    for (const n of others) {
      expect(c.groups[n].stats).toMatchObject({ peerLoads: 1, peerErrors: 0, localLoads: 0 });
    }
    expect(c.groups[owner].stats).toMatchObject({ localLoads: 1, serverRequests: 2 });
  });

  it("each key is loaded by its own owner; others fetch it from there", async () => {
    const c = cluster({ hotCache: false });
    for (const key of ["Tom", "Jack", "Sam"]) {
      for (const n of NODES) expect((await c.groups[n].get(key)).toString()).toBe(c.db.get(key));
    }
    expect(c.calls.map((x) => `${x.key}@${x.node}`).sort()).toEqual(
      ["Tom", "Jack", "Sam"].map((k) => `${k}@${c.net.ownerOf(k)}`).sort(),
    );
  });

  it("a dead owner: the others load locally, with no error to callers", async () => {
    const c = cluster();
    const owner = c.net.ownerOf("Tom") as NodeId;
    c.net.setDead(owner);
    const others = NODES.filter((n) => n !== owner);
    for (const n of others) expect((await c.groups[n].get("Tom")).toString()).toBe("630");
    expect(c.calls.map((x) => x.node).sort()).toEqual([...others].sort());
    for (const n of others) {
      expect(c.groups[n].stats).toMatchObject({ peerErrors: 1, localLoads: 1 });
      expect(c.groups[n].cacheStats("main").items).toBe(1);
    }
    c.net.setDead(owner, false);
    expect((await c.groups[owner].get("Tom")).toString()).toBe("630");
  });

  it("not found at the owner reaches every node as NotFoundError; the getter runs once", async () => {
    const c = cluster({ negativeTtlMs: 60_000 });
    const owner = c.net.ownerOf("Nobody") as NodeId;
    for (const n of NODES) {
      await expect(c.groups[n].get("Nobody")).rejects.toBeInstanceOf(NotFoundError);
      await expect(c.groups[n].get("Nobody")).rejects.toBeInstanceOf(NotFoundError);
    }
    expect(c.calls).toEqual([{ node: owner, key: "Nobody" }]);
  });

  it("a getter failure at the owner is passed on, not retried locally", async () => {
    const c = cluster({
      getter: async () => {
        throw new Error("db down");
      },
    });
    const owner = c.net.ownerOf("Tom") as NodeId;
    const other = NODES.find((n) => n !== owner) as NodeId;
    const err = await c.groups[other].get("Tom").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PeerError);
    expect((err as PeerError).kind).toBe("getter_failed");
    expect((err as PeerError).message).toContain("db down");
    expect(c.groups[other].stats).toMatchObject({ peerErrors: 0, localLoads: 0, localLoadErrs: 0 });
    expect(c.groups[owner].stats.localLoadErrs).toBe(1);
  });

  it("remove on one node is seen on all (owner's main and others' hot copies)", async () => {
    const c = cluster({ hotCache: { shouldPromote: () => true } });
    for (const n of NODES) await c.groups[n].get("Tom");
    for (const n of NODES) {
      const g = c.groups[n];
      expect(g.cacheStats("main").items + g.cacheStats("hot").items).toBe(1);
    }
    c.db.set("Tom", "700");
    const from = NODES.find((n) => n !== c.net.ownerOf("Tom")) as NodeId;
    const res = await c.groups[from].remove("Tom");
    expect(res).toMatchObject({ ok: true, owner: c.net.ownerOf("Tom"), peersAsked: 2 });
    for (const n of NODES) {
      const g = c.groups[n];
      expect(g.cacheStats("main").items + g.cacheStats("hot").items).toBe(0);
    }
    for (const n of NODES) expect((await c.groups[n].get("Tom")).toString()).toBe("700");
  });

  it("remove with a dead peer reports it and still clears the live ones", async () => {
    const c = cluster({ hotCache: { shouldPromote: () => true } });
    for (const n of NODES) await c.groups[n].get("Sam");
    const owner = c.net.ownerOf("Sam") as NodeId;
    const [x, y] = NODES.filter((n) => n !== owner) as [NodeId, NodeId];
    c.net.setDead(y);
    const res = await c.groups[x].remove("Sam");
    expect(res.ok).toBe(false);
    expect(res.failures).toHaveLength(1);
    expect(res.failures[0]).toMatchObject({ peer: y, owner: false });
    expect(res.failures[0]?.error).toMatchObject({ kind: "unavailable" });
    expect(c.groups[owner].cacheStats("main").items).toBe(0);
  });

  it("set on a non-owner stores at the owner; the third node reads the new value", async () => {
    const c = cluster({ hotCache: false });
    const owner = c.net.ownerOf("Jack") as NodeId;
    const [x, y] = NODES.filter((n) => n !== owner) as [NodeId, NodeId];
    await c.groups[x].set("Jack", "999");
    expect((await c.groups[y].get("Jack")).toString()).toBe("999");
    expect((await c.groups[owner].get("Jack")).toString()).toBe("999");
    expect(c.calls).toEqual([]);
  });

  it("an unknown group at the owner makes the caller load locally", async () => {
    const net = new InMemoryNetwork();
    const a = new GroupRegistry();
    const b = new GroupRegistry();
    a.registerPeers(net.join("a", a));
    b.registerPeers(net.join("b", b));
    const getter = vi.fn(async (k: string) => `a:${k}`);
    const ga = a.newGroup({ name: "only-a", cacheBytes: 1000, getter });
    // find a key owned by b
    const key = keyOwnedBy(net, "b");
    expect((await ga.get(key)).toString()).toBe(`a:${key}`);
    expect(ga.stats.peerErrors).toBe(1);
  });

  it("onCall can delay or fail calls; a caller's abort becomes PeerError aborted", async () => {
    const gate = deferred<void>();
    const net = new InMemoryNetwork({ onCall: () => gate.promise });
    const a = new GroupRegistry();
    const b = new GroupRegistry();
    const pa = net.join("a", a);
    net.join("b", b);
    b.newGroup({ name: "g", cacheBytes: 1000, getter: async () => "v" });
    const key = keyOwnedBy(net, "b");
    const peer = pa.pickPeer(key);
    expect(peer?.id).toBe("b");
    expect(pa.pickPeer(keyOwnedBy(net, "a"))).toBeUndefined();
    const ac = new AbortController();
    const p = peer?.get({ group: "g", key }, { signal: ac.signal });
    ac.abort();
    const err = await p?.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PeerError);
    expect((err as PeerError).kind).toBe("aborted");
    gate.resolve();
    expect(new TextDecoder().decode((await peer?.get({ group: "g", key }))?.value)).toBe("v");
    expect(pa.peers().map((p) => p.id)).toEqual(["b"]);
  });

  it("rejects duplicate and empty node ids", () => {
    const net = new InMemoryNetwork();
    const r = new GroupRegistry();
    net.join("a", r);
    expect(() => net.join("a", r)).toThrow(InvalidArgumentError);
    expect(() => net.join("", r)).toThrow(TypeError);
    expect(() => net.setDead("zzz")).toThrow(InvalidArgumentError);
    net.leave("a");
    expect(net.nodes).toEqual([]);
  });
});

function keyOwnedBy(net: InMemoryNetwork, node: string): string {
  let key = "";
  for (let i = 0; net.ownerOf(key) !== node; i++) key = `k${i}`;
  return key;
}
