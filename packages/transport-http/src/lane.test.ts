import * as http from "node:http";
import * as https from "node:https";
import { HashRing } from "@tinycache/consistenthash";
import { ByteView, GroupRegistry, InvalidArgumentError, NotFoundError } from "@tinycache/core";
import type { PoolServer } from "@tinycache/core/transport";
import { decodeGetManyResponse, encodeGetManyRequest } from "@tinycache/protocol";
import {
  freePort,
  RawHttp,
  type RawResponse,
  rawRequest,
  selfSignedCert,
  sendLargeBody,
} from "@tinycache/testkit";
import { afterEach, describe, expect, it } from "vitest";
import { type Call, fakeGroup, keyLimitedLookup } from "./fixtures.test-util.js";
import { HttpPool, type HttpPoolOptions } from "./index.js";
import { decodeGetResponse, encodeSetRequest } from "./wire.js";

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");

/** A raw connection, destroyed after the test. */
class Raw extends RawHttp {
  constructor(port: number) {
    super(port);
    cleanups.push(() => this.destroy());
  }
}

/** A request's bytes; `extra`: more header lines, each ending in CRLF. */
const req = (method: string, path: string, body?: Uint8Array, extra = ""): Buffer =>
  rawRequest(method, path, { body, extra, host: "peer" });
const batch = (group: string, keys: string[], pathGroup = group, extra = "") =>
  req("POST", `/_groupcache/_batch/${pathGroup}`, encodeGetManyRequest(group, keys, 0), extra);

/** One request on a fresh connection. */
async function ask(port: number, bytes: Uint8Array): Promise<RawResponse> {
  const raw = new Raw(port);
  raw.write(bytes);
  const res = await raw.one();
  raw.socket.destroy();
  return res;
}

/** The headers whose values both front ends must agree on. */
const MATTERS = [
  "content-type",
  "content-length",
  "tinycache-batch",
  "tinycache-verdict",
  "allow",
  "x-content-type-options",
];

function essentials(r: RawResponse) {
  const headers: Record<string, string> = {};
  for (const name of MATTERS) {
    const v = r.headers[name];
    if (v !== undefined) headers[name] = v;
  }
  return { status: r.status, body: hex(r.body), headers };
}

/** A pool's peer server behind a fallback of ours that counts what node:http parsed. */
interface Front {
  pool: HttpPool;
  server: PoolServer;
  port: number;
  /** Requests node:http parsed (the fallback's 'request' events). */
  nodeRequests(): number;
}

async function front(options: HttpPoolOptions): Promise<Front> {
  const pool = new HttpPool(options);
  let requests = 0;
  const fallback = http.createServer((rq, rs) => {
    requests++;
    if (rq.url === "/healthz") rs.end("ok");
    else pool.handler(rq, rs);
  });
  const server = pool.peerServer(fallback);
  cleanups.push(() => pool.close());
  cleanups.push(() => server.close());
  const { port } = await server.listen(0, "127.0.0.1");
  return { pool, server, port, nodeRequests: () => requests };
}

/**
 * `scores` answers `v:<key>`, except `missing` (not found), `boom` (a getter error) and
 * `invalid` (invalid argument); keys over 16 bytes are refused. Two fronts on it: the
 * lane's and node:http's alone.
 */
