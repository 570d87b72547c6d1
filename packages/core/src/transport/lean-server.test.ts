/**
 * The lean lane's generic features, on raw node:net clients so that the bytes are
 * exactly the test's: bodies framed by Content-Length (POST, PUT), the body cap, bodies
 * split across reads, captured headers, binary and text answers with the handler's
 * header lines, pipelining, and leanPoolServer. The GET-only behaviour (hand-over rules
 * of the head, timeouts, close) is pinned by apps/demo/src/lean-http.test.ts. Nothing
 * sleeps: tests await the lane's and the fallback's events and the answers themselves.
 */
import { once } from "node:events";
import { createServer as createHttpServer, type Server as HttpServer } from "node:http";
import { RawHttp, type RawResponse } from "@tinycache/testkit";
import { afterEach, describe, expect, it } from "vitest";
import { deferred, memoryLogger } from "../testing.test-util.js";
import {
  type LaneMethod,
  type LaneReply,
  type LaneRequest,
  LeanServer,
  leanPoolServer,
} from "./lean-server.js";

/** What the fallback (node:http) received, whole. */
interface NodeRequest {
  method: string;
  url: string;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

interface Started {
  lane: LeanServer;
  fallback: HttpServer;
  port: number;
  /** The requests the lane handled, in order. */
  handled: LaneRequest[];
  /** What `accepts` was asked, in order. */
  asked: [LaneMethod, string][];
  /** The requests node:http answered, in order. */
  node: NodeRequest[];
}

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");

/**
 * A lane taking every request whose target starts with `/lane` (all four methods), in
 * front of a node:http server that reads each request whole and answers
 * `node <method> <url> <body as hex>`. `answer` decides the lane's answers (default: at
 * once, `lane <method> <target> <body as hex>`).
 */
async function start(
  opts: {
    answer?: (req: LaneRequest, reply: LaneReply) => void;
    accepts?: (method: LaneMethod, target: string) => boolean;
    maxBodyBytes?: number;
    captureHeaders?: readonly string[];
    coalesceWrites?: boolean;
  } = {},
): Promise<Started> {
  const handled: LaneRequest[] = [];
  const asked: [LaneMethod, string][] = [];
  const node: NodeRequest[] = [];
  const fallback = createHttpServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks);
      node.push({
        method: req.method ?? "",
        url: req.url ?? "",
        headers: req.headers,
        body,
      });
      res.end(`node ${req.method} ${req.url} ${hex(body)}`);
    });
  });
  const answer =
    opts.answer ??
    ((req: LaneRequest, reply: LaneReply) =>
      reply.send(200, `lane ${req.method} ${req.target} ${hex(req.body)}`));
  const accepts = opts.accepts ?? ((_m: LaneMethod, target: string) => target.startsWith("/lane"));
  const lane = new LeanServer({
    accepts: (method, target) => {
      asked.push([method, target]);
      return accepts(method, target);
    },
    handle: (req, reply) => {
      handled.push(req);
      answer(req, reply);
    },
    fallback,
    keepAliveTimeoutMs: 5000,
    headersTimeoutMs: 5000,
    maxConnections: 100,
    ...(opts.maxBodyBytes === undefined ? {} : { maxBodyBytes: opts.maxBodyBytes }),
    ...(opts.captureHeaders === undefined ? {} : { captureHeaders: opts.captureHeaders }),
    ...(opts.coalesceWrites === undefined ? {} : { coalesceWrites: opts.coalesceWrites }),
  });
  await lane.listen(0, "127.0.0.1");
  cleanups.push(() => lane.close(100));
  const address = lane.address();
  if (address === null || typeof address === "string") throw new Error("no port");
  return { lane, fallback, port: address.port, handled, asked, node };
}

/** A raw connection, destroyed after the test. */
class Raw extends RawHttp {
  constructor(port: number) {
    super(port);
    cleanups.push(() => this.destroy());
  }
}

