import { getEventListeners } from "node:events";
import { deferred } from "@tinycache/testkit";
import { describe, expect, it } from "vitest";
import { SingleFlight } from "./index.js";

/** Lets every already-queued microtask (and the ones they queue) run. */
const flush = () => new Promise<void>((r) => setImmediate(r));

/** Settled state of a promise without awaiting it forever. */
async function state(p: Promise<unknown>): Promise<"pending" | "fulfilled" | "rejected"> {
  let s: "pending" | "fulfilled" | "rejected" = "pending";
  p.then(
    () => {
      s = "fulfilled";
    },
    () => {
      s = "rejected";
    },
  );
  await flush();
  return s;
}

describe("SingleFlight: coalescing", () => {
  it("10,000 concurrent callers make one call and all get the same value", async () => {
    const flight = new SingleFlight<string, { n: number }>();
    const d = deferred<{ n: number }>();
    let calls = 0;
    const fn = () => {
      calls++;
      return d.promise;
    };
    const all = Array.from({ length: 10_000 }, () => flight.do("hot", fn));
    expect(calls).toBe(1);
    expect(flight.size).toBe(1);
    const value = { n: 42 };
    d.resolve(value);
    const got = await Promise.all(all);
    expect(calls).toBe(1);
    for (const v of got) expect(v).toBe(value);
    expect(flight.size).toBe(0);
  });

  it("fans one rejection out to every caller (the same error object)", async () => {
    const flight = new SingleFlight<string, number>();
    const d = deferred<number>();
    const all = Array.from({ length: 100 }, () => flight.do("k", () => d.promise));
    const error = new Error("boom");
    d.reject(error);
    const results = await Promise.allSettled(all);
    for (const r of results) {
      expect(r.status).toBe("rejected");
      expect((r as PromiseRejectedResult).reason).toBe(error);
    }
    expect(flight.size).toBe(0);
  });

  it("turns a synchronous throw into a rejection and releases the key", async () => {
    const flight = new SingleFlight<string, number>();
    const error = new TypeError("sync");
    const fn = (): number => {
      throw error;
    };
    const a = flight.do("k", fn);
    const b = flight.do("k", () => 1); // joins the failed call before it settles
    await expect(a).rejects.toBe(error);
    await expect(b).rejects.toBe(error);
    expect(flight.size).toBe(0);
    await expect(flight.do("k", () => 2)).resolves.toBe(2);
  });

  it("accepts plain values and foreign thenables from fn", async () => {
    const flight = new SingleFlight<string, string>();
    await expect(flight.do("a", () => "plain")).resolves.toBe("plain");
    const thenable = {
      // biome-ignore lint/suspicious/noThenProperty: a foreign thenable is the point here
      then(ok: (v: string) => void) {
        queueMicrotask(() => ok("thenable"));
      },
    } as PromiseLike<string>;
    await expect(flight.do("b", () => thenable)).resolves.toBe("thenable");
  });

  it("releases the key the moment the call settles, not later", async () => {
    const flight = new SingleFlight<string, number>();
    const d = deferred<number>();
    const first = flight.do("k", () => d.promise);
    expect(flight.has("k")).toBe(true);
    d.resolve(1);
    await first;
    // The first caller's continuation runs after the release: a new call starts.
    expect(flight.has("k")).toBe(false);
    let calls = 0;
    await flight.do("k", () => {
      calls++;
      return 2;
    });
    expect(calls).toBe(1);
  });

  it("keeps keys independent and counts them in size", async () => {
    const flight = new SingleFlight<string, string>();
    const da = deferred<string>();
    const db = deferred<string>();
    const a = flight.do("a", () => da.promise);
    const b = flight.do("b", () => db.promise);
    flight.do("a", () => "never called");
    expect(flight.size).toBe(2);
    db.resolve("B");
    expect(await b).toBe("B");
    expect(flight.size).toBe(1);
    expect(flight.has("a")).toBe(true);
    expect(flight.has("b")).toBe(false);
    da.resolve("A");
    expect(await a).toBe("A");
    expect(flight.size).toBe(0);
  });

  it("takes any Map key: objects by identity, NaN, -0/+0, symbols, unicode, empty", async () => {
    const flight = new SingleFlight<unknown, number>();
    const obj = {};
    const sym = Symbol("s");
    const keys: unknown[] = [obj, {}, Number.NaN, 0, sym, "", "héllo 🌍", 1n, null, undefined];
    const ds = keys.map(() => deferred<number>());
    const calls = keys.map(() => 0);
    const ps = keys.map((k, i) =>
      flight.do(k, () => {
        calls[i]!++;
        return ds[i]!.promise;
      }),
    );
    expect(flight.size).toBe(keys.length);
    // Joins by SameValueZero: NaN joins NaN, -0 joins 0, the same object joins itself.
    const joins = [
      flight.do(Number.NaN, () => -1),
      flight.do(-0, () => -1),
      flight.do(obj, () => -1),
    ];
    expect(flight.size).toBe(keys.length);
    for (const [i, d] of ds.entries()) d.resolve(i);
    expect(await Promise.all(ps)).toEqual(keys.map((_, i) => i));
    expect(await Promise.all(joins)).toEqual([2, 3, 0]);
    expect(calls.every((c) => c === 1)).toBe(true);
    expect(flight.size).toBe(0);
  });

  it("hands fn a signal even when nobody passed one; it never aborts", async () => {
    const flight = new SingleFlight<string, AbortSignal>();
    const s = await flight.do("k", (signal) => signal);
    expect(s).toBeInstanceOf(AbortSignal);
    expect(s.aborted).toBe(false);
  });
});

