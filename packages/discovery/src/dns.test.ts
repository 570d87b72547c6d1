import { createSocket, type Socket } from "node:dgram";
import { promises as dnsp } from "node:dns";
import { once } from "node:events";
import { followPeers } from "@tinycache/core";
import {
  type Dnsmasq,
  fakePool,
  findDnsmasq,
  isFail,
  isUpdate,
  peerRecorder as recorder,
  startDnsmasq,
} from "@tinycache/testkit";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type DnsSourceHooks, type DnsSourceOptions, dnsSource, dnsSourceWith } from "./dns.js";
import { parseServer } from "./private/server.js";

/** Yields to the event loop once (I/O callbacks and timers already due run first). */
const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

const dnsmasq = findDnsmasq();

/** TTL of every dnsmasq answer (its --local-ttl), in seconds. */
const TTL = 7;

/** The records every test starts from; a test that changes them puts these back. */
const HOSTS: Record<string, readonly string[]> = {
  "cache.svc.test": ["10.0.0.2", "10.0.0.10", "10.0.0.1"],
  "v6.svc.test": ["fd00::2", "::1"],
  "dual.svc.test": ["10.0.1.1", "fd00::1"],
  "node1.svc.test": ["10.1.0.1"],
  "node2.svc.test": ["10.1.0.2", "fd00::12"],
  "members.svc.test": ["10.0.2.1", "10.0.2.2"],
  // Answered from the hosts file while listed; once dropped, dnsmasq forwards the name to
  // the SERVFAIL upstream (--server=/broken.test/...).
  "members.broken.test": ["10.0.3.1", "10.0.3.2"],
};

const SRV = [
  "--srv-host=_cache._tcp.svc.test,node1.svc.test,8001",
  "--srv-host=_cache._tcp.svc.test,node2.svc.test,8002",
  "--srv-host=_gone._tcp.svc.test,nowhere.svc.test,9000",
];

/**
 * An upstream DNS server that answers every query with SERVFAIL (RCODE 2): same id and
 * question, QR and RA set, no records.
 */
async function servfailServer(): Promise<{ socket: Socket; port: number; queries: () => number }> {
  const socket = createSocket("udp4");
  let queries = 0;
  socket.on("message", (msg, from) => {
    if (msg.length < 12) return;
    queries++;
    const reply = Buffer.from(msg);
    reply[2] = 0x80 | ((msg[2] as number) & 0x79); // QR, the query's opcode and RD
    reply[3] = 0x80 | 2; // RA, RCODE = SERVFAIL
    reply.writeUInt16BE(0, 6); // no answers,
    reply.writeUInt16BE(0, 8); // no authority,
    reply.writeUInt16BE(0, 10); // no additional records (an EDNS OPT would be cut off)
    socket.send(reply.subarray(0, 12 + questionLength(msg)), from.port, from.address);
  });
  socket.bind(0, "127.0.0.1");
  await once(socket, "listening");
  return { socket, port: socket.address().port, queries: () => queries };
}

/** Bytes of the (first) question of a DNS message: labels, root, QTYPE and QCLASS. */
function questionLength(msg: Buffer): number {
  let i = 12;
  while (i < msg.length && msg[i] !== 0) i += (msg[i] as number) + 1;
  return i + 1 + 4 - 12;
}

/** A real resolver whose lookups are counted; `onCall` runs right after each starts. */
function countingResolver(onCall: (p: Promise<unknown>) => void = () => {}) {
  const counts = { calls: 0, cancels: 0 };
  const inflight: Promise<unknown>[] = [];
  const wrap = <T>(p: Promise<T>): Promise<T> => {
    counts.calls++;
    inflight.push(p.catch(() => {}));
    onCall(p);
    return p;
  };
  const createResolver: DnsSourceHooks["createResolver"] = (o) => {
    const r = new dnsp.Resolver(o);
    return {
      setServers: (s) => r.setServers(s),
      resolve4: (name, opts) => wrap(r.resolve4(name, opts)),
      resolve6: (name, opts) => wrap(r.resolve6(name, opts)),
      resolveSrv: (name) => wrap(r.resolveSrv(name)),
      cancel: () => {
        counts.cancels++;
        r.cancel();
      },
    };
  };
  return { counts, inflight, createResolver };
}