/** A request head (`extra`: more header lines, each ending in CRLF) and its body. */
function request(method: string, target: string, extra = "", body?: string | Uint8Array): Buffer {
  const b = body === undefined ? undefined : Buffer.from(body);
  const length = b === undefined ? "" : `Content-Length: ${b.length}\r\n`;
  const head = Buffer.from(`${method} ${target} HTTP/1.1\r\nHost: x\r\n${length}${extra}\r\n`);
  return b === undefined ? head : Buffer.concat([head, b]);
}
const get = (target: string, extra = "") => request("GET", target, extra);
const post = (target: string, body: string | Uint8Array, extra = "") =>
  request("POST", target, extra, body);

/** The 256 byte values in order. */
const ALL_BYTES = Uint8Array.from({ length: 256 }, (_, i) => i);

/** Awaits until `cond` holds, yielding to the event loop between checks. */
async function until(cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise<void>((r) => setImmediate(r));
}

describe("LeanServer: bodies", () => {
  it("reads a POST body of every byte value intact", async () => {
    const { port, handled } = await start();
    const raw = new Raw(port);
    raw.write(post("/lane/p", ALL_BYTES));
    const res = await raw.one();
    expect(res.status).toBe(200);
    expect(res.text).toBe(`lane POST /lane/p ${hex(ALL_BYTES)}`);
    expect(handled).toHaveLength(1);
    const body = handled[0]?.body as Buffer;
    expect(Buffer.isBuffer(body)).toBe(true);
    expect(hex(body)).toBe(hex(ALL_BYTES));
  });

  it("reads a PUT body, and gives handle the method PUT", async () => {
    const { port, handled } = await start();
    const raw = new Raw(port);
    raw.write(request("PUT", "/lane/k", "", Buffer.from([0, 0xff, 0x0d, 0x0a, 0x0d, 0x0a, 7])));
    const res = await raw.one();
    expect(res.text).toBe("lane PUT /lane/k 00ff0d0a0d0a07");
    expect(handled.map((r) => r.method)).toEqual(["PUT"]);
  });

  it("reads an empty body (Content-Length: 0) of a POST and a PUT", async () => {
    const { port, handled } = await start();
    const raw = new Raw(port);
    raw.write(Buffer.concat([post("/lane/a", ""), request("PUT", "/lane/b", "", "")]));
    const [a, b] = await raw.read(2);
    expect(a?.text).toBe("lane POST /lane/a ");
    expect(b?.text).toBe("lane PUT /lane/b ");
    expect(handled.map((r) => r.body.length)).toEqual([0, 0]);
  });

  it("frames pipelined requests by their Content-Length, bodies holding CRLFs and heads", async () => {
    const { port, handled } = await start();
    const raw = new Raw(port);
    // A body that looks like a request must stay a body.
    const fake = get("/lane/not-a-request").toString("latin1");
    raw.write(
      Buffer.concat([
        post("/lane/1", fake),
        get("/lane/2"),
        request("PUT", "/lane/3", "", "\r\n\r\n"),
        request("DELETE", "/lane/4"),
        post("/lane/5", "x"),
      ]),
    );
    const answers = await raw.read(5);
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 200, 200]);
    expect(handled.map((r) => `${r.method} ${r.target} ${r.body.toString("latin1")}`)).toEqual([
      `POST /lane/1 ${fake}`,
      "GET /lane/2 ",
      "PUT /lane/3 \r\n\r\n",
      "DELETE /lane/4 ",
      "POST /lane/5 x",
    ]);
  });

  it("answers a body of exactly maxBodyBytes; one byte more goes to node:http whole", async () => {
    const { port, handled, node } = await start({ maxBodyBytes: 64 });
    const fits = Buffer.alloc(64, 0xab);
    const over = Buffer.alloc(65, 0xcd);
    const raw = new Raw(port);
    raw.write(post("/lane/fits", fits));
    expect((await raw.one()).text).toBe(`lane POST /lane/fits ${hex(fits)}`);
    raw.write(post("/lane/over", over));
    const res = await raw.one();
    expect(res.text).toBe(`node POST /lane/over ${hex(over)}`);
    expect(handled.map((r) => r.target)).toEqual(["/lane/fits"]);
    expect(node).toHaveLength(1);
    expect(node[0]?.headers["content-length"]).toBe("65");
    // node:http keeps the connection from then on.
    raw.write(post("/lane/after", "a"));
    expect((await raw.one()).text).toBe("node POST /lane/after 61");
  });

  it("hands a body split across two writes to node:http, which answers it with the whole body", async () => {
    const { port, fallback, handled, node } = await start();
    const raw = new Raw(port);
    const handedOver = once(fallback, "connection");
    const body = Buffer.from(ALL_BYTES);
    raw.write(post("/lane/split", body).subarray(0, -100));
    // The lane saw a head whose body is not all there: it handed over at once.
    await handedOver;
    raw.write(body.subarray(-100));
    const res = await raw.one();
    expect(res.text).toBe(`node POST /lane/split ${hex(body)}`);
    expect(handled).toEqual([]);
    expect(hex(node[0]?.body ?? Buffer.alloc(0))).toBe(hex(body));
  });

  it("answers its requests before a split one, then hands the rest over", async () => {
    const { port, fallback, handled } = await start();
    const raw = new Raw(port);
    const handedOver = once(fallback, "connection");
    const second = post("/lane/2", "0123456789");
    raw.write(Buffer.concat([post("/lane/1", "ab"), second.subarray(0, -4)]));
    await handedOver;
    raw.write(second.subarray(-4));
    const [a, b] = await raw.read(2);
    expect(a?.text).toBe("lane POST /lane/1 6162");
    expect(b?.text).toBe(`node POST /lane/2 ${hex(Buffer.from("0123456789"))}`);
    expect(handled.map((r) => r.target)).toEqual(["/lane/1"]);
  });

  // Each: a request the lane must not answer; node:http gets its bytes and answers it
  // (or refuses it with its own 4xx).
  const handedOver: { what: string; request: Buffer; status: number; nodeBody?: string }[] = [
    {
      what: "a GET with a Content-Length body",
      request: request("GET", "/lane/g", "", "abc"),
      status: 200,
      nodeBody: "abc",
    },
    {
      what: "a GET with Content-Length: 0",
      request: request("GET", "/lane/g", "", ""),
      status: 200,
      nodeBody: "",
    },
    {
      what: "a DELETE with a Content-Length body",
      request: request("DELETE", "/lane/d", "", "xyz"),
      status: 200,
      nodeBody: "xyz",
    },
    {
      what: "a DELETE with Content-Length: 0",
      request: request("DELETE", "/lane/d", "", ""),
      status: 200,
      nodeBody: "",
    },
    {
      what: "a POST without Content-Length",
      request: request("POST", "/lane/p"),
      status: 200,
      nodeBody: "",
    },
    {
      what: "a PUT without Content-Length",
      request: request("PUT", "/lane/p"),
      status: 200,
      nodeBody: "",
    },
    {
      what: "a chunked POST",
      request: Buffer.from(
        "POST /lane/p HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
      ),
      status: 200,
      nodeBody: "abc",
    },
    {
      what: "a POST with a Content-Length and Transfer-Encoding",
      request: Buffer.from(
        "POST /lane/p HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\nabc",
      ),
      status: 400,
    },
    {
      what: "two equal Content-Lengths",
      request: request("POST", "/lane/p", "Content-Length: 3\r\n", "abc"),
      status: 400,
    },
    {
      what: "two different Content-Lengths",
      request: Buffer.from(
        "POST /lane/p HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 2\r\n\r\nabc",
      ),
      status: 400,
    },
    {
      what: "a negative Content-Length",
      request: Buffer.from("POST /lane/p HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n"),
      status: 400,
    },
    {
      what: "a Content-Length that is not digits",
      request: Buffer.from("POST /lane/p HTTP/1.1\r\nHost: x\r\nContent-Length: 0x3\r\n\r\nabc"),
      status: 400,
    },
    {
      what: "PATCH (a method the lane does not read)",
      request: request("PATCH", "/lane/p", "", "abc"),
      status: 200,
      nodeBody: "abc",
    },
    {
      what: "a POST that accepts refuses",
      request: post("/other", "abc"),
      status: 200,
      nodeBody: "abc",
    },
  ];
  it.each(handedOver)(
    "hands $what to node:http, after answering the requests before it",
    async ({ request: req, status, nodeBody }) => {
      const { port, handled, node } = await start();
      const raw = new Raw(port);
      raw.write(Buffer.concat([post("/lane/first", "1"), req]));
      const [first, second] = await raw.read(2);
      expect(first?.text).toBe("lane POST /lane/first 31");
      expect(second?.status).toBe(status);
      if (nodeBody !== undefined) {
        expect(second?.text).toMatch(/^node /);
        expect(node).toHaveLength(1);
        expect(node[0]?.body.toString("latin1")).toBe(nodeBody);
      } else {
        expect(node).toEqual([]);
      }
      expect(handled.map((r) => r.target)).toEqual(["/lane/first"]);
    },
  );
});

