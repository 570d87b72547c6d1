import { afterEach, describe, expect, it, vi } from "vitest";
import { NotFoundError, PeerError } from "./errors.js";
import { type LoadEvent, type PeerCallEvent, peerCallOutcome } from "./observer.js";
import type { GroupOptions } from "./options.js";
import type { PeerGetter, PeerPicker, PeerValue } from "./peers.js";
import { GroupRegistry } from "./registry.js";
import { InMemoryNetwork } from "./testing/index.js";
import { deferred, flush, memoryLogger } from "./testing.test-util.js";

/** An observer that records every event. */
function recorder() {
  const peerCalls: PeerCallEvent[] = [];
  const loads: LoadEvent[] = [];
  return {
    peerCalls,
    loads,
    observer: {
      peerCall: (e: PeerCallEvent) => void peerCalls.push(e),
      load: (e: LoadEvent) => void loads.push(e),
    },
  };
}

/** A remote owner of every key whose get answers as `answer` says. */
function ownerPicker(answer: (key: string, signal?: AbortSignal) => Promise<PeerValue>) {
  const peer: PeerGetter = {
    id: "http://10.0.0.2:8001",
    get: (req, opts) => answer(req.key, opts?.signal),
    set: async () => {},
    remove: async () => {},
  };
  const picker: PeerPicker = { pickPeer: () => peer, peers: () => [peer] };
  return picker;
}

function group(opts: Partial<GroupOptions>) {
  return new GroupRegistry().newGroup({
    name: "g",
    cacheBytes: 1 << 20,
    getter: async (k) => `local:${k}`,
    ...opts,
  });
}

