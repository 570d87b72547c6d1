import { once } from "node:events";
import * as http from "node:http";
import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { gzipSync } from "node:zlib";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { PeerError } from "@tinycache/core";
import { DEFAULT_SERVER_LIMITS, type GroupLookup } from "@tinycache/core/transport";
import { tinycachev1 as pb } from "@tinycache/protocol";
import {
  fileDescriptorLimit,
  httpRequest,
  openIdleConnections,
  sendLargeBody,
} from "@tinycache/testkit";
import { afterEach, describe, expect, it } from "vitest";
import { dec, enc, FakeGroup } from "./fake-group.test-util.js";
import { ConnectPool, type ConnectPoolOptions, createCleartextServer } from "./index.js";

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

function lookup(...groups: FakeGroup[]): GroupLookup {
  const m = new Map(groups.map((g) => [g.name, g]));
  return { getGroup: (name) => m.get(name) };
}

async function served(opts: Partial<ConnectPoolOptions> = {}) {
  const group = new FakeGroup("scores");
  group.data.set("Tom", { value: enc("630") });
  const pool = new ConnectPool({ self: "http://x", registry: lookup(group), ...opts });
  const { port } = await pool.listen(0, "127.0.0.1");
  cleanups.push(() => pool.close());
  return { pool, group, port };
}

const GET = "/tinycache.v1.CacheService/Get";
const getBody = (key: string) =>
  toBinary(pb.GetRequestSchema, create(pb.GetRequestSchema, { group: "scores", key }));

