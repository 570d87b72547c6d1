import { describe, expect, it, vi } from "vitest";
import { InvalidArgumentError, NotFoundError, PeerError, type PeerErrorKind } from "./errors.js";
import { defaultMaxValueBytes } from "./group.js";
import { RandomPromotion, RatePromotion } from "./hotpolicy.js";
import type { GroupOptions } from "./options.js";
import type {
  KeyRequest,
  PeerGetOptions,
  PeerGetter,
  PeerPicker,
  PeerValue,
  SetRequest,
} from "./peers.js";
import { GroupRegistry } from "./registry.js";
import { deferred, fakeClock, flush, memoryLogger } from "./testing.test-util.js";

/** A scripted remote owner: every key belongs to it. */
class FakePeer implements PeerGetter {
  readonly id: string;
  gets: KeyRequest[] = [];
  sets: SetRequest[] = [];
  removes: KeyRequest[] = [];
  lastSignal: AbortSignal | undefined;
  lastMaxValueBytes: number | undefined;
  answer: (req: KeyRequest) => Promise<PeerValue>;
  onRemove: (req: KeyRequest) => Promise<void> = async () => {};
  onSet: (req: SetRequest) => Promise<void> = async () => {};
  constructor(id: string, answer: (req: KeyRequest) => Promise<PeerValue>) {
    this.id = id;
    this.answer = answer;
  }
  get(req: KeyRequest, opts?: PeerGetOptions): Promise<PeerValue> {
    this.gets.push(req);
    this.lastSignal = opts?.signal;
    this.lastMaxValueBytes = opts?.maxValueBytes;
    return this.answer(req);
  }
  set(req: SetRequest): Promise<void> {
    this.sets.push(req);
    return this.onSet(req);
  }
  remove(req: KeyRequest): Promise<void> {
    this.removes.push(req);
    return this.onRemove(req);
  }
}

function remoteOwner(owner: FakePeer, others: PeerGetter[] = []): PeerPicker {
  return { pickPeer: () => owner, peers: () => [owner, ...others] };
}

const bytes = (s: string) => new TextEncoder().encode(s);

function setup(peer: FakePeer, opts: Partial<GroupOptions> = {}) {
  const getter = vi.fn(async (k: string) => `local:${k}`);
  const log = memoryLogger();
  const g = new GroupRegistry().newGroup({
    name: "g",
    cacheBytes: 1 << 20,
    getter,
    logger: log.logger,
    peers: remoteOwner(peer),
    ...opts,
  });
  return { g, getter, log };
}