describe("SingleFlight: forget", () => {
  it("makes the next caller start a new call while the old one is in flight", async () => {
    const flight = new SingleFlight<string, string>();
    const oldD = deferred<string>();
    const newD = deferred<string>();
    const old1 = flight.do("k", () => oldD.promise);
    expect(flight.forget("k")).toBe(true);
    expect(flight.forget("k")).toBe(false);
    expect(flight.size).toBe(0);
    const new1 = flight.do("k", () => newD.promise);
    const new2 = flight.do("k", () => "not called");
    expect(flight.size).toBe(1);

    // The old call settles first: it must not remove the new call.
    oldD.resolve("old");
    expect(await old1).toBe("old");
    expect(flight.has("k")).toBe(true);
    const new3 = flight.do("k", () => "not called either");

    newD.resolve("new");
    expect(await Promise.all([new1, new2, new3])).toEqual(["new", "new", "new"]);
    expect(flight.size).toBe(0);
  });

  it("old call rejecting after forget leaves the new call alone", async () => {
    const flight = new SingleFlight<string, string>();
    const oldD = deferred<string>();
    const newD = deferred<string>();
    const old = flight.do("k", () => oldD.promise);
    flight.forget("k");
    const fresh = flight.do("k", () => newD.promise);
    oldD.reject(new Error("old failed"));
    await expect(old).rejects.toThrow("old failed");
    expect(flight.has("k")).toBe(true);
    newD.resolve("ok");
    expect(await fresh).toBe("ok");
  });

  it("a reentrant same-key do() from inside fn starts its own call without clobbering", async () => {
    const flight = new SingleFlight<string, string>();
    const outer = deferred<string>();
    let inner!: Promise<string>;
    let depth = 0;
    const p = flight.do("k", () => {
      if (depth++ === 0) inner = flight.do("k", () => Promise.resolve("inner"));
      return outer.promise;
    });
    expect(await inner).toBe("inner");
    // The inner call settled first; the outer call is still registered and joinable.
    expect(flight.has("k")).toBe(true);
    const joiner = flight.do("k", () => "not called");
    outer.resolve("outer");
    expect(await Promise.all([p, joiner])).toEqual(["outer", "outer"]);
    expect(flight.size).toBe(0);
  });

  it("forget of an unknown key is a no-op", () => {
    const flight = new SingleFlight<string, string>();
    expect(flight.forget("nope")).toBe(false);
    expect(flight.size).toBe(0);
  });

  it("forget from inside fn: a concurrent caller then starts its own call", async () => {
    const flight = new SingleFlight<string, number>();
    let calls = 0;
    const fn = () => {
      calls++;
      flight.forget("k");
      return Promise.resolve(calls);
    };
    const a = flight.do("k", fn);
    const b = flight.do("k", fn);
    // fn ran synchronously before the entry was stored, so b joins a's call.
    expect(await Promise.all([a, b])).toEqual([1, 1]);
  });
});

