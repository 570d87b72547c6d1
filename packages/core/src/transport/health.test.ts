import { HashRing } from "@tinycache/consistenthash";
import { makeKeys } from "@tinycache/testkit";
import { describe, expect, it } from "vitest";
import { PeerError } from "../errors.js";
import type { KeyRequest, PeerGetOptions, PeerGetter, PeerValue } from "../peers.js";
import { type Deferred, deferred, fakeClock, flush } from "../testing.test-util.js";
import {
  HEALTH_PROBE_GROUP,
  isConnectionError,
  MonitoredPeer,
  PeerHealth,
  type PeerHealthOptions,
  resolveHealthOptions,
} from "./health.js";
import { PeerSet } from "./peer-set.js";

function options(o: PeerHealthOptions = {}) {
  return resolveHealthOptions("T", o, 2000) as NonNullable<ReturnType<typeof resolveHealthOptions>>;
}

describe("PeerHealth (the state machine)", () => {
  it("turns unhealthy after failureThreshold failures in a row; an answer resets the count", () => {
    const h = new PeerHealth("p", options({ failureThreshold: 3 }));
    h.failed("x");
    h.failed("x");
    h.succeeded(1, true); // an answer in between
    h.failed("x");
    h.failed("x");
    expect(h.healthy).toBe(true);
    h.failed("refused");
    expect(h.healthy).toBe(false);
    expect(h.stats()).toMatchObject({
      state: "unhealthy",
      consecutiveFailures: 3,
      failures: 5,
      trips: 1,
      lastFailure: "refused",
    });
  });

  it("probes with exponential backoff, capped and jittered; one probe at a time", () => {
    const clock = fakeClock();
    let r = 0; // random(): 0 = the full delay, 1 = shortened by probeJitter
    const h = new PeerHealth(
      "p",
      options({
        failureThreshold: 1,
        probeBaseMs: 100,
        probeMaxMs: 500,
        probeJitter: 0.5,
        now: clock.now,
        random: () => r,
      }),
    );
    h.failed("x");
    expect(h.stats().nextProbeInMs).toBe(100);
    expect(h.route()).toBe("no");
    clock.advance(99);
    expect(h.route()).toBe("no");
    clock.advance(1);
    expect(h.route()).toBe("probe");
    expect(h.route()).toBe("no"); // one probe in flight
    const delays: number[] = [];
    for (let i = 0; i < 5; i++) {
      h.pinged(false);
      delays.push(h.stats().nextProbeInMs as number);
      clock.advance(delays[i] as number);
      expect(h.route()).toBe("probe");
    }
    expect(delays).toEqual([200, 400, 500, 500, 500]);
    r = 1;
    h.pinged(false);
    expect(h.stats().nextProbeInMs).toBe(250); // 500 shortened by half
    expect(h.stats()).toMatchObject({ pingFailures: 6, skipped: 9, state: "unhealthy" });
  });

  it("a probe answered: healthy on probation (one failure trips it again, backoff kept); a call answered clears it", () => {
    const clock = fakeClock();
    const h = new PeerHealth(
      "p",
      options({
        failureThreshold: 3,
        probeBaseMs: 100,
        probeJitter: 0,
        now: clock.now,
      }),
    );
    for (let i = 0; i < 3; i++) h.failed("x");
    clock.advance(100);
    expect(h.route()).toBe("probe");
    h.pinged(false); // next in 200
    clock.advance(200);
    expect(h.route()).toBe("probe");
    h.pinged(true);
    expect(h.healthy).toBe(true);
    expect(h.route()).toBe("yes");
    h.failed("again");
    expect(h.healthy).toBe(false);
    expect(h.stats().nextProbeInMs).toBe(400); // the backoff went on growing
    clock.advance(400);
    expect(h.route()).toBe("probe");
    h.pinged(true);
    h.succeeded(2, true); // a real answer: the record is cleared
    for (let i = 0; i < 2; i++) h.failed("x");
    expect(h.healthy).toBe(true);
    h.failed("x");
    expect(h.stats().nextProbeInMs).toBe(100);
    expect(h.stats()).toMatchObject({ trips: 3, recoveries: 2 });
  });

  it("slow calls: a ping at a time, only while healthy; the threshold follows the latency", () => {
    const h = new PeerHealth("p", options({ slowCallMs: 50, slowCallFactor: 4 }));
    expect(h.slowAfterMs).toBe(50);
    h.succeeded(100, true);
    expect(h.slowAfterMs).toBe(400);
    h.succeeded(1000, false); // set/remove latencies do not count
    expect(h.stats().latencyMs).toBe(100);
    expect(h.slow()).toBe(true);
    expect(h.slow()).toBe(false); // one ping in flight
    h.pinged(true); // answered: the call was only slow
    expect(h.healthy).toBe(true);
    expect(h.slow()).toBe(true);
    h.pinged(false, "hung");
    expect(h.stats()).toMatchObject({ state: "unhealthy", lastFailure: "hung", slowCalls: 3 });
  });

  it("checks its options", () => {
    expect(resolveHealthOptions("T", false, 1000)).toBeUndefined();
    expect(resolveHealthOptions("T", undefined, 100)?.probeTimeoutMs).toBe(100); // capped
    expect(() => resolveHealthOptions("T", { failureThreshold: 0 }, 1000)).toThrow(
      "T: health.failureThreshold must be an integer >= 1",
    );
    expect(() => resolveHealthOptions("T", { probeJitter: 2 }, 1000)).toThrow(RangeError);
    expect(() => resolveHealthOptions("T", { slowCallMs: -1 }, 1000)).toThrow(RangeError);
    expect(() => resolveHealthOptions("T", { probeBaseMs: 10, probeMaxMs: 5 }, 1000)).toThrow(
      RangeError,
    );
    expect(() => resolveHealthOptions("T", "x" as never, 1000)).toThrow(TypeError);
  });

  it("tells connection failures from answers", () => {
    const refused = Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" });
    expect(isConnectionError(refused)).toBe(true);
    expect(isConnectionError(new PeerError("unavailable", "p", "x", { cause: refused }))).toBe(
      true,
    );
    expect(isConnectionError(new PeerError("unavailable", "p", "HTTP 404: no such group"))).toBe(
      false,
    );
    expect(isConnectionError(undefined)).toBe(false);
  });
});