describe("loading from the owning peer", () => {
  it("fetches a key owned elsewhere from the owner and never calls the local getter", async () => {
    const peer = new FakePeer("p1", async (r) => ({ value: bytes(`remote:${r.key}`) }));
    const { g, getter } = setup(peer, { hotCache: false });
    expect((await g.get("k")).toString()).toBe("remote:k");
    expect(peer.gets).toEqual([{ group: "g", key: "k" }]);
    expect(peer.lastSignal).toBeInstanceOf(AbortSignal);
    expect(getter).not.toHaveBeenCalled();
    expect(g.stats).toMatchObject({ peerLoads: 1, localLoads: 0, peerErrors: 0 });
    // hot cache disabled: every get goes to the owner again
    await g.get("k");
    expect(peer.gets).toHaveLength(2);
  });

  it.each<[string, () => unknown]>([
    ["PeerError unavailable", () => new PeerError("unavailable", "p1", "connection refused")],
    ["PeerError aborted (our timeout)", () => new PeerError("aborted", "p1", "timeout")],
    ["a plain Error", () => new Error("socket hang up")],
  ])(
    "%s: counts a peer error, logs at warn, loads locally, caller sees no error",
    async (_n, mk) => {
      const peer = new FakePeer("p1", async () => {
        throw mk();
      });
      const { g, getter, log } = setup(peer);
      expect((await g.get("k")).toString()).toBe("local:k");
      expect(getter).toHaveBeenCalledTimes(1);
      expect(g.stats).toMatchObject({ peerErrors: 1, peerLoads: 0, localLoads: 1 });
      expect(log.lines.filter((l) => l.level === "warn")).toHaveLength(1);
      expect(log.lines[0]?.obj).toMatchObject({ peer: "p1", group: "g", key: "k" });
      // the local load went to the main cache
      expect(g.cacheStats("main").items).toBe(1);
      await g.get("k");
      expect(peer.gets).toHaveLength(1);
    },
  );

  it("owner says not found: NotFoundError to the caller, local getter not called", async () => {
    const peer = new FakePeer("p1", async () => {
      throw new PeerError("not_found", "p1", "k not exist");
    });
    const { g, getter } = setup(peer);
    await expect(g.get("k")).rejects.toBeInstanceOf(NotFoundError);
    expect(getter).not.toHaveBeenCalled();
    expect(g.stats).toMatchObject({ notFounds: 1, peerErrors: 0 });
    await expect(g.get("k")).rejects.toBeInstanceOf(NotFoundError);
    expect(peer.gets).toHaveLength(2); // not cached without negativeTtlMs
  });

  it("owner's not found is cached negatively (hot cache) when negativeTtlMs is set", async () => {
    const clock = fakeClock();
    const peer = new FakePeer("p1", async () => {
      throw new PeerError("not_found", "p1", "nope");
    });
    const { g } = setup(peer, { negativeTtlMs: 500, now: clock.now });
    await expect(g.get("k")).rejects.toBeInstanceOf(NotFoundError);
    await expect(g.get("k")).rejects.toBeInstanceOf(NotFoundError);
    expect(peer.gets).toHaveLength(1);
    expect(g.cacheStats("hot").items).toBe(1);
    clock.advance(500);
    await expect(g.get("k")).rejects.toBeInstanceOf(NotFoundError);
    expect(peer.gets).toHaveLength(2);
  });

  it.each<PeerErrorKind>(["getter_failed", "invalid_argument"])(
    "owner answers %s: passed on, not loaded locally, not cached",
    async (kind) => {
      const err = new PeerError(kind, "p1", "db down");
      const peer = new FakePeer("p1", async () => {
        throw err;
      });
      const { g, getter } = setup(peer);
      await expect(g.get("k")).rejects.toBe(err);
      await expect(g.get("k")).rejects.toBe(err);
      expect(getter).not.toHaveBeenCalled();
      expect(g.stats.peerErrors).toBe(0);
    },
  );

  it("a peer that never answers times out after peerTimeoutMs and the key loads locally", async () => {
    const peer = new FakePeer("p1", () => new Promise<PeerValue>(() => {}));
    const { g, getter } = setup(peer, { peerTimeoutMs: 20 });
    expect((await g.get("k")).toString()).toBe("local:k");
    expect(getter).toHaveBeenCalledTimes(1);
    expect(peer.lastSignal?.aborted).toBe(true);
    expect(g.stats.peerErrors).toBe(1);
  });

  it("a peer that honours signals is timed out through its signal alone, with the same outcome", async () => {
    // It settles only when its signal aborts, as tinycache's transports do.
    const peer = new FakePeer("p1", () => new Promise<PeerValue>(() => {}));
    Object.assign(peer, { honoursSignals: true });
    peer.get = function (this: FakePeer, req, opts) {
      this.gets.push(req);
      this.lastSignal = opts?.signal;
      const signal = opts?.signal as AbortSignal;
      return new Promise<PeerValue>((_, reject) => {
        signal.addEventListener("abort", () =>
          reject(new PeerError("aborted", "p1", "aborted", { cause: signal.reason })),
        );
      });
    };
    const { g, getter } = setup(peer, { peerTimeoutMs: 20 });
    const keys = ["a", "b", "c"];
    const got = await Promise.all(keys.map((k) => g.get(k)));
    expect(got.map(String)).toEqual(keys.map((k) => `local:${k}`));
    expect(getter).toHaveBeenCalledTimes(3);
    expect(peer.lastSignal?.aborted).toBe(true);
    expect(((peer.lastSignal as AbortSignal).reason as DOMException).name).toBe("TimeoutError");
    expect(g.stats.peerErrors).toBe(3);
    // Answers in time are served as before.
    peer.get = async (req) => ({ value: bytes(`remote:${req.key}`) });
    expect((await g.get("d")).toString()).toBe("remote:d");
  });

  it("gets without a signal share one timeout signal; a caller's own signal gets its own", async () => {
    const signals: (AbortSignal | undefined)[] = [];
    const peer = new FakePeer("p1", async (req) => ({ value: bytes(`remote:${req.key}`) }));
    const get = peer.get.bind(peer);
    peer.get = (req, opts) => {
      signals.push(opts?.signal);
      return get(req, opts);
    };
    const { g } = setup(peer, { hotCache: false });
    await Promise.all(["a", "b", "c"].map((k) => g.get(k)));
    expect(signals).toHaveLength(3);
    expect(new Set(signals).size).toBe(1);
    expect(signals[0]?.aborted).toBe(false);
    const ac = new AbortController();
    await g.get("d", { signal: ac.signal });
    expect(signals[3]).not.toBe(signals[0]);
    ac.abort();
    expect(signals[0]?.aborted).toBe(false); // one caller's abort reaches nobody else
  });

  it("peerTimeoutMs Infinity: no timeout of its own, however long the owner takes", async () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
    try {
      for (const peerTimeoutMs of [undefined, Number.POSITIVE_INFINITY]) {
        const gate = deferred<PeerValue>();
        const peer = new FakePeer("p1", () => gate.promise);
        const { g, getter } = setup(peer, peerTimeoutMs === undefined ? {} : { peerTimeoutMs });
        const got = g.get("k");
        // The default timeout; shared by the gets that start close together, it may fire
        // up to 1/16 late (see peerTimeoutMs).
        await vi.advanceTimersByTimeAsync(10_000 + 10_000 / 16);
        expect(peer.lastSignal?.aborted).toBe(peerTimeoutMs === undefined);
        gate.resolve({ value: bytes("remote") });
        expect((await got).toString()).toBe(peerTimeoutMs === undefined ? "local:k" : "remote");
        expect(getter).toHaveBeenCalledTimes(peerTimeoutMs === undefined ? 1 : 0);
      }
    } finally {
      vi.useRealTimers();
    }
  });

  it("a write of another key during a peer fetch does not stop its hot promotion", async () => {
    const gates = new Map([
      ["A", deferred<PeerValue>()],
      ["B", deferred<PeerValue>()],
    ]);
    const peer = new FakePeer(
      "p1",
      (r) => (gates.get(r.key) as { promise: Promise<PeerValue> }).promise,
    );
    const { g } = setup(peer, { hotCache: { shouldPromote: () => true } });
    const a = g.get("A");
    const b = g.get("B");
    await flush();
    await g.remove("A");
    gates.get("A")?.resolve({ value: bytes("stale A") });
    gates.get("B")?.resolve({ value: bytes("B") });
    expect((await a).toString()).toBe("stale A");
    expect((await b).toString()).toBe("B");
    expect(g.stats.hotPromotions).toBe(1); // B only
    await g.get("B");
    expect(peer.gets.map((r) => r.key)).toEqual(["A", "B"]);
  });

  it("keeps the owner's expiresAt on a promoted value (no local TTL, no jitter)", async () => {
    const clock = fakeClock();
    const expiresAt = clock.now() + 300;
    const peer = new FakePeer("p1", async () => ({ value: bytes("v"), expiresAt }));
    const { g } = setup(peer, {
      now: clock.now,
      ttlMs: 1_000_000,
      ttlJitter: 0.5,
      hotCache: { shouldPromote: () => true },
    });
    await g.get("k");
    expect(g.stats.hotPromotions).toBe(1);
    expect(g.cacheStats("hot").items).toBe(1);
    clock.advance(299);
    await g.get("k");
    expect(peer.gets).toHaveLength(1);
    clock.advance(1);
    await g.get("k");
    expect(peer.gets).toHaveLength(2);
  });

  it("RandomPromotion (groupcache's policy) promotes about 1 in 10 fetches, from its random", async () => {
    const draws = [0.5, 0.05, 0.99]; // only < 0.1 promotes
    const peer = new FakePeer("p1", async (r) => ({ value: bytes(r.key) }));
    const { g } = setup(peer, {
      hotCache: new RandomPromotion({ random: () => draws.shift() ?? 0.5 }),
    });
    await g.get("a");
    await g.get("b");
    await g.get("c");
    expect(g.stats.hotPromotions).toBe(1);
    expect(g.cacheStats("hot").items).toBe(1);
    await g.get("b"); // hot hit
    expect(peer.gets).toHaveLength(3);
    expect(g.cacheStats("hot")).toMatchObject({ hits: 1 });
  });

  it("recentKeys lists the hot cache's copies apart from the main cache's keys", async () => {
    const peer = new FakePeer("p1", async (r) => ({ value: bytes(r.key) }));
    const { g } = setup(peer, { hotCache: { shouldPromote: (k) => k !== "x" } });
    for (const k of ["a", "x", "b"]) await g.get(k);
    expect(g.recentKeys("hot", 5)).toEqual([
      { key: "b", notFound: false },
      { key: "a", notFound: false },
    ]);
    expect(g.recentKeys("main", 5)).toEqual([]);
  });

  it("RatePromotion in a group: a key enters the hot cache on its Nth fetch", async () => {
    const clock = fakeClock();
    const peer = new FakePeer("p1", async (r) => ({ value: bytes(r.key) }));
    const { g } = setup(peer, {
      hotCache: new RatePromotion({ minFetches: 3, windowMs: 1000, now: clock.now }),
    });
    await g.get("k");
    await g.get("k");
    expect(g.cacheStats("hot").items).toBe(0);
    await g.get("k");
    expect(g.cacheStats("hot").items).toBe(1);
    await g.get("k");
    expect(peer.gets).toHaveLength(3);
  });

  it("the hot policy sees the key, the value and live stats", async () => {
    const shouldPromote = vi.fn(() => false);
    const peer = new FakePeer("p1", async () => ({ value: bytes("val") }));
    const { g } = setup(peer, { hotCache: { shouldPromote } });
    await g.get("k");
    expect(shouldPromote).toHaveBeenCalledTimes(1);
    const [key, view, stats] = shouldPromote.mock.calls[0] as unknown as [
      string,
      { toString(): string },
      { peerLoads: number },
    ];
    expect(key).toBe("k");
    expect(view.toString()).toBe("val");
    expect(stats.peerLoads).toBe(1);
  });

  it("a caller's abort during a peer fetch rejects its wait; the fetch goes on for others", async () => {
    const gate = deferred<PeerValue>();
    const peer = new FakePeer("p1", () => gate.promise);
    const { g } = setup(peer);
    const ac = new AbortController();
    const mine = g.get("k", { signal: ac.signal });
    const other = g.get("k");
    await flush();
    ac.abort(new Error("bye"));
    await expect(mine).rejects.toThrow("bye");
    expect(peer.lastSignal?.aborted).toBe(false);
    gate.resolve({ value: bytes("v") });
    expect((await other).toString()).toBe("v");
    expect(peer.gets).toHaveLength(1);
  });
});

