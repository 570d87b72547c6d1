import { fakePool as testkitFakePool } from "@tinycache/testkit";
import { afterEach, describe, expect, it, vi } from "vitest";
import { followPeers, type PeerSink, type PeerSource } from "./membership.js";
import type { Logger } from "./peers.js";

const A = "http://10.0.0.1:8001";
const B = "http://10.0.0.2:8001";
const C = "http://10.0.0.3:8001";

/** A source the test drives by hand; it records whether it was stopped. */
function manualSource() {
  let sink: PeerSink | undefined;
  let signal: AbortSignal | undefined;
  const source: PeerSource = {
    name: "manual",
    subscribe(s, sig) {
      sink = s;
      signal = sig;
    },
  };
  return {
    source,
    get sink() {
      if (!sink) throw new Error("not subscribed");
      return sink;
    },
    get stopped() {
      return signal?.aborted === true;
    },
  };
}

const fakePool = (self = A) => testkitFakePool(self);

function recordingLogger() {
  const lines: { level: string; msg: string; obj: object }[] = [];
  const at =
    (level: string) =>
    (obj: object, msg = "") =>
      lines.push({ level, msg, obj });
  const logger: Logger = {
    debug: at("debug"),
    info: at("info"),
    warn: at("warn"),
    error: at("error"),
  };
  return { logger, lines, warns: () => lines.filter((l) => l.level === "warn") };
}

afterEach(() => {
  vi.useRealTimers();
});

describe("followPeers", () => {
  it("applies the first list at once, sorted, and records when", () => {
    const src = manualSource();
    const pool = fakePool();
    const m = followPeers(pool, src.source, { now: () => 1234 });
    expect(m.peers).toEqual([]);
    expect(m.lastChangeAt).toBeUndefined();
    src.sink.update([C, A, B, A]);
    expect(pool.calls).toEqual([[A, B, C]]);
    expect(m.peers).toEqual([A, B, C]);
    expect(m.lastChangeAt).toBe(1234);
    expect(m.stats.changes).toBe(1);
    expect(m.source).toBe("manual");
  });

  it("batches changes that arrive within batchMs into one ring change", () => {
    vi.useFakeTimers();
    const src = manualSource();
    const pool = fakePool();
    const m = followPeers(pool, src.source, { batchMs: 500 });
    src.sink.update([A]);
    src.sink.update([A, B]);
    vi.advanceTimersByTime(200);
    src.sink.update([A, B, C]);
    expect(pool.calls).toHaveLength(1);
    vi.advanceTimersByTime(300);
    expect(pool.calls).toEqual([[A], [A, B, C]]);
    expect(m.stats.changes).toBe(2);
  });

  it("does not re-apply a list that did not change", () => {
    vi.useFakeTimers();
    const src = manualSource();
    const pool = fakePool();
    const m = followPeers(pool, src.source);
    src.sink.update([A, B]);
    src.sink.update([B, A]);
    vi.runAllTimers();
    src.sink.update([A, B]);
    vi.runAllTimers();
    expect(pool.calls).toHaveLength(1);
    expect(m.stats.changes).toBe(1);
  });

  it("never applies an empty list, a failed lookup or a list without self; warns once per episode", () => {
    vi.useFakeTimers();
    const src = manualSource();
    const pool = fakePool();
    const log = recordingLogger();
    const m = followPeers(pool, src.source, { logger: log.logger });
    src.sink.update([A, B]);
    for (let i = 0; i < 3; i++) src.sink.update([]);
    for (let i = 0; i < 2; i++) src.sink.fail(new Error("SERVFAIL"));
    for (let i = 0; i < 2; i++) src.sink.update([B, C]);
    vi.runAllTimers();
    expect(pool.calls).toEqual([[A, B]]);
    expect(m.peers).toEqual([A, B]);
    expect(m.stats).toMatchObject({ refusedEmpty: 3, failures: 2, refusedWithoutSelf: 2 });
    expect(m.problem).toMatch(/does not contain this process/);
    // One warning per episode: empty, failed, without self.
    expect(log.warns()).toHaveLength(3);
    src.sink.update([A, C]);
    vi.runAllTimers();
    expect(m.problem).toBeUndefined();
    expect(m.peers).toEqual([A, C]);
    // A new episode of the same kind warns again.
    src.sink.update([]);
    expect(log.warns()).toHaveLength(4);
  });

  it("drops URLs that do not parse, keeps the rest, and counts them", () => {
    const src = manualSource();
    const pool = fakePool();
    const m = followPeers(pool, src.source);
    src.sink.update([A, "not a url", "ftp://x:1", "http://h:1/?q", "", B, 42 as unknown as string]);
    expect(m.peers).toEqual([A, B]);
    expect(m.stats.invalidUrls).toBe(5);
  });

  it("a source that hands over something that is not a list is a failure, not a crash", () => {
    const src = manualSource();
    const pool = fakePool();
    const m = followPeers(pool, src.source);
    src.sink.update("http://a" as unknown as string[]);
    expect(m.stats.failures).toBe(1);
    expect(pool.calls).toHaveLength(0);
  });

  it("leave applies the others at once, self excluded, cancelling a pending change", () => {
    vi.useFakeTimers();
    const src = manualSource();
    const pool = fakePool();
    const m = followPeers(pool, src.source);
    src.sink.update([A, B, C]);
    src.sink.update([A, B]);
    src.sink.leave([A, B, C]);
    expect(pool.calls.at(-1)).toEqual([B, C]);
    vi.runAllTimers();
    expect(pool.calls.at(-1)).toEqual([B, C]);
    expect(m.peers).toEqual([B, C]);
  });

  it("keeps the last good list when the pool refuses one", () => {
    const src = manualSource();
    let refuse = false;
    const pool = {
      self: A,
      setPeers() {
        if (refuse) throw new TypeError("bad");
      },
    };
    const m = followPeers(pool, src.source, { batchMs: 0 });
    src.sink.update([A]);
    refuse = true;
    src.sink.update([A, B]);
    expect(m.peers).toEqual([A]);
    expect(m.problem).toMatch(/pool refused/);
  });

  it("close stops the source and any pending change; later updates are ignored", () => {
    vi.useFakeTimers();
    const src = manualSource();
    const pool = fakePool();
    const m = followPeers(pool, src.source);
    src.sink.update([A]);
    src.sink.update([A, B]);
    m.close();
    m.close();
    expect(src.stopped).toBe(true);
    vi.runAllTimers();
    src.sink.update([A, C]);
    src.sink.fail(new Error("late"));
    expect(pool.calls).toEqual([[A]]);
    expect(m.stats.failures).toBe(0);
  });

  it("refuses bad options and sources", () => {
    const pool = fakePool();
    const src = manualSource();
    expect(() => followPeers(pool, src.source, { batchMs: -1 })).toThrow(RangeError);
    expect(() => followPeers(pool, src.source, { batchMs: Number.NaN })).toThrow(RangeError);
    expect(() => followPeers(pool, {} as PeerSource)).toThrow(TypeError);
  });
});
