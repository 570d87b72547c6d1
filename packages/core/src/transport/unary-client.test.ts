/**
 * The unary client's limits on what it buffers: a per-call cap enforced while reading
 * (and before, from Content-Length), and a byte budget shared by every answer in flight.
 * Real sockets on 127.0.0.1; nothing sleeps: servers write as fast as the client reads
 * (backpressure), and tests await events.
 */
import { once } from "node:events";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { deferred, peerError } from "../testing.test-util.js";
import { ByteBudget } from "./byte-budget.js";
import { protobufFirstFieldEnd, UnaryClient } from "./unary-client.js";

const MiB = 1024 * 1024;
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

async function serve(handler: http.RequestListener): Promise<string> {
  const srv = http.createServer(handler);
  srv.listen(0, "127.0.0.1");
  await once(srv, "listening");
  cleanups.push(async () => {
    const closed = once(srv, "close");
    srv.close();
    srv.closeAllConnections();
    await closed;
  });
  return `http://127.0.0.1:${(srv.address() as AddressInfo).port}`;
}

function client(url: string, o: { maxBodyBytes?: number; budget?: ByteBudget } = {}) {
  const c = new UnaryClient({
    url,
    timeoutMs: 30_000,
    maxBodyBytes: o.maxBodyBytes ?? 1024 * MiB,
    inflightBudget: o.budget,
  });
  cleanups.push(() => c.destroy());
  return c;
}

/**
 * A handler that streams up to `total` bytes in 64 KiB chunks as fast as the client
 * reads them, with or without a Content-Length, and reports how many bytes it wrote
 * once the connection closed.
 */
function streamer(total: number, withLength: boolean) {
  const written = deferred<number>();
  const handler: http.RequestListener = async (_req, res) => {
    res.writeHead(200, withLength ? { "content-length": total } : {});
    const chunk = Buffer.alloc(64 * 1024, 7);
    let sent = 0;
    let closed = false;
    res.on("close", () => {
      closed = true;
      written.resolve(sent);
    });
    while (!closed && sent < total) {
      sent += chunk.length;
      if (!res.write(chunk)) {
        await Promise.race([once(res, "drain"), once(res, "close")]);
      }
    }
    res.end();
  };
  return { handler, written: written.promise };
}

