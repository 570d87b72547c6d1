import { type Group, GroupRegistry, NotFoundError } from "@tinycache/core";
import { InMemoryNetwork } from "@tinycache/core/testing";
import { register as globalRegister, Registry } from "prom-client";
import { afterEach, describe, expect, it, vi } from "vitest";
import { createTinycacheMetrics, DEFAULT_BUCKETS, type TinycacheMetrics } from "./index.js";

const PEER = "tinycache_peer_call_duration_seconds";
const LOAD = "tinycache_load_duration_seconds";

/** A sample as prom-client's `get()` gives it (histograms name each sample). */
interface Sample {
  value: number;
  labels: Record<string, string | number>;
  metricName?: string;
}

/** The samples of metric `metric`. */
async function samples(prom: Registry, metric: string): Promise<Sample[]> {
  const m = prom.getSingleMetric(metric);
  if (m === undefined) throw new Error(`no metric ${metric}`);
  return (await m.get()).values as Sample[];
}

/** The value of one sample of `name` whose labels include `labels`, or undefined. */
async function sample(
  prom: Registry,
  name: string,
  labels: Record<string, string | number>,
  metric = name,
): Promise<number | undefined> {
  const found = (await samples(prom, metric)).find(
    (v) =>
      (v.metricName ?? metric) === name &&
      Object.entries(labels).every(([k, want]) => v.labels[k] === want),
  );
  return found?.value;
}

/** Histogram `_count` of one label set. */
function count(prom: Registry, metric: string, labels: Record<string, string>) {
  return sample(prom, `${metric}_count`, labels, metric);
}

/** Label sets of a histogram's `_count` samples, as "k=v,..." strings, sorted. */
async function series(prom: Registry, metric: string): Promise<string[]> {
  return (await samples(prom, metric))
    .filter((v) => v.metricName === `${metric}_count`)
    .map((v) =>
      Object.entries(v.labels)
        .map(([k, x]) => `${k}=${x}`)
        .join(","),
    )
    .sort();
}

interface Node {
  id: string;
  registry: GroupRegistry;
  group: Group;
  prom: Registry;
  metrics: TinycacheMetrics;
}

/**
 * A cluster of in-memory nodes, each with its own prom-client registry and metrics. Keys
 * starting "missing" do not exist; keys starting "fail" make the getter throw.
 */
function cluster(ids: string[]): { net: InMemoryNetwork; nodes: Node[] } {
  const net = new InMemoryNetwork();
  const nodes = ids.map((id) => {
    const prom = new Registry();
    const metrics = createTinycacheMetrics({ registry: prom });
    const registry = new GroupRegistry({ observer: metrics.observer });
    metrics.watch(registry);
    registry.registerPeers(net.join(id, registry));
    const group = registry.newGroup({
      name: "scores",
      cacheBytes: 1 << 20,
      hotCache: false, // no random promotion: every get of a remote key asks its owner
      getter: async (key) => {
        if (key.startsWith("missing")) throw new NotFoundError(key);
        if (key.startsWith("fail")) throw new Error("db down");
        return `v:${key}`;
      },
    });
    return { id, registry, group, prom, metrics };
  });
  return { net, nodes };
}