async function fronts(opts: Partial<HttpPoolOptions> = {}) {
  const calls: Call[] = [];
  const scores = fakeGroup(
    "scores",
    async (key) => {
      if (key === "missing") throw new NotFoundError(key);
      if (key === "boom") throw new Error("getter failed");
      if (key === "invalid") throw new InvalidArgumentError("key is bad");
      return { value: ByteView.from(`v:${key}`) };
    },
    calls,
  );
  const base: HttpPoolOptions = {
    self: "http://127.0.0.1:1",
    registry: keyLimitedLookup(16, scores),
    ...opts,
  };
  const lane = await front({ ...base, lane: true });
  const node = await front({ ...base, lane: false });

  /**
   * Sends `bytes` to both, checks that the lane's server answered by the lane and the
   * other by node:http, that both answers agree, and returns them.
   */
  const both = async (bytes: Uint8Array) => {
    const laneBefore = lane.nodeRequests();
    const nodeBefore = node.nodeRequests();
    const a = await ask(lane.port, bytes);
    const b = await ask(node.port, bytes);
    expect(lane.nodeRequests(), "the lane answered").toBe(laneBefore);
    expect(node.nodeRequests(), "node:http answered").toBe(nodeBefore + 1);
    expect(essentials(a)).toEqual(essentials(b));
    return { lane: a, node: b };
  };
  return { lane, node, calls, both };
}

const text = (r: RawResponse) => r.body.toString("utf8");