describe("UnaryClient: bounded reading", () => {
  it("stops reading a huge streamed body at the call's cap and drops the socket", async () => {
    const s = streamer(1024 * MiB, false); // 1 GiB offered, no Content-Length
    const c = client(await serve(s.handler));
    const before = process.memoryUsage().arrayBuffers;
    const err = await peerError(c.request({ method: "GET", path: "/big", maxBodyBytes: MiB }));
    expect(err.kind).toBe("unavailable");
    expect(err.message).toMatch(/over the call's maxBodyBytes \(1048576\)/);
    // The server saw the connection close: the client stopped reading after ~1 MiB, and
    // only the sockets' buffers were written beyond it.
    const written = await s.written;
    console.log(
      `streamed body: server wrote ${(written / MiB).toFixed(1)} MiB of 1024 MiB offered`,
    );
    expect(written).toBeLessThan(32 * MiB);
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(64 * MiB);
  });

  it("refuses a declared Content-Length over the cap before reading the body", async () => {
    const s = streamer(1024 * MiB, true);
    const c = client(await serve(s.handler), { maxBodyBytes: 4 * MiB });
    const err = await peerError(c.request({ method: "GET", path: "/big" }));
    expect(err.kind).toBe("unavailable");
    expect(err.message).toMatch(/of 1073741824 bytes \(Content-Length\) over maxBodyBytes/);
    expect(await s.written).toBeLessThan(32 * MiB);
  });

  it("cuts off a streamed answer whose first bytes announce a length over the cap", async () => {
    // A GetResponse whose value (field 1) is 1 GiB, streamed without a Content-Length.
    const written = deferred<number>();
    const url = await serve(async (_req, res) => {
      res.writeHead(200);
      let sent = 0;
      let closed = false;
      res.on("close", () => {
        closed = true;
        written.resolve(sent);
      });
      const head = Buffer.from([0x0a, 0x80, 0x80, 0x80, 0x80, 0x04]); // 1 << 30
      res.write(head);
      const chunk = Buffer.alloc(64 * 1024, 1);
      while (!closed && sent < 1024 * MiB) {
        sent += chunk.length;
        if (!res.write(chunk)) await Promise.race([once(res, "drain"), once(res, "close")]);
      }
      res.end();
    });
    const c = client(url);
    const call = c.request({
      method: "GET",
      path: "/",
      maxBodyBytes: 8 * MiB,
      announcedLength: protobufFirstFieldEnd,
    });
    const err = await peerError(call);
    expect(err.message).toMatch(/announced as at least 1073741830 bytes by its first bytes/);
    // Cut off at the first bytes, not after 8 MiB: only the sockets' buffers were written.
    const sent = await written.promise;
    console.log(`announced 1 GiB: server wrote ${(sent / MiB).toFixed(1)} MiB before the cut`);
    // A short answer announcing a fitting length is read whole.
    const ok = await serve((_req, res) => {
      res.writeHead(200);
      res.write(Buffer.from([0x0a]));
      res.end(Buffer.from([0x02, 0x68, 0x69]));
    });
    const got = await client(ok).request({
      method: "GET",
      path: "/",
      maxBodyBytes: 8,
      announcedLength: protobufFirstFieldEnd,
    });
    expect([...got.body]).toEqual([0x0a, 0x02, 0x68, 0x69]);
  });

  it("protobufFirstFieldEnd reads a leading length-delimited field, else -1", () => {
    expect(protobufFirstFieldEnd(Buffer.from([0x0a, 0x02, 0x68, 0x69]))).toBe(4);
    expect(protobufFirstFieldEnd(Buffer.from([0x0a, 0xac, 0x02]))).toBe(3 + 300);
    expect(protobufFirstFieldEnd(Buffer.from([0x0a, 0xac]))).toBe(-1); // too short yet
    expect(protobufFirstFieldEnd(Buffer.from([0x0a]))).toBe(-1);
    expect(protobufFirstFieldEnd(Buffer.from([0x10, 0x01]))).toBe(-1); // field 2 first
    expect(protobufFirstFieldEnd(Buffer.from([0x12, 0x01, 0x00]), 2)).toBe(3);
    expect(protobufFirstFieldEnd(Buffer.alloc(0))).toBe(-1);
  });

  it("reads a body at the cap exactly, with and without Content-Length", async () => {
    for (const withLength of [true, false]) {
      const s = streamer(MiB, withLength);
      const c = client(await serve(s.handler));
      const res = await c.request({ method: "GET", path: "/", maxBodyBytes: MiB });
      expect(res.body.length).toBe(MiB);
      expect(res.body.every((b) => b === 7)).toBe(true);
    }
  });
});

describe("UnaryClient: a byte budget shared by the answers in flight", () => {
  /** A budget that says when an answer took bytes from it. */
  class WatchedBudget extends ByteBudget {
    taken = deferred<void>();
    override tryTake(n: number): boolean {
      const ok = super.tryTake(n);
      if (ok) this.taken.resolve();
      return ok;
    }
  }

  it("an answer that does not fit fails at once; the bytes come back when calls end", async () => {
    const gate = deferred<void>();
    const url = await serve(async (req, res) => {
      res.writeHead(200, { "content-length": 600 * 1024 });
      res.write(Buffer.alloc(1024));
      if (req.url === "/held") await gate.promise;
      res.end(Buffer.alloc(599 * 1024));
    });
    const budget = new WatchedBudget(MiB);
    const a = client(url, { budget });
    const b = client(url, { budget }); // another peer's client, same pool budget
    const held = a.request({ method: "GET", path: "/held" });
    await budget.taken.promise;
    expect(budget.used).toBe(600 * 1024);
    const err = await peerError(b.request({ method: "GET", path: "/now" }));
    expect(err.kind).toBe("unavailable");
    expect(err.message).toMatch(/do not fit in the budget of answers in flight/);
    gate.resolve();
    expect((await held).body.length).toBe(600 * 1024);
    expect(budget.used).toBe(0);
    // With the bytes back, the same answer fits.
    expect((await b.request({ method: "GET", path: "/now" })).body.length).toBe(600 * 1024);
    expect(budget.used).toBe(0);
  });

  it("counts a chunked answer chunk by chunk, and gives back what it took on failure", async () => {
    const s = streamer(8 * MiB, false);
    const budget = new ByteBudget(2 * MiB);
    const c = client(await serve(s.handler), { budget });
    const err = await peerError(c.request({ method: "GET", path: "/" }));
    expect(err.message).toMatch(/budget of answers in flight/);
    expect(await s.written).toBeLessThan(32 * MiB);
    expect(budget.used).toBe(0);
  });

  it("refuses a bad bound", () => {
    for (const bad of [0, -1, 1.5, Number.NaN])
      expect(() => new ByteBudget(bad)).toThrow(RangeError);
    expect(new ByteBudget(Number.POSITIVE_INFINITY).tryTake(2 ** 52)).toBe(true);
  });
});
