import { getEventListeners } from "node:events";
import { deferred } from "@tinycache/testkit";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { SharedTimeout } from "./shared-timeout.js";

describe("SharedTimeout", () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "performance"] });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("settles with the call's own value or error when it comes in time", async () => {
    const t = new SharedTimeout(1_600);
    await expect(t.run(async () => "v")).resolves.toBe("v");
    const err = new Error("boom");
    await expect(t.run(() => Promise.reject(err))).rejects.toBe(err);
    await expect(
      t.run(() => {
        throw err; // a getter that throws instead of rejecting
      }),
    ).rejects.toBe(err);
  });

  it("times out a call that never settles: never early, at most 1/16 late, signal aborted", async () => {
    const t = new SharedTimeout(1_600); // slots of 100 ms
    let signal: AbortSignal | undefined;
    const first = t.run((s) => {
      signal = s;
      return new Promise(() => {});
    });
    const firstErr = first.catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(60);
    // Started 60 ms later in the same slot: the same signal, the same deadline.
    const second = t.run((s) => {
      expect(s).toBe(signal);
      return new Promise(() => {});
    });
    const secondErr = second.catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(1_599 - 60);
    expect(signal?.aborted).toBe(false); // 1,599 ms after the first: not yet
    await vi.advanceTimersByTimeAsync(101);
    expect(signal?.aborted).toBe(true); // 1,700 ms: the first's ms + ms/16
    const e1 = (await firstErr) as DOMException;
    expect(e1.name).toBe("TimeoutError");
    expect(e1.message).toBe("timed out after 1600 ms");
    expect(await secondErr).toBe(e1); // the second waited 1,640 ms: >= 1,600
  });

  it("a new slot once the current stopped taking calls: its own signal and timer", async () => {
    const t = new SharedTimeout(1_600);
    const signals: AbortSignal[] = [];
    const gates = [deferred<string>(), deferred<string>()];
    const a = t.run((s) => {
      signals.push(s);
      return gates[0]!.promise;
    });
    await vi.advanceTimersByTimeAsync(100);
    const b = t.run((s) => {
      signals.push(s);
      return gates[1]!.promise;
    });
    expect(signals[1]).not.toBe(signals[0]);
    expect(vi.getTimerCount()).toBe(2);
    // The first slot is closed: its last call settling releases its timer.
    gates[0]!.resolve("a");
    await expect(a).resolves.toBe("a");
    expect(vi.getTimerCount()).toBe(1);
    gates[1]!.resolve("b");
    await expect(b).resolves.toBe("b");
    // The current slot keeps its timer until a newer slot replaces it or it fires.
    expect(vi.getTimerCount()).toBe(1);
    await vi.advanceTimersByTimeAsync(100);
    await t.run(async () => "c");
    expect(vi.getTimerCount()).toBe(1); // the idle old slot was released, not leaked
  });

  it("an answer after the timeout is dropped: the caller saw the timeout only", async () => {
    const t = new SharedTimeout(160);
    const gate = deferred<string>();
    const p = t.run(() => gate.promise).catch((e: unknown) => (e as Error).name);
    await vi.advanceTimersByTimeAsync(170);
    gate.resolve("late");
    expect(await p).toBe("TimeoutError");
  });

  it("many concurrent calls share one signal without a leak warning", async () => {
    const t = new SharedTimeout(1_000);
    const warn = vi.fn();
    process.on("warning", warn);
    try {
      const gates = Array.from({ length: 100 }, () => deferred<number>());
      const all = gates.map((g, i) =>
        t.run((s) => {
          s.addEventListener("abort", () => {}, { once: true });
          return g.promise.then(() => i);
        }),
      );
      let shared: AbortSignal | undefined;
      await t.run(async (s) => {
        shared = s;
      });
      expect(getEventListeners(shared as AbortSignal, "abort")).toHaveLength(100);
      for (const [i, g] of gates.entries()) g.resolve(i);
      expect(await Promise.all(all)).toEqual(gates.map((_, i) => i));
      await vi.advanceTimersByTimeAsync(0);
      expect(warn).not.toHaveBeenCalled();
    } finally {
      process.off("warning", warn);
    }
  });

  it("signal(): the current slot's signal, whose timer runs to its end even after the slot moves on", async () => {
    const t = new SharedTimeout(1_600); // slots of 100 ms
    const a = t.signal();
    await vi.advanceTimersByTimeAsync(50);
    expect(t.signal()).toBe(a); // same slot
    // A run() call in the same slot shares it, and settling leaves the timer in place.
    await expect(t.run(async () => "v")).resolves.toBe("v");
    await vi.advanceTimersByTimeAsync(100);
    const b = t.signal(); // a new slot: the old one is not released, its timer still set
    expect(b).not.toBe(a);
    await vi.advanceTimersByTimeAsync(1_700 - 150 - 1);
    expect(a.aborted).toBe(false); // never early
    await vi.advanceTimersByTimeAsync(1);
    expect(a.aborted).toBe(true);
    expect((a.reason as DOMException).name).toBe("TimeoutError");
    expect(b.aborted).toBe(false);
    await vi.advanceTimersByTimeAsync(200);
    expect(b.aborted).toBe(true);
  });
});