/** Timers the test fires by hand: records each delay asked for. */
function manualTimers() {
  const pending: { fn: () => void; ms: number; cancelled: boolean }[] = [];
  const setTimer: DnsSourceHooks["setTimer"] = (fn, ms) => {
    const t = { fn, ms, cancelled: false };
    pending.push(t);
    return () => {
      t.cancelled = true;
    };
  };
  return { pending, setTimer };
}

describe.skipIf(!dnsmasq)(
  `dnsSource against dnsmasq${dnsmasq ? "" : " (skipped: dnsmasq not installed; apt-get install dnsmasq-base)"}`,
  () => {
    let dns: Dnsmasq;
    let upstream: Awaited<ReturnType<typeof servfailServer>>;
    const controllers: AbortController[] = [];
    /** Options every test shares: our server, fast polls, small timeouts. */
    const base = (o: Partial<DnsSourceOptions> & { name: string }): DnsSourceOptions => ({
      server: dns.server,
      minIntervalMs: 50,
      maxIntervalMs: 50,
      timeoutMs: 1000,
      tries: 1,
      ...o,
    });
    const start = (source: ReturnType<typeof dnsSource>) => {
      const rec = recorder();
      const ac = new AbortController();
      controllers.push(ac);
      source.subscribe(rec.sink, ac.signal);
      return { rec, ac };
    };

    beforeAll(async () => {
      upstream = await servfailServer();
      dns = await startDnsmasq({
        hosts: HOSTS,
        ttl: TTL,
        args: [...SRV, `--server=/broken.test/127.0.0.1#${upstream.port}`],
      });
    });
    afterEach(() => {
      for (const ac of controllers.splice(0)) ac.abort();
    });
    afterAll(async () => {
      await dns?.stop();
      upstream?.socket.close();
    });

    it("turns A records into sorted URLs with the scheme and port", async () => {
      const source = dnsSource(base({ name: "cache.svc.test", port: 8443, scheme: "https" }));
      expect(source.name).toBe("dns:cache.svc.test:8443");
      const { rec } = start(source);
      expect(await rec.next()).toEqual({
        kind: "update",
        // Sorted as strings, as followPeers does (":" sorts after "0").
        urls: ["https://10.0.0.10:8443", "https://10.0.0.1:8443", "https://10.0.0.2:8443"],
      });
    });

    it("turns AAAA records into bracketed URLs (family 6)", async () => {
      const { rec } = start(dnsSource(base({ name: "v6.svc.test", port: 8001, family: 6 })));
      expect(await rec.next()).toEqual({
        kind: "update",
        urls: ["http://[::1]:8001", "http://[fd00::2]:8001"],
      });
    });

    it('asks for both with family "any", and only A by default', async () => {
      const any = start(dnsSource(base({ name: "dual.svc.test", port: 8001, family: "any" })));
      expect(await any.rec.next()).toEqual({
        kind: "update",
        urls: ["http://10.0.1.1:8001", "http://[fd00::1]:8001"],
      });
      const v4 = start(dnsSource(base({ name: "dual.svc.test", port: 8001 })));
      expect(await v4.rec.next()).toEqual({ kind: "update", urls: ["http://10.0.1.1:8001"] });
      // A name with only AAAA records has no A records: an empty list, not a failure.
      const none = start(dnsSource(base({ name: "v6.svc.test", port: 8001 })));
      expect(await none.rec.next()).toEqual({ kind: "update", urls: [] });
    });

    it("follows SRV records to their targets, on each record's port", async () => {
      const source = dnsSource(base({ name: "_cache._tcp.svc.test", srv: true }));
      expect(source.name).toBe("dns+srv:_cache._tcp.svc.test");
      const v4 = start(source);
      expect(await v4.rec.next()).toEqual({
        kind: "update",
        urls: ["http://10.1.0.1:8001", "http://10.1.0.2:8002"],
      });
      const any = start(
        dnsSource(base({ name: "_cache._tcp.svc.test", srv: true, family: "any", port: 1 })),
      );
      expect(await any.rec.next()).toEqual({
        kind: "update",
        urls: ["http://10.1.0.1:8001", "http://10.1.0.2:8002", "http://[fd00::12]:8002"],
      });
    });

    it("reports an empty list for SRV records whose targets have no address, or none", async () => {
      const gone = start(dnsSource(base({ name: "_gone._tcp.svc.test", srv: true })));
      expect(await gone.rec.next()).toEqual({ kind: "update", urls: [] });
      const none = start(dnsSource(base({ name: "_nothing._tcp.svc.test", srv: true })));
      expect(await none.rec.next()).toEqual({ kind: "update", urls: [] });
    });

    it("picks up a changed hosts file (SIGHUP) on its next poll", async () => {
      const name = "rolling.svc.test";
      await dns.setHosts({ ...HOSTS, [name]: ["10.0.4.1"] });
      try {
        const { rec } = start(dnsSource(base({ name, port: 8001 })));
        await rec.next(isUpdate(["http://10.0.4.1:8001"]));
        await dns.setHosts({ ...HOSTS, [name]: ["10.0.4.2", "10.0.4.1"] });
        await rec.next(isUpdate(["http://10.0.4.1:8001", "http://10.0.4.2:8001"]));
        await dns.setHosts({ ...HOSTS, [name]: ["10.0.4.2"] });
        await rec.next(isUpdate(["http://10.0.4.2:8001"]));
      } finally {
        await dns.setHosts(HOSTS);
      }
    });

    it("waits the record TTL, clamped to [min, max], less up to `jitter`", async () => {
      const delayOf = async (o: Partial<DnsSourceOptions> & { name: string }) => {
        const timers = manualTimers();
        const { rec } = start(
          dnsSourceWith(base({ port: 8001, jitter: 0.2, ...o }), {
            setTimer: timers.setTimer,
            random: () => 0.5,
          }),
        );
        await rec.next();
        expect(timers.pending).toHaveLength(1);
        return timers.pending[0]?.ms;
      };
      const name = "cache.svc.test";
      // TTL 7 s, less 0.2 * 0.5 = 10 %.
      expect(await delayOf({ name, minIntervalMs: 1000, maxIntervalMs: 60_000 })).toBe(6300);
      expect(await delayOf({ name, minIntervalMs: 10_000, maxIntervalMs: 60_000 })).toBe(9000);
      expect(await delayOf({ name, minIntervalMs: 1000, maxIntervalMs: 3000 })).toBe(2700);
      expect(await delayOf({ name, minIntervalMs: 1000, maxIntervalMs: 60_000, jitter: 0 })).toBe(
        7000,
      );
      // SRV: the smallest TTL of the targets' addresses.
      expect(
        await delayOf({
          name: "_cache._tcp.svc.test",
          srv: true,
          minIntervalMs: 1000,
          maxIntervalMs: 60_000,
        }),
      ).toBe(6300);
      // No records, no TTL: the next try after minIntervalMs.
      expect(
        await delayOf({ name: "nobody.svc.test", minIntervalMs: 1000, maxIntervalMs: 60_000 }),
      ).toBe(900);
    });

    it("fires the next lookup from the timer it set", async () => {
      const timers = manualTimers();
      const resolver = countingResolver();
      const { rec } = start(
        dnsSourceWith(base({ name: "cache.svc.test", port: 8001 }), {
          setTimer: timers.setTimer,
          createResolver: resolver.createResolver,
        }),
      );
      await rec.next(isUpdate());
      expect(resolver.counts.calls).toBe(1);
      timers.pending[0]?.fn();
      await rec.next(isUpdate(), 1);
      expect(resolver.counts.calls).toBe(2);
      expect(timers.pending).toHaveLength(2);
    });

    it("reports a name with no records as []: followPeers keeps the old list", async () => {
      const name = "members.svc.test";
      const self = "http://10.0.2.1:8001";
      const rec = recorder();
      const pool = fakePool(self);
      const m = followPeers(pool, rec.tee(dnsSource(base({ name, port: 8001 }))), { batchMs: 0 });
      try {
        await rec.next(isUpdate([self, "http://10.0.2.2:8001"]));
        const { [name]: _, ...without } = HOSTS;
        await dns.setHosts(without);
        await rec.next(isUpdate([]));
        expect(m.peers).toEqual([self, "http://10.0.2.2:8001"]);
        expect(m.stats.refusedEmpty).toBeGreaterThanOrEqual(1);
        expect(m.stats.failures).toBe(0);
        expect(m.problem).toMatch(/empty/);
        await dns.setHosts({ ...HOSTS, [name]: ["10.0.2.1", "10.0.2.3"] });
        await rec.next(isUpdate([self, "http://10.0.2.3:8001"]));
        expect(m.peers).toEqual([self, "http://10.0.2.3:8001"]);
        expect(m.problem).toBeUndefined();
        expect(pool.calls).toHaveLength(2);
      } finally {
        m.close();
        await dns.setHosts(HOSTS);
      }
    });

    it("reports SERVFAIL as a failure: followPeers keeps the old list and counts it", async () => {
      const name = "members.broken.test";
      const self = "http://10.0.3.1:8001";
      const rec = recorder();
      const pool = fakePool(self);
      const m = followPeers(pool, rec.tee(dnsSource(base({ name, port: 8001 }))), { batchMs: 0 });
      try {
        await rec.next(isUpdate([self, "http://10.0.3.2:8001"]));
        const { [name]: _, ...without } = HOSTS;
        const before = upstream.queries();
        await dns.setHosts(without);
        const failed = await rec.next(isFail);
        expect((failed as { reason: NodeJS.ErrnoException }).reason.code).toBe("ESERVFAIL");
        expect(upstream.queries()).toBeGreaterThan(before);
        expect(m.peers).toEqual([self, "http://10.0.3.2:8001"]);
        expect(m.stats.failures).toBeGreaterThanOrEqual(1);
        expect(m.problem).toMatch(/lookup failed/);
        expect(pool.calls).toHaveLength(1);
      } finally {
        m.close();
        await dns.setHosts(HOSTS);
      }
    });

    it("stops at abort during a lookup: cancels it, reports nothing, sets no timer", async () => {
      const timers = manualTimers();
      const ac = new AbortController();
      const resolver = countingResolver(() => ac.abort());
      const rec = recorder();
      dnsSourceWith(base({ name: "cache.svc.test", port: 8001 }), {
        setTimer: timers.setTimer,
        createResolver: resolver.createResolver,
      }).subscribe(rec.sink, ac.signal);
      await Promise.all(resolver.inflight);
      await tick();
      expect(resolver.counts).toEqual({ calls: 1, cancels: 1 });
      expect(rec.events).toEqual([]);
      expect(timers.pending).toEqual([]);
    });

    it("stops at abort between lookups: the timer is cancelled and asks nothing", async () => {
      const timers = manualTimers();
      const resolver = countingResolver();
      const { rec, ac } = start(
        dnsSourceWith(base({ name: "cache.svc.test", port: 8001 }), {
          setTimer: timers.setTimer,
          createResolver: resolver.createResolver,
        }),
      );
      await rec.next(isUpdate());
      ac.abort();
      expect(timers.pending.map((t) => t.cancelled)).toEqual([true]);
      timers.pending[0]?.fn(); // a timer that fires anyway
      await tick();
      expect(resolver.counts).toEqual({ calls: 1, cancels: 1 });
      expect(rec.events).toHaveLength(1);
    });

    it("stops polling with real timers", async () => {
      const resolver = countingResolver();
      const { rec, ac } = start(
        dnsSourceWith(base({ name: "cache.svc.test", port: 8001 }), {
          createResolver: resolver.createResolver,
        }),
      );
      await rec.next(isUpdate(), 2); // the third lookup's answer
      ac.abort();
      const calls = resolver.counts.calls;
      // A live source polls every <= 50 ms: once it has answered twice more, the
      // stopped one has had time for two more lookups and made none.
      const witness = start(dnsSource(base({ name: "cache.svc.test", port: 8001 })));
      await witness.rec.next(isUpdate(), 2);
      expect(resolver.counts.calls).toBe(calls);
      expect(rec.events).toHaveLength(3);
    });
  },
);