describe("SingleFlight: abort", () => {
  it("an already-aborted signal rejects at once without starting or joining", async () => {
    const flight = new SingleFlight<string, number>();
    const reason = new Error("already");
    let calls = 0;
    const p = flight.do(
      "k",
      () => {
        calls++;
        return 1;
      },
      { signal: AbortSignal.abort(reason) },
    );
    await expect(p).rejects.toBe(reason);
    expect(calls).toBe(0);
    expect(flight.size).toBe(0);

    const d = deferred<number>();
    const running = flight.doShared("k", () => d.promise);
    await expect(flight.doShared("k", () => 2, { signal: AbortSignal.abort(reason) })).rejects.toBe(
      reason,
    );
    d.resolve(7);
    // The aborted caller did not join, so the result went to one caller only.
    expect(await running).toEqual({ value: 7, shared: false });
  });

  it("aborting one caller rejects only that caller, with signal.reason", async () => {
    const flight = new SingleFlight<string, string>();
    const d = deferred<string>();
    let fnSignal!: AbortSignal;
    const ac = new AbortController();
    const other = new AbortController();
    const a = flight.do(
      "k",
      (s) => {
        fnSignal = s;
        return d.promise;
      },
      { signal: ac.signal },
    );
    const b = flight.do("k", () => "x", { signal: other.signal });
    const c = flight.do("k", () => "x");
    const reason = new Error("caller a gave up");
    ac.abort(reason);
    await expect(a).rejects.toBe(reason);
    expect(await state(b)).toBe("pending");
    expect(await state(c)).toBe("pending");
    expect(fnSignal.aborted).toBe(false);
    d.resolve("v");
    expect(await b).toBe("v");
    expect(await c).toBe("v");
  });

  it("default reason is an AbortError DOMException, as with fetch", async () => {
    const flight = new SingleFlight<string, string>();
    const d = deferred<string>();
    const ac = new AbortController();
    const p = flight.do("k", () => d.promise, { signal: ac.signal });
    ac.abort();
    await expect(p).rejects.toMatchObject({ name: "AbortError" });
    d.resolve("late");
  });

  it("aborts fn's signal only when every waiting caller has aborted", async () => {
    const flight = new SingleFlight<string, string>();
    const controllers = Array.from({ length: 5 }, () => new AbortController());
    let fnSignal!: AbortSignal;
    let calls = 0;
    const fn = (s: AbortSignal) => {
      calls++;
      fnSignal = s;
      return new Promise<string>((_, reject) => {
        s.addEventListener("abort", () => reject(s.reason), { once: true });
      });
    };
    const ps = controllers.map((ac) => flight.do("k", fn, { signal: ac.signal }));
    expect(calls).toBe(1);
    for (let i = 0; i < 4; i++) {
      controllers[i]!.abort(new Error(`r${i}`));
      expect(fnSignal.aborted).toBe(false);
      expect(flight.has("k")).toBe(true);
    }
    const last = new Error("last");
    controllers[4]!.abort(last);
    expect(fnSignal.aborted).toBe(true);
    expect(fnSignal.reason).toBe(last);
    // The key is released at once: the next caller starts a fresh call.
    expect(flight.has("k")).toBe(false);
    const results = await Promise.allSettled(ps);
    expect(results.map((r) => (r as PromiseRejectedResult).reason.message)).toEqual([
      "r0",
      "r1",
      "r2",
      "r3",
      "last",
    ]);
    await expect(flight.do("k", () => "fresh")).resolves.toBe("fresh");
    expect(calls).toBe(1);
  });

  it("counts late joiners: joining after some aborted keeps the call alive", async () => {
    const flight = new SingleFlight<string, string>();
    const d = deferred<string>();
    let fnSignal!: AbortSignal;
    const a = new AbortController();
    const b = new AbortController();
    const late = new AbortController();
    const pa = flight.do(
      "k",
      (s) => {
        fnSignal = s;
        return d.promise;
      },
      { signal: a.signal },
    );
    const pb = flight.do("k", () => "x", { signal: b.signal });
    a.abort();
    const pLate = flight.do("k", () => "x", { signal: late.signal });
    b.abort();
    expect(fnSignal.aborted).toBe(false); // the late joiner still waits
    late.abort();
    expect(fnSignal.aborted).toBe(true);
    await expect(pa).rejects.toMatchObject({ name: "AbortError" });
    await expect(pb).rejects.toMatchObject({ name: "AbortError" });
    await expect(pLate).rejects.toMatchObject({ name: "AbortError" });
    d.resolve("ignored");
  });

  it("a caller without a signal pins the call: fn's signal never aborts", async () => {
    const flight = new SingleFlight<string, string>();
    const d = deferred<string>();
    let fnSignal!: AbortSignal;
    const a = new AbortController();
    const pa = flight.do(
      "k",
      (s) => {
        fnSignal = s;
        return d.promise;
      },
      { signal: a.signal },
    );
    const pinned = flight.do("k", () => "x");
    a.abort();
    await expect(pa).rejects.toMatchObject({ name: "AbortError" });
    expect(fnSignal.aborted).toBe(false);
    d.resolve("v");
    expect(await pinned).toBe("v");
  });

  it("when the starter has no signal, signal-waiters aborting never abort fn", async () => {
    const flight = new SingleFlight<string, string>();
    const d = deferred<string>();
    let fnSignal!: AbortSignal;
    const first = flight.do("k", (s) => {
      fnSignal = s;
      return d.promise;
    });
    const ac = new AbortController();
    const joined = flight.do("k", () => "x", { signal: ac.signal });
    ac.abort();
    await expect(joined).rejects.toMatchObject({ name: "AbortError" });
    expect(fnSignal.aborted).toBe(false);
    d.resolve("v");
    expect(await first).toBe("v");
  });

  it("nothing aborts once fn has settled; the result is delivered", async () => {
    const flight = new SingleFlight<string, string>();
    const d = deferred<string>();
    let fnSignal!: AbortSignal;
    const ac = new AbortController();
    const p = flight.do(
      "k",
      (s) => {
        fnSignal = s;
        return d.promise;
      },
      { signal: ac.signal },
    );
    d.resolve("v");
    await d.promise; // fn settled; our release ran first, the caller's delivery is queued
    ac.abort();
    expect(fnSignal.aborted).toBe(false);
    expect(await p).toBe("v");
  });

  it("removes its abort listeners when the call settles (no leak on long-lived signals)", async () => {
    const flight = new SingleFlight<number, number>();
    const ac = new AbortController(); // e.g. a server-lifetime signal reused by every call
    for (let i = 0; i < 200; i++) {
      await flight.do(i % 3, () => Promise.resolve(i), { signal: ac.signal });
      await expect(
        flight.do(i, () => Promise.reject(new Error("x")), { signal: ac.signal }),
      ).rejects.toThrow("x");
    }
    expect(getEventListeners(ac.signal, "abort")).toHaveLength(0);
  });
  it("callers sharing one signal across many keys: one listener, all rejected on abort", async () => {
    const flight = new SingleFlight<number, number>();
    const shutdown = new AbortController();
    const ds = Array.from({ length: 1000 }, () => deferred<number>());
    const fnSignals: AbortSignal[] = [];
    const ps = ds.flatMap((d, k) => [
      flight.do(
        k,
        (s) => {
          fnSignals.push(s);
          return d.promise;
        },
        { signal: shutdown.signal },
      ),
      flight.do(k, () => -1, { signal: shutdown.signal }), // same signal twice per key
    ]);
    // One listener per signal per SingleFlight, however many callers pass it.
    expect(getEventListeners(shutdown.signal, "abort")).toHaveLength(1);
    ds[0]!.resolve(0); // settles before the abort: its callers get the value
    await ds[0]!.promise;
    shutdown.abort();
    expect(fnSignals.slice(1).every((s) => s.aborted)).toBe(true);
    expect(fnSignals[0]!.aborted).toBe(false);
    const results = await Promise.allSettled(ps);
    expect(results.slice(0, 2)).toEqual([
      { status: "fulfilled", value: 0 },
      { status: "fulfilled", value: 0 },
    ]);
    expect(results.slice(2).every((r) => r.status === "rejected")).toBe(true);
    expect(flight.size).toBe(0);
    expect(getEventListeners(shutdown.signal, "abort")).toHaveLength(0);
  });
});

