import { HashRing } from "@tinycache/consistenthash";
import { makeKeys } from "@tinycache/testkit";
import { describe, expect, it } from "vitest";
import type { PeerGetter } from "../peers.js";
import { PeerSet, type PeerSetOptions } from "./peer-set.js";

/** A client that records how it was let go. */
class StubPeer implements PeerGetter {
  gone: Array<"left" | "closed"> = [];
  constructor(readonly id: string) {}
  async get(): Promise<never> {
    throw new Error("not used");
  }
  async set(): Promise<void> {}
  async remove(): Promise<void> {}
}

const A = "http://10.0.0.1:8001";
const B = "http://10.0.0.2:8001";
const C = "https://10.0.0.3:8443/cache";

function makeSet(extra: Partial<PeerSetOptions<StubPeer>> = {}) {
  const made: StubPeer[] = [];
  const set = new PeerSet<StubPeer>({
    self: A,
    connect: (url) => {
      const p = new StubPeer(url);
      made.push(p);
      return p;
    },
    disconnect: (p, why) => p.gone.push(why),
    ...extra,
  });
  return { set, made };
}

describe("PeerSet", () => {
  it("owns everything locally with no peers, or with only itself", () => {
    const { set, made } = makeSet();
    expect(set.pickPeer("k")).toBeUndefined();
    expect(set.peers()).toEqual([]);
    expect(set.urls).toEqual([]);
    set.set([A]);
    expect(set.pickPeer("k")).toBeUndefined();
    expect(set.peers()).toEqual([]);
    expect(set.urls).toEqual([A]);
    expect(made).toEqual([]);
  });

  it("routes keys as a HashRing of the same URLs does, self included", () => {
    const { set } = makeSet();
    set.set([A, B, C]);
    const ring = new HashRing().set([A, B, C]);
    let local = 0;
    for (const key of makeKeys(2000)) {
      const owner = ring.get(key);
      const picked = set.pickPeer(key);
      if (owner === A) {
        expect(picked).toBeUndefined();
        local++;
      } else expect(picked?.id).toBe(owner);
    }
    // Self takes its share of the keys (about a third), so it is on the ring.
    expect(local).toBeGreaterThan(300);
    expect(local).toBeLessThan(1100);
  });

  it("honours replicas and hash like the ring does", () => {
    const hash = (s: string) => s.length * 2654435761;
    const { set } = makeSet({ replicas: 3, hash });
    set.set([A, B, C]);
    const ring = new HashRing({ replicas: 3, hash }).set([A, B, C]);
    for (const key of makeKeys(200)) {
      const owner = ring.get(key);
      expect(set.pickPeer(key)?.id).toBe(owner === A ? undefined : owner);
    }
  });

  it("keeps clients of peers that stay, connects joiners, lets leavers go", () => {
    const { set, made } = makeSet();
    set.set([A, B]);
    const b = set.clients()[0];
    expect(b?.id).toBe(B);
    set.set([C, A, B]);
    expect(set.urls).toEqual([C, A, B]);
    expect(set.peers().map((p) => p.id)).toEqual([C, B]);
    expect(set.clients()[1]).toBe(b);
    expect(made.map((p) => p.id)).toEqual([B, C]);
    set.set([A, C]);
    expect(b?.gone).toEqual(["left"]);
    expect(set.peers().map((p) => p.id)).toEqual([C]);
    expect(made[1]?.gone).toEqual([]);
  });

  it("counts duplicates once and keeps the first position", () => {
    const { set, made } = makeSet();
    set.set([B, A, B, C, A]);
    expect(set.urls).toEqual([B, A, C]);
    expect(made.map((p) => p.id)).toEqual([B, C]);
  });

  it("hands out a frozen peers array, new after each change", () => {
    const { set } = makeSet();
    set.set([A, B]);
    const before = set.peers();
    expect(Object.isFrozen(before)).toBe(true);
    expect(set.peers()).toBe(before);
    set.set([A, B, C]);
    expect(set.peers()).not.toBe(before);
    expect(before.map((p) => p.id)).toEqual([B]);
  });

  it("refuses a bad URL, naming its owner and changing nothing", () => {
    const { set, made } = makeSet({ name: "HttpPool" });
    set.set([A, B]);
    const urls = set.urls;
    for (const bad of ["", "not a url", "ftp://x", `${B}?q=1`, `${B}#f`, 42 as never]) {
      expect(() => set.set([A, C, bad])).toThrow(TypeError);
    }
    expect(() => set.set([A, "ftp://x"])).toThrow("HttpPool: peer URL must be http: or https:");
    expect(set.urls).toBe(urls);
    expect(made.map((p) => p.id)).toEqual([B]);
  });

  it("takes unicode and IPv6 URLs as they are", () => {
    const { set } = makeSet();
    const u = "http://bücher.example:8001";
    const v6 = "http://[::1]:8002";
    set.set([A, u, v6]);
    expect(set.peers().map((p) => p.id)).toEqual([u, v6]);
  });

  it("rolls back when connect throws: no leak, old clients kept", () => {
    let fail = false;
    const { set, made } = makeSet({
      connect: (url) => {
        if (fail && url === C) throw new Error("cannot reach");
        const p = new StubPeer(url);
        made.push(p);
        return p;
      },
    });
    set.set([A, B]);
    fail = true;
    const extra = "http://10.0.0.9:1";
    expect(() => set.set([A, extra, C])).toThrow("cannot reach");
    expect(set.urls).toEqual([A, B]);
    expect(set.peers().map((p) => p.id)).toEqual([B]);
    expect(made.find((p) => p.id === extra)?.gone).toEqual(["left"]);
    expect(made.find((p) => p.id === B)?.gone).toEqual([]);
  });

  it("close lets every client go once and owns every key locally after", () => {
    const { set, made } = makeSet();
    set.set([A, B, C]);
    set.close();
    set.close();
    expect(made.map((p) => p.gone)).toEqual([["closed"], ["closed"]]);
    expect(set.peers()).toEqual([]);
    for (const key of makeKeys(50)) expect(set.pickPeer(key)).toBeUndefined();
    expect(() => set.set([A, B])).toThrow("PeerSet: closed");
  });

  it("works without a disconnect hook", () => {
    const set = new PeerSet({ self: A, connect: (url) => new StubPeer(url) });
    set.set([A, B]);
    set.set([A]);
    set.close();
    expect(set.peers()).toEqual([]);
  });

  it("refuses bad options with clear errors", () => {
    const connect = (url: string) => new StubPeer(url);
    expect(() => new PeerSet(undefined as never)).toThrow(TypeError);
    expect(() => new PeerSet({ self: "nope", connect, name: "X" })).toThrow(
      "X: self is not a URL: nope",
    );
    expect(() => new PeerSet({ self: A } as never)).toThrow(/connect must be a function/);
    expect(() => new PeerSet({ self: A, connect, disconnect: 1 as never })).toThrow(TypeError);
    expect(() => new PeerSet({ self: A, connect, replicas: 0 })).toThrow(RangeError);
    expect(() => new PeerSet({ self: A, connect, hash: 1 as never })).toThrow(TypeError);
  });

  it("rejects a non-string key like the ring", () => {
    const { set } = makeSet();
    set.set([A, B]);
    expect(() => set.pickPeer(1 as never)).toThrow(TypeError);
  });
});