describe("set and remove with a remote owner", () => {
  it("set goes to the owner with the absolute expiry, and to the local hot cache", async () => {
    const clock = fakeClock();
    const peer = new FakePeer("p1", async () => ({ value: bytes("remote") }));
    const { g } = setup(peer, { now: clock.now });
    await g.set("k", "new", { ttlMs: 1000 });
    expect(peer.sets).toHaveLength(1);
    expect(peer.sets[0]).toMatchObject({ group: "g", key: "k", expiresAt: clock.now() + 1000 });
    expect(new TextDecoder().decode(peer.sets[0]?.value)).toBe("new");
    expect((await g.get("k")).toString()).toBe("new");
    expect(peer.gets).toHaveLength(0);
    expect(g.cacheStats("hot").items).toBe(1);
    await g.set("n", "never");
    expect(peer.sets[1]?.expiresAt).toBeUndefined();
  });

  it("set with ttlMs 0 sends an expiry of now: the owner and this node keep no copy", async () => {
    const clock = fakeClock();
    const peer = new FakePeer("p1", async () => ({ value: bytes("remote") }));
    const { g } = setup(peer, { now: clock.now });
    await g.set("k", "old");
    expect(g.cacheStats("hot").items).toBe(1);
    await g.set("k", "gone", { ttlMs: 0 });
    expect(peer.sets[1]?.expiresAt).toBe(clock.now());
    expect(g.cacheStats("hot").items).toBe(0);
    expect((await g.get("k")).toString()).toBe("remote");
  });

  it("set throws the owner's error and stores nothing locally", async () => {
    const peer = new FakePeer("p1", async () => ({ value: bytes("remote") }));
    peer.onSet = async () => {
      throw new PeerError("unavailable", "p1", "down");
    };
    const { g } = setup(peer);
    await expect(g.set("k", "v")).rejects.toBeInstanceOf(PeerError);
    expect(g.cacheStats("hot").items + g.cacheStats("main").items).toBe(0);
  });

  it("remove: owner first, then local, then a broadcast; failures reported, not thrown", async () => {
    const order: string[] = [];
    const owner = new FakePeer("owner", async () => ({ value: bytes("v") }));
    owner.onRemove = async () => {
      order.push("owner");
    };
    const ok = new FakePeer("ok", async () => ({ value: bytes("v") }));
    ok.onRemove = async () => {
      order.push("ok");
    };
    const bad = new FakePeer("bad", async () => ({ value: bytes("v") }));
    bad.onRemove = async () => {
      order.push("bad");
      throw new PeerError("unavailable", "bad", "refused");
    };
    const hung = new FakePeer("hung", async () => ({ value: bytes("v") }));
    hung.onRemove = () => new Promise<void>(() => {});
    const { g, log } = setup(owner, {
      peers: remoteOwner(owner, [ok, bad, hung]),
      hotCache: { shouldPromote: () => true },
      peerTimeoutMs: 20,
    });
    await g.get("k");
    expect(g.cacheStats("hot").items).toBe(1);
    const res = await g.remove("k");
    expect(order).toEqual(["owner", "ok", "bad"]);
    expect(owner.removes).toEqual([{ group: "g", key: "k" }]);
    expect(res.ok).toBe(false);
    expect(res.owner).toBe("owner");
    expect(res.peersAsked).toBe(4);
    expect(res.failures.map((f) => f.peer).sort()).toEqual(["bad", "hung"]);
    expect(res.failures.every((f) => f.owner === false)).toBe(true);
    expect(g.cacheStats("hot").items).toBe(0);
    expect(log.lines.some((l) => l.level === "warn")).toBe(true);
  });

  it("remove reports an unreachable owner and still removes locally and broadcasts", async () => {
    const owner = new FakePeer("owner", async () => ({ value: bytes("v") }));
    owner.onRemove = async () => {
      throw new PeerError("unavailable", "owner", "down");
    };
    const other = new FakePeer("other", async () => ({ value: bytes("v") }));
    const { g } = setup(owner, { peers: remoteOwner(owner, [other]) });
    await g.set("k", "v");
    const res = await g.remove("k");
    expect(res.failures).toHaveLength(1);
    expect(res.failures[0]).toMatchObject({ peer: "owner", owner: true });
    expect(other.removes).toHaveLength(1);
    expect(g.cacheStats("hot").items).toBe(0);
  });
});