describe("dnsSource without a server to ask", () => {
  it("reports a refused or timed-out lookup as a failure, and retries", async () => {
    // A UDP port nobody listens on: bind one, note it, close it.
    const probe = createSocket("udp4");
    probe.bind(0, "127.0.0.1");
    await once(probe, "listening");
    const port = probe.address().port;
    probe.close();
    const rec = recorder();
    const ac = new AbortController();
    const pool = fakePool("http://10.0.0.1:8001");
    const m = followPeers(
      pool,
      rec.tee(
        dnsSource({
          name: "cache.svc.test",
          port: 8001,
          server: `127.0.0.1:${port}`,
          timeoutMs: 200,
          tries: 1,
          minIntervalMs: 20,
        }),
      ),
    );
    try {
      const first = await rec.next();
      expect(first.kind).toBe("fail");
      expect(["ECONNREFUSED", "ETIMEOUT"]).toContain(
        (first as { reason: NodeJS.ErrnoException }).reason.code,
      );
      await rec.next(isFail, 1); // tried again after minIntervalMs
      expect(m.stats.failures).toBeGreaterThanOrEqual(2);
      expect(pool.calls).toEqual([]);
    } finally {
      m.close();
      ac.abort();
    }
  });

  it("reports a malformed answer as a failure; followPeers keeps the last good list", async () => {
    // A server whose reply claims three answer records and then holds only junk bytes.
    const socket = createSocket("udp4");
    socket.on("message", (msg, from) => {
      if (msg.length < 12) return;
      const header = Buffer.from(msg.subarray(0, 12));
      header[2] = 0x80 | ((msg[2] as number) & 0x79);
      header[3] = 0x80;
      header.writeUInt16BE(0, 4); // no question
      header.writeUInt16BE(3, 6); // "three answers"
      const junk = Buffer.from([0xc0, 0xff, 0x00, 0x01, 0x00, 0x01, 0xde, 0xad]);
      socket.send(Buffer.concat([header, junk]), from.port, from.address);
    });
    socket.bind(0, "127.0.0.1");
    await once(socket, "listening");
    const rec = recorder();
    const pool = fakePool("http://10.0.0.1:8001");
    const m = followPeers(
      pool,
      rec.tee(
        dnsSource({
          name: "cache.svc.test",
          port: 8001,
          server: `127.0.0.1:${socket.address().port}`,
          timeoutMs: 500,
          tries: 1,
          minIntervalMs: 20,
        }),
      ),
    );
    try {
      const first = await rec.next();
      expect(first.kind).toBe("fail");
      expect((first as { reason: NodeJS.ErrnoException }).reason.code).toBe("EBADRESP");
      await rec.next(isFail, 1); // and it goes on polling
      expect(m.stats.failures).toBeGreaterThanOrEqual(2);
      expect(m.problem).toBe("peer lookup failed"); // the reason itself is logged
      expect(pool.calls).toEqual([]);
    } finally {
      m.close();
      socket.close();
    }
  });

  it("creates no resolver for an aborted subscription", () => {
    const resolver = countingResolver();
    let created = 0;
    const rec = recorder();
    dnsSourceWith(
      { name: "x.test", port: 1 },
      {
        createResolver: (o) => {
          created++;
          return resolver.createResolver?.(o) as never;
        },
      },
    ).subscribe(rec.sink, AbortSignal.abort());
    expect(created).toBe(0);
    expect(rec.events).toEqual([]);
  });
});