describe("LeanServer: captured headers", () => {
  it("passes the captured headers (any case, value trimmed) and no other", async () => {
    const { port, handled } = await start({ captureHeaders: ["x-token", "authorization"] });
    const raw = new Raw(port);
    raw.write(
      post(
        "/lane/p",
        "b",
        "X-TOKEN:   s3cret \t\r\nx-other: 1\r\nAuthorization:Bearer a b\r\nX-Tokens: no\r\n",
      ),
    );
    expect((await raw.one()).status).toBe(200);
    expect(handled[0]?.headers).toEqual({ "x-token": "s3cret", authorization: "Bearer a b" });
    // A request without them has none.
    raw.write(get("/lane/g", "Content-Type: text/plain\r\n"));
    await raw.one();
    expect(handled[1]?.headers).toEqual({});
  });

  it("passes no headers when none are captured", async () => {
    const { port, handled } = await start();
    const raw = new Raw(port);
    raw.write(get("/lane/g", "X-Token: a\r\nAuthorization: b\r\n"));
    await raw.one();
    expect(handled[0]?.headers).toEqual({});
  });

  it("passes a captured header with an empty value as empty", async () => {
    const { port, handled } = await start({ captureHeaders: ["x-token"] });
    const raw = new Raw(port);
    raw.write(get("/lane/g", "X-Token:\r\n"));
    await raw.one();
    expect(handled[0]?.headers).toEqual({ "x-token": "" });
  });

  it("hands a captured header sent twice to node:http (its to join)", async () => {
    const { port, handled, node } = await start({ captureHeaders: ["x-token"] });
    const raw = new Raw(port);
    raw.write(Buffer.concat([get("/lane/1"), get("/lane/2", "X-Token: a\r\nx-token: b\r\n")]));
    const [a, b] = await raw.read(2);
    expect(a?.text).toBe("lane GET /lane/1 ");
    expect(b?.text).toBe("node GET /lane/2 ");
    expect(node[0]?.headers["x-token"]).toBe("a, b");
    expect(handled.map((r) => r.target)).toEqual(["/lane/1"]);
  });

  it("takes an uncaptured header sent twice", async () => {
    const { port, handled } = await start({ captureHeaders: ["x-token"] });
    const raw = new Raw(port);
    raw.write(get("/lane/1", "X-Other: a\r\nX-Other: b\r\n"));
    expect((await raw.one()).text).toBe("lane GET /lane/1 ");
    expect(handled[0]?.headers).toEqual({});
  });
});

