import { getEventListeners } from "node:events";
import { describe, expect, it } from "vitest";
import { PeerError } from "../errors.js";
import type { KeyRequest, PeerGetOptions, PeerValue } from "../peers.js";
import { type BatchCallOptions, type BatchEntry, Batcher } from "./batch.js";

const ID = "http://peer";
const enc = (s: string) => new TextEncoder().encode(s);
const dec = (v: PeerValue) => new TextDecoder().decode(v.value);

interface Call {
  group: string;
  keys: string[];
  opts: BatchCallOptions;
  resolve(entries: BatchEntry[] | Map<string, BatchEntry>): void;
  reject(err: unknown): void;
}

/** A batcher whose batch calls wait for the test to answer them. */
function harness(o: { single?: boolean; maxKeys?: number; maxKeyBytes?: number } = {}) {
  const calls: Call[] = [];
  const singles: { req: KeyRequest; opts?: PeerGetOptions }[] = [];
  let callArrived: (() => void) | undefined;
  const batcher = new Batcher({
    id: ID,
    send: (group, keys, opts) =>
      new Promise((resolve, reject) => {
        calls.push({ group, keys: [...keys], opts, resolve, reject });
        callArrived?.();
      }),
    single:
      o.single === false
        ? undefined
        : async (req, opts) => {
            singles.push({ req, opts });
            return { value: enc(`single:${req.key}`) };
          },
    maxKeys: o.maxKeys,
    maxKeyBytes: o.maxKeyBytes,
  });
  /** Resolves once `n` batch calls were sent. */
  const sent = (n: number) =>
    new Promise<void>((resolve) => {
      const check = () => {
        if (calls.length >= n) resolve();
        else callArrived = check;
      };
      check();
    });
  return { batcher, calls, singles, sent };
}

interface Outcome {
  ok: boolean;
  v?: PeerValue;
  e?: PeerError;
}
const settle = (p: Promise<PeerValue>): Promise<Outcome> =>
  p.then(
    (v) => ({ ok: true, v }),
    (e: unknown) => ({ ok: false, e: e as PeerError }),
  );
/** The value of an outcome, as text (undefined for a failure). */
const val = (r: Outcome | undefined) => (r?.v === undefined ? undefined : dec(r.v));
/** The PeerError kind of an outcome (undefined for a value). */
const kind = (r: Outcome | undefined) => r?.e?.kind;

/** The end of the current event-loop turn (after the batcher's own setImmediate of it). */
const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