describe("ServedGroup (what transports call)", () => {
  it("serveGet counts a server request and returns the value with its absolute expiry", async () => {
    const clock = fakeClock();
    const g = new GroupRegistry().newGroup({
      name: "g",
      cacheBytes: 1 << 20,
      ttlMs: 1000,
      now: clock.now,
      getter: async (k) => `v:${k}`,
    });
    const got = await g.serveGet("k");
    expect(got.value.toString()).toBe("v:k");
    expect(got.expiresAt).toBe(clock.now() + 1000);
    expect(g.stats.serverRequests).toBe(1);
    const again = await g.serveGet("k");
    expect(again.expiresAt).toBe(got.expiresAt);
    expect(g.stats).toMatchObject({ serverRequests: 2, cacheHits: 1, localLoads: 1 });
    await g.set("n", "never", { ttlMs: Number.POSITIVE_INFINITY });
    expect(await g.serveGet("n")).not.toHaveProperty("expiresAt");
  });

  it("serveGet hits share one frozen answer per entry, and a new value gets a new one", async () => {
    const g = new GroupRegistry().newGroup({
      name: "g",
      cacheBytes: 1 << 20,
      getter: async (k) => `v:${k}`,
    });
    await g.serveGet("k"); // load
    const first = await g.serveGet("k");
    const second = await g.serveGet("k");
    expect(second).toBe(first);
    expect(Object.isFrozen(first)).toBe(true);
    await g.set("k", "changed");
    const third = await g.serveGet("k");
    expect(third).not.toBe(first);
    expect(third.value.toString()).toBe("changed");
    expect(first.value.toString()).toBe("v:k");
  });

  it("serveGet of a missing key rejects NotFoundError (also from a negative entry)", async () => {
    const g = new GroupRegistry().newGroup({
      name: "g",
      cacheBytes: 1 << 20,
      negativeTtlMs: 1000,
      getter: async (k) => {
        throw new NotFoundError(k);
      },
    });
    await expect(g.serveGet("x")).rejects.toBeInstanceOf(NotFoundError);
    await expect(g.serveGet("x")).rejects.toBeInstanceOf(NotFoundError);
    expect(g.stats).toMatchObject({ negativeHits: 1, localLoads: 1 });
  });

  it("serveGet for a key this node thinks another owns loads locally, never forwards", async () => {
    const peer = new FakePeer("p1", async () => ({ value: bytes("remote") }));
    const { g, getter } = setup(peer);
    expect((await g.serveGet("k")).value.toString()).toBe("local:k");
    expect(peer.gets).toHaveLength(0);
    expect(getter).toHaveBeenCalledTimes(1);
  });

  it("a peer's load of a key owned elsewhere (its own flight) is invalidated per key too", async () => {
    const peer = new FakePeer("p1", async () => ({ value: bytes("remote") }));
    const gates = new Map([
      ["A", deferred<string>()],
      ["B", deferred<string>()],
    ]);
    const { g } = setup(peer, {
      getter: (k) => (gates.get(k) as { promise: Promise<string> }).promise,
    });
    const a = g.serveGet("A");
    const b = g.serveGet("B");
    await flush();
    g.serveRemove("A");
    gates.get("A")?.resolve("stale A");
    gates.get("B")?.resolve("B");
    expect((await a).value.toString()).toBe("stale A");
    expect((await b).value.toString()).toBe("B");
    expect(g.cacheStats("main").items).toBe(1); // B only
    expect((await g.serveGet("B")).value.toString()).toBe("B");
    expect(g.stats).toMatchObject({ loads: 2, loadsDeduped: 2, cacheHits: 1 });
    expect(peer.gets).toHaveLength(0);
  });

  it("serveSet stores in main with the given expiry; serveRemove drops main and hot", async () => {
    const clock = fakeClock();
    const peer = new FakePeer("p1", async () => ({ value: bytes("remote") }));
    const { g } = setup(peer, { now: clock.now, hotCache: { shouldPromote: () => true } });
    g.serveSet("a", bytes("A"), clock.now() + 100);
    expect(g.cacheStats("main").items).toBe(1);
    expect((await g.get("a")).toString()).toBe("A");
    clock.advance(100);
    expect((await g.get("a")).toString()).toBe("remote"); // expired -> owner
    expect(g.cacheStats("hot").items).toBe(1);
    g.serveSet("b", bytes("B"));
    g.serveRemove("a");
    g.serveRemove("b");
    expect(g.cacheStats("main").items + g.cacheStats("hot").items).toBe(0);
  });

  it("serveSet rejects oversize values and keys with InvalidArgumentError", () => {
    const peer = new FakePeer("p1", async () => ({ value: bytes("remote") }));
    const { g } = setup(peer, { maxValueBytes: 2, maxKeyBytes: 2 });
    expect(() => g.serveSet("k", bytes("abc"))).toThrow(InvalidArgumentError);
    expect(() => g.serveSet("kkk", bytes("a"))).toThrow(InvalidArgumentError);
    expect(g.cacheStats("main").items).toBe(0);
  });
});