describe("LeanServer: answers", () => {
  /** The lane's own header lines after the handler's: length, date, keep-alive. */
  const tail = (res: RawResponse, length: number) => {
    expect(res.lines.slice(-4).map(([n]) => n)).toEqual([
      "content-length",
      "date",
      "connection",
      "keep-alive",
    ]);
    expect(res.headers["content-length"]).toBe(String(length));
    expect(Date.parse(res.headers.date ?? "")).not.toBeNaN();
    expect(res.headers.connection).toBe("keep-alive");
    expect(res.headers["keep-alive"]).toBe("timeout=5");
  };

  it("sends a binary answer with the handler's header lines and its exact length", async () => {
    const { port } = await start({
      answer: (_req, reply) =>
        reply.send(201, ALL_BYTES, "Content-Type: application/octet-stream\r\nX-A: b c\r\n"),
    });
    const raw = new Raw(port);
    raw.write(get("/lane/bin"));
    const res = await raw.one();
    expect(res.head.split("\r\n").slice(0, 3)).toEqual([
      "HTTP/1.1 201 Created",
      "Content-Type: application/octet-stream",
      "X-A: b c",
    ]);
    tail(res, 256);
    expect(res.lines).toHaveLength(6);
    expect(hex(res.body)).toBe(hex(ALL_BYTES));
  });

  it("sends a binary answer without headers as no header lines at all (no Content-Type)", async () => {
    const { port } = await start({
      answer: (req, reply) =>
        reply.send(200, req.target.endsWith("empty") ? new Uint8Array(0) : req.body),
    });
    const raw = new Raw(port);
    raw.write(
      Buffer.concat([post("/lane/echo", ALL_BYTES), get("/lane/empty"), get("/lane/empty")]),
    );
    const [echo, empty, again] = await raw.read(3);
    expect(echo?.lines.map(([n]) => n)).toEqual([
      "content-length",
      "date",
      "connection",
      "keep-alive",
    ]);
    expect(hex(echo?.body ?? Buffer.alloc(0))).toBe(hex(ALL_BYTES));
    tail(empty as RawResponse, 0);
    expect(empty?.body.length).toBe(0);
    // Nothing stray after the empty answer: the next one parses.
    expect(again?.status).toBe(200);
  });

  it("sends the bytes of a Uint8Array view, not its whole buffer", async () => {
    const backing = Buffer.from("0123456789");
    const { port } = await start({
      answer: (_req, reply) =>
        reply.send(200, new Uint8Array(backing.buffer, backing.byteOffset + 3, 4)),
    });
    const raw = new Raw(port);
    raw.write(get("/lane/view"));
    const res = await raw.one();
    expect(res.headers["content-length"]).toBe("4");
    expect(res.text).toBe("3456");
  });

  it("sends a text answer with the handler's headers instead of text/plain, its length in UTF-8 bytes", async () => {
    const { port } = await start({
      answer: (_req, reply) =>
        reply.send(418, "ключ 🔑\n", "Content-Type: text/x-mine\r\nAllow: GET\r\n"),
    });
    const raw = new Raw(port);
    raw.write(get("/lane/t"));
    const res = await raw.one();
    expect(res.head.split("\r\n").slice(0, 3)).toEqual([
      "HTTP/1.1 418 I'm a Teapot",
      "Content-Type: text/x-mine",
      "Allow: GET",
    ]);
    tail(res, Buffer.byteLength("ключ 🔑\n"));
    expect(res.text).toBe("ключ 🔑\n");
  });

  it("sends a text answer with an empty header string as no header lines", async () => {
    const { port } = await start({ answer: (_req, reply) => reply.send(200, "plain", "") });
    const raw = new Raw(port);
    raw.write(get("/lane/t"));
    const res = await raw.one();
    expect(res.lines.map(([n]) => n)).toEqual([
      "content-length",
      "date",
      "connection",
      "keep-alive",
    ]);
    expect(res.text).toBe("plain");
  });

  it("sends a text answer without headers as text/plain UTF-8", async () => {
    const { port } = await start();
    const raw = new Raw(port);
    raw.write(get("/lane/t"));
    const res = await raw.one();
    expect(res.lines[0]).toEqual(["content-type", "text/plain; charset=utf-8"]);
    tail(res, Buffer.byteLength("lane GET /lane/t "));
  });

  it("writes binary and text answers in request order when they come out of order", async () => {
    const replies = new Map<string, LaneReply>();
    const { port } = await start({ answer: (req, reply) => replies.set(req.target, reply) });
    const raw = new Raw(port);
    const n = 6;
    raw.write(Buffer.concat(Array.from({ length: n }, (_, i) => post(`/lane/${i}`, String(i)))));
    await until(() => replies.size === n);
    // Even: binary (bytes i, 255-i, and a CR LF); odd: text. Answered last to first but
    // one, then the first.
    const bin = (i: number) => Uint8Array.from([i, 255 - i, 0x0d, 0x0a]);
    const answer = (i: number) => {
      const reply = replies.get(`/lane/${i}`) as LaneReply;
      if (i % 2 === 0) reply.send(200, bin(i), "Content-Type: application/octet-stream\r\n");
      else reply.send(202, `text ${i} ✓`);
    };
    for (let i = n - 1; i >= 1; i--) answer(i);
    // Nothing may be written before the first answer.
    await new Promise<void>((r) => setImmediate(r));
    answer(0);
    const answers = await raw.read(n);
    expect(
      answers.map((a) =>
        a.headers["content-type"] === "application/octet-stream"
          ? `${a.status} bin ${hex(a.body)}`
          : `${a.status} ${a.text}`,
      ),
    ).toEqual([
      `200 bin ${hex(bin(0))}`,
      "202 text 1 ✓",
      `200 bin ${hex(bin(2))}`,
      "202 text 3 ✓",
      `200 bin ${hex(bin(4))}`,
      "202 text 5 ✓",
    ]);
  });

  it("writes nothing before the first answer of a pipeline is ready", async () => {
    const replies = new Map<string, LaneReply>();
    const { port } = await start({ answer: (req, reply) => replies.set(req.target, reply) });
    const raw = new Raw(port);
    let bytes = 0;
    raw.socket.on("data", (d: Buffer) => {
      bytes += d.length;
    });
    raw.write(Buffer.concat([get("/lane/a"), get("/lane/b")]));
    await until(() => replies.size === 2);
    replies.get("/lane/b")?.send(200, Uint8Array.from([1]));
    // A round trip on another connection: had the lane written, those bytes came first.
    const other = new Raw(port);
    other.write(get("/other"));
    await other.one();
    expect(bytes).toBe(0);
    replies.get("/lane/a")?.send(200, "a");
    const [a, b] = await raw.read(2);
    expect(a?.text).toBe("a");
    expect(hex(b?.body ?? Buffer.alloc(0))).toBe("01");
  });
});

