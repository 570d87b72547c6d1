import { once } from "node:events";
import { createServer as createHttpServer, type Server as HttpServer } from "node:http";
import { deferred, RawHttp } from "@tinycache/testkit";
import { afterEach, describe, expect, it, vi } from "vitest";
import { type LaneReply, LeanServer } from "./lean-http.js";

interface Started {
  lane: LeanServer;
  fallback: HttpServer;
  port: number;
  /** The targets the lane handled, in order. */
  handled: string[];
  /** The replies of the lane's requests, in order. */
  replies: LaneReply[];
}

const open: LeanServer[] = [];
afterEach(async () => {
  vi.useRealTimers();
  await Promise.all(open.splice(0).map((lane) => lane.close(100)));
});

/**
 * A lane on /api in front of a node:http server that answers `node <method> <url>`.
 * `answer` decides the lane's answers (default: at once, `lane <url>`).
 */
async function start(
  opts: {
    answer?: (url: string, reply: LaneReply) => void;
    keepAliveTimeoutMs?: number;
    headersTimeoutMs?: number;
    maxConnections?: number;
  } = {},
): Promise<Started> {
  const handled: string[] = [];
  const replies: LaneReply[] = [];
  const fallback = createHttpServer((req, res) => {
    req.resume();
    req.on("end", () => res.end(`node ${req.method} ${req.url}`));
  });
  const answer = opts.answer ?? ((url, reply) => reply.send(200, `lane ${url}`));
  const lane = new LeanServer({
    path: "/api",
    handle: (url, reply) => {
      handled.push(url);
      replies.push(reply);
      answer(url, reply);
    },
    fallback,
    keepAliveTimeoutMs: opts.keepAliveTimeoutMs ?? 5000,
    headersTimeoutMs: opts.headersTimeoutMs ?? 5000,
    maxConnections: opts.maxConnections ?? 100,
  });
  await lane.listen(0, "127.0.0.1");
  open.push(lane);
  const address = lane.address();
  if (address === null || typeof address === "string") throw new Error("no port");
  return { lane, fallback, port: address.port, handled, replies };
}

/** A raw connection (closed by each test) that reads a 100 Continue as a response. */
class Raw extends RawHttp {
  constructor(port: number) {
    super(port, { keepInterim: true });
  }
}

const get = (target: string, extra = "") => `GET ${target} HTTP/1.1\r\nHost: x\r\n${extra}\r\n`;

/**
 * A lane that answers `/api?key=now` at once and holds `/api?key=wait`, with one
 * connection of each: `idle` (answered) and `busy` (its request waiting on `waiting`).
 */
async function idleAndBusy(opts: { keepAliveTimeoutMs?: number } = {}) {
  const held = deferred<LaneReply>();
  const started = await start({
    ...opts,
    answer: (url, reply) => {
      if (url.endsWith("wait")) held.resolve(reply);
      else reply.send(200, "now");
    },
  });
  const idle = new Raw(started.port);
  idle.write(get("/api?key=now"));
  await idle.read(1);
  const busy = new Raw(started.port);
  busy.write(get("/api?key=wait"));
  return { ...started, idle, busy, waiting: held.promise };
}