/** A peer whose answers the test gives, per call. */
class ScriptedPeer implements PeerGetter {
  readonly calls: Array<{
    req: KeyRequest;
    signal?: AbortSignal;
    maxValueBytes?: number;
    d: Deferred<PeerValue>;
  }> = [];
  #onCall: (() => void) | undefined;
  constructor(readonly id = "http://peer:1") {}
  /** Resolves at the next call. */
  nextCall(): Promise<void> {
    return new Promise((resolve) => {
      this.#onCall = resolve;
    });
  }
  get(req: KeyRequest, opts?: PeerGetOptions): Promise<PeerValue> {
    const d = deferred<PeerValue>();
    this.calls.push({ req, signal: opts?.signal, maxValueBytes: opts?.maxValueBytes, d });
    this.#onCall?.();
    opts?.signal?.addEventListener("abort", () =>
      d.reject(new PeerError("aborted", this.id, "aborted")),
    );
    return d.promise;
  }
  async set(): Promise<void> {}
  async remove(): Promise<void> {}
  pings() {
    return this.calls.filter((c) => c.req.group === HEALTH_PROBE_GROUP);
  }
}

const value = { value: new Uint8Array([1]) };

describe("MonitoredPeer", () => {
  it("an owner's verdict is an answer, not a failure; unavailable is", async () => {
    const client = new ScriptedPeer();
    const m = new MonitoredPeer(client, options({ failureThreshold: 2, slowCallMs: 60_000 }));
    const kinds = ["not_found", "getter_failed", "invalid_argument"] as const;
    for (const kind of kinds) {
      const p = m.get({ group: "g", key: kind });
      client.calls.at(-1)?.d.reject(new PeerError(kind, client.id, kind));
      await expect(p).rejects.toMatchObject({ kind });
    }
    expect(m.health.stats()).toMatchObject({ failures: 0, calls: 3, state: "healthy" });
    for (let i = 0; i < 2; i++) {
      const p = m.get({ group: "g", key: "x" });
      client.calls.at(-1)?.d.reject(new PeerError("unavailable", client.id, "ECONNREFUSED"));
      await expect(p).rejects.toMatchObject({ kind: "unavailable" });
    }
    expect(m.health.healthy).toBe(false);
  });

  it("passes the caller's maxValueBytes on; our own limits stopping a call are no failure", async () => {
    const client = new ScriptedPeer();
    const m = new MonitoredPeer(client, options({ failureThreshold: 1, slowCallMs: 60_000 }));
    for (const why of ["value over maxValueBytes (8)", "no room in the in-flight budget"]) {
      const p = m.get({ group: "g", key: "big" }, { maxValueBytes: 8 });
      expect(client.calls.at(-1)?.maxValueBytes).toBe(8);
      client.calls.at(-1)?.d.reject(new PeerError("unavailable", client.id, why, { local: true }));
      await expect(p).rejects.toMatchObject({ kind: "unavailable", local: true });
    }
    expect(m.health.stats()).toMatchObject({ failures: 0, state: "healthy" });
  });

  it("a caller giving up is no failure, unless its deadline passed", async () => {
    const client = new ScriptedPeer();
    const m = new MonitoredPeer(client, options({ failureThreshold: 1, slowCallMs: 60_000 }));
    const ac = new AbortController();
    const p = m.get({ group: "g", key: "k" }, { signal: ac.signal });
    ac.abort(new Error("left"));
    await expect(p).rejects.toMatchObject({ kind: "aborted" });
    expect(m.health.healthy).toBe(true);
    const ac2 = new AbortController();
    const p2 = m.get({ group: "g", key: "k" }, { signal: ac2.signal });
    ac2.abort(new DOMException("timed out", "TimeoutError"));
    await expect(p2).rejects.toMatchObject({ kind: "aborted" });
    expect(m.health.healthy).toBe(false);
  });

  it("a slow call pings; an answered ping leaves the call waiting", async () => {
    const client = new ScriptedPeer();
    const m = new MonitoredPeer(client, options({ slowCallMs: 5, probeTimeoutMs: 5000 }));
    const p = m.get({ group: "g", key: "k" });
    await client.nextCall(); // the ping, after slowCallMs
    expect(client.pings()).toHaveLength(1);
    // The ping is answered (here "no such group", as a real peer says): alive.
    client.pings()[0]?.d.reject(new PeerError("unavailable", client.id, "HTTP 404: no such group"));
    await flush();
    expect(m.health.healthy).toBe(true);
    client.calls[0]?.d.resolve(value);
    await expect(p).resolves.toBe(value);
    expect(m.health.stats()).toMatchObject({ slowCalls: 1, pings: 1, pingFailures: 0 });
  });

  it("a slow call whose ping goes unanswered: unhealthy, and every waiting caller is released", async () => {
    const client = new ScriptedPeer();
    const m = new MonitoredPeer(client, options({ slowCallMs: 5, probeTimeoutMs: 20 }));
    const waits = [m.get({ group: "g", key: "a" }), m.get({ group: "g", key: "b" })];
    for (const p of waits) {
      await expect(p).rejects.toMatchObject({
        kind: "unavailable",
        message: expect.stringContaining("judged unhealthy"),
      });
    }
    // The requests themselves are left to the transport's own timeout (no controller per
    // call on the hot path): only the callers are released.
    for (const c of client.calls.filter((c) => c.req.group !== HEALTH_PROBE_GROUP)) {
      expect(c.signal?.aborted ?? false).toBe(false);
    }
    expect(m.health.stats()).toMatchObject({
      state: "unhealthy",
      trips: 1,
      released: 2,
      pingFailures: 1,
    });
  });
});