describe("LeanServer: coalesced writes", () => {
  /** A lane answering at once, counting its sockets' write calls. */
  async function counting(coalesceWrites?: boolean, closeAfter?: string) {
    const counted = new Set<unknown>();
    const state = { writes: 0, closed: undefined as Promise<void> | undefined };
    const started = await start({
      answer: (req, reply) => {
        const socket = req.socket;
        if (!counted.has(socket)) {
          counted.add(socket);
          const write = socket.write.bind(socket) as (...a: unknown[]) => boolean;
          socket.write = ((...a: unknown[]) => {
            state.writes++;
            return write(...a);
          }) as typeof socket.write;
        }
        reply.send(200, `lane ${req.target} ✓`);
        if (req.target === closeAfter) state.closed = started.lane.close(5000);
      },
      ...(coalesceWrites === undefined ? {} : { coalesceWrites }),
    });
    return { ...started, state };
  }
  const burst = (tag: string, n: number) =>
    Buffer.concat(Array.from({ length: n }, (_, i) => get(`/lane/${tag}${i}`)));

  it("writes each answer at once until a turn is loaded, then a turn's answers to a connection in one write", async () => {
    const { port, state } = await counting();
    const raw = new Raw(port);
    raw.write(burst("a", 4));
    expect((await raw.read(4)).map((r) => r.text)).toEqual(
      [0, 1, 2, 3].map((i) => `lane /lane/a${i} ✓`),
    );
    expect(state.writes).toBe(4); // the lane starts unloaded: each answer at once
    raw.write(burst("b", 4)); // after a turn of 4 answers: loaded
    expect((await raw.read(4)).map((r) => r.text)).toEqual(
      [0, 1, 2, 3].map((i) => `lane /lane/b${i} ✓`),
    );
    expect(state.writes).toBe(5);
  });

  it("writes each answer at once with coalesceWrites false", async () => {
    const { port, state } = await counting(false);
    const raw = new Raw(port);
    for (const tag of ["a", "b"]) {
      raw.write(burst(tag, 4));
      expect((await raw.read(4)).map((r) => r.status)).toEqual([200, 200, 200, 200]);
    }
    expect(state.writes).toBe(8);
  });

  it("turns unloaded after a turn of fewer answers: a lone request's answer goes at once again", async () => {
    const { port, state } = await counting();
    const raw = new Raw(port);
    raw.write(burst("a", 4));
    await raw.read(4);
    raw.write(get("/lane/one")); // loaded: waits for its turn's end; that turn had 1 answer
    expect((await raw.one()).text).toBe("lane /lane/one ✓");
    raw.write(burst("c", 2)); // unloaded again: each at once
    await raw.read(2);
    expect(state.writes).toBe(4 + 1 + 2);
  });

  it("writes the answers that wait for a turn's end when the lane closes in that turn, then ends the connection", async () => {
    const { port, state } = await counting(undefined, "/lane/b2");
    const raw = new Raw(port);
    raw.write(burst("a", 4));
    await raw.read(4);
    const ended = once(raw.socket, "end");
    raw.write(burst("b", 3)); // loaded: the three wait; the lane closes after the last one
    expect((await raw.read(3)).map((r) => r.text)).toEqual(
      [0, 1, 2].map((i) => `lane /lane/b${i} ✓`),
    );
    await ended;
    await state.closed;
    expect(state.writes).toBe(5);
  });
});