describe("the lane and node:http answer every peer request alike", () => {
  it("GET hit: 200 protobuf", async () => {
    const { both, calls } = await fronts();
    const { lane } = await both(req("GET", "/_groupcache/scores/Tom"));
    expect(lane.status).toBe(200);
    expect(lane.headers["content-type"]).toBe("application/x-protobuf");
    expect(lane.headers["tinycache-batch"]).toBe("1");
    expect(Buffer.from(decodeGetResponse(lane.body).value).toString()).toBe("v:Tom");
    expect(calls.map((c) => `${c.op} ${c.key}`)).toEqual(["get Tom", "get Tom"]);
  });

  it("GET with an escaped key and a query: the same key", async () => {
    const { both, calls } = await fronts();
    const { lane } = await both(req("GET", "/_groupcache/scores/a%20b+c?x=1"));
    expect(lane.status).toBe(200);
    expect(calls.map((c) => c.key)).toEqual(["a b+c", "a b+c"]);
  });

  it("GET not found: 404 with the verdict header", async () => {
    const { both } = await fronts();
    const { lane } = await both(req("GET", "/_groupcache/scores/missing"));
    expect(lane.status).toBe(404);
    expect(lane.headers["tinycache-verdict"]).toBe("not_found");
    expect(lane.headers["x-content-type-options"]).toBe("nosniff");
    expect(lane.headers["content-type"]).toBe("text/plain; charset=utf-8");
  });

  it("GET of a getter error: 500; of an invalid argument: 400", async () => {
    const { both } = await fronts();
    expect((await both(req("GET", "/_groupcache/scores/boom"))).lane.status).toBe(500);
    expect((await both(req("GET", "/_groupcache/scores/invalid"))).lane.status).toBe(400);
  });

  it("GET of an unknown group: 404 without a verdict", async () => {
    const { both } = await fronts();
    const { lane } = await both(req("GET", "/_groupcache/nope/k"));
    expect(lane.status).toBe(404);
    expect(lane.headers["tinycache-verdict"]).toBeUndefined();
    expect(text(lane)).toBe("no such group: nope\n");
  });

  it("GET with a key over maxKeyBytes: 400, the group never asked", async () => {
    const { both, calls } = await fronts();
    const { lane } = await both(req("GET", `/_groupcache/scores/${"k".repeat(17)}`));
    expect(lane.status).toBe(400);
    expect(text(lane)).toBe("key too long (max 16 bytes)\n");
    expect(calls).toEqual([]);
  });

  it("GET without a key part, or with a bad escape: 400", async () => {
    const { both } = await fronts();
    expect((await both(req("GET", "/_groupcache/scores"))).lane.status).toBe(400);
    expect((await both(req("GET", "/_groupcache/scores/%zz"))).lane.status).toBe(400);
  });

  it("batch: one answer per key, in order (a value, not found, a getter error, a key too long)", async () => {
    const { both } = await fronts();
    const { lane } = await both(batch("scores", ["Tom", "missing", "boom", "k".repeat(17)]));
    expect(lane.status).toBe(200);
    expect(lane.headers["content-type"]).toBe("application/x-protobuf");
    const out = decodeGetManyResponse(lane.body);
    expect(out.map((r) => (r.ok ? Buffer.from(r.value.value).toString() : r.code))).toEqual([
      "v:Tom",
      "not_found",
      "internal",
      "invalid_argument",
    ]);
  });

  it("batch with an empty group in the body: the path's group", async () => {
    const { both } = await fronts();
    const { lane } = await both(batch("", ["a"], "scores"));
    expect(lane.status).toBe(200);
    expect(decodeGetManyResponse(lane.body).map((r) => r.ok)).toEqual([true]);
  });

  it("malformed batch body: 400", async () => {
    const { both } = await fronts();
    const body = Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0xff]);
    const { lane } = await both(req("POST", "/_groupcache/_batch/scores", body));
    expect(lane.status).toBe(400);
    expect(text(lane)).toBe("bad request: malformed GetManyRequest\n");
  });

  it("batch of more than maxBatchKeys keys: 413; exactly maxBatchKeys: 200", async () => {
    const { both } = await fronts({ maxBatchKeys: 3 });
    expect((await both(batch("scores", ["a", "b", "c", "d"]))).lane.status).toBe(413);
    expect((await both(batch("scores", ["a", "b", "c"]))).lane.status).toBe(200);
  });

  it("batch whose group differs from the path: 400", async () => {
    const { both } = await fronts();
    const { lane } = await both(batch("other", ["a"], "scores"));
    expect(lane.status).toBe(400);
    expect(text(lane)).toBe("bad request: GetManyRequest group differs from the path\n");
  });

  it("batch of an unknown group: 404 without a verdict; a batch path with a slash: 400", async () => {
    const { both } = await fronts();
    const unknown = (await both(batch("nope", ["a"]))).lane;
    expect(unknown.status).toBe(404);
    expect(unknown.headers["tinycache-verdict"]).toBeUndefined();
    expect((await both(batch("scores", ["a"], "scores/x"))).lane.status).toBe(400);
  });

  it("PUT: 200 with an empty body, the value set", async () => {
    const { both, calls } = await fronts();
    const value = Uint8Array.from({ length: 256 }, (_, i) => i);
    const body = encodeSetRequest("scores", "k", value, 1_700_000_000_123);
    const { lane } = await both(req("PUT", "/_groupcache/scores/k", body));
    expect(lane.status).toBe(200);
    expect(lane.body.length).toBe(0);
    expect(lane.headers["content-length"]).toBe("0");
    expect(lane.headers["content-type"]).toBeUndefined();
    expect(calls.map((c) => [c.op, c.key, hex(c.value ?? new Uint8Array()), c.expiresAt])).toEqual([
      ["set", "k", hex(value), 1_700_000_000_123],
      ["set", "k", hex(value), 1_700_000_000_123],
    ]);
  });

  it("malformed PUT: 400; a PUT whose key differs from the path: 400", async () => {
    const { both, calls } = await fronts();
    const bad = Buffer.from([0x12, 0xff, 0xff]);
    expect((await both(req("PUT", "/_groupcache/scores/k", bad))).lane.status).toBe(400);
    const other = encodeSetRequest("scores", "other", Buffer.from("v"));
    expect((await both(req("PUT", "/_groupcache/scores/k", other))).lane.status).toBe(400);
    expect(calls).toEqual([]);
  });

  it("DELETE: 200 with an empty body, the key removed", async () => {
    const { both, calls } = await fronts();
    const { lane } = await both(req("DELETE", "/_groupcache/scores/k"));
    expect(lane.status).toBe(200);
    expect(lane.body.length).toBe(0);
    expect(calls.map((c) => `${c.op} ${c.key}`)).toEqual(["remove k", "remove k"]);
  });

  it("POST to a path that is not a batch: 405 with Allow", async () => {
    const { both } = await fronts();
    const { lane } = await both(req("POST", "/_groupcache/scores/k", Buffer.from("x")));
    expect(lane.status).toBe(405);
    expect(lane.headers.allow).toBe("GET, PUT, DELETE");
  });

  describe("with auth on (the header is captured by the lane)", () => {
    const secret = "s3cret";
    it.each([
      ["no secret", 401, ""],
      ["a wrong secret", 401, "X-Tinycache-Auth: nope\r\n"],
      ["the secret", 200, `x-tinycache-auth: ${secret}\r\n`],
      ["the secret, its name in any case, padded", 200, `X-TINYCACHE-AUTH:  ${secret} \r\n`],
    ])("a GET with %s: %i", async (_what, status, header) => {
      const { both } = await fronts({ auth: { secret } });
      const { lane } = await both(req("GET", "/_groupcache/scores/k", undefined, header));
      expect(lane.status).toBe(status);
    });

    it("a batch with the secret: 200; without: 401, the group never asked", async () => {
      const { both, calls } = await fronts({ auth: { secret } });
      const ok = await both(batch("scores", ["a"], "scores", `x-tinycache-auth: ${secret}\r\n`));
      expect(ok.lane.status).toBe(200);
      calls.length = 0;
      expect((await both(batch("scores", ["a"]))).lane.status).toBe(401);
      expect(calls).toEqual([]);
    });

    it("a secret sent twice is node:http's (it joins them): 401", async () => {
      const { lane, node } = await fronts({ auth: { secret } });
      const twice = `x-tinycache-auth: ${secret}\r\nx-tinycache-auth: ${secret}\r\n`;
      const bytes = req("GET", "/_groupcache/scores/k", undefined, twice);
      const before = lane.nodeRequests();
      const a = await ask(lane.port, bytes);
      expect(lane.nodeRequests()).toBe(before + 1);
      expect(essentials(a)).toEqual(essentials(await ask(node.port, bytes)));
      expect(a.status).toBe(401);
    });
  });
});