describe("dnsSource options", () => {
  const ok = { name: "cache.svc.test", port: 8001 };

  it("names the source after the name and port, or the SRV name", () => {
    expect(dnsSource(ok).name).toBe("dns:cache.svc.test:8001");
    expect(dnsSource({ name: "_c._tcp.svc", srv: true }).name).toBe("dns+srv:_c._tcp.svc");
  });

  it.each([
    [null, TypeError, /dnsSource: options must be an object/],
    [{ port: 1 }, TypeError, /dnsSource: name must be a non-empty DNS name/],
    [{ ...ok, name: " " }, TypeError, /name/],
    [{ name: "a.test" }, TypeError, /dnsSource: port is required \(unless srv: true\)/],
    [{ ...ok, port: 0 }, RangeError, /dnsSource: port must be an integer in 1-65535, got 0/],
    [{ ...ok, port: 70000 }, RangeError, /port/],
    [{ ...ok, port: "8001" }, RangeError, /port/],
    [{ name: "a.test", srv: true, port: 1.5 }, RangeError, /port/],
    [{ ...ok, srv: "yes" }, TypeError, /dnsSource: srv must be a boolean/],
    [{ ...ok, scheme: "ftp" }, TypeError, /dnsSource: scheme must be "http" or "https"/],
    [{ ...ok, family: "6" }, TypeError, /dnsSource: family must be 4, 6 or "any"/],
    [
      { ...ok, minIntervalMs: 0 },
      RangeError,
      /dnsSource: minIntervalMs must be a finite number > 0/,
    ],
    [{ ...ok, maxIntervalMs: Number.POSITIVE_INFINITY }, RangeError, /maxIntervalMs/],
    [
      { ...ok, minIntervalMs: 5000, maxIntervalMs: 1000 },
      RangeError,
      /maxIntervalMs must be >= minIntervalMs/,
    ],
    [{ ...ok, jitter: 1.5 }, RangeError, /dnsSource: jitter must be a number in \[0, 1\]/],
    [{ ...ok, jitter: Number.NaN }, RangeError, /jitter/],
    [{ ...ok, timeoutMs: -1 }, RangeError, /dnsSource: timeoutMs/],
    [{ ...ok, tries: 0 }, RangeError, /dnsSource: tries must be an integer >= 1/],
    [{ ...ok, server: "dns.example.com" }, TypeError, /dnsSource: server must be an IP address/],
    [{ ...ok, server: "127.0.0.1:99999" }, TypeError, /port out of range/],
    [{ ...ok, server: "[10.0.0.1]:53" }, TypeError, /brackets/],
    [{ ...ok, server: "" }, TypeError, /server/],
  ])("refuses %j", (options, Err, message) => {
    expect(() => dnsSource(options as never)).toThrow(Err);
    expect(() => dnsSource(options as never)).toThrow(message);
  });

  it("raises the default maxIntervalMs to a larger minIntervalMs", () => {
    expect(() => dnsSource({ ...ok, minIntervalMs: 120_000 })).not.toThrow();
  });

  it("accepts a server as ip, ip:port, [ipv6]:port or bare ipv6", () => {
    expect(parseServer("127.0.0.1:5353", "t")).toBe("127.0.0.1:5353");
    expect(parseServer("10.0.0.10", "t")).toBe("10.0.0.10");
    expect(parseServer("[::1]:53", "t")).toBe("[::1]:53");
    expect(parseServer("[::1]", "t")).toBe("::1");
    expect(parseServer("fd00::53", "t")).toBe("fd00::53");
    for (const s of ["127.0.0.1:5353", "10.0.0.10", "[::1]:53", "::1"]) {
      expect(() => new dnsp.Resolver().setServers([parseServer(s, "t")])).not.toThrow();
    }
  });
});