describe("LeanServer: accepts and methods", () => {
  it("asks accepts with the method and the raw target, and reaches handle with all four methods", async () => {
    const { port, asked, handled } = await start();
    const raw = new Raw(port);
    raw.write(
      Buffer.concat([
        get("/lane/a%20b?x=%2F&y=+"),
        post("/lane/p?q", "1"),
        request("PUT", "/lane/%E4%B8%AD", "", "2"),
        request("DELETE", "/lane//k"),
      ]),
    );
    const answers = await raw.read(4);
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 200]);
    const expected: [LaneMethod, string][] = [
      ["GET", "/lane/a%20b?x=%2F&y=+"],
      ["POST", "/lane/p?q"],
      ["PUT", "/lane/%E4%B8%AD"],
      ["DELETE", "/lane//k"],
    ];
    expect(asked).toEqual(expected);
    expect(handled.map((r): [LaneMethod, string] => [r.method, r.target])).toEqual(expected);
  });

  it("hands over what accepts refuses by method, with the request whole", async () => {
    const { port, asked, handled, node } = await start({
      accepts: (method) => method !== "PUT",
    });
    const raw = new Raw(port);
    raw.write(Buffer.concat([request("DELETE", "/x"), request("PUT", "/x", "", "body")]));
    const [a, b] = await raw.read(2);
    expect(a?.text).toBe("lane DELETE /x ");
    expect(b?.text).toBe(`node PUT /x ${hex(Buffer.from("body"))}`);
    expect(asked).toEqual([
      ["DELETE", "/x"],
      ["PUT", "/x"],
    ]);
    expect(handled.map((r) => r.method)).toEqual(["DELETE"]);
    expect(node.map((r) => r.method)).toEqual(["PUT"]);
  });

  it("never asks accepts about a method it does not read (PATCH)", async () => {
    const { port, asked, node } = await start();
    const raw = new Raw(port);
    raw.write(request("PATCH", "/lane/p", "", "abc"));
    const res = await raw.one();
    expect(res.text).toBe(`node PATCH /lane/p ${hex(Buffer.from("abc"))}`);
    expect(asked).toEqual([]);
    expect(node.map((r) => r.method)).toEqual(["PATCH"]);
  });

  it("gives handle the request's socket", async () => {
    const { port, handled } = await start();
    const raw = new Raw(port);
    raw.write(get("/lane/s"));
    await raw.one();
    expect(handled[0]?.socket.remotePort).toBe(raw.socket.localPort);
  });
});