describe("HttpPool's lane option", () => {
  it("listen() serves through the lane by default; a path outside basePath is node:http's 404", async () => {
    const registry = keyLimitedLookup(
      16,
      fakeGroup("scores", async (k) => ({ value: ByteView.from(k) })),
    );
    const pool = new HttpPool({ self: "http://127.0.0.1:1", registry });
    cleanups.push(() => pool.close());
    const { port } = await pool.listen(0, "127.0.0.1");
    const names = (r: RawResponse) => r.lines.map(([n]) => n);
    // The lane writes the protocol's header lines, then Content-Length, Date, keep-alive.
    const hit = await ask(port, req("GET", "/_groupcache/scores/k"));
    expect(hit.status).toBe(200);
    expect(names(hit).slice(0, 3)).toEqual(["content-type", "tinycache-batch", "content-length"]);
    // node:http writes writeHead's order: Content-Length before tinycache-batch.
    const outside = await ask(port, req("GET", "/elsewhere"));
    expect(outside.status).toBe(404);
    expect(text(outside)).toBe("path outside /_groupcache/\n");
    expect(names(outside).indexOf("content-length")).toBeLessThan(
      names(outside).indexOf("tinycache-batch"),
    );
  });

  it("throws a TypeError naming lane for a lane that is not a boolean", () => {
    expect(
      () =>
        new HttpPool({
          self: "http://127.0.0.1:1",
          registry: new GroupRegistry(),
          lane: "yes" as unknown as boolean,
        }),
    ).toThrow(TypeError);
    expect(
      () =>
        new HttpPool({
          self: "http://127.0.0.1:1",
          registry: new GroupRegistry(),
          lane: "yes" as unknown as boolean,
        }),
    ).toThrow(/lane/);
  });

  it("peerServer(fallback) serves the pool's requests through the lane and the fallback's own routes", async () => {
    const { lane } = await fronts();
    const before = lane.nodeRequests();
    const hit = await ask(lane.port, req("GET", "/_groupcache/scores/k"));
    expect(hit.status).toBe(200);
    expect(lane.nodeRequests()).toBe(before);
    const health = await ask(lane.port, req("GET", "/healthz"));
    expect(text(health)).toBe("ok");
    expect(lane.nodeRequests()).toBe(before + 1);
    // One connection: the lane's answers, then the fallback's, then node:http keeps it.
    const raw = new Raw(lane.port);
    raw.write(Buffer.concat([req("GET", "/_groupcache/scores/a"), req("GET", "/healthz")]));
    expect((await raw.one()).status).toBe(200);
    expect(text(await raw.one())).toBe("ok");
    raw.write(req("GET", "/_groupcache/scores/b"));
    const after = await raw.one();
    expect(Buffer.from(decodeGetResponse(after.body).value).toString()).toBe("v:b");
  });
});