describe("SingleFlight: doShared", () => {
  it("shared is false for a lone caller", async () => {
    const flight = new SingleFlight<string, number>();
    expect(await flight.doShared("k", () => 1)).toEqual({ value: 1, shared: false });
  });

  it("shared is true for every caller when others joined (do or doShared)", async () => {
    const flight = new SingleFlight<string, number>();
    const d = deferred<number>();
    const first = flight.doShared("k", () => d.promise);
    const plain = flight.do("k", () => 0);
    const second = flight.doShared("k", () => 0);
    d.resolve(5);
    expect(await first).toEqual({ value: 5, shared: true });
    expect(await second).toEqual({ value: 5, shared: true });
    expect(await plain).toBe(5);
  });

  it("shared is true even if the starter only used do()", async () => {
    const flight = new SingleFlight<string, number>();
    const d = deferred<number>();
    const starter = flight.do("k", () => d.promise);
    const joiner = flight.doShared("k", () => 0);
    d.resolve(1);
    expect(await joiner).toEqual({ value: 1, shared: true });
    expect(await starter).toBe(1);
  });

  it("callers that aborted before the call settled do not count", async () => {
    const flight = new SingleFlight<string, number>();
    const d = deferred<number>();
    const p = flight.doShared("k", () => d.promise);
    const ac = new AbortController();
    const gone = flight.doShared("k", () => 0, { signal: ac.signal });
    ac.abort();
    await expect(gone).rejects.toMatchObject({ name: "AbortError" });
    d.resolve(3);
    expect(await p).toEqual({ value: 3, shared: false });
  });

  it("rejections reach doShared callers as the same error", async () => {
    const flight = new SingleFlight<string, number>();
    const d = deferred<number>();
    const a = flight.doShared("k", () => d.promise);
    const b = flight.doShared("k", () => 0, { signal: new AbortController().signal });
    const error = new Error("e");
    d.reject(error);
    await expect(a).rejects.toBe(error);
    await expect(b).rejects.toBe(error);
  });
});

