import { describe, expect, it, vi } from "vitest";
import { InvalidArgumentError, TinycacheError } from "./errors.js";
import type { GroupLookup, PeerPicker } from "./peers.js";
import { GroupRegistry } from "./registry.js";
import { memoryLogger } from "./testing.test-util.js";

const getter = async (k: string) => k;
const noPeers: PeerPicker = { pickPeer: () => undefined, peers: () => [] };

describe("GroupRegistry", () => {
  it("creates, finds and lists groups; getGroup serves transports", () => {
    const r = new GroupRegistry();
    const a = r.newGroup({ name: "a", cacheBytes: 10, getter });
    const b = r.newGroup({ name: "", cacheBytes: 10, getter });
    expect(r.get("a")).toBe(a);
    expect(r.getGroup("")).toBe(b);
    const lookup: GroupLookup = r;
    expect(lookup.getGroup("a")?.name).toBe("a");
    expect(r.get("zzz")).toBeUndefined();
    expect(r.names()).toEqual(["a", ""]);
    expect(r.has("a")).toBe(true);
    expect(r.deleteGroup("a")).toBe(true);
    expect(r.get("a")).toBeUndefined();
  });

  it("rejects a duplicate name with InvalidArgumentError", () => {
    const r = new GroupRegistry();
    r.newGroup({ name: "dup", cacheBytes: 10, getter });
    expect(() => r.newGroup({ name: "dup", cacheBytes: 10, getter })).toThrow(InvalidArgumentError);
    expect(() => r.newGroup({ name: 1 as unknown as string, cacheBytes: 10, getter })).toThrow(
      TypeError,
    );
  });

  it("two registries are two independent nodes (no module-level state)", async () => {
    const g1 = vi.fn(async () => "one");
    const g2 = vi.fn(async () => "two");
    const a = new GroupRegistry().newGroup({ name: "same", cacheBytes: 100, getter: g1 });
    const b = new GroupRegistry().newGroup({ name: "same", cacheBytes: 100, getter: g2 });
    expect((await a.get("k")).toString()).toBe("one");
    expect((await b.get("k")).toString()).toBe("two");
    expect(a.stats.gets).toBe(1);
    expect(b.stats.gets).toBe(1);
  });

  it("registerPeers applies to existing and later groups, once", () => {
    const r = new GroupRegistry();
    const before = r.newGroup({ name: "before", cacheBytes: 10, getter });
    const own = r.newGroup({ name: "own", cacheBytes: 10, getter, peers: noPeers });
    r.registerPeers(noPeers);
    const after = r.newGroup({ name: "after", cacheBytes: 10, getter });
    expect(before.hasPeers && own.hasPeers && after.hasPeers).toBe(true);
    expect(() => before.registerPeers(noPeers)).toThrow(TinycacheError);
    expect(() => r.registerPeers(noPeers)).toThrow(TinycacheError);
    expect(() => new GroupRegistry().registerPeers(null as never)).toThrow(TypeError);
  });

  it("hands its logger to groups without their own", async () => {
    const log = memoryLogger();
    const peer = {
      id: "p",
      get: async () => {
        throw new Error("down");
      },
      set: async () => {},
      remove: async () => {},
    };
    const r = new GroupRegistry({ logger: log.logger });
    r.registerPeers({ pickPeer: () => peer, peers: () => [peer] });
    const g = r.newGroup({ name: "g", cacheBytes: 10, getter });
    await g.get("k");
    expect(log.lines.map((l) => l.level)).toEqual(["warn"]);
  });
});