describe("hardening: the lane's server goes on after bad requests", () => {
  it("after a malformed batch and a body over maxBodyBytes (node:http's 413, closed), new connections are served", async () => {
    const { lane } = await fronts({ maxBodyBytes: 1024 });
    const before = lane.nodeRequests();
    // A malformed batch: the lane's 400, and its connection stays.
    const raw = new Raw(lane.port);
    raw.write(req("POST", "/_groupcache/_batch/scores", Buffer.from([0xff, 0xff])));
    expect((await raw.one()).status).toBe(400);
    raw.write(req("GET", "/_groupcache/scores/k"));
    expect((await raw.one()).status).toBe(200);
    expect(lane.nodeRequests()).toBe(before);
    // A whole batch over the cap: handed over; node:http says 413 and closes.
    const big = new Raw(lane.port);
    big.write(req("POST", "/_groupcache/_batch/scores", Buffer.alloc(2000, 0x0a)));
    const tooLarge = await big.one();
    expect(tooLarge.status).toBe(413);
    expect(tooLarge.headers.connection).toBe("close");
    await big.closed;
    expect(lane.nodeRequests()).toBe(before + 1);
    // A declared 8 MiB body: node:http answers 413 and stops reading it.
    const huge = await sendLargeBody(lane.port, {
      path: "/_groupcache/_batch/scores",
      totalBytes: 8 * 1024 * 1024,
      contentLength: true,
    });
    expect(huge.status).toBe(413);
    expect(huge.cutOff).toBe(true);
    // New connections: the lane's again.
    const after = lane.nodeRequests();
    const res = await ask(lane.port, batch("scores", ["x", "y"]));
    expect(decodeGetManyResponse(res.body).map((r) => r.ok)).toEqual([true, true]);
    expect(lane.nodeRequests()).toBe(after);
  });
});

