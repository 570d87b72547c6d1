import { once } from "node:events";
import { connect, createServer, type Server, type Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { type FaultProxy, startFaultProxy } from "./fault-proxy.ts";

/** An echo server that counts what it received. */
async function echo(): Promise<{ server: Server; port: number; received: () => number }> {
  let received = 0;
  const server = createServer((s) => {
    s.on("data", (c: Buffer) => {
      received += c.length;
      s.write(c);
    });
    s.on("error", () => {});
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const port = (server.address() as { port: number }).port;
  return { server, port, received: () => received };
}

async function dial(port: number): Promise<Socket> {
  const s = connect({ host: "127.0.0.1", port });
  s.on("error", () => {});
  await once(s, "connect");
  return s;
}

async function write(s: Socket, text: string): Promise<void> {
  await new Promise<void>((resolve, reject) => s.write(text, (e) => (e ? reject(e) : resolve())));
}

function read(s: Socket, bytes: number): Promise<string> {
  return new Promise((resolve) => {
    let got = "";
    const onData = (c: Buffer): void => {
      got += String(c);
      if (got.length < bytes) return;
      s.off("data", onData);
      resolve(got);
    };
    s.on("data", onData);
  });
}

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setup(): Promise<{ proxy: FaultProxy; received: () => number }> {
  const e = await echo();
  cleanups.push(() => new Promise((r) => e.server.close(r)));
  e.server.unref();
  const proxy = await startFaultProxy({
    listen: { host: "127.0.0.1", port: 0 },
    target: { host: "127.0.0.1", port: e.port },
  });
  cleanups.push(() => proxy.close());
  return { proxy, received: e.received };
}

describe("startFaultProxy", () => {
  it("passes both ways; pause holds everything, resume lets it flow on", async () => {
    const { proxy, received } = await setup();
    const s = await dial(proxy.port);
    cleanups.push(() => s.destroy());
    await write(s, "hello");
    expect(await read(s, 5)).toBe("hello");
    proxy.pause();
    await write(s, "world");
    await new Promise((r) => setImmediate(r));
    expect(received()).toBe(5); // not forwarded while paused
    const answer = read(s, 5);
    proxy.resume();
    expect(await answer).toBe("world");
    expect(proxy.mode).toBe("pass");
  });

  it("blackhole: accepts and reads, never forwards nor answers", async () => {
    const { proxy, received } = await setup();
    proxy.blackhole();
    const s = await dial(proxy.port);
    cleanups.push(() => s.destroy());
    await write(s, "lost");
    await new Promise((r) => setImmediate(r));
    expect(received()).toBe(0);
    expect(proxy.connections).toBe(1);
  });

  it("reset: open and new connections get a RST", async () => {
    const { proxy } = await setup();
    const open = await dial(proxy.port);
    const closed = new Promise((r) => open.once("close", r));
    const errored = new Promise<NodeJS.ErrnoException>((r) => open.once("error", r));
    proxy.reset();
    expect((await errored).code).toBe("ECONNRESET");
    await closed;
    const s = connect({ host: "127.0.0.1", port: proxy.port });
    const err = await new Promise<NodeJS.ErrnoException>((r) => s.once("error", r));
    expect(err.code).toBe("ECONNRESET");
  });

  it("delay: answers come at least the delay later, in order", async () => {
    const { proxy } = await setup();
    proxy.delay(50);
    const s = await dial(proxy.port);
    cleanups.push(() => s.destroy());
    const t0 = performance.now();
    await write(s, "a");
    await write(s, "b");
    expect(await read(s, 2)).toBe("ab");
    expect(performance.now() - t0).toBeGreaterThanOrEqual(95); // 50 each way
  });
});
