import { describe, expect, it } from "vitest";
import { OverloadedError } from "./errors.js";
import type { GroupOptions } from "./options.js";
import { Bulkhead } from "./private/bulkhead.js";
import { GroupRegistry } from "./registry.js";
import { type Deferred, deferred, flush } from "./testing.test-util.js";
import { statusOf } from "./transport/status.js";

describe("Bulkhead", () => {
  it("admits `limit` holders, queues the rest in order, refuses beyond the queue", async () => {
    const b = new Bulkhead(2, 2, "db");
    const r1 = await b.acquire();
    const r2 = await b.acquire();
    const order: number[] = [];
    const q3 = b.acquire().then((r) => {
      order.push(3);
      return r;
    });
    const q4 = b.acquire().then((r) => {
      order.push(4);
      return r;
    });
    expect([b.active, b.waiting]).toEqual([2, 2]);
    const full = b.acquire();
    await expect(full).rejects.toBeInstanceOf(OverloadedError);
    await expect(full).rejects.toThrow("db: 2 calls running and 2 queued");
    expect([b.queued, b.rejected]).toEqual([2, 1]);
    r1();
    r1(); // twice: no second slot freed
    const r3 = await q3;
    expect(order).toEqual([3]);
    expect([b.active, b.waiting]).toEqual([2, 1]);
    r2();
    const r4 = await q4;
    expect(order).toEqual([3, 4]);
    r3();
    r4();
    expect([b.active, b.waiting]).toEqual([0, 0]);
  });

  it("an aborted waiter leaves the queue at once; an aborted signal never enters", async () => {
    const b = new Bulkhead(1, 1, "db");
    const r1 = await b.acquire();
    const ac = new AbortController();
    const waiting = b.acquire(ac.signal);
    expect(b.waiting).toBe(1);
    ac.abort(new Error("gone"));
    await expect(waiting).rejects.toThrow("gone");
    expect(b.waiting).toBe(0);
    // Its place is free again: another waiter queues, and gets the slot.
    const next = b.acquire();
    expect(b.waiting).toBe(1);
    await expect(b.acquire(AbortSignal.abort(new Error("early")))).rejects.toThrow("early");
    r1();
    (await next)();
    expect([b.active, b.waiting]).toEqual([0, 0]);
  });

  it("queue limit 0: refuses as soon as every slot is taken", async () => {
    const b = new Bulkhead(1, 0, "db");
    const r = await b.acquire();
    await expect(b.acquire()).rejects.toBeInstanceOf(OverloadedError);
    r();
    (await b.acquire())();
  });
});

describe("Group getter limit (maxConcurrentLoads, maxQueuedLoads)", () => {
  function setup(opts: Partial<GroupOptions>) {
    const calls: Array<{ key: string; d: Deferred<string>; signal: AbortSignal }> = [];
    const g = new GroupRegistry().newGroup({
      name: "g",
      cacheBytes: 1 << 20,
      getter: (key, { signal }) => {
        const d = deferred<string>();
        calls.push({ key, d, signal });
        return d.promise;
      },
      ...opts,
    });
    return { g, calls };
  }

  it("runs at most maxConcurrentLoads getters; the rest wait, then run in order", async () => {
    const { g, calls } = setup({ maxConcurrentLoads: 2, maxQueuedLoads: 10 });
    const gets = ["a", "b", "c", "d"].map((k) => g.get(k));
    await flush();
    expect(calls.map((c) => c.key)).toEqual(["a", "b"]);
    expect(g.loadLimit).toEqual({
      active: 2,
      waiting: 2,
      maxConcurrentLoads: 2,
      maxQueuedLoads: 10,
    });
    calls[0]?.d.resolve("A");
    await flush();
    expect(calls.map((c) => c.key)).toEqual(["a", "b", "c"]);
    for (const c of calls.slice(1)) c.d.resolve(c.key.toUpperCase());
    await flush();
    calls[3]?.d.resolve("D");
    expect((await Promise.all(gets)).map(String)).toEqual(["A", "B", "C", "D"]);
    expect(g.stats).toMatchObject({ localLoads: 4, loadsQueued: 2, loadsRejected: 0 });
    expect(g.loadLimit).toMatchObject({ active: 0, waiting: 0 });
  });

  it("over the queue: OverloadedError at once (never cached), counted; a peer is told unavailable", async () => {
    const { g, calls } = setup({ maxConcurrentLoads: 1, maxQueuedLoads: 1 });
    const a = g.get("a");
    const b = g.get("b");
    const c = g.get("c");
    await expect(c).rejects.toBeInstanceOf(OverloadedError);
    const err = await c.catch((e: unknown) => e);
    expect(statusOf(err)).toBe("unavailable");
    expect(g.stats).toMatchObject({ loadsQueued: 1, loadsRejected: 1 });
    // Joining a load already queued is no new getter call: not refused.
    const b2 = g.get("b");
    calls[0]?.d.resolve("A");
    await flush();
    calls[1]?.d.resolve("B");
    expect(String(await a)).toBe("A");
    expect(String(await b)).toBe("B");
    expect(String(await b2)).toBe("B");
    // c was not cached as failed: it loads now.
    const c2 = g.get("c");
    await flush();
    calls[2]?.d.resolve("C");
    expect(String(await c2)).toBe("C");
  });

  it("a queued load whose callers all gave up leaves the queue and never calls the getter", async () => {
    const { g, calls } = setup({ maxConcurrentLoads: 1 });
    const a = g.get("a");
    const ac = new AbortController();
    const b = g.get("b", { signal: ac.signal });
    await flush();
    expect(g.loadLimit.waiting).toBe(1);
    ac.abort(new Error("bye"));
    await expect(b).rejects.toThrow("bye");
    await flush();
    expect(g.loadLimit.waiting).toBe(0);
    calls[0]?.d.resolve("A");
    await a;
    await flush();
    expect(calls.map((c) => c.key)).toEqual(["a"]);
    expect(g.loadLimit).toMatchObject({ active: 0, waiting: 0 });
  });

  it("checks its options", () => {
    const make = (o: Partial<GroupOptions>) => () => setup(o);
    expect(make({ maxConcurrentLoads: 0 })).toThrow(RangeError);
    expect(make({ maxConcurrentLoads: 1.5 })).toThrow(RangeError);
    expect(make({ maxQueuedLoads: -1 })).toThrow(RangeError);
    expect(make({ maxQueuedLoads: Number.NaN })).toThrow(RangeError);
    const { g } = setup({
      maxConcurrentLoads: Number.POSITIVE_INFINITY,
      maxQueuedLoads: 0,
    });
    expect(g.loadLimit).toMatchObject({
      maxConcurrentLoads: Number.POSITIVE_INFINITY,
      maxQueuedLoads: 0,
    });
    expect(setup({}).g.loadLimit).toMatchObject({ maxConcurrentLoads: 64, maxQueuedLoads: 10_000 });
  });
});