/** The first key `prefix<n>` whose owner satisfies `pred`. */
function keyOwnedBy(net: InMemoryNetwork, prefix: string, pred: (owner: string) => boolean) {
  for (let i = 0; i < 1000; i++) {
    const k = `${prefix}${i}`;
    if (pred(net.ownerOf(k) as string)) return k;
  }
  throw new Error("no such key");
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe("latency histograms after real gets", () => {
  it("peer calls by peer and outcome, loads by outcome, on the node that waited for them", async () => {
    const { net, nodes } = cluster(["a", "b", "c"]);
    const [a, b] = nodes as [Node, Node, Node];
    const remote = keyOwnedBy(net, "key", (o) => o === "b");
    const local = keyOwnedBy(net, "key", (o) => o === "a");
    const missing = keyOwnedBy(net, "missing", (o) => o === "b");
    const failing = keyOwnedBy(net, "fail", (o) => o === "b");

    await Promise.all(Array.from({ length: 5 }, () => a.group.get(remote))); // one flight
    await a.group.get(remote); // not cached on a non-owner (no hot cache): a second call
    await a.group.get(local);
    await a.group.get(local); // a hit: nothing to time
    await a.group.get(local);
    await expect(a.group.get(missing)).rejects.toBeInstanceOf(NotFoundError);
    await expect(a.group.get(failing)).rejects.toThrow("db down");
    net.setDead("b");
    const fallback = keyOwnedBy(net, "other", (o) => o === "b");
    expect((await a.group.get(fallback)).toString()).toBe(`v:${fallback}`);

    const peer = (outcome: string) => count(a.prom, PEER, { group: "scores", peer: "b", outcome });
    expect(await peer("ok")).toBe(2);
    expect(await peer("not_found")).toBe(1);
    expect(await peer("getter_failed")).toBe(1);
    expect(await peer("unavailable")).toBe(1);
    expect(await series(a.prom, PEER)).toEqual([
      "group=scores,peer=b,outcome=getter_failed",
      "group=scores,peer=b,outcome=not_found",
      "group=scores,peer=b,outcome=ok",
      "group=scores,peer=b,outcome=unavailable",
    ]);
    // Node a called its getter for its own key and for the dead owner's key.
    expect(await count(a.prom, LOAD, { group: "scores", outcome: "ok" })).toBe(2);
    expect(await series(a.prom, LOAD)).toEqual(["group=scores,outcome=ok"]);
    // The owner b timed its getter calls, and called no peer.
    expect(await count(b.prom, LOAD, { group: "scores", outcome: "ok" })).toBe(1);
    expect(await count(b.prom, LOAD, { group: "scores", outcome: "not_found" })).toBe(1);
    expect(await count(b.prom, LOAD, { group: "scores", outcome: "error" })).toBe(1);
    expect(await series(b.prom, PEER)).toEqual([]);

    // Buckets are cumulative; +Inf holds every observation; the sum is in seconds.
    const inf = await sample(
      a.prom,
      `${PEER}_bucket`,
      { peer: "b", outcome: "ok", le: "+Inf" },
      PEER,
    );
    expect(inf).toBe(2);
    const sum = await sample(a.prom, `${PEER}_sum`, { peer: "b", outcome: "ok" }, PEER);
    expect(sum).toBeGreaterThanOrEqual(0);
    expect(sum).toBeLessThan(10);
  });

  it("observations land in the bucket of their duration", async () => {
    const prom = new Registry();
    const metrics = createTinycacheMetrics({ registry: prom, buckets: [0.01, 0.1, 1] });
    metrics.observer.load?.({ group: "g", outcome: "ok", seconds: 0.05 });
    metrics.observer.load?.({ group: "g", outcome: "ok", seconds: 0.5 });
    metrics.observer.load?.({ group: "g", outcome: "ok", seconds: 5 });
    const bucket = (le: number | string) =>
      sample(prom, `${LOAD}_bucket`, { group: "g", outcome: "ok", le }, LOAD);
    expect([await bucket(0.01), await bucket(0.1), await bucket(1), await bucket("+Inf")]).toEqual([
      0, 1, 2, 3,
    ]);
    expect(await sample(prom, `${LOAD}_sum`, { outcome: "ok" }, LOAD)).toBeCloseTo(5.55);
  });

  it("an observer that throws around the metrics' one never fails a get", async () => {
    const prom = new Registry();
    const metrics = createTinycacheMetrics({ registry: prom });
    const warn = vi.fn();
    const registry = new GroupRegistry({
      logger: { debug: () => {}, info: () => {}, warn, error: () => {} },
      observer: {
        load: (e) => {
          metrics.observer.load?.(e);
          throw new Error("user's observer bug");
        },
      },
    });
    const g = registry.newGroup({ name: "g", cacheBytes: 1 << 20, getter: async (k) => k });
    expect((await g.get("a")).toString()).toBe("a");
    expect((await g.get("b")).toString()).toBe("b");
    expect(await count(prom, LOAD, { group: "g", outcome: "ok" })).toBe(2);
    expect(warn).toHaveBeenCalledTimes(1); // logged once by the group
  });
});

describe("counters and gauges (watch)", () => {
  it("exports every group counter, the getter limit and both caches, read at scrape", async () => {
    const prom = new Registry();
    const metrics = createTinycacheMetrics({ registry: prom });
    const registry = new GroupRegistry({ observer: metrics.observer });
    const g = registry.newGroup({
      name: "scores",
      cacheBytes: 1 << 20,
      negativeTtlMs: 60_000,
      getter: async (key) => {
        if (key === "nobody") throw new NotFoundError(key);
        return `v:${key}`;
      },
    });
    metrics.watch(g);
    await g.get("Tom");
    await g.get("Tom");
    await g.get("nobody").catch(() => {});
    await g.get("nobody").catch(() => {});

    const text = await prom.metrics();
    expect(text).toMatch(/^# TYPE tinycache_group_gets_total counter$/m);
    expect(text).toMatch(/^# HELP tinycache_group_gets_total Get calls with a valid key$/m);
    expect(text).toMatch(/^tinycache_group_gets_total\{group="scores"\} 4$/m);
    expect(text).toMatch(/^tinycache_group_cache_hits_total\{group="scores"\} 2$/m);
    expect(text).toMatch(/^tinycache_group_local_loads_total\{group="scores"\} 2$/m);
    expect(text).toMatch(/^tinycache_group_not_founds_total\{group="scores"\} 1$/m);
    expect(text).toMatch(/^tinycache_group_negative_hits_total\{group="scores"\} 1$/m);
    expect(text).toMatch(/^tinycache_group_loads_rejected_total\{group="scores"\} 0$/m);
    for (const key of Object.keys(g.stats)) {
      const name = `tinycache_group_${key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)}_total`;
      const value = (g.stats as unknown as Record<string, number>)[key];
      expect(text).toContain(`\n${name}{group="scores"} ${value}\n`);
    }
    expect(text).toMatch(/^# TYPE tinycache_group_loads_active gauge$/m);
    expect(text).toMatch(/^tinycache_group_loads_active\{group="scores"\} 0$/m);
    expect(text).toMatch(/^tinycache_group_loads_waiting\{group="scores"\} 0$/m);
    const main = g.cacheStats("main");
    expect(main.items).toBe(2);
    expect(text).toContain(`\ntinycache_cache_bytes{group="scores",cache="main"} ${main.bytes}\n`);
    expect(text).toMatch(/^tinycache_cache_items\{group="scores",cache="main"\} 2$/m);
    expect(text).toMatch(/^tinycache_cache_items\{group="scores",cache="hot"\} 0$/m);
    expect(text).toMatch(/^# TYPE tinycache_cache_evictions_total counter$/m);
    expect(text).toContain(
      `\ntinycache_cache_gets_total{group="scores",cache="main"} ${main.gets}\n`,
    );
    expect(text).toContain(
      `\ntinycache_cache_hits_total{group="scores",cache="main"} ${main.hits}\n`,
    );
    expect(text).toMatch(/^tinycache_cache_evictions_total\{group="scores",cache="hot"\} 0$/m);
    expect(text).toMatch(/^# TYPE tinycache_load_duration_seconds histogram$/m);
    expect(text).toMatch(
      /^tinycache_load_duration_seconds_count\{group="scores",outcome="not_found"\} 1$/m,
    );
    expect(text).toMatch(
      /^tinycache_load_duration_seconds_bucket\{le="0.0005",group="scores",outcome="ok"\} \d$/m,
    );

    // Values are live: read again at the next scrape.
    await g.get("Jack");
    expect(await prom.metrics()).toMatch(/^tinycache_group_gets_total\{group="scores"\} 5$/m);
  });

  it("the getter limit gauges show calls running and waiting now", async () => {
    const prom = new Registry();
    const metrics = createTinycacheMetrics({ registry: prom });
    // Each getter call announces itself and waits for the test to let it answer.
    const calls: Array<{ key: string; answer: () => void }> = [];
    let called: () => void = () => {};
    const nextCall = () => new Promise<void>((r) => (called = r));
    const g = new GroupRegistry().newGroup({
      name: "g",
      cacheBytes: 1 << 20,
      maxConcurrentLoads: 1,
      getter: (key) =>
        new Promise((resolve) => {
          calls.push({ key, answer: () => resolve(key) });
          called();
        }),
    });
    metrics.watch(g);
    let next = nextCall();
    const gets = [g.get("a"), g.get("b"), g.get("c")];
    await next;
    const text = await prom.metrics();
    expect(text).toMatch(/^tinycache_group_loads_active\{group="g"\} 1$/m);
    expect(text).toMatch(/^tinycache_group_loads_waiting\{group="g"\} 2$/m);
    for (let i = 0; i < 3; i++) {
      next = nextCall();
      calls[i]?.answer();
      if (i < 2) await next;
    }
    expect((await Promise.all(gets)).map(String)).toEqual(["a", "b", "c"]);
    expect(await prom.metrics()).toMatch(/^tinycache_group_loads_active\{group="g"\} 0$/m);
  });

  it("a watched registry brings groups created later; a group is counted once; unwatch drops it", async () => {
    const prom = new Registry();
    const metrics = createTinycacheMetrics({ registry: prom });
    const registry = new GroupRegistry();
    const a = registry.newGroup({ name: "a", cacheBytes: 1 << 20, getter: async (k) => k });
    const stop = metrics.watch(registry);
    metrics.watch(a); // also through its registry: still one series, not two added up
    metrics.watch(registry); // again: no change
    const b = registry.newGroup({ name: "b", cacheBytes: 1 << 20, getter: async (k) => k });
    await a.get("x");
    await b.get("x");
    await b.get("y");
    let text = await prom.metrics();
    expect(text).toMatch(/^tinycache_group_gets_total\{group="a"\} 1$/m);
    expect(text).toMatch(/^tinycache_group_gets_total\{group="b"\} 2$/m);
    stop();
    text = await prom.metrics();
    expect(text).toMatch(/^tinycache_group_gets_total\{group="a"\} 1$/m); // watched itself
    expect(text).not.toMatch(/group="b"/);
    expect(() => metrics.watch({} as never)).toThrow(TypeError);
    expect(() => metrics.watch(null as never)).toThrow(TypeError);
  });
});

describe("peers that leave", () => {
  it("forgetPeer drops a peer's series; retainPeers keeps only the listed peers", async () => {
    const prom = new Registry();
    const metrics = createTinycacheMetrics({ registry: prom });
    const peerCall = metrics.observer.peerCall as NonNullable<typeof metrics.observer.peerCall>;
    for (const peer of ["http://p1", "http://p2", "http://p3"]) {
      peerCall({ group: "g", peer, outcome: "ok", seconds: 0.001 });
      peerCall({ group: "g", peer, outcome: "timeout", seconds: 0.5 });
      peerCall({ group: "h", peer, outcome: "unavailable", seconds: 0.01 });
    }
    expect(await series(prom, PEER)).toHaveLength(9);
    metrics.forgetPeer("http://p1");
    metrics.forgetPeer("http://never-seen"); // nothing to drop
    let left = await series(prom, PEER);
    expect(left).toHaveLength(6);
    expect(left.some((s) => s.includes("http://p1"))).toBe(false);
    metrics.retainPeers(["http://p3", "http://p4"]);
    left = await series(prom, PEER);
    expect(left).toEqual([
      "group=g,peer=http://p3,outcome=ok",
      "group=g,peer=http://p3,outcome=timeout",
      "group=h,peer=http://p3,outcome=unavailable",
    ]);
    // A peer seen again starts from zero.
    peerCall({ group: "g", peer: "http://p1", outcome: "ok", seconds: 0.001 });
    expect(await count(prom, PEER, { group: "g", peer: "http://p1", outcome: "ok" })).toBe(1);
  });
});

describe("registries", () => {
  it("two prom-client registries are independent, and the global one is never touched", async () => {
    const { net, nodes } = cluster(["a", "b"]);
    const [a, b] = nodes as [Node, Node];
    const remote = keyOwnedBy(net, "key", (o) => o === "b");
    await a.group.get(remote);
    expect(await count(a.prom, PEER, { peer: "b", outcome: "ok" })).toBe(1);
    expect(await series(b.prom, PEER)).toEqual([]);
    expect(await count(a.prom, LOAD, { outcome: "ok" })).toBeUndefined();
    expect(await count(b.prom, LOAD, { outcome: "ok" })).toBe(1);
    expect(await a.prom.metrics()).toMatch(/^tinycache_group_gets_total\{group="scores"\} 1$/m);
    expect(await b.prom.metrics()).toMatch(/^tinycache_group_gets_total\{group="scores"\} 1$/m);
    expect(await b.prom.metrics()).toMatch(
      /^tinycache_group_server_requests_total\{group="scores"\} 1$/m,
    );
    expect(
      globalRegister.getMetricsAsArray().filter((m) => m.name.startsWith("tinycache")),
    ).toEqual([]);
  });

  it("the global registry is used only when passed", async () => {
    const metrics = createTinycacheMetrics({ registry: globalRegister, prefix: "tc_global_" });
    try {
      metrics.observer.load?.({ group: "g", outcome: "ok", seconds: 0.001 });
      expect(await globalRegister.metrics()).toMatch(
        /^tc_global_load_duration_seconds_count\{group="g",outcome="ok"\} 1$/m,
      );
    } finally {
      for (const m of globalRegister.getMetricsAsArray()) {
        if (m.name.startsWith("tc_global_")) globalRegister.removeSingleMetric(m.name);
      }
    }
  });
});

describe("options", () => {
  it("a prefix renames every metric; custom buckets are used", async () => {
    const prom = new Registry();
    const metrics = createTinycacheMetrics({
      registry: prom,
      prefix: "app_cache_",
      buckets: [1, 2],
    });
    metrics.watch(new GroupRegistry());
    const names = prom.getMetricsAsArray().map((m) => m.name);
    expect(names.every((n) => n.startsWith("app_cache_"))).toBe(true);
    expect(names).toContain("app_cache_peer_call_duration_seconds");
    expect(names).toContain("app_cache_load_duration_seconds");
    expect(names).toContain("app_cache_group_gets_total");
    expect(names).toContain("app_cache_cache_bytes");
    metrics.observer.peerCall?.({ group: "g", peer: "p", outcome: "ok", seconds: 1.5 });
    const text = await prom.metrics();
    expect(text).toMatch(/^app_cache_peer_call_duration_seconds_bucket\{le="1",.*\} 0$/m);
    expect(text).toMatch(/^app_cache_peer_call_duration_seconds_bucket\{le="2",.*\} 1$/m);
    const bare = createTinycacheMetrics({ registry: new Registry(), prefix: "" });
    expect(bare.observer).toBeDefined();
  });

  it("the default buckets run from half a millisecond to ten seconds", async () => {
    expect(DEFAULT_BUCKETS[0]).toBe(0.0005);
    expect(DEFAULT_BUCKETS.at(-1)).toBe(10);
    expect(Object.isFrozen(DEFAULT_BUCKETS)).toBe(true);
  });

  it("refuses a missing registry, a bad prefix and bad buckets", () => {
    expect(() => createTinycacheMetrics(undefined as never)).toThrow(TypeError);
    expect(() => createTinycacheMetrics({} as never)).toThrow(/prom-client Registry/);
    const registry = new Registry();
    expect(() => createTinycacheMetrics({ registry, prefix: "bad-prefix" })).toThrow(TypeError);
    expect(() => createTinycacheMetrics({ registry, prefix: "9x" })).toThrow(TypeError);
    for (const buckets of [[], [0.1, 0.1], [0.2, 0.1], [-1], [Number.NaN], [Infinity], "1"]) {
      expect(() => createTinycacheMetrics({ registry, buckets: buckets as never })).toThrow(
        RangeError,
      );
    }
    expect(registry.getMetricsAsArray()).toEqual([]);
  });

  it("a second metrics object on one registry and prefix is refused, leaving it as it was", () => {
    const registry = new Registry();
    createTinycacheMetrics({ registry });
    const before = registry.getMetricsAsArray().length;
    expect(() => createTinycacheMetrics({ registry })).toThrow(/already registered/);
    expect(registry.getMetricsAsArray()).toHaveLength(before);
    // Another prefix is another set of names.
    createTinycacheMetrics({ registry, prefix: "other_" });
    expect(registry.getMetricsAsArray()).toHaveLength(before * 2);
  });
});
