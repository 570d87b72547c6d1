import { HashRing } from "@tinycache/consistenthash";
import { describe, expect, it } from "vitest";
import { CLASSIC_SCORES, GENERATED_ROWS, generatedKey } from "./keys.js";
import { PeerHistory } from "./membership.js";
import { cachedRingLayout, ringLayout } from "./ring.js";
import { parseStatusQuery } from "./status.js";

const PEERS = ["http://127.0.0.1:8001", "http://127.0.0.1:8002", "http://127.0.0.1:8003"];

describe("ringLayout", () => {
  const layout = ringLayout(PEERS);
  const ring = new HashRing().add(...PEERS);

  it("gives each node HashRing's share of the hash space, and its arcs add up to it", () => {
    expect(layout.nodes.map((n) => n.url)).toEqual(PEERS);
    const shares = ring.shares();
    const fromArcs = PEERS.map(() => 0);
    for (const a of layout.arcs) fromArcs[a.node] = (fromArcs[a.node] ?? 0) + (a.to - a.from);
    layout.nodes.forEach((n, i) => {
      expect(n.hashShare).toBe(shares.get(n.url));
      expect(fromArcs[i]).toBeCloseTo(n.hashShare, 12);
    });
  });

  it("draws arcs that tile [0, 1) clockwise, neighbours of one owner merged", () => {
    expect(layout.arcs[0]?.from).toBe(0);
    expect(layout.arcs.at(-1)?.to).toBe(1);
    for (let i = 1; i < layout.arcs.length; i++) {
      const [a, b] = [layout.arcs[i - 1], layout.arcs[i]] as const;
      expect(b?.from).toBe(a?.to);
      expect(b?.node).not.toBe(a?.node);
    }
    // 3 nodes x 50 points: at most 150 arcs (+1 for the wrap), fewer once merged.
    expect(layout.arcs.length).toBeLessThanOrEqual(151);
    expect(layout.arcs.length).toBeGreaterThan(50);
  });

  it("counts the rows each node owns exactly, as the ring routes them", () => {
    expect(layout.totalRows).toBe(GENERATED_ROWS + Object.keys(CLASSIC_SCORES).length);
    const counts = new Map<string, number>();
    const keys = [
      ...Object.keys(CLASSIC_SCORES),
      ...Array.from({ length: GENERATED_ROWS }, (_, i) => generatedKey(i + 1)),
    ];
    for (const k of keys) {
      const o = ring.get(k) as string;
      counts.set(o, (counts.get(o) ?? 0) + 1);
    }
    for (const n of layout.nodes) {
      expect(n.rows).toBe(counts.get(n.url));
      expect(n.rowShare).toBeCloseTo(n.rows / layout.totalRows, 12);
    }
  });

  it("marks Tom, Jack and Sam at their hash, with their owner", () => {
    expect(layout.markers.map((m) => m.key)).toEqual(Object.keys(CLASSIC_SCORES));
    for (const m of layout.markers) {
      expect(layout.nodes[m.owner]?.url).toBe(ring.get(m.key));
      // The owner's arc covers the key's position.
      const arc = layout.arcs.find((a) => a.from <= m.at && m.at < a.to);
      expect(arc?.node).toBe(m.owner);
    }
  });

  it("one node owns the whole circle; no peers, no layout", () => {
    const one = ringLayout(["http://127.0.0.1:9"]);
    expect(one.arcs).toEqual([{ node: 0, from: 0, to: 1 }]);
    expect(one.nodes[0]).toMatchObject({ hashShare: 1, rows: one.totalRows, rowShare: 1 });
    expect(cachedRingLayout()([])).toBeUndefined();
  });

  it("is computed once per peer list", () => {
    const cached = cachedRingLayout();
    const a = cached(PEERS);
    expect(cached([...PEERS])).toBe(a);
    expect(cached(PEERS.slice(0, 2))).not.toBe(a);
  });
});

describe("PeerHistory", () => {
  it("records each new list with who joined and who left, and drops repeats", () => {
    let t = Date.UTC(2030, 0, 1);
    const h = new PeerHistory(() => t);
    h.record(["a", "b"]);
    h.record(["a", "b"]);
    t += 1000;
    h.record(["a", "c"]);
    expect(h.changes).toEqual([
      { at: "2030-01-01T00:00:00.000Z", peers: ["a", "b"], joined: ["a", "b"], left: [] },
      { at: "2030-01-01T00:00:01.000Z", peers: ["a", "c"], joined: ["c"], left: ["b"] },
    ]);
  });

  it("keeps the last 20", () => {
    const h = new PeerHistory();
    for (let i = 0; i < 25; i++) h.record([`n${i}`]);
    expect(h.changes).toHaveLength(20);
    expect(h.changes[0]?.peers).toEqual(["n5"]);
  });
});

describe("parseStatusQuery", () => {
  it("takes keys=0..20, 8 by default, and refuses anything else with a message", () => {
    expect(parseStatusQuery("/status/data")).toEqual({ keys: 8 });
    expect(parseStatusQuery("/status/data?")).toEqual({ keys: 8 });
    expect(parseStatusQuery("/status/data?keys=0")).toEqual({ keys: 0 });
    expect(parseStatusQuery("/status/data?keys=20")).toEqual({ keys: 20 });
    for (const bad of [
      "keys=21",
      "keys=-1",
      "keys=",
      "keys",
      "keys=1.5",
      "keys=%31",
      "keys=9999",
    ]) {
      expect(parseStatusQuery(`/status/data?${bad}`), bad).toMatchObject({
        error: expect.stringMatching(/^keys must be an integer from 0 to 20/),
      });
    }
    expect(parseStatusQuery("/status/data?t=1")).toEqual({
      error: 'unknown parameter "t": /status/data takes only keys=0..20',
    });
  });
});