describe("maxValueBytes and peers' answers", () => {
  it("defaults to cacheBytes / 8 (the hot share); Infinity without a finite, non-zero budget", () => {
    const peer = new FakePeer("p1", async () => ({ value: bytes("v") }));
    expect(setup(peer, { cacheBytes: 1 << 20 }).g.maxValueBytes).toBe(1 << 17);
    expect(setup(peer, { cacheBytes: 16_777_216 }).g.maxValueBytes).toBe(2_097_152);
    expect(setup(peer, { cacheBytes: 7 }).g.maxValueBytes).toBe(1);
    expect(setup(peer, { cacheBytes: 0 }).g.maxValueBytes).toBe(Number.POSITIVE_INFINITY);
    expect(setup(peer, { cacheBytes: Number.POSITIVE_INFINITY }).g.maxValueBytes).toBe(
      Number.POSITIVE_INFINITY,
    );
    expect(setup(peer, { cacheBytes: 1 << 20, maxValueBytes: 0 }).g.maxValueBytes).toBe(0);
    expect(defaultMaxValueBytes(80)).toBe(10);
  });

  it("tells the owner's client the limit, and none when there is none", async () => {
    const peer = new FakePeer("p1", async () => ({ value: bytes("v") }));
    await setup(peer, { cacheBytes: 800, hotCache: false }).g.get("k");
    expect(peer.lastMaxValueBytes).toBe(100);
    await setup(peer, { cacheBytes: Number.POSITIVE_INFINITY, hotCache: false }).g.get("k");
    expect(peer.lastMaxValueBytes).toBeUndefined();
  });

  it("an answer over the limit is a peer error: the key is loaded locally, where the limit applies too", async () => {
    const peer = new FakePeer("p1", async (r) => ({ value: bytes(`remote:${r.key}-too-long`) }));
    const { g, getter, log } = setup(peer, { maxValueBytes: 12 });
    // The local value fits: it is the answer.
    expect((await g.get("k")).toString()).toBe("local:k");
    expect(getter).toHaveBeenCalledTimes(1);
    expect(g.stats).toMatchObject({ peerErrors: 1, peerLoads: 0, localLoads: 1 });
    expect(log.lines.some((l) => l.level === "warn")).toBe(true);
    // The local value is too large too: reported as too large (InvalidArgumentError).
    await expect(g.get("longer-key")).rejects.toBeInstanceOf(InvalidArgumentError);
    expect(g.stats).toMatchObject({ peerErrors: 2, localLoadErrs: 1 });
  });
});

