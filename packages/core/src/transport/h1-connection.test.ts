/**
 * The lean HTTP/1.1 client (H1Connection, H1Pool) as UnaryClient uses it for plain `http:`
 * peers, pinned through UnaryClient's public API. Most servers here are raw `node:net`
 * servers that write crafted bytes, so the wire is exactly what a test says; node:http
 * servers where a real server is the point. Nothing sleeps: tests await server events
 * ('connection', requests read, 'close') and promises. Where a test wants an answer to
 * reach the client in several reads and cannot observe the client's reads, it yields to
 * the event loop until it polled for I/O between writes (best effort: no assertion
 * depends on it).
 */
import { randomBytes } from "node:crypto";
import * as http from "node:http";
import * as net from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { type Deferred, deferred, peerError } from "../testing.test-util.js";
import { ByteBudget } from "./byte-budget.js";
import { UnaryClient, type UnaryClientOptions, type UnaryRequest } from "./unary-client.js";

const MiB = 1024 * 1024;
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

/** A list that can be awaited item by item: `at(i)` resolves once the `i`th item came. */
class Seq<T> {
  readonly items: T[] = [];
  #waiters: { i: number; d: Deferred<T> }[] = [];
  push(x: T): void {
    this.items.push(x);
    const i = this.items.length - 1;
    const ready = this.#waiters.filter((w) => w.i === i);
    this.#waiters = this.#waiters.filter((w) => w.i !== i);
    for (const w of ready) w.d.resolve(x);
  }
  at(i: number): Promise<T> {
    if (i < this.items.length) return Promise.resolve(this.items[i] as T);
    const d = deferred<T>();
    this.#waiters.push({ i, d });
    return d.promise;
  }
  get length(): number {
    return this.items.length;
  }
}

/** One request as a raw server read it off the wire. */
interface Req {
  /** The whole message, head and body, as latin1 text. */
  raw: string;
  method: string;
  path: string;
  /** Header lines in order, names lower-cased. */
  headers: [string, string][];
  body: Buffer;
}

function parseRequest(buf: Buffer): { req: Req; length: number } | undefined {
  const end = buf.indexOf("\r\n\r\n");
  if (end < 0) return undefined;
  const lines = buf.toString("latin1", 0, end).split("\r\n");
  const [method = "", path = ""] = (lines[0] ?? "").split(" ");
  const headers = lines.slice(1).map((l): [string, string] => {
    const colon = l.indexOf(":");
    return [l.slice(0, colon).toLowerCase(), l.slice(colon + 1).trim()];
  });
  const cl = headers.find(([n]) => n === "content-length");
  const length = end + 4 + (cl === undefined ? 0 : Number(cl[1]));
  if (buf.length < length) return undefined;
  const body = Buffer.from(buf.subarray(end + 4, length));
  return { req: { raw: buf.toString("latin1", 0, length), method, path, headers, body }, length };
}

/** The server side of one connection of a raw server. */
class Conn {
  readonly requests = new Seq<Req>();
  /** Resolves once the socket closed (whichever side closed it). */
  readonly closed: Promise<void>;
  isClosed = false;
  #buf = Buffer.alloc(0);