describe("leanPoolServer", () => {
  /** A lane as a pool's server: `/lane` answers held until `release`, `/now` at once. */
  async function pool() {
    const held: LaneReply[] = [];
    const nodeHeld = deferred<void>();
    const fallback = createHttpServer((req, res) => {
      if (req.url === "/node-wait") nodeHeld.promise.then(() => res.end("late"));
      else res.end("node");
    });
    const lane = new LeanServer({
      accepts: (_m, target) => target.startsWith("/lane") || target === "/now",
      handle: (req, reply) => {
        if (req.target === "/now") reply.send(200, "now");
        else held.push(reply);
      },
      fallback,
      keepAliveTimeoutMs: 5000,
      headersTimeoutMs: 5000,
      maxConnections: 100,
    });
    const { logger, lines } = memoryLogger();
    const server = leanPoolServer(lane, logger);
    cleanups.push(() => server.close());
    return { server, lane, fallback, held, nodeHeld, lines };
  }

  it("listen returns the address the lane listens on", async () => {
    const { server, lane } = await pool();
    const address = await server.listen(0, "127.0.0.1");
    expect(address.address).toBe("127.0.0.1");
    expect(address.port).toBeGreaterThan(0);
    expect(lane.address()).toEqual(address);
    expect(lane.listening).toBe(true);
    const raw = new Raw(address.port);
    raw.write(get("/now"));
    expect((await raw.one()).text).toBe("now");
  });

  it("listen rejects on a port in use", async () => {
    const first = await pool();
    const { port } = await first.server.listen(0, "127.0.0.1");
    const second = await pool();
    await expect(second.server.listen(port, "127.0.0.1")).rejects.toThrow(/EADDRINUSE/);
  });

  it("close drops every connection at once: idle and busy, the lane's and node:http's", async () => {
    const { server, lane, fallback, held, lines } = await pool();
    const { port } = await server.listen(0, "127.0.0.1");
    const laneIdle = new Raw(port);
    laneIdle.write(get("/now"));
    await laneIdle.one();
    const laneBusy = new Raw(port);
    laneBusy.write(get("/lane/wait"));
    await until(() => held.length === 1);
    const nodeIdle = new Raw(port);
    nodeIdle.write(get("/node"));
    expect((await nodeIdle.one()).text).toBe("node");
    const nodeBusy = new Raw(port);
    const nodeRequest = once(fallback, "request");
    nodeBusy.write(get("/node-wait"));
    await nodeRequest;

    await server.close();
    await Promise.all([laneIdle.closed, laneBusy.closed, nodeIdle.closed, nodeBusy.closed]);
    expect(lane.listening).toBe(false);
    expect(held[0]?.gone).toBe(true);
    held[0]?.send(200, "too late");
    const refused = new Raw(port);
    await refused.closed;
    expect(lines.filter((l) => l.level === "error")).toEqual([]);
  });
});