describe("a cluster of two HttpPools with lanes", () => {
  it("gets each key from its owner, single and batched, every peer request answered by a lane", async () => {
    const ports = [await freePort(), await freePort()];
    const urls = ports.map((p) => `http://127.0.0.1:${p}`);
    const loads: string[][] = [[], []];
    const groups: ReturnType<GroupRegistry["newGroup"]>[] = [];
    const fronts: { pool: HttpPool; nodeRequests: () => number }[] = [];
    for (let i = 0; i < 2; i++) {
      const registry = new GroupRegistry();
      groups.push(
        registry.newGroup({
          name: "scores",
          cacheBytes: 1 << 20,
          // No hot copies: every get of a remote key goes to its owner (counted below).
          hotCache: false,
          getter: async (k) => {
            loads[i]?.push(k);
            return `v:${k}`;
          },
        }),
      );
      const pool = new HttpPool({ self: urls[i] as string, registry, health: false });
      let requests = 0;
      const server = pool.peerServer(
        http.createServer((rq, rs) => {
          requests++;
          pool.handler(rq, rs);
        }),
      );
      cleanups.push(() => pool.close());
      cleanups.push(() => server.close());
      await server.listen(ports[i] as number, "127.0.0.1");
      pool.setPeers(...urls);
      registry.registerPeers(pool);
      fronts.push({ pool, nodeRequests: () => requests });
    }
    const ring = new HashRing().add(...urls);
    const keys = Array.from({ length: 40 }, (_, i) => `key ${i}`);
    const remote = keys.filter((k) => ring.get(k) === urls[1]);
    expect(remote.length).toBeGreaterThan(2);
    const [a] = groups;
    if (a === undefined) throw new Error("no group");
    // A lone get first (it teaches node 0 that node 1 speaks batches), then the rest at once.
    expect((await a.get(remote[0] as string)).toString()).toBe(`v:${remote[0]}`);
    const got = await Promise.all(keys.map((k) => a.get(k)));
    expect(got.map((v) => v.toString())).toEqual(keys.map((k) => `v:${k}`));
    // Each key loaded once, on its owner.
    for (const k of keys) {
      const owner = urls.indexOf(ring.get(k) as string);
      expect(loads[owner]?.filter((x) => x === k)).toEqual([k]);
      expect(loads[1 - owner]).not.toContain(k);
    }
    const stats = fronts[0]?.pool.stats().peerBatches[0];
    expect(stats?.batches).toBeGreaterThanOrEqual(1);
    expect(stats?.batchedKeys).toBe(remote.length);
    // Node 1's node:http never saw a request: its lane answered them all.
    expect(fronts[1]?.nodeRequests()).toBe(0);
    // And a get from node 1 of node 0's keys, the other way.
    const [, b] = groups;
    const local = keys.filter((k) => ring.get(k) === urls[0]);
    const back = await Promise.all(local.map((k) => b?.get(k)));
    expect(back.map((v) => v?.toString())).toEqual(local.map((k) => `v:${k}`));
    expect(fronts[0]?.nodeRequests()).toBe(0);
  });
});

const tls = selfSignedCert();

/** One HTTPS GET trusting `ca`. */
function httpsGet(
  port: number,
  path: string,
  ca: Buffer,
): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const r = https.request({ host: "127.0.0.1", port, path, ca, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
      res.on("error", reject);
    });
    r.on("error", reject);
    r.end();
  });
}

describe.skipIf(tls === undefined)("lane with tls (SKIPPED without the openssl CLI)", () => {
  const { key, cert } = tls ?? { key: Buffer.alloc(0), cert: Buffer.alloc(0) };
  const registry = () =>
    keyLimitedLookup(
      16,
      fakeGroup("scores", async (k) => ({ value: ByteView.from(`v:${k}`) })),
    );

  it("an HttpPool with tls ignores lane: listen serves HTTPS", async () => {
    const pool = new HttpPool({
      self: "https://127.0.0.1:1",
      registry: registry(),
      tls: { key, cert },
      lane: true,
    });
    cleanups.push(() => pool.close());
    const { port } = await pool.listen(0, "127.0.0.1");
    const res = await httpsGet(port, "/_groupcache/scores/k", cert);
    expect(res.status).toBe(200);
    expect(Buffer.from(decodeGetResponse(res.body).value).toString()).toBe("v:k");
  });

  // peerServer's fallback is "a node:http server", and https.Server is one to TypeScript;
  // the tls option's doc sends users with their own server to https.createServer.
  it.each([
    ["with", true],
    ["without", false],
  ])("peerServer of an https server serves HTTPS, %s the tls option", async (_w, withTls) => {
    const pool = new HttpPool({
      self: "https://127.0.0.1:1",
      registry: registry(),
      ...(withTls ? { tls: { key, cert } } : {}),
    });
    const server = pool.peerServer(https.createServer({ key, cert }, pool.handler));
    cleanups.push(() => pool.close());
    cleanups.push(() => server.close());
    const { port } = await server.listen(0, "127.0.0.1");
    const res = await httpsGet(port, "/_groupcache/scores/k", cert);
    expect(res.status).toBe(200);
    expect(Buffer.from(decodeGetResponse(res.body).value).toString()).toBe("v:k");
  });
});
