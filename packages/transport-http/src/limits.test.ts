import { GroupRegistry } from "@tinycache/core";
import { DEFAULT_SERVER_LIMITS } from "@tinycache/core/transport";
import {
  fileDescriptorLimit,
  freePort,
  httpRequest,
  openIdleConnections,
  sendLargeBody,
} from "@tinycache/testkit";
import { afterEach, describe, expect, it } from "vitest";
import { HttpPool, type HttpPoolOptions } from "./index.js";

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

async function served(opts: Partial<HttpPoolOptions> = {}) {
  const registry = new GroupRegistry();
  registry.newGroup({ name: "scores", cacheBytes: 1 << 20, getter: async (key) => `v:${key}` });
  const port = await freePort();
  const pool = new HttpPool({ self: `http://127.0.0.1:${port}`, registry, ...opts });
  cleanups.push(() => pool.close());
  await pool.listen(port, "127.0.0.1");
  return { pool, port };
}

const FDS_NEEDED = 2 * 1000 + 200; // both ends of 1,000 loopback connections, and the rest
const fds = await fileDescriptorLimit();
const enoughFds = fds === undefined || fds >= FDS_NEEDED;

describe("server limits", () => {
  it("the default header timeout (the idle timeout of a silent connection) is at most 30 s", () => {
    expect(DEFAULT_SERVER_LIMITS.headersTimeoutMs).toBeLessThanOrEqual(30_000);
    expect(DEFAULT_SERVER_LIMITS.maxConnections).toBeGreaterThan(0);
  });

  it.skipIf(!enoughFds)(
    `1,000 connections that never send a byte are closed after headersTimeoutMs, and requests are served meanwhile${enoughFds ? "" : ` (skipped: ulimit -n is ${fds}, below ${FDS_NEEDED})`}`,
    async () => {
      const { port } = await served({ serverLimits: { headersTimeoutMs: 500 } });
      const idle = await openIdleConnections(port, 1000);
      cleanups.push(() => idle.destroy());
      // Normal requests go through while the silent ones wait for their timeout (without
      // the limit they would wait for Node's 60 s, past this test's own timeout).
      const ok = await httpRequest(port, "GET", "/_groupcache/scores/Tom");
      expect([ok.status, ok.body.toString()]).toEqual([200, expect.stringContaining("v:Tom")]);
      await idle.allClosed;
      const after = await httpRequest(port, "GET", "/_groupcache/scores/Jack");
      expect(after.status).toBe(200);
    },
  );

  it("connections over maxConnections are closed at once; the others stay", async () => {
    const { port } = await served({ serverLimits: { maxConnections: 20 } });
    const idle = await openIdleConnections(port, 25);
    cleanups.push(() => idle.destroy());
    // The five refused ones close without waiting for any timeout (the default is 10 s).
    await new Promise<void>((resolve) => {
      const check = () => (idle.open() === 20 ? resolve() : undefined);
      for (const s of idle.sockets) s.once("close", check);
      check();
    });
    expect(idle.open()).toBe(20);
  });

  it("refuses limits that are not finite positive integers, or headers > request", () => {
    const registry = new GroupRegistry();
    const make = (serverLimits: HttpPoolOptions["serverLimits"]) =>
      new HttpPool({ self: "http://127.0.0.1:1", registry, serverLimits });
    expect(() => make({ headersTimeoutMs: 0 })).toThrow(RangeError);
    expect(() => make({ requestTimeoutMs: Number.POSITIVE_INFINITY })).toThrow(RangeError);
    expect(() => make({ keepAliveTimeoutMs: 1.5 })).toThrow(RangeError);
    expect(() => make({ maxConnections: 0 })).toThrow(/maxConnections/);
    expect(() => make({ headersTimeoutMs: 2000, requestTimeoutMs: 1000 })).toThrow(
      /headersTimeoutMs \(2000\) must not exceed requestTimeoutMs/,
    );
  });
});

describe("an oversized body is cut off: not read, 413, connection closed", () => {
  const total = 100 * 1024 * 1024;
  it.each([
    ["declared by Content-Length", true],
    ["chunked", false],
  ])("PUT, %s", async (_, contentLength) => {
    const { port } = await served({ maxBodyBytes: 1024 });
    const out = await sendLargeBody(port, {
      method: "PUT",
      path: "/_groupcache/scores/k",
      totalBytes: total,
      contentLength,
    });
    expect(out.cutOff).toBe(true);
    expect(out.sentBytes).toBeLessThan(total / 4);
    if (out.status !== undefined) expect(out.status).toBe(413);
  });

  it("a refused request's body is not read either (401 without the secret)", async () => {
    const { port } = await served({ auth: { secret: "s3cret" } });
    const out = await sendLargeBody(port, {
      method: "PUT",
      path: "/_groupcache/scores/k",
      totalBytes: total,
      contentLength: true,
    });
    expect(out.cutOff).toBe(true);
    expect(out.sentBytes).toBeLessThan(total / 4);
    if (out.status !== undefined) expect(out.status).toBe(401);
  });
});