/** performance.now() under the test's control, in ms. */
function manualClock() {
  let t = 1_000;
  const spy = vi.spyOn(performance, "now").mockImplementation(() => t);
  return {
    spy,
    advance(ms: number) {
      t += ms;
    },
  };
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe("observer: getter calls", () => {
  it("reports each getter call once, with its outcome and its duration in seconds", async () => {
    const clock = manualClock();
    const rec = recorder();
    const gate = deferred<void>();
    const g = group({
      observer: rec.observer,
      getter: async (k) => {
        if (k === "slow") {
          await gate.promise;
          return "v";
        }
        if (k === "missing") throw new NotFoundError(k);
        if (k === "bad") return 42 as unknown as string; // not bytes: a load error
        throw new Error("db down");
      },
    });
    // Ten concurrent gets of one key: one getter call, one event.
    const gets = Array.from({ length: 10 }, () => g.get("slow"));
    await flush();
    clock.advance(250);
    gate.resolve();
    await Promise.all(gets);
    await expect(g.get("missing")).rejects.toBeInstanceOf(NotFoundError);
    await expect(g.get("boom")).rejects.toThrow("db down");
    await expect(g.get("bad")).rejects.toBeInstanceOf(TypeError);
    expect(rec.loads).toEqual([
      { group: "g", outcome: "ok", seconds: 0.25 },
      { group: "g", outcome: "not_found", seconds: 0 },
      { group: "g", outcome: "error", seconds: 0 },
      { group: "g", outcome: "error", seconds: 0 },
    ]);
    // Hits (the fast path, and a negative hit) report nothing.
    const calls = clock.spy.mock.calls.length;
    await g.get("slow");
    expect(rec.loads).toHaveLength(4);
    expect(clock.spy.mock.calls.length).toBe(calls);
    expect(g.stats).toMatchObject({ localLoads: 2, localLoadErrs: 2 });
    expect(rec.peerCalls).toEqual([]);
  });

  it("times the getter call only, not the wait for a slot of maxConcurrentLoads", async () => {
    const clock = manualClock();
    const rec = recorder();
    const gates = new Map([
      ["a", deferred<void>()],
      ["b", deferred<void>()],
    ]);
    const g = group({
      observer: rec.observer,
      maxConcurrentLoads: 1,
      getter: async (k) => {
        await gates.get(k)?.promise;
        return k;
      },
    });
    const a = g.get("a");
    const b = g.get("b"); // waits for a's slot
    await flush();
    clock.advance(100);
    gates.get("a")?.resolve();
    await a;
    await flush();
    clock.advance(50);
    gates.get("b")?.resolve();
    await b;
    expect(rec.loads.map((e) => e.seconds)).toEqual([0.1, 0.05]);
    expect(g.stats.loadsQueued).toBe(1);
  });

  it("without an observer the group reads no clock, on hits or misses", async () => {
    const clock = manualClock();
    const g = group({ getter: async (k) => k });
    await g.get("a");
    await g.get("a");
    const failing = group({ getter: async () => Promise.reject(new Error("x")) });
    await expect(failing.get("b")).rejects.toThrow("x");
    expect(clock.spy).not.toHaveBeenCalled();
  });

  it("only peerCall or only load may be given", async () => {
    const loads: LoadEvent[] = [];
    const g = group({ observer: { load: (e) => void loads.push(e) } });
    await g.get("a");
    expect(loads).toHaveLength(1);
    const h = group({
      observer: {},
      peers: ownerPicker(async () => ({ value: new Uint8Array() })),
    });
    expect((await h.get("a")).length).toBe(0);
  });

  it("refuses an observer that is not an object", () => {
    expect(() => group({ observer: 1 as never })).toThrow(TypeError);
    expect(() => group({ observer: null as never })).toThrow(TypeError);
  });
});

describe("observer: peer calls", () => {
  it("reports the owner's answers: ok, not_found, getter_failed, invalid_argument", async () => {
    const clock = manualClock();
    const rec = recorder();
    const g = group({
      observer: rec.observer,
      peers: ownerPicker(async (key) => {
        clock.advance(3);
        if (key === "ok") return { value: new TextEncoder().encode("remote") };
        if (key === "nf") throw new PeerError("not_found", "p", "no");
        if (key === "gf") throw new PeerError("getter_failed", "p", "db down");
        throw new PeerError("invalid_argument", "p", "too long");
      }),
    });
    expect((await g.get("ok")).toString()).toBe("remote");
    await expect(g.get("nf")).rejects.toBeInstanceOf(NotFoundError);
    await expect(g.get("gf")).rejects.toBeInstanceOf(PeerError);
    await expect(g.get("ia")).rejects.toBeInstanceOf(PeerError);
    const peer = "http://10.0.0.2:8001";
    expect(rec.peerCalls).toEqual([
      { group: "g", peer, outcome: "ok", seconds: 0.003 },
      { group: "g", peer, outcome: "not_found", seconds: 0.003 },
      { group: "g", peer, outcome: "getter_failed", seconds: 0.003 },
      { group: "g", peer, outcome: "invalid_argument", seconds: 0.003 },
    ]);
    expect(rec.loads).toEqual([]); // the owner answered: no local getter call
  });

  it("an owner that fails or times out: unavailable / timeout, then one local load", async () => {
    const rec = recorder();
    const g = group({
      observer: rec.observer,
      peerTimeoutMs: 20,
      peers: ownerPicker(async (key) => {
        if (key === "down") throw new PeerError("unavailable", "p", "refused");
        if (key === "weird") throw new Error("a transport bug");
        if (key === "huge") return { value: new Uint8Array(30) };
        if (key === "transport-timeout") {
          const msg = "timed out after 5 ms";
          throw new PeerError("unavailable", "p", msg, {
            cause: new DOMException(msg, "TimeoutError"),
          });
        }
        return new Promise<PeerValue>(() => {}); // hangs: the group's peerTimeoutMs fires
      }),
      maxValueBytes: 25,
    });
    for (const key of ["down", "weird", "huge", "transport-timeout", "hang"]) {
      expect((await g.get(key)).toString()).toBe(`local:${key}`);
    }
    expect(rec.peerCalls.map((e) => e.outcome)).toEqual([
      "unavailable",
      "unavailable",
      "unavailable",
      "timeout",
      "timeout",
    ]);
    expect(rec.peerCalls.at(-1)?.seconds).toBeGreaterThanOrEqual(0.015);
    expect(rec.loads.map((e) => e.outcome)).toEqual(["ok", "ok", "ok", "ok", "ok"]);
    expect(g.stats.peerErrors).toBe(5);
  });

  it("a call every caller gave up on is reported as aborted", async () => {
    const rec = recorder();
    const started = deferred<void>();
    const g = group({
      observer: rec.observer,
      peers: ownerPicker(
        (_key, signal) =>
          new Promise<PeerValue>((_resolve, reject) => {
            started.resolve();
            signal?.addEventListener("abort", () =>
              reject(new PeerError("aborted", "p", "aborted")),
            );
          }),
      ),
    });
    const ac = new AbortController();
    const got = g.get("k", { signal: ac.signal });
    await started.promise;
    ac.abort();
    await expect(got).rejects.toThrow();
    await flush();
    expect(rec.peerCalls.map((e) => e.outcome)).toEqual(["aborted"]);
    expect(rec.loads).toEqual([]);
  });

  it("in a cluster of in-memory peers, each node reports its own calls and loads", async () => {
    const net = new InMemoryNetwork();
    const nodes = ["a", "b", "c"].map((id) => {
      const rec = recorder();
      const registry = new GroupRegistry({ observer: rec.observer });
      registry.registerPeers(net.join(id, registry));
      const g = registry.newGroup({
        name: "scores",
        cacheBytes: 1 << 20,
        getter: async (key) => {
          if (key.startsWith("missing")) throw new NotFoundError(key);
          return `v:${key}`;
        },
      });
      return { id, rec, g };
    });
    const [asker, ...others] = nodes as [(typeof nodes)[0], ...typeof nodes];
    const remote = Array.from({ length: 50 }, (_, i) => `key${i}`).filter(
      (k) => net.ownerOf(k) !== "a",
    );
    const missing = Array.from({ length: 50 }, (_, i) => `missing${i}`).find(
      (k) => net.ownerOf(k) !== "a",
    ) as string;
    for (const k of remote) expect((await asker.g.get(k)).toString()).toBe(`v:${k}`);
    await expect(asker.g.get(missing)).rejects.toBeInstanceOf(NotFoundError);
    net.setDead(net.ownerOf(remote[0] as string) as string);
    const fresh = Array.from({ length: 50 }, (_, i) => `fresh${i}`).find(
      (k) => net.ownerOf(k) === net.ownerOf(remote[0] as string),
    ) as string;
    expect((await asker.g.get(fresh)).toString()).toBe(`v:${fresh}`);

    const outcomes = asker.rec.peerCalls.map((e) => `${e.peer}:${e.outcome}`);
    expect(outcomes).toEqual([
      ...remote.map((k) => `${net.ownerOf(k)}:ok`),
      `${net.ownerOf(missing)}:not_found`,
      `${net.ownerOf(fresh)}:unavailable`,
    ]);
    expect(asker.rec.peerCalls.every((e) => e.group === "scores" && e.seconds >= 0)).toBe(true);
    // The asker loaded only the key whose owner was dead; the owners loaded the rest.
    expect(asker.rec.loads.map((e) => e.outcome)).toEqual(["ok"]);
    const ownerLoads = others.flatMap((n) => n.rec.loads.map((e) => e.outcome));
    expect(ownerLoads.filter((o) => o === "ok")).toHaveLength(remote.length);
    expect(ownerLoads.filter((o) => o === "not_found")).toHaveLength(1);
    expect(others.every((n) => n.rec.peerCalls.length === 0)).toBe(true);
  });
});

describe("observer: failures never fail a get", () => {
  it("a throwing observer is logged once, and every get still answers", async () => {
    const log = memoryLogger();
    let calls = 0;
    const g = group({
      logger: log.logger,
      observer: {
        load: () => {
          calls++;
          throw new Error("observer bug");
        },
        peerCall: () => {
          throw new Error("observer bug");
        },
      },
    });
    for (const k of ["a", "b", "c"]) expect((await g.get(k)).toString()).toBe(`local:${k}`);
    expect(calls).toBe(3); // still called after it threw
    const warned = log.lines.filter((l) => l.msg?.includes("observer"));
    expect(warned).toHaveLength(1);
    expect(warned[0]?.obj).toMatchObject({ group: "g", err: { message: "observer bug" } });

    const h = group({
      logger: log.logger,
      observer: {
        peerCall: () => {
          throw new Error("peer observer bug");
        },
      },
      peers: ownerPicker(async () => ({ value: new TextEncoder().encode("remote") })),
    });
    expect((await h.get("k")).toString()).toBe("remote");
    expect(log.lines.filter((l) => l.msg?.includes("observer"))).toHaveLength(2);
  });

  it("an async observer that rejects is logged, never an unhandled rejection", async () => {
    const log = memoryLogger();
    const unhandled = vi.fn();
    process.on("unhandledRejection", unhandled);
    try {
      const g = group({
        logger: log.logger,
        observer: { load: async () => Promise.reject(new Error("async observer bug")) },
      });
      expect((await g.get("a")).toString()).toBe("local:a");
      await flush();
      expect(log.lines.filter((l) => l.msg?.includes("observer"))).toHaveLength(1);
      expect(unhandled).not.toHaveBeenCalled();
    } finally {
      process.off("unhandledRejection", unhandled);
    }
  });
});

describe("registry observer", () => {
  it("is every group's default; a group's own observer wins", async () => {
    const shared = recorder();
    const own = recorder();
    const registry = new GroupRegistry({ observer: shared.observer });
    const a = registry.newGroup({ name: "a", cacheBytes: 1 << 20, getter: async (k) => k });
    const b = registry.newGroup({
      name: "b",
      cacheBytes: 1 << 20,
      getter: async (k) => k,
      observer: own.observer,
    });
    await a.get("x");
    await b.get("x");
    expect(shared.loads.map((e) => e.group)).toEqual(["a"]);
    expect(own.loads.map((e) => e.group)).toEqual(["b"]);
  });
});

describe("peerCallOutcome", () => {
  const live = new AbortController().signal;
  it("classifies by signal first, then by PeerError kind", () => {
    const aborted = AbortSignal.abort();
    expect(peerCallOutcome(new Error("x"), aborted, aborted)).toBe("aborted");
    expect(peerCallOutcome(new PeerError("aborted", "p", "x"), live, aborted)).toBe("timeout");
    expect(peerCallOutcome(new PeerError("getter_failed", "p", "x"), live, live)).toBe(
      "getter_failed",
    );
    expect(peerCallOutcome(new PeerError("unavailable", "p", "x"), live, undefined)).toBe(
      "unavailable",
    );
    expect(peerCallOutcome("a string", live, undefined)).toBe("unavailable");
  });
});