describe("keys owned elsewhere and the main cache", () => {
  /** A picker whose answer the test changes: `to` is the owner, undefined for this node. */
  function movablePicker(to: FakePeer | undefined) {
    const picker = {
      to,
      pickPeer: (_key: string) => picker.to,
      peers: () => (picker.to === undefined ? [] : [picker.to]),
    };
    return picker;
  }

  it("a get of a key owned elsewhere looks in hot alone; one of this node's keys in main", async () => {
    const peer = new FakePeer("p1", async (r) => ({ value: bytes(`remote:${r.key}`) }));
    const picker = movablePicker(peer);
    const { g } = setup(peer, { peers: picker, hotCache: false });
    expect((await g.get("theirs")).toString()).toBe("remote:theirs");
    expect((await g.get("theirs")).toString()).toBe("remote:theirs");
    expect(g.cacheStats("main").gets).toBe(0);
    expect(g.cacheStats("hot").gets).toBeGreaterThanOrEqual(2);
    picker.to = undefined;
    expect((await g.get("mine")).toString()).toBe("local:mine");
    expect((await g.get("mine")).toString()).toBe("local:mine");
    expect(g.cacheStats("main")).toMatchObject({ items: 1, hits: 1 });
  });

  it("a local load after the owner failed is served from main until it leaves, then the owner is asked", async () => {
    const clock = fakeClock();
    let up = false;
    const peer = new FakePeer("p1", async (r) => {
      if (!up) throw new PeerError("unavailable", "p1", "connection refused");
      return { value: bytes(`remote:${r.key}`) };
    });
    const { g, getter } = setup(peer, { now: clock.now, ttlMs: 100, hotCache: false });
    expect((await g.get("k")).toString()).toBe("local:k");
    up = true; // the owner is back, but this node's copy is still good
    for (let i = 0; i < 3; i++) expect((await g.get("k")).toString()).toBe("local:k");
    expect(g.stats.cacheHits).toBe(3);
    expect(peer.gets).toHaveLength(1);
    expect(getter).toHaveBeenCalledTimes(1);
    clock.advance(100); // the copy expires: the owner answers again
    expect((await g.get("k")).toString()).toBe("remote:k");
    expect(peer.gets).toHaveLength(2);
  });

  it("an owner's refusal of a value too large makes one local load, then main serves it", async () => {
    const peer = new FakePeer("p1", async () => ({ value: new Uint8Array(64) }));
    const { g, getter } = setup(peer, { maxValueBytes: 16, hotCache: false });
    expect((await g.get("k")).toString()).toBe("local:k");
    expect((await g.get("k")).toString()).toBe("local:k");
    expect(peer.gets).toHaveLength(1);
    expect(getter).toHaveBeenCalledTimes(1);
  });

  it("a key this node cached as its own is asked of its new owner after the ring moves it; main serves it while that owner is out", async () => {
    const peer = new FakePeer("p1", async (r) => ({ value: bytes(`remote:${r.key}`) }));
    const picker = movablePicker(undefined);
    const { g, getter } = setup(peer, { peers: picker, hotCache: false });
    expect((await g.get("k")).toString()).toBe("local:k");
    picker.to = peer; // a node joined and owns k now: its copy is the one sets keep current
    expect((await g.get("k")).toString()).toBe("remote:k");
    expect(peer.gets).toHaveLength(1);
    picker.to = undefined; // the owner is unhealthy (or left): this node's copy serves
    expect((await g.get("k")).toString()).toBe("local:k");
    expect(getter).toHaveBeenCalledTimes(1);
  });

  it("a negative entry from a local load after the owner failed is found too", async () => {
    const peer = new FakePeer("p1", async () => {
      throw new PeerError("unavailable", "p1", "down");
    });
    const { g, getter } = setup(peer, { negativeTtlMs: 1000, hotCache: false });
    getter.mockImplementation(async (k: string) => {
      throw new NotFoundError(k);
    });
    await expect(g.get("k")).rejects.toBeInstanceOf(NotFoundError);
    await expect(g.get("k")).rejects.toBeInstanceOf(NotFoundError);
    expect(getter).toHaveBeenCalledTimes(1);
    expect(peer.gets).toHaveLength(1);
  });

  it("a picker that throws: the get rejects with its error, nothing is cached, the next get works", async () => {
    const peer = new FakePeer("p1", async (r) => ({ value: bytes(`remote:${r.key}`) }));
    const boom = new Error("picker broke");
    let broken = true;
    const picker = {
      pickPeer: () => {
        if (broken) throw boom;
        return peer;
      },
      peers: () => [peer],
    };
    const { g } = setup(peer, { peers: picker });
    await expect(g.get("k")).rejects.toBe(boom);
    await expect(g.get("k", { signal: new AbortController().signal })).rejects.toBe(boom);
    broken = false;
    expect((await g.get("k")).toString()).toBe("remote:k");
  });
});