describe("PeerSet with health", () => {
  const A = "http://10.0.0.1:8001";
  const B = "http://10.0.0.2:8001";

  it("routes an unhealthy owner's keys locally, probes it in the background when due, routes back once it answers", async () => {
    const clock = fakeClock();
    const clients = new Map<string, ScriptedPeer>();
    const set = new PeerSet<ScriptedPeer>({
      self: A,
      connect: (url) => {
        const c = new ScriptedPeer(url);
        clients.set(url, c);
        return c;
      },
      health: { failureThreshold: 1, probeBaseMs: 100, probeJitter: 0, now: clock.now },
    });
    set.set([A, B]);
    const ring = new HashRing().set([A, B]);
    const key = makeKeys(100).find((k) => ring.get(k) === B) as string;
    const b = clients.get(B) as ScriptedPeer;
    const owner = set.pickPeer(key) as PeerGetter;
    expect(owner.id).toBe(B);
    expect(set.pickClient(key)).toBe(b);
    const p = owner.get({ group: "g", key });
    b.calls[0]?.d.reject(
      new PeerError("unavailable", B, "refused", {
        cause: Object.assign(new Error("x"), { code: "ECONNREFUSED" }),
      }),
    );
    await expect(p).rejects.toMatchObject({ kind: "unavailable" });
    expect(set.pickPeer(key)).toBeUndefined(); // unhealthy: load locally, at once
    expect(set.pickClient(key)).toBeUndefined();
    expect(b.pings()).toHaveLength(0);
    clock.advance(100);
    expect(set.pickPeer(key)).toBeUndefined(); // the probe goes out; this key still loads locally
    expect(b.pings()).toHaveLength(1);
    b.pings()[0]?.d.reject(new PeerError("unavailable", B, "HTTP 404: no such group"));
    await flush();
    expect(set.pickPeer(key)?.id).toBe(B);
    expect(set.health()).toEqual([
      expect.objectContaining({ url: B, state: "healthy", trips: 1, recoveries: 1, skipped: 2 }),
    ]);
    expect(set.peers().map((p) => p.id)).toEqual([B]);
  });

  it("health off: the transport's clients as they are", () => {
    const set = new PeerSet<ScriptedPeer>({
      self: A,
      connect: (url) => new ScriptedPeer(url),
      health: false,
    });
    set.set([A, B]);
    expect(set.peers()[0]).toBeInstanceOf(ScriptedPeer);
    expect(set.health()).toEqual([]);
    expect(set.healthEnabled).toBe(false);
  });
});