// Calls started by plain `do` without a signal keep only their promise; the bookkeeping
// for abort and `shared` (Meta) exists only for calls that need it. These cover the
// paths between the two kinds.
describe("SingleFlight: plain and tracked calls mixed", () => {
  it("doShared joining a plain do() call: shared, with or without a signal", async () => {
    const flight = new SingleFlight<string, number>();
    const d = deferred<number>();
    const starter = flight.do("k", () => d.promise);
    const joiner = flight.doShared("k", () => 0);
    const withSignal = flight.doShared("k", () => 0, { signal: new AbortController().signal });
    d.resolve(4);
    expect(await joiner).toEqual({ value: 4, shared: true });
    expect(await withSignal).toEqual({ value: 4, shared: true });
    expect(await starter).toBe(4);
    expect(flight.size).toBe(0);
  });

  it("a signal-waiter of a plain call: aborting it never aborts fn; once fn settled the value is delivered", async () => {
    const flight = new SingleFlight<string, string>();
    const d = deferred<string>();
    let fnSignal!: AbortSignal;
    const starter = flight.do("k", (s) => {
      fnSignal = s;
      return d.promise;
    });
    const early = new AbortController();
    const late = new AbortController();
    const pEarly = flight.do("k", () => "x", { signal: early.signal });
    const pLate = flight.do("k", () => "x", { signal: late.signal });
    early.abort();
    await expect(pEarly).rejects.toMatchObject({ name: "AbortError" });
    expect(fnSignal.aborted).toBe(false);
    d.resolve("v");
    await d.promise; // fn settled; the release ran, the delivery is queued
    late.abort();
    expect(await pLate).toBe("v");
    expect(await starter).toBe("v");
    expect(fnSignal.aborted).toBe(false);
  });

  it("a plain joiner of a doShared call counts for shared; one that joined a forgotten call's successor does not", async () => {
    const flight = new SingleFlight<string, number>();
    const oldD = deferred<number>();
    const newD = deferred<number>();
    const old = flight.doShared("k", () => oldD.promise);
    flight.forget("k");
    const fresh = flight.doShared("k", () => newD.promise);
    const plain = flight.do("k", () => 0); // joins the new call only
    oldD.resolve(1);
    expect(await old).toEqual({ value: 1, shared: false });
    expect(flight.has("k")).toBe(true);
    newD.resolve(2);
    expect(await fresh).toEqual({ value: 2, shared: true });
    expect(await plain).toBe(2);
    expect(flight.size).toBe(0);
  });

  it("a fully aborted call that was forgotten leaves the newer call and its waiters alone", async () => {
    const flight = new SingleFlight<string, string>();
    const oldD = deferred<string>();
    let oldSignal!: AbortSignal;
    let newSignal!: AbortSignal;
    const a = new AbortController();
    const b = new AbortController();
    const pa = flight.do(
      "k",
      (s) => {
        oldSignal = s;
        return oldD.promise;
      },
      { signal: a.signal },
    );
    flight.forget("k");
    const newD = deferred<string>();
    const pb = flight.do(
      "k",
      (s) => {
        newSignal = s;
        return newD.promise;
      },
      { signal: b.signal },
    );
    a.abort();
    expect(oldSignal.aborted).toBe(true);
    await expect(pa).rejects.toMatchObject({ name: "AbortError" });
    expect(flight.has("k")).toBe(true); // the newer call stays
    expect(newSignal.aborted).toBe(false);
    oldD.resolve("late"); // the aborted call settling late changes nothing either
    await oldD.promise;
    expect(flight.has("k")).toBe(true);
    const joiner = flight.doShared("k", () => "not called");
    newD.resolve("new");
    expect(await pb).toBe("new");
    expect(await joiner).toEqual({ value: "new", shared: true });
    expect(flight.size).toBe(0);
  });

  it("a reentrant plain do() from inside a doShared fn does not take over the outer call's count", async () => {
    const flight = new SingleFlight<string, string>();
    const outer = deferred<string>();
    let inner!: Promise<string>;
    let depth = 0;
    const p = flight.doShared("k", () => {
      if (depth++ === 0) inner = flight.do("k", () => Promise.resolve("inner"));
      return outer.promise;
    });
    expect(await inner).toBe("inner");
    expect(flight.has("k")).toBe(true);
    const joiner = flight.do("k", () => "not called");
    outer.resolve("outer");
    expect(await p).toEqual({ value: "outer", shared: true });
    expect(await joiner).toBe("outer");
    expect(flight.size).toBe(0);
  });

  it("a synchronous throw in an abortable or doShared start reaches every caller as the same error", async () => {
    const flight = new SingleFlight<string, number>();
    const error = new RangeError("sync");
    const fn = (): number => {
      throw error;
    };
    const a = flight.do("a", fn, { signal: new AbortController().signal });
    const aPlain = flight.do("a", () => 1);
    const b = flight.doShared("b", fn);
    const bJoin = flight.doShared("b", () => 1, { signal: new AbortController().signal });
    for (const p of [a, aPlain, b, bJoin]) await expect(p).rejects.toBe(error);
    expect(flight.size).toBe(0);
    expect(await flight.doShared("b", () => 2)).toEqual({ value: 2, shared: false });
  });
});