  constructor(
    readonly socket: net.Socket,
    readonly index: number,
    onRequest: (c: Conn, r: Req) => void,
  ) {
    this.closed = new Promise((resolve) =>
      socket.once("close", () => {
        this.isClosed = true;
        resolve();
      }),
    );
    socket.on("error", () => {}); // resets are part of some tests
    socket.on("data", (chunk: Buffer) => {
      this.#buf = Buffer.concat([this.#buf, chunk]);
      for (let p = parseRequest(this.#buf); p !== undefined; p = parseRequest(this.#buf)) {
        this.#buf = this.#buf.subarray(p.length);
        this.requests.push(p.req);
        onRequest(this, p.req);
      }
    });
  }

  /** Writes bytes; resolves once they were handed to the system (or the socket failed). */
  write(bytes: string | Buffer): Promise<void> {
    return new Promise((resolve) => {
      if (this.socket.destroyed) resolve();
      else
        this.socket.write(typeof bytes === "string" ? Buffer.from(bytes, "latin1") : bytes, () =>
          resolve(),
        );
    });
  }

  /** Writes `pieces` one write each, yielding a turn of the event loop between them. */
  async drip(pieces: (string | Buffer)[]): Promise<void> {
    for (const p of pieces) {
      await this.write(p);
      await turn();
    }
  }
}

/**
 * Yields until the event loop polled for I/O once: two `setImmediate` hops, since the
 * first may run in the check phase of the very turn whose poll phase wrote the bytes.
 */
async function turn(): Promise<void> {
  for (let i = 0; i < 2; i++) await new Promise((resolve) => setImmediate(resolve));
}

interface RawServer {
  url: string;
  port: number;
  /** Server-side connections, in the order they came. */
  conns: Seq<Conn>;
  /** Every request read, over all connections, in order. */
  requests: Seq<Req>;
}

/**
 * A `node:net` server on 127.0.0.1 port 0 that parses requests and calls `onRequest` for
 * each; it answers only what `onRequest` writes.
 */
async function rawServer(onRequest: (c: Conn, r: Req) => void | Promise<void>): Promise<RawServer> {
  const conns = new Seq<Conn>();
  const requests = new Seq<Req>();
  const srv = net.createServer({ noDelay: true }, (socket) => {
    const c = new Conn(socket, conns.length, (conn, r) => {
      requests.push(r);
      void onRequest(conn, r);
    });
    conns.push(c);
  });
  srv.listen(0, "127.0.0.1");
  await new Promise((resolve) => srv.once("listening", resolve));
  cleanups.push(async () => {
    const closed = new Promise((resolve) => srv.close(resolve));
    for (const c of conns.items) c.socket.destroy();
    await closed;
  });
  const port = (srv.address() as net.AddressInfo).port;
  return { url: `http://127.0.0.1:${port}`, port, conns, requests };
}

/** A node:http server on 127.0.0.1 port 0; counts its connections. */
async function httpServer(
  handler: http.RequestListener,
): Promise<{ url: string; sockets: Seq<net.Socket> }> {
  const srv = http.createServer(handler);
  const sockets = new Seq<net.Socket>();
  srv.on("connection", (s: net.Socket) => sockets.push(s));
  srv.listen(0, "127.0.0.1");
  await new Promise((resolve) => srv.once("listening", resolve));
  cleanups.push(async () => {
    const closed = new Promise((resolve) => srv.close(resolve));
    srv.closeAllConnections();
    await closed;
  });
  return { url: `http://127.0.0.1:${(srv.address() as net.AddressInfo).port}`, sockets };
}

/** A lean client (no `agent`, no agent options but maxSockets): the path under test. */
function client(url: string, o: Partial<Omit<UnaryClientOptions, "url">> = {}): UnaryClient {
  const c = new UnaryClient({ url, timeoutMs: 10_000, maxBodyBytes: 64 * MiB, ...o });
  cleanups.push(() => c.destroy());
  return c;
}

function get(path: string, more: Partial<UnaryRequest> = {}): UnaryRequest {
  return { method: "GET", path, ...more };
}

/** A 200 answer with a Content-Length. */
function ok(body: string, extraHeaders = ""): string {
  return `HTTP/1.1 200 OK\r\nContent-Length: ${Buffer.byteLength(body, "latin1")}\r\n${extraHeaders}\r\n${body}`;
}

/** The body of a call, as latin1 text. */
async function text(p: Promise<{ body: Buffer }>): Promise<string> {
  return (await p).body.toString("latin1");
}

/**
 * Watches a streamed 200 answer's first 64 body bytes through `announcedLength` (called,
 * synchronously, each time body bytes came): `reached(n)` resolves once `n` were read, so
 * a server can write its next piece knowing the previous one was read on its own.
 */
function bodyProgress() {
  let seen = 0;
  let waiters: { n: number; d: Deferred<void> }[] = [];
  return {
    announcedLength: (head: Buffer): number => {
      seen = head.length;
      const ready = waiters.filter((w) => w.n <= seen);
      waiters = waiters.filter((w) => w.n > seen);
      for (const w of ready) w.d.resolve();
      return -1;
    },
    reached(n: number): Promise<void> {
      if (seen >= n) return Promise.resolve();
      const d = deferred<void>();
      waiters.push({ n, d });
      return d.promise;
    },
  };
}

describe("lean HTTP/1.1 client: reading answers", () => {
  it("reads a Content-Length answer; header names lower-case, repeated ones joined", async () => {
    const s = await rawServer(async (c, r) => {
      const answer =
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Multi: a\r\nx-multi: b\r\nX-MULTI:c  \r\n" +
        "Content-Type: text/plain\r\nX-Empty:\r\n\r\nhello";
      // The second time, one byte per write.
      if (r.path === "/drip") await c.drip([...answer]);
      else await c.write(answer);
    });
    const cl = client(s.url);
    for (const path of ["/once", "/drip"]) {
      const res = await cl.request(get(path));
      expect(res.status).toBe(200);
      expect(res.body.toString()).toBe("hello");
      expect(res.headers).toEqual({
        "content-length": "5",
        "x-multi": "a, b, c",
        "content-type": "text/plain",
        "x-empty": "",
      });
    }
    expect(s.conns.length).toBe(1);
  });

  it("reads headers named as Object.prototype's members as any other", async () => {
    const s = await rawServer(async (c) => {
      await c.write(ok("x", "Constructor: a\r\ntoString: b\r\nHasOwnProperty: c\r\n"));
    });
    const res = await client(s.url).request(get("/"));
    expect(Object.entries(res.headers)).toEqual([
      ["content-length", "1"],
      ["constructor", "a"],
      ["tostring", "b"],
      ["hasownproperty", "c"],
    ]);
  });

  it("reads a chunked answer in many pieces: split size lines and CRLFs, extensions, trailers", async () => {
    const progress = bodyProgress();
    const s = await rawServer(async (c, r) => {
      if (r.path !== "/drip") {
        await c.write(ok("next"));
        return;
      }
      await c.drip(["HTTP/1.1 200 OK\r\nTransfer-", "Encoding: chunked\r\nX-A: 1\r"]);
      // Each piece below is read on its own: the next is written once the client read
      // the body bytes before it.
      await c.write("\n\r\n3\r\nabc\r"); // the head's end, a chunk, half of its CRLF
      await progress.reached(3);
      await c.write("\n2;name=value\r\nde\r\n1"); // an extension; the next size line cut
      await progress.reached(5);
      await c.write('0;a="q;x";b\r\nfghijklmnopqrstu\r\n0'); // "1" + "0": 16 bytes
      await progress.reached(21);
      await c.drip([";last\r\nX-Trailer: 1\r\nX-Oth", "er: 2\r\n", "\r\n"]);
    });
    const cl = client(s.url);
    const res = await cl.request(get("/drip", { announcedLength: progress.announcedLength }));
    expect(res.status).toBe(200);
    expect(res.body.toString()).toBe("abcdefghijklmnopqrstu");
    expect(res.headers).toEqual({ "transfer-encoding": "chunked", "x-a": "1" }); // no trailers
    // The socket is in step for the next answer.
    expect(await text(cl.request(get("/next")))).toBe("next");
    expect(s.conns.length).toBe(1);
  });

  it("reads chunk sizes in either case, bare-LF line ends, and an empty chunked body", async () => {
    const s = await rawServer(async (c, r) => {
      const head = "HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\n";
      if (r.path === "/hex") await c.write(`${head}A\r\n0123456789\r\na\n0123456789\r\n0\n\n`);
      else await c.write(`${head}0\r\n\r\n`);
    });
    const cl = client(s.url);
    expect(await text(cl.request(get("/hex")))).toBe("01234567890123456789");
    expect(await text(cl.request(get("/empty")))).toBe("");
    expect(s.conns.length).toBe(1);
  });

  it("reads an answer without length until the peer closes; that socket is not reused", async () => {
    const s = await rawServer(async (c, r) => {
      if (c.index > 0) {
        await c.write(ok(r.path));
        return;
      }
      await c.drip(["HTTP/1.1 200 OK\r\nContent-Type: a/b\r\n\r\nfirst part, ", "second part"]);
      c.socket.end();
    });
    const cl = client(s.url);
    const res = await cl.request(get("/a"));
    expect(res.body.toString()).toBe("first part, second part");
    expect(res.headers).toEqual({ "content-type": "a/b" });
    expect(await text(cl.request(get("/b")))).toBe("/b");
    expect(s.conns.length).toBe(2);
  });

  it("fails an answer without length cut by a reset instead of a close", async () => {
    const progress = bodyProgress();
    const s = await rawServer(async (c) => {
      await c.write("HTTP/1.1 200 OK\r\n\r\npartial");
      // Reset once the client read the bytes (a reset racing them may read as a close).
      await progress.reached(7);
      c.socket.resetAndDestroy();
    });
    const call = client(s.url).request(get("/", { announcedLength: progress.announcedLength }));
    const err = await peerError(call);
    expect(err.kind).toBe("unavailable");
    expect(err.message).toMatch(/ECONNRESET/);
  });

  it("reads HTTP/1.0 answers, reusing the socket only when they say keep-alive", async () => {
    const s = await rawServer(async (c, r) => {
      if (r.path === "/10") await c.write("HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok");
      else
        await c.write("HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 2\r\n\r\nka");
    });
    const cl = client(s.url);
    expect(await text(cl.request(get("/10")))).toBe("ok");
    await (await s.conns.at(0)).closed; // the client closed it: HTTP/1.0 without keep-alive
    expect(await text(cl.request(get("/ka")))).toBe("ka");
    expect(await text(cl.request(get("/ka")))).toBe("ka");
    expect(s.conns.length).toBe(2);
  });

  it("reads 204 and 304 answers as bodiless, whatever length they declare, and keeps the socket", async () => {
    const answers: Record<string, string> = {
      "/204": "HTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n",
      "/204-length": "HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n",
      // A 304 may carry the Content-Length of the representation it stands for; a 204 or
      // 304 never has a body (RFC 9112 6.3), whatever its headers say.
      "/304": 'HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\nETag: "x"\r\n\r\n',
      "/204-chunked": "HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\n",
    };
    const s = await rawServer((c, r) => void c.write(answers[r.path] ?? ok("last")));
    const cl = client(s.url, { timeoutMs: 2_000 });
    for (const [path, status] of [
      ["/204", 204],
      ["/204-length", 204],
      ["/304", 304],
      ["/204-chunked", 204],
    ] as const) {
      const res = await cl.request(get(path));
      expect(res.status).toBe(status);
      expect(res.body.length).toBe(0);
    }
    expect(await text(cl.request(get("/last")))).toBe("last");
    expect(s.conns.length).toBe(1);
  });

  it("skips 100 Continue and 103 Early Hints before the answer", async () => {
    const s = await rawServer(async (c, r) => {
      if (r.path === "/split") {
        await c.drip([
          "HTTP/1.1 100 Continue\r\n\r\n",
          "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n",
          "\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\n",
          "ok",
        ]);
      } else {
        await c.write(
          "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n" +
            ok("one"),
        );
      }
    });
    const cl = client(s.url);
    const one = await cl.request(get("/one"));
    expect(one.status).toBe(200);
    expect(one.headers).toEqual({ "content-length": "3" }); // nothing of the interim heads
    expect(one.body.toString()).toBe("one");
    const split = await cl.request(get("/split"));
    expect(split.status).toBe(201);
    expect(split.body.toString()).toBe("ok");
    expect(s.conns.length).toBe(1);
  });

  it("refuses a 101 protocol switch as unavailable and drops the socket", async () => {
    const s = await rawServer(async (c, r) => {
      if (c.index === 0)
        await c.write(
          "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
        );
      else await c.write(ok(r.path));
    });
    const cl = client(s.url);
    const err = await peerError(cl.request(get("/a")));
    expect(err.kind).toBe("unavailable");
    expect(err.message).toMatch(/unexpected protocol switch/);
    await (await s.conns.at(0)).closed;
    expect(await text(cl.request(get("/b")))).toBe("/b");
  });

  const broken: [what: string, answer: string, message: RegExp][] = [
    ["an HTTP/2 status line", "HTTP/2 200 OK\r\nContent-Length: 0\r\n\r\n", /status line/],
    ["an HTTP/1.2 status line", "HTTP/1.2 200 OK\r\nContent-Length: 0\r\n\r\n", /status line/],
    ["a two-digit status", "HTTP/1.1 20 OK\r\nContent-Length: 0\r\n\r\n", /status line/],
    ["a status glued to its reason", "HTTP/1.1 200OK\r\nContent-Length: 0\r\n\r\n", /status line/],
    ["no status line", "hello there\r\n\r\n", /status line/],
    ["a lower-case protocol", "http/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", /status line/],
    ["a header line without a colon", "HTTP/1.1 200 OK\r\nContent-Length 0\r\n\r\n", /header/],
    ["a header without a name", "HTTP/1.1 200 OK\r\n: x\r\nContent-Length: 0\r\n\r\n", /header/],
    // A name is a token: "Content-Length : 2" must not pass for another header (and frame
    // the body otherwise than the peer meant).
    [
      "a space before a header's colon",
      "HTTP/1.1 200 OK\r\nContent-Length : 2\r\n\r\nok",
      /header/,
    ],
    [
      "a space in a header name",
      "HTTP/1.1 200 OK\r\nX A: 1\r\nContent-Length: 0\r\n\r\n",
      /header/,
    ],
    [
      "a folded header line",
      "HTTP/1.1 200 OK\r\nX-A: 1\r\n X-B: 2\r\nContent-Length: 0\r\n\r\n",
      /header/,
    ],
    [
      "a Content-Length that is not a number",
      "HTTP/1.1 200 OK\r\nContent-Length: 12abc\r\n\r\n",
      /content-length/,
    ],
    [
      "a negative Content-Length",
      "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
      /content-length/,
    ],
    [
      "two different Content-Lengths",
      "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc",
      /content-length/,
    ],
    [
      "a gzip transfer coding",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nxxxx",
      /unsupported transfer-encoding gzip/,
    ],
    [
      "gzip then chunked",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
      /unsupported transfer-encoding/,
    ],
    [
      "a chunk size that is not hex",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
      /malformed chunked/,
    ],
    [
      "a chunk size of 13 digits",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0000000000001\r\nx\r\n0\r\n\r\n",
      /malformed chunked/,
    ],
    [
      "a chunk size line that never ends",
      `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;${"x".repeat(2000)}`,
      /malformed chunked/,
    ],
    [
      "chunk data not followed by CRLF",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcXY\r\n0\r\n\r\n",
      /malformed chunked/,
    ],
  ];
  it.each(broken)(
    "fails %s as unavailable, drops the socket, then works on a new one",
    async (_what, answer, message) => {
      const s = await rawServer(async (c, r) => {
        await c.write(c.index === 0 ? answer : ok(r.path));
      });
      const cl = client(s.url);
      const err = await peerError(cl.request(get("/bad")));
      expect(err.kind).toBe("unavailable");
      expect(err.message).toMatch(message);
      await (await s.conns.at(0)).closed;
      expect(await text(cl.request(get("/good")))).toBe("/good");
      expect(s.conns.length).toBe(2);
    },
  );

  /** An answer head of exactly `n` bytes before its blank line. */
  function headOf(n: number): string {
    const start = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Big: ";
    return start + "a".repeat(n - start.length);
  }

  it("reads an answer head of 16 KiB, in one piece or cut just before its end", async () => {
    const head = headOf(16 * 1024);
    const s = await rawServer(async (c, r) => {
      if (r.path === "/one") await c.write(`${head}\r\n\r\nok`);
      // All but the blank line's last byte first: the head may be whole in the next read.
      else await c.drip([`${head}\r\n\r`, "\nok"]);
    });
    const cl = client(s.url);
    const one = await cl.request(get("/one"));
    expect(one.body.toString()).toBe("ok");
    expect(one.headers["x-big"]?.length).toBeGreaterThan(16_000);
    expect(await text(cl.request(get("/cut")))).toBe("ok");
    expect(s.conns.length).toBe(1);
  });

  it("fails an answer head over 16 KiB as unavailable, whole or endless, and drops the socket", async () => {
    const s = await rawServer(async (c, r) => {
      if (c.index === 2) await c.write(ok(r.path));
      // A whole head one byte too long, in one write (one read on loopback).
      else if (r.path === "/whole") await c.write(`${headOf(16 * 1024 + 1)}\r\n\r\nok`);
      // A head that never ends, in 1 KiB pieces.
      else {
        await c.write("HTTP/1.1 200 OK\r\n");
        for (let i = 0; i < 20 && !c.isClosed; i++)
          await c.drip([`X-${i}: ${"b".repeat(1020)}\r\n`]);
      }
    });
    const cl = client(s.url);
    for (const [i, path] of ["/whole", "/endless"].entries()) {
      const err = await peerError(cl.request(get(path)));
      expect(err.kind).toBe("unavailable");
      expect(err.message).toMatch(/answer head over 16384 bytes/);
      await (await s.conns.at(i)).closed;
    }
    expect(await text(cl.request(get("/next")))).toBe("/next");
  });
});

describe("lean HTTP/1.1 client: keep-alive sockets", () => {
  it("reuses one kept-alive socket for sequential calls", async () => {
    const { url, sockets } = await httpServer((req, res) => res.end(`${req.method} ${req.url}`));
    const cl = client(url);
    for (let i = 0; i < 5; i++) expect(await text(cl.request(get(`/${i}`)))).toBe(`GET /${i}`);
    expect(sockets.length).toBe(1);
  });

  it.each([
    "Connection: close",
    "Connection: keep-alive, close",
    "Connection: Upgrade\r\nConnection: Close",
  ])("opens a new socket after an answer that says %j", async (header) => {
    const s = await rawServer(async (c, r) => {
      await c.write(ok(r.path, c.index === 0 ? `${header}\r\n` : ""));
    });
    const cl = client(s.url);
    expect(await text(cl.request(get("/a")))).toBe("/a");
    await (await s.conns.at(0)).closed; // the client closed it, not the server
    expect(await text(cl.request(get("/b")))).toBe("/b");
    expect(await text(cl.request(get("/c")))).toBe("/c");
    expect(s.conns.length).toBe(2);
  });

  it("opens a new socket when the server closed the idle one", async () => {
    const s = await rawServer(async (c, r) => {
      await c.write(ok(r.path));
      if (c.index === 0) c.socket.end(); // as a server's keep-alive timeout does
    });
    const cl = client(s.url);
    expect(await text(cl.request(get("/a")))).toBe("/a");
    await (await s.conns.at(0)).closed;
    expect(await text(cl.request(get("/b")))).toBe("/b");
    expect(s.conns.length).toBe(2);
  });

  it("opens a new socket when node:http's keep-alive timeout closed the idle one", async () => {
    const { url, sockets } = await httpServer((req, res) => res.end(req.url));
    const cl = client(url);
    expect(await text(cl.request(get("/a")))).toBe("/a");
    const first = await sockets.at(0);
    const closed = new Promise((resolve) => first.once("close", resolve));
    first.end();
    await closed;
    expect(await text(cl.request(get("/b")))).toBe("/b");
    expect(sockets.length).toBe(2);
  });

  for (const how of ["end", "destroy", "resetAndDestroy"] as const) {
    it(`retries once on a fresh socket when a reused one is closed on the request (${how})`, async () => {
      const s = await rawServer(async (c, r) => {
        // The keep-alive race: the server closes the idle socket as the request arrives.
        if (c.index === 0 && c.requests.length === 2) c.socket[how]();
        else await c.write(ok(r.path));
      });
      const cl = client(s.url);
      expect(await text(cl.request(get("/a")))).toBe("/a");
      expect(await text(cl.request(get("/b")))).toBe("/b");
      expect(s.requests.items.map((r) => r.path)).toEqual(["/a", "/b", "/b"]);
      expect(s.conns.length).toBe(2);
    });
  }

  it("does not retry a second time when the fresh socket is closed too", async () => {
    const s = await rawServer(async (c, r) => {
      if (s.requests.length === 1) await c.write(ok(r.path));
      else c.socket.destroy();
    });
    const cl = client(s.url);
    expect(await text(cl.request(get("/a")))).toBe("/a");
    const err = await peerError(cl.request(get("/b")));
    expect(err.kind).toBe("unavailable");
    expect(s.requests.items.map((r) => r.path)).toEqual(["/a", "/b", "/b"]);
    expect(s.conns.length).toBe(2);
  });

  it("does not retry when a fresh socket is closed on the request", async () => {
    const s = await rawServer((c) => void c.socket.destroy());
    const err = await peerError(client(s.url).request(get("/a")));
    expect(err.kind).toBe("unavailable");
    expect(s.conns.length).toBe(1);
    expect(s.requests.length).toBe(1);
  });

  it("does not retry when a reused socket closes after part of the answer", async () => {
    const s = await rawServer(async (c, r) => {
      if (s.requests.length === 1) await c.write(ok(r.path));
      else {
        await c.write("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc");
        c.socket.end();
      }
    });
    const cl = client(s.url);
    expect(await text(cl.request(get("/a")))).toBe("/a");
    const err = await peerError(cl.request(get("/b")));
    expect(err.kind).toBe("unavailable");
    expect(s.requests.length).toBe(2);
  });

  it("fails as unavailable when the peer refuses connections", async () => {
    const srv = net.createServer();
    srv.listen(0, "127.0.0.1");
    await new Promise((resolve) => srv.once("listening", resolve));
    const port = (srv.address() as net.AddressInfo).port;
    await new Promise((resolve) => srv.close(resolve));
    const err = await peerError(client(`http://127.0.0.1:${port}`).request(get("/")));
    expect(err.kind).toBe("unavailable");
    expect(err.message).toMatch(/ECONNREFUSED/);
  });

  it("opens at most maxSockets connections; further calls wait their turn", async () => {
    const pending: [string, http.ServerResponse][] = [];
    let most = 0;
    const { url, sockets } = await httpServer((req, res) => {
      pending.push([req.url ?? "", res]);
      most = Math.max(most, pending.length);
      // Answer in pairs: with one socket only, the calls would never be answered.
      if (pending.length === 2) for (const [u, r] of pending.splice(0)) r.end(u);
    });
    const cl = client(url, { agentOptions: { maxSockets: 2 } });
    const calls = Array.from({ length: 10 }, (_, i) => text(cl.request(get(`/${i}`))));
    expect(await Promise.all(calls)).toEqual(Array.from({ length: 10 }, (_, i) => `/${i}`));
    expect(sockets.length).toBe(2);
    expect(most).toBe(2);
  });

  it("drops a socket on which bytes come while no call waits; the next call opens another", async () => {
    const s = await rawServer(async (c, r) => void (await c.write(ok(r.path))));
    const cl = client(s.url);
    expect(await text(cl.request(get("/a")))).toBe("/a");
    const first = await s.conns.at(0);
    await first.write("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"); // nobody asked
    await first.closed;
    expect(await text(cl.request(get("/b")))).toBe("/b");
    expect(s.conns.length).toBe(2);
  });

  it("drops a socket that sent more than the answer, after reading the answer", async () => {
    const s = await rawServer(async (c, r) => {
      await c.write(c.index === 0 ? ok(r.path) + ok("extra") : ok(r.path));
    });
    const cl = client(s.url);
    expect(await text(cl.request(get("/a")))).toBe("/a");
    await (await s.conns.at(0)).closed;
    expect(await text(cl.request(get("/b")))).toBe("/b");
    expect(s.conns.length).toBe(2);
  });

  it("does not keep the process alive with idle sockets (as node's Agent does not)", async () => {
    const held: Conn[] = [];
    const s = await rawServer((c) => void held.push(c));
    /** The client's sockets to the server that keep the process alive. */
    const refed = () =>
      (process as unknown as { _getActiveHandles(): unknown[] })
        ._getActiveHandles()
        .filter((h) => h instanceof net.Socket && h.remotePort === s.port).length;
    const cl = client(s.url);
    for (let i = 0; i < 2; i++) {
      const call = cl.request(get("/"));
      await s.requests.at(i);
      expect(refed()).toBe(1); // a call in flight keeps the process alive
      await held[i]?.write(ok("x"));
      await call;
      expect(refed()).toBe(0); // an idle socket does not
    }
    expect(s.conns.length).toBe(1);
  });
});

describe("lean HTTP/1.1 client: deadline, abort, close", () => {
  it("times out waiting for an answer: unavailable, TimeoutError cause, socket closed", async () => {
    const s = await rawServer(() => {}); // never answers
    const err = await peerError(client(s.url, { timeoutMs: 50 }).request(get("/")));
    expect(err.kind).toBe("unavailable");
    expect(err.message).toMatch(/timed out after 50 ms/);
    expect(err.cause).toBeInstanceOf(DOMException);
    expect((err.cause as DOMException).name).toBe("TimeoutError");
    await (await s.conns.at(0)).closed;
  });

  it("times out in the middle of a body and closes the socket", async () => {
    const s = await rawServer(
      (c) => void c.write("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc"),
    );
    const err = await peerError(client(s.url, { timeoutMs: 50 }).request(get("/")));
    expect((err.cause as DOMException).name).toBe("TimeoutError");
    await (await s.conns.at(0)).closed;
  });

  it("fails as aborted when the caller aborts while the answer comes; socket closed", async () => {
    const progress = bodyProgress();
    const s = await rawServer(async (c, r) => {
      if (c.index === 0)
        await c.write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n");
      else await c.write(ok(r.path));
    });
    const cl = client(s.url);
    const ac = new AbortController();
    const call = cl.request(
      get("/a", { signal: ac.signal, announcedLength: progress.announcedLength }),
    );
    await progress.reached(3);
    ac.abort(new Error("caller gone"));
    const err = await peerError(call);
    expect(err.kind).toBe("aborted");
    expect((err.cause as Error).message).toBe("caller gone");
    await (await s.conns.at(0)).closed;
    expect(await text(cl.request(get("/b")))).toBe("/b");
  });

  it("fails as aborted when the caller aborts while waiting for the head", async () => {
    const s = await rawServer(() => {});
    const ac = new AbortController();
    const call = client(s.url).request(get("/", { signal: ac.signal }));
    await s.requests.at(0);
    ac.abort();
    expect((await peerError(call)).kind).toBe("aborted");
    await (await s.conns.at(0)).closed;
  });

  it("fails at once, sending nothing, with a signal already aborted", async () => {
    const s = await rawServer((c, r) => void c.write(ok(r.path)));
    const cl = client(s.url);
    const err = await peerError(cl.request(get("/no", { signal: AbortSignal.abort() })));
    expect(err.kind).toBe("aborted");
    expect(await text(cl.request(get("/yes")))).toBe("/yes");
    expect(s.requests.items.map((r) => r.path)).toEqual(["/yes"]);
  });

  it("a call aborted while queued for a socket fails as aborted and is never sent", async () => {
    const held = deferred<Conn>();
    const s = await rawServer(async (c, r) => {
      if (r.path === "/slow") held.resolve(c);
      else await c.write(ok(r.path));
    });
    const cl = client(s.url, { agentOptions: { maxSockets: 1 } });
    const slow = cl.request(get("/slow"));
    const conn = await held.promise;
    const ac = new AbortController();
    const queued = cl.request(get("/queued", { signal: ac.signal }));
    ac.abort();
    expect((await peerError(queued)).kind).toBe("aborted");
    // The socket comes free: the withdrawn call does not take it, the next one does.
    await conn.write(ok("slow"));
    expect(await text(slow)).toBe("slow");
    expect(await text(cl.request(get("/after")))).toBe("/after");
    expect(s.requests.items.map((r) => r.path)).toEqual(["/slow", "/after"]);
    expect(s.conns.length).toBe(1);
  });

  it("destroy() fails the call in flight and the queued ones as unavailable, at once", async () => {
    const s = await rawServer(() => {}); // never answers
    const cl = client(s.url, { agentOptions: { maxSockets: 1 }, timeoutMs: 60_000 });
    const inflight = cl.request(get("/a"));
    await s.requests.at(0);
    const queued = cl.request(get("/b"));
    cl.destroy();
    const errs = await Promise.all([peerError(inflight), peerError(queued)]);
    for (const err of errs) {
      expect(err.kind).toBe("unavailable");
      expect(err.message).not.toMatch(/timed out/);
    }
    await (await s.conns.at(0)).closed;
    expect(s.requests.items.map((r) => r.path)).toEqual(["/a"]);
  });

  it("retire() closes idle sockets now, the busy one once its answer came; later calls work", async () => {
    const held = deferred<Conn>();
    const s = await rawServer(async (c, r) => {
      if (r.path === "/slow") held.resolve(c);
      else await c.write(ok(r.path));
    });
    const cl = client(s.url);
    // Two sockets, both idle once answered.
    expect(await Promise.all([text(cl.request(get("/1"))), text(cl.request(get("/2")))])).toEqual([
      "/1",
      "/2",
    ]);
    expect(s.conns.length).toBe(2);
    const slow = cl.request(get("/slow"));
    const busy = await held.promise;
    const idle = s.conns.items.find((c) => c !== busy) as Conn;
    cl.retire();
    await idle.closed;
    expect(busy.isClosed).toBe(false);
    await busy.write(ok("slow"));
    expect(await text(slow)).toBe("slow");
    await busy.closed;
    // After retire, a call still works, on a socket of its own that is then closed.
    expect(await text(cl.request(get("/later")))).toBe("/later");
    await (await s.conns.at(2)).closed;
  });
});

describe("lean HTTP/1.1 client: requests", () => {
  it("sends method, prefixed path, Host with port, Content-Length and the caller's headers", async () => {
    const s = await rawServer((c) => void c.write(ok("")));
    const host = `127.0.0.1:${s.port}`;
    const start = (line: string) =>
      `${line} HTTP/1.1\r\nHost: ${host}\r\nConnection: keep-alive\r\n`;
    const cl = client(`${s.url}/base/`);
    const headers = { "x-one": "1", "X-List": ["a", "b"], "x-num": 7, "x-skip": undefined };
    await cl.request({ method: "POST", path: "/a/b%20c?x=1", headers, body: Buffer.from("abc") });
    await cl.request({ method: "PUT", path: "/put" });
    await cl.request({ method: "POST", path: "/post" });
    await cl.request({ method: "GET", path: "/get" });
    await cl.request({ method: "DELETE", path: "/del" });
    await cl.request({
      method: "DELETE",
      path: "/del",
      headers: { "Content-Length": "2" },
      body: Buffer.from("xy"),
    });
    await cl.request({ method: "GET", path: "/get", body: Buffer.from("q") });
    expect(s.requests.items.map((r) => r.raw)).toEqual([
      `${start("POST /base/a/b%20c?x=1")}x-one: 1\r\nX-List: a\r\nX-List: b\r\nx-num: 7\r\nContent-Length: 3\r\n\r\nabc`,
      `${start("PUT /base/put")}Content-Length: 0\r\n\r\n`,
      `${start("POST /base/post")}Content-Length: 0\r\n\r\n`,
      `${start("GET /base/get")}\r\n`,
      `${start("DELETE /base/del")}\r\n`,
      `${start("DELETE /base/del")}Content-Length: 2\r\n\r\nxy`,
      `${start("GET /base/get")}Content-Length: 1\r\n\r\nq`,
    ]);
    // Without a path in the base URL, or without its trailing slash.
    await client(s.url).request(get("/x"));
    await client(`${s.url}/p`).request(get("/x"));
    expect(s.requests.items.slice(-2).map((r) => r.raw)).toEqual([
      `${start("GET /x")}\r\n`,
      `${start("GET /p/x")}\r\n`,
    ]);
  });

  it("calls an IPv6 literal with a bracketed Host", async (ctx) => {
    const srv = net.createServer();
    const listened = await new Promise<boolean>((resolve) => {
      srv.once("error", () => resolve(false));
      srv.listen(0, "::1", () => resolve(true));
    });
    if (!listened) ctx.skip();
    const port = (srv.address() as net.AddressInfo).port;
    await new Promise((resolve) => srv.close(resolve));
    // The port is free again; a raw server on ::1 there would race: use node:http instead.
    const got = deferred<string>();
    const h = http.createServer((req, res) => {
      got.resolve(req.headers.host ?? "");
      res.end("v6");
    });
    h.listen(port, "::1");
    await new Promise((resolve) => h.once("listening", resolve));
    cleanups.push(async () => {
      const closed = new Promise((resolve) => h.close(resolve));
      h.closeAllConnections();
      await closed;
    });
    expect(await text(client(`http://[::1]:${port}`).request(get("/")))).toBe("v6");
    expect(await got.promise).toBe(`[::1]:${port}`);
  });

  it.each([
    ["a CR LF in a value", { "x-a": "1\r\nx-injected: 1" }],
    ["a bare LF in a value", { "x-a": "1\nx" }],
    ["a bare CR in a value", { "x-a": "1\rx" }],
    ["a NUL in a value", { "x-a": "a\0b" }],
    ["a CR LF in one value of a list", { "x-a": ["ok", "b\r\n"] }],
    // Sent as latin1, U+010A and U+010D would go out as LF and CR.
    ["a character over U+00FF in a value", { "x-a": "a\u010ax-injected: 1" }],
    ["a control character in a value", { "x-a": "a\u0001b" }],
    ["a DEL in a value", { "x-a": "a\u007fb" }],
    ["a space in a name", { "x a": "1" }],
    ["a colon in a name", { "x:a": "1" }],
    ["an empty name", { "": "1" }],
  ])("fails a call with %s as invalid_argument, sending nothing", async (_what, headers) => {
    const s = await rawServer((c, r) => void c.write(ok(r.path)));
    const cl = client(s.url);
    const err = await peerError(cl.request(get("/bad", { headers })));
    expect(err.kind).toBe("invalid_argument");
    expect(await text(cl.request(get("/good")))).toBe("/good");
    expect(s.requests.items.map((r) => r.path)).toEqual(["/good"]);
    expect(s.conns.length).toBe(1);
  });

  it.each([
    ["a space", "/a b"],
    ["a CR LF", "/a\r\nX-Injected: 1"],
    ["a character over U+00FF", "/a\u010ab"],
    ["a tab", "/a\tb"],
  ])(
    "fails a call whose path holds %s as invalid_argument, sending nothing",
    async (_what, path) => {
      const s = await rawServer((c, r) => void c.write(ok(r.path)));
      const cl = client(s.url);
      const err = await peerError(cl.request(get(path)));
      expect(err.kind).toBe("invalid_argument");
      expect(await text(cl.request(get("/good")))).toBe("/good");
      expect(s.requests.items.map((r) => r.path)).toEqual(["/good"]);
    },
  );

  it("sends a path with latin1 and escaped characters as is", async () => {
    const s = await rawServer((c, r) => void c.write(ok(r.path)));
    expect(await text(client(s.url).request(get("/caf\u00e9/%E2%9C%93?q=a+b&r=~")))).toBe(
      "/caf\u00e9/%E2%9C%93?q=a+b&r=~",
    );
  });

  it("round-trips unicode and 5 MiB bodies, answered with Content-Length and chunked", async () => {
    const { url } = await httpServer(async (req, res) => {
      const parts: Buffer[] = [];
      for await (const part of req) parts.push(part as Buffer);
      const body = Buffer.concat(parts);
      if (req.url === "/length") {
        res.end(body);
        return;
      }
      // Chunked: uneven pieces, so chunks and reads never line up.
      res.writeHead(200, { "content-type": "application/octet-stream" });
      for (let at = 0, n = 1; at < body.length; at += n, n = n * 3 + 7) {
        res.write(body.subarray(at, at + n));
      }
      res.end();
    });
    const cl = client(url);
    const unicode = Buffer.from("κλειδί → 値 ✓ 😀 \u0000\r\n\r\nHTTP/1.1 200 OK\r\n", "utf8");
    const big = randomBytes(5 * MiB);
    for (const body of [unicode, big, Buffer.alloc(0)]) {
      const length = await cl.request({ method: "PUT", path: "/length", body });
      expect(length.headers["content-length"]).toBe(String(body.length));
      expect(length.body.equals(body)).toBe(true);
      const chunked = await cl.request({ method: "POST", path: "/chunked", body });
      expect(chunked.headers["transfer-encoding"]).toBe("chunked");
      expect(chunked.body.equals(body)).toBe(true);
    }
    expect(unicode.toString("utf8")).toContain("😀");
  });
});

describe("lean HTTP/1.1 client: body caps", () => {
  it("refuses a declared Content-Length over the cap before the peer sends the body", async () => {
    const s = await rawServer(async (c, r) => {
      const length = r.path === "/client" ? MiB + 1 : r.path === "/call" ? 11 : 10;
      await c.write(`HTTP/1.1 200 OK\r\nContent-Length: ${length}\r\n\r\n`);
      if (r.path === "/fits") await c.write("0123456789");
    });
    const cl = client(s.url, { maxBodyBytes: MiB });
    const over = await peerError(cl.request(get("/client")));
    expect(over.kind).toBe("unavailable");
    expect(over.local).toBe(true);
    expect(over.message).toMatch(
      /of 1048577 bytes \(Content-Length\) over maxBodyBytes \(1048576\)/,
    );
    await (await s.conns.at(0)).closed;
    const call = await peerError(cl.request(get("/call", { maxBodyBytes: 10 })));
    expect(call.message).toMatch(
      /of 11 bytes \(Content-Length\) over the call's maxBodyBytes \(10\)/,
    );
    await (await s.conns.at(1)).closed;
    expect(await text(cl.request(get("/fits", { maxBodyBytes: 10 })))).toBe("0123456789");
  });

  it("cuts a chunked answer at the call's cap and drops the socket", async () => {
    const s = await rawServer(async (c, r) => {
      if (c.index > 0) {
        await c.write(ok(r.path));
        return;
      }
      await c.write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n8\r\n01234567\r\n");
      await c.write("8\r\n89abcdef\r\n"); // more than the cap, never the end
    });
    const cl = client(s.url);
    const err = await peerError(cl.request(get("/a", { maxBodyBytes: 12 })));
    expect(err.kind).toBe("unavailable");
    expect(err.message).toMatch(/of more than 8 bytes over the call's maxBodyBytes \(12\)/);
    await (await s.conns.at(0)).closed;
    expect(await text(cl.request(get("/b")))).toBe("/b");
  });

  it("takes a declared answer from the budget and gives it back, on success and failure", async () => {
    const s = await rawServer(async (c, r) => {
      if (r.path === "/ok") await c.write(ok("0123456789"));
      else await c.write("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n01234");
      if (r.path === "/cut") c.socket.destroy();
    });
    const budget = new ByteBudget(100);
    const cl = client(s.url, { inflightBudget: budget });
    expect(await text(cl.request(get("/ok")))).toBe("0123456789");
    expect(budget.used).toBe(0);
    expect((await peerError(cl.request(get("/cut")))).kind).toBe("unavailable");
    expect(budget.used).toBe(0);
  });
});