async function peerError(p: Promise<unknown>): Promise<PeerError> {
  const err = await p.then(
    () => new Error("expected a PeerError, the call succeeded"),
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(PeerError);
  return err as PeerError;
}

describe("an oversized body is cut off: not read, resource_exhausted, connection closed", () => {
  const total = 100 * 1024 * 1024;
  it.each([
    ["chunked", false],
    ["declared by Content-Length", true],
  ])("Connect unary POST, %s", async (_, contentLength) => {
    const { port, group } = await served({ maxBodyBytes: 1024 });
    const out = await sendLargeBody(port, {
      path: GET,
      headers: { "content-type": "application/proto", "connect-protocol-version": "1" },
      totalBytes: total,
      contentLength,
    });
    expect(out.cutOff).toBe(true);
    expect(out.sentBytes).toBeLessThan(total / 4);
    if (out.status !== undefined) {
      expect(out.status).toBe(429);
      expect(out.answer).toContain('"code":"resource_exhausted"');
    }
    expect(group.calls).toEqual([]);
  });

  it("a call refused for its secret does not read the body either", async () => {
    const { port } = await served({ auth: { secret: "pw" } });
    const out = await sendLargeBody(port, {
      path: GET,
      headers: { "content-type": "application/proto" },
      totalBytes: total,
    });
    expect(out.cutOff).toBe(true);
    expect(out.sentBytes).toBeLessThan(total / 4);
    if (out.status !== undefined) expect(out.status).toBe(401);
  });
});

describe("compression", () => {
  it("br is unimplemented (with the accepted list), gzip works", async () => {
    const { port } = await served();
    const proto = { "content-type": "application/proto", "connect-protocol-version": "1" };
    const br = await httpRequest(port, "POST", GET, {
      headers: { ...proto, "content-encoding": "br" },
      body: getBody("Tom"),
    });
    expect(br.status).toBe(501);
    expect(JSON.parse(br.body.toString())).toMatchObject({ code: "unimplemented" });
    expect(br.headers["accept-encoding"]).toBe("gzip");
    const gz = await httpRequest(port, "POST", GET, {
      headers: { ...proto, "content-encoding": "gzip" },
      body: gzipSync(getBody("Tom")),
    });
    expect(gz.status).toBe(200);
  });
});

describe("not_found is trusted only with tinycache's verdict marker", () => {
  it("a well-formed Connect not_found from a stranger counts as unavailable", async () => {
    const stranger = http.createServer((req, res) => {
      req.resume();
      res.writeHead(404, { "content-type": "application/json" });
      res.end('{"code":"not_found","message":"no such route"}');
    });
    stranger.listen(0, "127.0.0.1");
    await once(stranger, "listening");
    cleanups.push(() => new Promise((r) => stranger.close(r)));
    const pool = new ConnectPool({ self: "http://x", registry: lookup() });
    cleanups.push(() => pool.close());
    pool.setPeers(`http://127.0.0.1:${(stranger.address() as AddressInfo).port}`);
    const e = await peerError(pool.peers()[0]!.get({ group: "scores", key: "Tom" }));
    expect(e.kind).toBe("unavailable");
    expect(e.message).toContain("not_found without a verdict");
  });

  it("a tinycache owner's not_found carries the marker, on every protocol", async () => {
    const { port } = await served();
    for (const v of [
      { protocol: "connect", httpVersion: "1.1" },
      { protocol: "grpc", httpVersion: "2" },
      { protocol: "grpcweb", httpVersion: "1.1" },
    ] as const) {
      const pool = new ConnectPool({ self: "http://x", registry: lookup(), ...v });
      cleanups.push(() => pool.close());
      pool.setPeers(`http://127.0.0.1:${port}`);
      const e = await peerError(pool.peers()[0]!.get({ group: "scores", key: "nobody" }));
      expect(e.kind).toBe("not_found");
    }
    const raw = await httpRequest(port, "POST", GET, {
      headers: { "content-type": "application/proto" },
      body: getBody("nobody"),
    });
    expect(raw.status).toBe(404);
    expect(raw.headers["tinycache-verdict"]).toBe("not_found");
  });
});

const FDS_NEEDED = 2 * 1000 + 200;
const fds = await fileDescriptorLimit();
const enoughFds = fds === undefined || fds >= FDS_NEEDED;

describe("server limits of the HTTP/1.1 + h2c server", () => {
  it("defaults: a silent connection is closed within 30 s", () => {
    expect(DEFAULT_SERVER_LIMITS.headersTimeoutMs).toBeLessThanOrEqual(30_000);
  });

  it.skipIf(!enoughFds)(
    `1,000 connections that never send a byte are closed after headersTimeoutMs; calls are served meanwhile${enoughFds ? "" : ` (skipped: ulimit -n is ${fds}, below ${FDS_NEEDED})`}`,
    async () => {
      const { port } = await served({ serverLimits: { headersTimeoutMs: 500 } });
      const idle = await openIdleConnections(port, 1000);
      cleanups.push(() => idle.destroy());
      const client = new ConnectPool({ self: "http://y", registry: lookup() });
      cleanups.push(() => client.close());
      client.setPeers(`http://127.0.0.1:${port}`);
      expect(dec((await client.peers()[0]!.get({ group: "scores", key: "Tom" })).value)).toBe(
        "630",
      );
      await idle.allClosed;
    },
  );

  it("connections over maxConnections are closed at once", async () => {
    const { port } = await served({ serverLimits: { maxConnections: 10 } });
    const idle = await openIdleConnections(port, 14);
    cleanups.push(() => idle.destroy());
    await new Promise<void>((resolve) => {
      const check = () => (idle.open() === 10 ? resolve() : undefined);
      for (const s of idle.sockets) s.once("close", check);
      check();
    });
    expect(idle.open()).toBe(10);
  });

  it("an idle HTTP/2 session is closed after keepAliveTimeoutMs", async () => {
    const { port } = await served({ serverLimits: { keepAliveTimeoutMs: 200 } });
    const session = http2.connect(`http://127.0.0.1:${port}`);
    session.on("error", () => {});
    cleanups.push(() => session.destroy());
    const req = session.request({
      ":method": "POST",
      ":path": GET,
      "content-type": "application/proto",
    });
    req.end(getBody("Tom"));
    const [headers] = await once(req, "response");
    expect(headers[":status"]).toBe(200);
    req.resume();
    await once(session, "close");
  });
});

describe("createCleartextServer", () => {
  it("serves a handler of one's own over HTTP/1.1 and h2c on one port", async () => {
    const group = new FakeGroup("scores");
    group.data.set("Tom", { value: enc("630") });
    const pool = new ConnectPool({ self: "http://x", registry: lookup(group) });
    const server = createCleartextServer((req, res) => {
      if (req.url === "/hello") {
        res.writeHead(200, { "content-type": "text/plain" });
        res.end(`hello over ${req.httpVersion}`);
        return;
      }
      pool.handler(req, res);
    });
    const { port } = await server.listen(0, "127.0.0.1");
    cleanups.push(
      () => server.close(),
      () => pool.close(),
    );
    const h1 = await httpRequest(port, "GET", "/hello");
    expect(h1.body.toString()).toBe("hello over 1.1");
    const grpc = new ConnectPool({ self: "http://y", registry: lookup(), protocol: "grpc" });
    cleanups.push(() => grpc.close());
    grpc.setPeers(`http://127.0.0.1:${port}`);
    expect(dec((await grpc.peers()[0]!.get({ group: "scores", key: "Tom" })).value)).toBe("630");
  });
});

describe("GetMany batches from a hostile or buggy peer: refused, and the node keeps serving", () => {
  const GET_MANY = "/tinycache.v1.CacheService/GetMany";
  const proto = { "content-type": "application/proto" };
  const many = (keys: string[], group = "scores") =>
    toBinary(pb.GetManyRequestSchema, create(pb.GetManyRequestSchema, { group, keys }));
  const stillServing = async (port: number) => {
    const ok = await httpRequest(port, "POST", GET, { headers: proto, body: getBody("Tom") });
    expect(ok.status).toBe(200);
  };

  it("more than maxBatchKeys keys -> resource_exhausted", async () => {
    const { port } = await served({ maxBatchKeys: 10 });
    const keys = Array.from({ length: 11 }, (_, i) => `k${i}`);
    const res = await httpRequest(port, "POST", GET_MANY, { headers: proto, body: many(keys) });
    expect(JSON.parse(res.body.toString())).toMatchObject({ code: "resource_exhausted" });
    const fine = await httpRequest(port, "POST", GET_MANY, {
      headers: proto,
      body: many(keys.slice(1)),
    });
    expect(fine.status).toBe(200);
    await stillServing(port);
  });

  it("a body over maxBodyBytes -> resource_exhausted", async () => {
    const { port } = await served({ maxBodyBytes: 4096 });
    const keys = Array.from({ length: 600 }, (_, i) => `key${i}`);
    const res = await httpRequest(port, "POST", GET_MANY, { headers: proto, body: many(keys) });
    expect(JSON.parse(res.body.toString())).toMatchObject({ code: "resource_exhausted" });
    await stillServing(port);
  });

  it("a malformed body -> invalid_argument", async () => {
    const { port } = await served();
    for (const body of [Buffer.from([0x12, 0x7f, 0x01]), Buffer.from([0xff, 0xff, 0xff])]) {
      const res = await httpRequest(port, "POST", GET_MANY, { headers: proto, body });
      expect(res.status).toBe(400);
      expect(JSON.parse(res.body.toString())).toMatchObject({ code: "invalid_argument" });
    }
    await stillServing(port);
  });

  it("the answer stays within the asker's max_answer_bytes: the rest are resource_exhausted", async () => {
    const { port, group } = await served();
    for (const k of ["big1", "big2", "big3"]) group.data.set(k, { value: new Uint8Array(1000) });
    const body = toBinary(
      pb.GetManyRequestSchema,
      create(pb.GetManyRequestSchema, {
        group: "scores",
        keys: ["big1", "big2", "big3"],
        maxAnswerBytes: 2200n,
      }),
    );
    const res = await httpRequest(port, "POST", GET_MANY, { headers: proto, body });
    expect(res.status).toBe(200);
    const out = fromBinary(pb.GetManyResponseSchema, res.body);
    expect(
      out.results.map((r) => (r.result.case === "error" ? r.result.value.code : "ok")),
    ).toEqual(["ok", "ok", "resource_exhausted"]);
  });
});