describe("LeanServer", () => {
  it("answers GET /api from the lane with node:http's headers and a UTF-8 body", async () => {
    const { port, handled } = await start({
      answer: (_url, reply) => reply.send(200, "ключ 🔑"),
    });
    const res = await fetch(`http://127.0.0.1:${port}/api?key=%D0%BA%20x`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/plain; charset=utf-8");
    expect(res.headers.get("content-length")).toBe(String(Buffer.byteLength("ключ 🔑")));
    expect(res.headers.get("connection")).toBe("keep-alive");
    expect(res.headers.get("keep-alive")).toBe("timeout=5");
    expect(Date.parse(res.headers.get("date") ?? "")).not.toBeNaN();
    expect(await res.text()).toBe("ключ 🔑");
    // The target as sent: decoding the query is the handler's job.
    expect(handled).toEqual(["/api?key=%D0%BA%20x"]);
  });

  it("answers every status with its reason phrase, and an empty body", async () => {
    const { port } = await start({
      answer: (url, reply) => reply.send(Number(url.slice("/api?s=".length)), ""),
    });
    const raw = new Raw(port);
    raw.write(get("/api?s=404") + get("/api?s=504") + get("/api?s=200"));
    const [a, b, c] = await raw.read(3);
    expect([a?.status, b?.status, c?.status]).toEqual([404, 504, 200]);
    expect(c?.text).toBe("");
    expect(c?.headers["content-length"]).toBe("0");
    raw.socket.destroy();
  });

  it("keeps one connection for many requests, and answers pipelined ones in order when answers come out of order", async () => {
    const waits = new Map<string, (body: string) => void>();
    const { port } = await start({
      answer: (url, reply) => waits.set(url, (body) => reply.send(200, body)),
    });
    const raw = new Raw(port);
    raw.write(get("/api?k=1") + get("/api?k=2") + get("/api?k=3"));
    while (waits.size < 3) await new Promise<void>((r) => setImmediate(r));
    waits.get("/api?k=3")?.("three");
    waits.get("/api?k=1")?.("one");
    waits.get("/api?k=2")?.("two");
    const answers = await raw.read(3);
    expect(answers.map((a) => a.text)).toEqual(["one", "two", "three"]);
    // Same connection, later request.
    raw.write(get("/api?k=4"));
    waits.set("/api?k=4", () => {});
    await new Promise<void>((r) => setImmediate(r));
    raw.socket.destroy();
  });

  it("an answer sent twice is written once", async () => {
    const { port } = await start({
      answer: (_url, reply) => {
        reply.send(200, "first");
        reply.send(500, "second");
      },
    });
    const raw = new Raw(port);
    raw.write(get("/api?k=1") + get("/api?k=2"));
    const answers = await raw.read(2);
    expect(answers.map((a) => `${a.status} ${a.text}`)).toEqual(["200 first", "200 first"]);
    raw.socket.destroy();
  });

  it("a handler that throws answers 500, and the connection goes on", async () => {
    const { port } = await start({
      answer: (url, reply) => {
        if (url.endsWith("boom")) throw new Error("boom");
        reply.send(200, "ok");
      },
    });
    const raw = new Raw(port);
    raw.write(get("/api?k=boom") + get("/api?k=fine"));
    const answers = await raw.read(2);
    expect(answers.map((a) => `${a.status} ${a.text}`)).toEqual(["500 internal error\n", "200 ok"]);
    raw.socket.destroy();
  });

  // Each: a request the lane must not answer. node:http gets the connection with the
  // request's bytes, and serves it (its handler's 200) or refuses it (its 4xx); `kept`:
  // node:http keeps the connection for the next request.
  const handedOver: { what: string; request: string; status: number; kept?: boolean }[] = [
    { what: "another path", request: get("/status"), status: 200, kept: true },
    {
      what: "a path that only starts like /api",
      request: get("/apix?key=a"),
      status: 200,
      kept: true,
    },
    { what: "a deeper path", request: get("/api/x"), status: 200, kept: true },
    {
      what: "HEAD",
      request: "HEAD /api?key=a HTTP/1.1\r\nHost: x\r\n\r\n",
      status: 200,
      kept: true,
    },
    {
      what: "a POST with a body",
      request: "POST /api HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc",
      status: 200,
      kept: true,
    },
    {
      what: "a GET with Content-Length",
      request: get("/api?key=a", "Content-Length: 0\r\n"),
      status: 200,
      kept: true,
    },
    {
      what: "chunked",
      request: `${get("/api?key=a", "Transfer-Encoding: chunked\r\n")}0\r\n\r\n`,
      status: 200,
      kept: true,
    },
    { what: "two Hosts", request: get("/api?key=a", "Host: y\r\n"), status: 200, kept: true },
    { what: "HTTP/1.0", request: "GET /api?key=a HTTP/1.0\r\nHost: x\r\n\r\n", status: 200 },
    { what: "Connection: close", request: get("/api?key=a", "Connection: close\r\n"), status: 200 },
    { what: "Expect", request: get("/api?key=a", "Expect: 100-continue\r\n"), status: 100 },
    {
      what: "Upgrade",
      request: get("/api?key=a", "Upgrade: websocket\r\nConnection: upgrade\r\n"),
      status: 200,
    },
    { what: "no Host", request: "GET /api?key=a HTTP/1.1\r\n\r\n", status: 400 },
    { what: "a bad header name", request: get("/api?key=a", "Bad Name: v\r\n"), status: 400 },
    { what: "a folded header", request: get("/api?key=a", "X-A: 1\r\n  2\r\n"), status: 400 },
    { what: "a bare LF in a value", request: get("/api?key=a", "X-A: 1\n2\r\n"), status: 400 },
    {
      what: "a control char in a value",
      request: get("/api?key=a", "X-A: 1\x002\r\n"),
      status: 400,
    },
    {
      what: "a space in the target",
      request: "GET /api?key=a b HTTP/1.1\r\nHost: x\r\n\r\n",
      status: 400,
    },
    {
      what: "a lowercase method",
      request: "get /api?key=a HTTP/1.1\r\nHost: x\r\n\r\n",
      status: 400,
    },
  ];
  it.each(handedOver)(
    "hands $what to node:http, with the bytes it read",
    async ({ request, status, kept }) => {
      const { port, handled } = await start();
      const raw = new Raw(port);
      raw.write(get("/api?key=first") + request);
      const [first] = await raw.read(1);
      expect(first?.text).toBe("lane /api?key=first");
      const [second] = await raw.read(1, request.startsWith("HEAD"));
      expect(second?.status).toBe(status);
      if (kept) {
        if (!request.startsWith("HEAD")) expect(second?.text).toMatch(/^node /);
        // node:http keeps the connection: the next /api request is its too.
        raw.write(get("/api?key=after"));
        const [after] = await raw.read(1);
        expect(after?.text).toBe("node GET /api?key=after");
      }
      expect(handled).toEqual(["/api?key=first"]);
      raw.socket.destroy();
    },
  );

  it("hands over a byte outside ASCII in the target (node:http decides)", async () => {
    const { port, handled } = await start();
    const raw = new Raw(port);
    raw.write(
      Buffer.concat([
        Buffer.from("GET /api?key="),
        Buffer.from([0xc3, 0xa9]),
        Buffer.from(" HTTP/1.1\r\nHost: x\r\n\r\n"),
      ]),
    );
    const [res] = await raw.read(1);
    expect(res?.text ?? "").not.toMatch(/^lane/);
    expect(handled).toEqual([]);
    raw.socket.destroy();
  });

  it("hands a head split across reads to node:http", async () => {
    const { port, fallback, handled } = await start();
    const raw = new Raw(port);
    const handedOver = once(fallback, "connection");
    raw.write("GET /api?key=split HTTP/1.1\r\nHo");
    await handedOver;
    raw.write("st: x\r\n\r\n");
    const [res] = await raw.read(1);
    expect(res?.text).toBe("node GET /api?key=split");
    expect(handled).toEqual([]);
    raw.socket.destroy();
  });

  it("hands a head over 16 KiB to node:http, which answers 431", async () => {
    const { port, handled } = await start();
    const raw = new Raw(port);
    raw.write(get("/api?key=big", `X-Big: ${"a".repeat(17 * 1024)}\r\n`));
    const [res] = await raw.read(1);
    expect(res?.status).toBe(431);
    expect(handled).toEqual([]);
    raw.socket.destroy();
  });

  it("writes its own waiting answers before handing over, in order", async () => {
    const wait = deferred<void>();
    const bothWaiting = deferred<void>();
    const { port, fallback } = await start({
      answer: (url, reply) => {
        if (url.endsWith("2")) bothWaiting.resolve();
        wait.promise.then(() => reply.send(200, `late ${url}`));
      },
    });
    const raw = new Raw(port);
    let handedOver = false;
    fallback.once("connection", () => {
      handedOver = true;
    });
    raw.write(get("/api?key=1") + get("/api?key=2") + get("/status"));
    await bothWaiting.promise;
    expect(handedOver).toBe(false);
    wait.resolve();
    const answers = await raw.read(3);
    expect(answers.map((a) => a.text)).toEqual([
      "late /api?key=1",
      "late /api?key=2",
      "node GET /status",
    ]);
    expect(handedOver).toBe(true);
    raw.socket.destroy();
  });

  it("takes a client's end as its going away (as node:http does): closes, drops later answers", async () => {
    const got = deferred<LaneReply>();
    const { port } = await start({
      answer: (url, reply) => {
        if (url.endsWith("sync")) reply.send(200, "sync");
        else got.resolve(reply);
      },
    });
    const raw = new Raw(port);
    raw.socket.end(get("/api?key=sync") + get("/api?key=later"));
    const reply = await got.promise;
    const [res] = await raw.read(1);
    expect(res?.text).toBe("sync");
    await raw.closed;
    expect(reply.gone).toBe(true);
    reply.send(200, "dropped");
  });

  it("reports a client that went away as gone, and drops a late answer", async () => {
    const got = deferred<LaneReply>();
    const { port, fallback } = await start({ answer: (_url, reply) => got.resolve(reply) });
    const raw = new Raw(port);
    raw.write(get("/api?key=gone"));
    const reply = await got.promise;
    expect(reply.gone).toBe(false);
    raw.socket.destroy();
    await vi.waitFor(() => expect(reply.gone).toBe(true));
    reply.send(200, "too late");
    // The server goes on.
    const res = await fetch(`http://127.0.0.1:${port}/status`);
    expect(await res.text()).toBe("node GET /status");
    expect(fallback.listening).toBe(false);
  });

  it("closes a connection idle for keepAliveTimeoutMs, never one with a request waiting", async () => {
    vi.useFakeTimers({ toFake: ["setInterval", "clearInterval"] });
    const { idle, busy, waiting } = await idleAndBusy({ keepAliveTimeoutMs: 1000 });
    const reply = await waiting;

    // Up to a whole timeout idle: both stay.
    vi.advanceTimersByTime(750);
    await new Promise<void>((r) => setImmediate(r));
    expect(idle.socket.destroyed).toBe(false);
    // Past 1.25 timeouts: the idle one is closed, the one with a request waiting is not.
    vi.advanceTimersByTime(1000);
    await idle.closed;
    expect(busy.socket.destroyed).toBe(false);
    // Once answered it is idle like any other.
    reply.send(200, "done");
    const [res] = await busy.read(1);
    expect(res?.text).toBe("done");
    vi.advanceTimersByTime(1500);
    await busy.closed;
  });

  it("closes a connection that sent no whole request within headersTimeoutMs", async () => {
    vi.useFakeTimers({ toFake: ["setInterval", "clearInterval"] });
    const { port, lane } = await start({ keepAliveTimeoutMs: 60_000, headersTimeoutMs: 400 });
    const silent = new Raw(port);
    await once(silent.socket, "connect");
    const served = new Raw(port);
    served.write(get("/api?key=a"));
    await served.read(1);
    // Both reached the lane before time moves.
    while (lane.connections < 2) await new Promise<void>((r) => setImmediate(r));
    vi.advanceTimersByTime(600);
    await silent.closed;
    expect(served.socket.destroyed).toBe(false);
    served.socket.destroy();
  });

  it("refuses connections beyond maxConnections", async () => {
    const { port } = await start({ maxConnections: 1 });
    const first = new Raw(port);
    first.write(get("/api?key=1"));
    await first.read(1);
    const second = new Raw(port);
    second.write(get("/api?key=2"));
    await second.closed;
    await expect(second.read(1)).rejects.toThrow(/closed/);
    first.socket.destroy();
  });

  it("close() stops listening, closes idle connections, answers waiting requests first, and closes handed-over ones", async () => {
    const { lane, port, idle, busy, waiting } = await idleAndBusy();
    const reply = await waiting;
    const handed = new Raw(port);
    handed.write(get("/status"));
    await handed.read(1);

    const closing = lane.close(5000);
    await idle.closed;
    await handed.closed;
    expect(lane.listening).toBe(false);
    expect(busy.socket.destroyed).toBe(false);
    reply.send(200, "last");
    const [res] = await busy.read(1);
    expect(res?.text).toBe("last");
    await busy.closed;
    await closing;
    const refused = new Raw(port);
    await refused.closed;
  });

  it("rejects listen on a port in use", async () => {
    const { port } = await start();
    const other = new LeanServer({
      path: "/api",
      handle: () => {},
      fallback: createHttpServer(),
      keepAliveTimeoutMs: 1000,
      headersTimeoutMs: 1000,
      maxConnections: 10,
    });
    await expect(other.listen(port, "127.0.0.1")).rejects.toThrow(/EADDRINUSE/);
  });
});