describe("Batcher", () => {
  it("sends a lone get after two turns in a row without a new get, not before", async () => {
    const { batcher, calls } = harness({ single: false });
    const p = settle(batcher.get({ group: "g", key: "a" }));
    await turn(); // the turn of the get
    await turn(); // one quiet turn
    expect(calls).toHaveLength(0);
    await turn(); // the second quiet turn: sent at its end
    expect(calls.map((c) => c.keys)).toEqual([["a"]]);
    calls[0]?.resolve([{ ok: true, value: { value: enc("A") } }]);
    expect(val(await p)).toBe("A");
  });

  it("keeps collecting while every turn brings gets, and sends at the end of the sixth turn", async () => {
    const { batcher, calls } = harness({ single: false });
    const ps: Promise<Outcome>[] = [];
    for (let i = 0; i < 9; i++) {
      ps.push(settle(batcher.get({ group: "g", key: `k${i}` })));
      await turn();
    }
    // k0..k5 went at the end of the sixth turn; k6..k8 are being collected.
    expect(calls.map((c) => c.keys)).toEqual([["k0", "k1", "k2", "k3", "k4", "k5"]]);
    await turn();
    await turn();
    expect(calls.map((c) => c.keys)).toEqual([
      ["k0", "k1", "k2", "k3", "k4", "k5"],
      ["k6", "k7", "k8"],
    ]);
    for (const c of calls) c.resolve(c.keys.map((k) => ({ ok: true, value: { value: enc(k) } })));
    expect((await Promise.all(ps)).map(val)).toEqual(Array.from({ length: 9 }, (_, i) => `k${i}`));
  });

  it("a quiet turn between gets does not send the batch: two in a row do", async () => {
    const { batcher, calls } = harness({ single: false });
    const ps = [settle(batcher.get({ group: "g", key: "a" }))];
    await turn(); // a's turn
    await turn(); // quiet
    ps.push(settle(batcher.get({ group: "g", key: "b" })));
    await turn(); // b's turn: not quiet
    expect(calls).toHaveLength(0);
    await turn(); // quiet
    expect(calls).toHaveLength(0);
    await turn(); // quiet again: sent
    expect(calls.map((c) => c.keys)).toEqual([["a", "b"]]);
    calls[0]?.resolve([
      { ok: true, value: { value: enc("A") } },
      { ok: true, value: { value: enc("B") } },
    ]);
    expect((await Promise.all(ps)).map(val)).toEqual(["A", "B"]);
  });

  it("concurrent gets in one turn go as one batch; each caller gets its own key's outcome", async () => {
    const { batcher, calls, sent } = harness();
    const ps = ["a", "b", "c"].map((key) => settle(batcher.get({ group: "g", key })));
    await sent(1);
    expect(calls).toHaveLength(1);
    expect(calls[0]?.group).toBe("g");
    expect(calls[0]?.keys).toEqual(["a", "b", "c"]);
    calls[0]?.resolve([
      { ok: true, value: { value: enc("A"), expiresAt: 123 } },
      { ok: false, error: new PeerError("not_found", ID, "nope") },
      { ok: false, error: new PeerError("getter_failed", ID, "boom") },
    ]);
    const [a, b, c] = await Promise.all(ps);
    expect(val(a)).toBe("A");
    expect(a?.v?.expiresAt).toBe(123);
    expect(kind(b)).toBe("not_found");
    expect(kind(c)).toBe("getter_failed");
    expect(batcher.batches).toBe(1);
    expect(batcher.batchedKeys).toBe(3);
  });

  it("answers may come as a Map by key; a key missing from the answer is unavailable", async () => {
    const { batcher, calls, sent } = harness();
    const ps = ["x", "y"].map((key) => settle(batcher.get({ group: "g", key })));
    await sent(1);
    calls[0]?.resolve(new Map([["y", { ok: true, value: { value: enc("Y") } }]]));
    const [x, y] = await Promise.all(ps);
    expect(kind(x)).toBe("unavailable");
    expect(val(y)).toBe("Y");
  });

  it("a duplicate key is sent once and answers every caller", async () => {
    const { batcher, calls, sent } = harness();
    const ps = ["k", "k", "j"].map((key) => settle(batcher.get({ group: "g", key })));
    await sent(1);
    expect(calls[0]?.keys).toEqual(["k", "j"]);
    calls[0]?.resolve([
      { ok: true, value: { value: enc("K") } },
      { ok: true, value: { value: enc("J") } },
    ]);
    const out = await Promise.all(ps);
    expect(out.map((r) => val(r))).toEqual(["K", "K", "J"]);
  });

  it("groups and maxValueBytes make separate batches", async () => {
    const { batcher, calls, sent } = harness();
    const ps = [
      batcher.get({ group: "g", key: "1" }),
      batcher.get({ group: "h", key: "2" }),
      batcher.get({ group: "g", key: "3" }),
      batcher.get({ group: "h", key: "4" }),
      batcher.get({ group: "h", key: "5" }, { maxValueBytes: 10 }),
      batcher.get({ group: "h", key: "6" }, { maxValueBytes: 10 }),
    ].map(settle);
    await sent(3);
    expect(calls.map((c) => [c.group, c.keys, c.opts.maxValueBytes])).toEqual([
      ["g", ["1", "3"], undefined],
      ["h", ["2", "4"], undefined],
      ["h", ["5", "6"], 10],
    ]);
    for (const c of calls) c.resolve(c.keys.map(() => ({ ok: true, value: { value: enc("v") } })));
    expect((await Promise.all(ps)).every((r) => r.ok)).toBe(true);
  });

  it("a value over the caller's maxValueBytes fails as unavailable (local), others are served", async () => {
    const { batcher, calls, sent } = harness();
    const ps = ["big", "small"].map((key) =>
      settle(batcher.get({ group: "g", key }, { maxValueBytes: 4 })),
    );
    await sent(1);
    calls[0]?.resolve([
      { ok: true, value: { value: enc("12345") } },
      { ok: true, value: { value: enc("1234") } },
    ]);
    const [big, small] = await Promise.all(ps);
    expect(kind(big)).toBe("unavailable");
    expect(big?.e?.local).toBe(true);
    expect(val(small)).toBe("1234");
  });

  it("a per-key unavailable of an answered batch is local (the peer answered)", async () => {
    const { batcher, calls, sent } = harness();
    const ps = ["a", "b"].map((key) => settle(batcher.get({ group: "g", key })));
    await sent(1);
    calls[0]?.resolve([
      { ok: false, error: new PeerError("unavailable", ID, "no room") },
      { ok: true, value: { value: enc("B") } },
    ]);
    const [a, b] = await Promise.all(ps);
    expect(kind(a)).toBe("unavailable");
    expect(a?.e?.local).toBe(true);
    expect(b?.ok).toBe(true);
  });

  it("more than maxKeys (or maxKeyBytes) make several batches", async () => {
    const { batcher, calls, sent } = harness({ maxKeys: 3, maxKeyBytes: 1000, single: false });
    const keys = Array.from({ length: 7 }, (_, i) => `k${i}`);
    const ps = keys.map((key) => settle(batcher.get({ group: "g", key })));
    await sent(3);
    expect(calls.map((c) => c.keys.length)).toEqual([3, 3, 1]);
    for (const c of calls) c.resolve(c.keys.map((k) => ({ ok: true, value: { value: enc(k) } })));
    expect((await Promise.all(ps)).map((r) => val(r))).toEqual(keys);

    const bytes = harness({ maxKeyBytes: 2 * (100 + 4) });
    const long = ["a", "b", "c"].map((c) => c.repeat(100));
    const qs = long.map((key) => settle(bytes.batcher.get({ group: "g", key })));
    await bytes.sent(1);
    expect(bytes.calls.map((c) => c.keys.length)).toEqual([2]);
    bytes.calls[0]?.resolve([
      { ok: true, value: { value: enc("1") } },
      { ok: true, value: { value: enc("2") } },
    ]);
    expect((await Promise.all(qs)).map((r) => val(r))).toEqual(["1", "2", `single:${long[2]}`]);
  });

  it("a lone key goes as a plain single get, with the caller's signal and maxValueBytes", async () => {
    const { batcher, calls, singles } = harness();
    const ac = new AbortController();
    const v = await batcher.get(
      { group: "g", key: "solo" },
      { signal: ac.signal, maxValueBytes: 9 },
    );
    expect(dec(v)).toBe("single:solo");
    expect(calls).toHaveLength(0);
    expect(singles[0]?.opts?.signal).toBe(ac.signal);
    expect(singles[0]?.opts?.maxValueBytes).toBe(9);
  });

  it("without a single get, a lone key goes as a batch of one", async () => {
    const { batcher, calls, sent } = harness({ single: false });
    const p = batcher.get({ group: "g", key: "solo" });
    await sent(1);
    calls[0]?.resolve([{ ok: true, value: { value: enc("S") } }]);
    expect(dec(await p)).toBe("S");
  });

  it("a batch that fails as a whole rejects every caller with unavailable", async () => {
    const { batcher, calls, sent } = harness();
    const ps = ["a", "b", "c"].map((key) => settle(batcher.get({ group: "g", key })));
    await sent(1);
    calls[0]?.reject(new PeerError("invalid_argument", ID, "HTTP 413: too many keys"));
    const out = await Promise.all(ps);
    for (const r of out) {
      expect(r.ok).toBe(false);
      expect(r.e).toBeInstanceOf(PeerError);
      expect(kind(r)).toBe("unavailable");
    }
    // A raw error, too.
    const more = ["d", "e"].map((key) => settle(batcher.get({ group: "g", key })));
    await sent(2);
    calls[1]?.reject(new Error("ECONNRESET"));
    for (const r of await Promise.all(more)) expect(kind(r)).toBe("unavailable");
  });

  it("a caller's abort rejects only that caller; the batch goes on for the others", async () => {
    const { batcher, calls, sent } = harness();
    const ac = new AbortController();
    const a = settle(batcher.get({ group: "g", key: "a" }, { signal: ac.signal }));
    const b = settle(batcher.get({ group: "g", key: "b" }));
    await sent(1);
    ac.abort();
    const ra = await a;
    expect(kind(ra)).toBe("aborted");
    expect(calls[0]?.opts.signal.aborted).toBe(false);
    calls[0]?.resolve([
      { ok: true, value: { value: enc("A") } },
      { ok: true, value: { value: enc("B") } },
    ]);
    const rb = await b;
    expect(val(rb)).toBe("B");
  });

  it("a key aborted before the flush is not sent", async () => {
    const { batcher, calls, sent } = harness({ single: false });
    const ac = new AbortController();
    const a = settle(batcher.get({ group: "g", key: "a" }, { signal: ac.signal }));
    const b = settle(batcher.get({ group: "g", key: "b" }));
    const c = settle(batcher.get({ group: "g", key: "c" }));
    ac.abort();
    await sent(1);
    expect(calls[0]?.keys).toEqual(["b", "c"]);
    calls[0]?.resolve([
      { ok: true, value: { value: enc("B") } },
      { ok: true, value: { value: enc("C") } },
    ]);
    expect((await a).ok).toBe(false);
    expect((await b).ok).toBe(true);
    expect((await c).ok).toBe(true);
  });

  it("the batch call is aborted once every caller aborted", async () => {
    const { batcher, calls, sent } = harness();
    const acs = [new AbortController(), new AbortController()];
    const ps = acs.map((ac, i) =>
      settle(batcher.get({ group: "g", key: `k${i}` }, { signal: ac.signal })),
    );
    await sent(1);
    acs[0]?.abort();
    expect(calls[0]?.opts.signal.aborted).toBe(false);
    acs[1]?.abort();
    expect(calls[0]?.opts.signal.aborted).toBe(true);
    for (const r of await Promise.all(ps)) expect(kind(r)).toBe("aborted");
  });

  it("callers sharing one signal (a group's shared timeout) add one listener per batch", async () => {
    const { batcher, calls, sent } = harness();
    const shared = new AbortController();
    const own = new AbortController();
    const ps = ["a", "b", "c"].map((key) =>
      settle(batcher.get({ group: "g", key }, { signal: shared.signal })),
    );
    const d = settle(batcher.get({ group: "g", key: "d" }, { signal: own.signal }));
    await sent(1);
    expect(getEventListeners(shared.signal, "abort")).toHaveLength(1);
    expect(getEventListeners(own.signal, "abort")).toHaveLength(1);
    shared.abort();
    for (const r of await Promise.all(ps)) expect(kind(r)).toBe("aborted");
    expect(calls[0]?.opts.signal.aborted).toBe(false); // d still waits
    calls[0]?.resolve(["A", "B", "C", "D"].map((v) => ({ ok: true, value: { value: enc(v) } })));
    expect(val(await d)).toBe("D");
    // Every caller settled: no listener is left behind.
    expect(getEventListeners(own.signal, "abort")).toHaveLength(0);
  });

  it("callers that all pass one signal: the batch call gets that very signal (no controller of its own)", async () => {
    const { batcher, calls, sent } = harness();
    const shared = new AbortController();
    const ps = ["a", "b", "a"].map((key) =>
      settle(batcher.get({ group: "g", key }, { signal: shared.signal })),
    );
    await sent(1);
    expect(calls[0]?.keys).toEqual(["a", "b"]);
    expect(calls[0]?.opts.signal).toBe(shared.signal);
    shared.abort(new Error("gone"));
    for (const r of await Promise.all(ps)) expect(kind(r)).toBe("aborted");
  });

  it("callers without signals: the call's signal never aborts, is shared by batches, and keeps no listener", async () => {
    const { batcher, calls, sent } = harness();
    const first = ["a", "b"].map((key) => batcher.get({ group: "g", key }));
    await sent(1);
    const second = ["c", "d"].map((key) => batcher.get({ group: "g", key }));
    await sent(2);
    const never = calls[0]?.opts.signal as AbortSignal;
    expect(never.aborted).toBe(false);
    expect(calls[1]?.opts.signal).toBe(never);
    for (const c of calls) c.resolve(c.keys.map((k) => ({ ok: true, value: { value: enc(k) } })));
    expect((await Promise.all([...first, ...second])).map(dec)).toEqual(["a", "b", "c", "d"]);
    expect(getEventListeners(never, "abort")).toHaveLength(0);
  });

  it("a caller without a signal among callers with one: the call is never aborted by theirs", async () => {
    const { batcher, calls, sent } = harness();
    const ac = new AbortController();
    const a = settle(batcher.get({ group: "g", key: "a" }, { signal: ac.signal }));
    const b = settle(batcher.get({ group: "g", key: "b" }));
    await sent(1);
    expect(calls[0]?.opts.signal).not.toBe(ac.signal);
    ac.abort();
    expect(kind(await a)).toBe("aborted");
    expect(calls[0]?.opts.signal.aborted).toBe(false); // b still waits
    calls[0]?.resolve([
      { ok: true, value: { value: enc("A") } },
      { ok: true, value: { value: enc("B") } },
    ]);
    expect(val(await b)).toBe("B");
  });

  it("listeners go once the batch is answered, on every signal its callers passed", async () => {
    const { batcher, calls, sent } = harness();
    const shared = new AbortController();
    const ps = ["a", "b"].map((key) =>
      settle(batcher.get({ group: "g", key }, { signal: shared.signal })),
    );
    await sent(1);
    calls[0]?.resolve([
      { ok: true, value: { value: enc("A") } },
      { ok: false, error: new PeerError("not_found", ID, "no b") },
    ]);
    const [ra, rb] = await Promise.all(ps);
    expect(val(ra as Outcome)).toBe("A");
    expect(kind(rb as Outcome)).toBe("not_found");
    expect(getEventListeners(shared.signal, "abort")).toHaveLength(0);
  });

  it("an already aborted signal rejects at once and queues nothing", async () => {
    const { batcher, calls, singles } = harness();
    const r = await settle(batcher.get({ group: "g", key: "a" }, { signal: AbortSignal.abort() }));
    expect(kind(r)).toBe("aborted");
    await new Promise((resolve) => setImmediate(resolve));
    expect(calls).toHaveLength(0);
    expect(singles).toHaveLength(0);
  });

  it("a send that throws synchronously fails its callers as unavailable", async () => {
    const batcher = new Batcher({
      id: ID,
      send: () => {
        throw new Error("cannot encode");
      },
    });
    const out = await Promise.all(
      ["a", "b"].map((key) => settle(batcher.get({ group: "g", key }))),
    );
    for (const r of out) expect(kind(r)).toBe("unavailable");
  });
});
