/**
 * The Connect peer port's two front ends answer alike: every call of the direct path
 * (Connect unary, binary, uncompressed, HTTP/1.1) sent, byte for byte, to a pool served
 * with the lean lane (`lane: true`) and to one served by node:http alone (`lane: false`)
 * gets the same status, body bytes (so the same Connect error code and message) and the
 * headers that matter (content type and length, the verdict marker, keep-alive). One
 * difference, by design: a call refused before its body is read (auth, a bad
 * Connect-Timeout-Ms) closes the connection on node:http (the unread body could be of any
 * size), while the lane, which holds the whole body already, keeps it.
 *
 * Both servers are `pool.peerServer(handler)` with a handler of ours that counts the
 * requests node:http (or node:http2) delivered: a request the lane answers never reaches
 * it; one the lane hands over always does. So "the lane answered" is "the handler of the
 * lane's server saw no request", and "handed over" is "it saw one more". Then: everything
 * else (JSON, gzip, gRPC, gRPC-Web, HTTP/2, Connect GET, odd heads) is handed over and
 * answered as before, deadlines and clients going away, a two-pool cluster, the options,
 * and the port going on after bad requests. Nothing sleeps: tests await answers and events.
 *
 * Raw node:net clients send exact bytes. Not node:http's client with `agent: false`: it
 * sends `Connection: close`, which the lane (keep-alive only) hands to node:http.
 */
import { once } from "node:events";
import { type AddressInfo, connect, createServer as createNetServer, type Socket } from "node:net";
import { gzipSync } from "node:zlib";
import {
  create,
  type DescMessage,
  fromBinary,
  type MessageInitShape,
  toBinary,
} from "@bufbuild/protobuf";
import { HashRing } from "@tinycache/consistenthash";
import { GroupRegistry, NotFoundError } from "@tinycache/core";
import type { GroupLookup, PoolServer } from "@tinycache/core/transport";
import { tinycachev1 as pb } from "@tinycache/protocol";
import { freePort, RawHttp, type RawResponse, rawRequest, sendLargeBody } from "@tinycache/testkit";
import { afterEach, describe, expect, it } from "vitest";
import { dec, enc, FakeGroup } from "./fake-group.test-util.js";
import {
  ConnectPool,
  type ConnectPoolOptions,
  createCleartextServer,
  type PeerProtocol,
  type RequestListener,
} from "./index.js";
import { resolveOptions } from "./options.js";
import { CacheServer } from "./server.js";

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

const SERVICE = "/tinycache.v1.CacheService/";
/** The headers connect-node's and our own Connect clients send. */
const PROTO = "Content-Type: application/proto\r\nConnect-Protocol-Version: 1\r\n";

type Method = "Get" | "GetMany" | "Set" | "Remove";
/** A Connect unary call's bytes (binary, `extra` headers after the protocol's). */
const call = (method: Method, body: Uint8Array, extra = "", headers = PROTO): Buffer =>
  req("POST", `${SERVICE}${method}`, body, headers + extra);

const bin = <Desc extends DescMessage>(schema: Desc, init: MessageInitShape<Desc>) =>
  toBinary(schema, create(schema, init));
const getBody = (key: string, group = "scores") => bin(pb.GetRequestSchema, { group, key });
const manyBody = (keys: string[], group = "scores") =>
  bin(pb.GetManyRequestSchema, { group, keys });

/** A Connect call with the JSON codec (connect-node's adapter answers it). */
const jsonGetRequest = (key = "Tom"): Buffer =>
  req(
    "POST",
    `${SERVICE}Get`,
    Buffer.from(JSON.stringify({ group: "scores", key })),
    "Content-Type: application/json\r\n",
  );

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
  "content-encoding",
  "tinycache-verdict",
  "accept-encoding",
  "grpc-status",
  "connection",
  "keep-alive",
];

/** A Connect error's JSON: its code and message (null when the body is no error JSON). */
function connectError(r: RawResponse): { code: string; message: string } | null {
  if (r.status === 200 || !r.headers["content-type"]?.startsWith("application/json")) return null;
  const { code, message } = JSON.parse(r.body.toString("utf8")) as {
    code: string;
    message: string;
  };
  return { code, message };
}

function essentials(r: RawResponse) {
  const headers: Record<string, string> = {};
  for (const name of MATTERS) {
    const v = r.headers[name];
    if (v !== undefined) headers[name] = v;
  }
  return { status: r.status, headers, error: connectError(r), body: hex(r.body) };
}

function lookup(...groups: FakeGroup[]): GroupLookup {
  const m = new Map(groups.map((g) => [g.name, g]));
  return { getGroup: (name) => m.get(name) };
}

/** A pool's peer server behind a handler of ours that counts what node:http delivered. */
interface Front {
  pool: ConnectPool;
  server: PoolServer;
  port: number;
  url: string;
  /** Requests node:http or node:http2 delivered to the handler. */
  nodeRequests(): number;
  /** Resolves at the next request node:http delivers (once its head is read). */
  nextNodeRequest(): Promise<void>;
}

async function front(options: ConnectPoolOptions): Promise<Front> {
  const pool = new ConnectPool(options);
  let requests = 0;
  let onRequest: (() => void) | undefined;
  const handler: RequestListener = (rq, rs) => {
    requests++;
    onRequest?.();
    if (rq.url === "/healthz") rs.end("ok");
    else pool.handler(rq, rs);
  };
  const server = pool.peerServer(handler);
  cleanups.push(() => pool.close());
  cleanups.push(() => server.close());
  const { port } = await server.listen(0, "127.0.0.1");
  return {
    pool,
    server,
    port,
    url: `http://127.0.0.1:${port}`,
    nodeRequests: () => requests,
    nextNodeRequest: () =>
      new Promise<void>((resolve) => {
        onRequest = resolve;
      }),
  };
}

/**
 * Sends `bytes` (a call that asks for the "hang" key) on `raw` and waits until the group
 * has the call: its signal, and a promise of that signal's abort.
 */
async function hang(raw: Raw, group: FakeGroup, bytes: Buffer) {
  const started = group.hangStarted;
  raw.write(bytes);
  await started;
  const signal = group.hangSignals[0];
  if (signal === undefined) throw new Error("no signal");
  return { signal, aborted: once(signal, "abort") };
}

/**
 * `scores` holds Tom = 630 (and `exp`, with an expiry); `nobody` is not found, `boom` a
 * getter error, `hang` never answers (until its signal aborts); keys over 16 bytes are
 * refused. Two fronts on it: the lane's and node:http's alone.
 */
async function fronts(opts: Partial<ConnectPoolOptions> = {}) {
  const group = new FakeGroup("scores", 16);
  group.data.set("Tom", { value: enc("630") });
  group.data.set("exp", { value: enc("soon"), expiresAt: 1_900_000_000_123 });
  const base: ConnectPoolOptions = {
    self: "http://127.0.0.1:1",
    registry: lookup(group),
    ...opts,
  };
  const lane = await front({ ...base, lane: true });
  const node = await front({ ...base, lane: false });

  /**
   * Sends `bytes` to both, checks who answered (by default the lane on the lane's server;
   * with `handedOver`, node:http on both) and that both answers agree; returns them.
   * `refused`: node:http refuses the request itself (a bad head), not delivering it.
   * `refusedUnread`: a call refused before its body is read (auth, a bad deadline), which
   * node:http answers with `Connection: close` (the body may be of any size: it is not
   * read), the lane, holding the whole body already, with keep-alive.
   */
  const both = async (
    bytes: Uint8Array,
    {
      handedOver = false,
      refusedUnread = false,
      refused = false,
    }: { handedOver?: boolean; refusedUnread?: boolean; refused?: boolean } = {},
  ) => {
    const laneBefore = lane.nodeRequests();
    const nodeBefore = node.nodeRequests();
    const a = await ask(lane.port, bytes);
    const b = await ask(node.port, bytes);
    expect(lane.nodeRequests(), handedOver ? "handed over" : "the lane answered").toBe(
      laneBefore + (handedOver && !refused ? 1 : 0),
    );
    expect(node.nodeRequests(), "node:http answered").toBe(nodeBefore + (refused ? 0 : 1));
    if (refusedUnread) {
      expect(a.headers.connection).toBe("keep-alive");
      expect(b.headers.connection).toBe("close");
      const { connection: _a, "keep-alive": _ka, ...restA } = essentials(a).headers;
      const { connection: _b, "keep-alive": _kb, ...restB } = essentials(b).headers;
      expect({ ...essentials(a), headers: restA }).toEqual({ ...essentials(b), headers: restB });
    } else {
      expect(essentials(a)).toEqual(essentials(b));
    }
    return { lane: a, node: b };
  };
  return { lane, node, group, both };
}

describe("the lane and node:http answer every direct-path call alike", () => {
  it("Get hit: 200 application/proto, the GetResponse (value and expiry)", async () => {
    const { both, group } = await fronts();
    const { lane } = await both(call("Get", getBody("Tom")));
    expect(lane.status).toBe(200);
    expect(lane.headers["content-type"]).toBe("application/proto");
    expect(dec(fromBinary(pb.GetResponseSchema, lane.body).value)).toBe("630");
    const exp = (await both(call("Get", getBody("exp")))).lane;
    expect(fromBinary(pb.GetResponseSchema, exp.body).expiresAtMs).toBe(1_900_000_000_123n);
    expect(group.calls).toEqual(["Tom", "Tom", "exp", "exp"]);
  });

  it("Get without Connect-Protocol-Version (optional): the lane's too", async () => {
    const { both } = await fronts();
    const { lane } = await both(
      call("Get", getBody("Tom"), "", "content-type: application/proto\r\n"),
    );
    expect(lane.status).toBe(200);
  });

  it("Get not found: 404 not_found with the verdict header the client relies on", async () => {
    const { both } = await fronts();
    const { lane } = await both(call("Get", getBody("nobody")));
    expect(lane.status).toBe(404);
    expect(lane.headers["content-type"]).toBe("application/json");
    expect(lane.headers["tinycache-verdict"]).toBe("not_found");
    expect(connectError(lane)?.code).toBe("not_found");
  });

  it("Get of a getter error: internal, marked getter_failed", async () => {
    const { both } = await fronts();
    const { lane } = await both(call("Get", getBody("boom")));
    expect(lane.status).toBe(500);
    expect(lane.headers["tinycache-verdict"]).toBe("getter_failed");
    expect(connectError(lane)).toEqual({ code: "internal", message: "database is down" });
  });

  it("Get of an unknown group: failed_precondition, no verdict", async () => {
    const { both } = await fronts();
    const { lane } = await both(call("Get", getBody("Tom", "nope")));
    expect(connectError(lane)).toEqual({
      code: "failed_precondition",
      message: "no such group: nope",
    });
    expect(lane.headers["tinycache-verdict"]).toBeUndefined();
  });

  it("Get with a key over maxKeyBytes or an empty group: invalid_argument, the group never asked", async () => {
    const { both, group } = await fronts();
    const long = (await both(call("Get", getBody("k".repeat(17))))).lane;
    expect(long.status).toBe(400);
    expect(connectError(long)).toEqual({
      code: "invalid_argument",
      message: "key too long (max 16 bytes)",
    });
    // 9 characters, 18 UTF-8 bytes: the limit is in bytes.
    expect(connectError((await both(call("Get", getBody("ééééééééé")))).lane)?.code).toBe(
      "invalid_argument",
    );
    expect(connectError((await both(call("Get", getBody("Tom", "")))).lane)?.code).toBe(
      "invalid_argument",
    );
    expect(group.calls).toEqual([]);
  });

  it("GetMany: one answer per key, in order (a value, not found, a getter error, a key too long)", async () => {
    const { both } = await fronts();
    const keys = ["Tom", "nobody", "boom", "k".repeat(17), "exp"];
    const { lane } = await both(call("GetMany", manyBody(keys)));
    expect(lane.status).toBe(200);
    expect(lane.headers["content-type"]).toBe("application/proto");
    const out = fromBinary(pb.GetManyResponseSchema, lane.body).results;
    expect(out.map((r) => r.key)).toEqual(keys);
    expect(
      out.map((r) =>
        r.result.case === "value" ? dec(r.result.value.value) : r.result.value?.code,
      ),
    ).toEqual(["630", "not_found", "internal", "invalid_argument", "soon"]);
  });

  it("GetMany of no keys: 200, an empty answer; of an unknown group: failed_precondition", async () => {
    const { both } = await fronts();
    const empty = (await both(call("GetMany", manyBody([])))).lane;
    expect(empty.status).toBe(200);
    expect(fromBinary(pb.GetManyResponseSchema, empty.body).results).toEqual([]);
    const nope = (await both(call("GetMany", manyBody(["Tom"], "nope")))).lane;
    expect(connectError(nope)?.code).toBe("failed_precondition");
  });

  it("GetMany over maxBatchKeys: resource_exhausted; exactly maxBatchKeys: 200", async () => {
    const { both } = await fronts({ maxBatchKeys: 3 });
    const over = (await both(call("GetMany", manyBody(["a", "b", "c", "d"])))).lane;
    expect(over.status).toBe(429);
    expect(connectError(over)?.code).toBe("resource_exhausted");
    expect((await both(call("GetMany", manyBody(["a", "b", "c"])))).lane.status).toBe(200);
  });

  it.each<[Method, number[]]>([
    ["Get", [0xff, 0xff, 0xff, 0xff]],
    ["Get", [0x12, 0x7f, 0x01]],
    ["GetMany", [0x12, 0x7f, 0x01]],
    ["GetMany", [0x0a, 0xff, 0xff, 0xff, 0xff, 0xff]],
    ["Set", [0x1a, 0xff, 0xff]],
    ["Remove", [0xff]],
  ])("a malformed %s body %j: invalid_argument", async (method, bytes) => {
    const { both, group } = await fronts();
    const { lane } = await both(call(method, Buffer.from(bytes)));
    expect(lane.status).toBe(400);
    expect(connectError(lane)?.code).toBe("invalid_argument");
    expect(group.calls).toEqual([]);
  });

  it("an empty body (Content-Length: 0): the empty message, whose group is empty", async () => {
    const { both } = await fronts();
    const { lane } = await both(call("Get", new Uint8Array(0)));
    expect(connectError(lane)).toEqual({
      code: "invalid_argument",
      message: "group name is empty",
    });
  });

  it("Set (with expiry) and Remove: 200, an empty proto body, the group changed", async () => {
    const { both, group } = await fronts();
    const value = Uint8Array.from({ length: 256 }, (_, i) => i);
    const set = bin(pb.SetRequestSchema, {
      group: "scores",
      key: "k",
      value,
      expiresAtMs: 1_800_000_000_000n,
    });
    const { lane } = await both(call("Set", set));
    expect(lane.status).toBe(200);
    expect(lane.headers["content-type"]).toBe("application/proto");
    expect(lane.headers["content-length"]).toBe("0");
    expect(lane.body.length).toBe(0);
    expect(hex(group.data.get("k")?.value ?? new Uint8Array())).toBe(hex(value));
    expect(group.data.get("k")?.expiresAt).toBe(1_800_000_000_000);
    const removed = (
      await both(call("Remove", bin(pb.RemoveRequestSchema, { group: "scores", key: "k" })))
    ).lane;
    expect(removed.status).toBe(200);
    expect(removed.body.length).toBe(0);
    expect(group.data.has("k")).toBe(false);
  });

  it("Set of an unknown group or a key too long: refused, nothing stored", async () => {
    const { both, group } = await fronts();
    const nope = bin(pb.SetRequestSchema, { group: "nope", key: "k", value: enc("v") });
    expect(connectError((await both(call("Set", nope))).lane)?.code).toBe("failed_precondition");
    const long = bin(pb.SetRequestSchema, {
      group: "scores",
      key: "k".repeat(17),
      value: enc("v"),
    });
    expect(connectError((await both(call("Set", long))).lane)?.code).toBe("invalid_argument");
    const rm = bin(pb.RemoveRequestSchema, { group: "scores", key: "k".repeat(17) });
    expect(connectError((await both(call("Remove", rm))).lane)?.code).toBe("invalid_argument");
    expect(group.data.size).toBe(2);
  });

  it.each(["abc", "12345678901", "-1", "1.5", "", " 5", "5 ms"])(
    "a malformed Connect-Timeout-Ms %j: the error connect-node answers for it",
    async (timeout) => {
      const { both, node, group } = await fronts();
      const extra = `Connect-Timeout-Ms: ${timeout}\r\n`;
      const { lane } = await both(call("Get", getBody("Tom"), extra), {
        refusedUnread: timeout !== " 5",
      });
      // connect-node's own answer to the same header (a JSON call goes to its adapter).
      const json = req(
        "POST",
        `${SERVICE}Get`,
        Buffer.from('{"group":"scores","key":"Tom"}'),
        `Content-Type: application/json\r\nConnect-Protocol-Version: 1\r\n${extra}`,
      );
      const adapter = await ask(node.port, json);
      // (" 5": both HTTP servers trim header values, so it is a good 5 ms.)
      if (timeout === " 5") {
        expect([lane.status, adapter.status]).toEqual([200, 200]);
        return;
      }
      expect(adapter.status).toBe(400);
      expect(lane.status).toBe(400);
      expect(connectError(lane)).toEqual(connectError(adapter));
      expect(connectError(lane)).toEqual({
        code: "invalid_argument",
        message: `protocol error: invalid connect timeout value: ${timeout.trim()}`,
      });
      expect(group.calls).toEqual([]);
    },
  );

  it("a Connect-Timeout-Ms beyond setTimeout's range (2^31-1 ms): invalid_argument, as on the direct path", async () => {
    // (connect-node's adapter refuses it too: the server passes it maxTimeoutMs.)
    const { both } = await fronts();
    const { lane } = await both(call("Get", getBody("Tom"), "Connect-Timeout-Ms: 2147483648\r\n"), {
      refusedUnread: true,
    });
    expect(connectError(lane)).toEqual({
      code: "invalid_argument",
      message: "timeout 2147483648ms must be <= 2147483647",
    });
    const max = await both(call("Get", getBody("Tom"), "Connect-Timeout-Ms: 2147483647\r\n"));
    expect(max.lane.status).toBe(200);
  });

  it("connect-node's adapter (a JSON call) refuses the same timeout: invalid_argument, not a 1 ms deadline", async () => {
    const { node } = await fronts();
    const json = (timeout: string) =>
      req(
        "POST",
        `${SERVICE}Get`,
        Buffer.from('{"group":"scores","key":"Tom"}'),
        `Content-Type: application/json\r\nConnect-Protocol-Version: 1\r\nConnect-Timeout-Ms: ${timeout}\r\n`,
      );
    const over = await ask(node.port, json("2147483648"));
    expect(over.status).toBe(400);
    expect(connectError(over)?.code).toBe("invalid_argument");
    const max = await ask(node.port, json("2147483647"));
    expect(max.status).toBe(200);
  });

  it("a good Connect-Timeout-Ms: 200", async () => {
    const { both } = await fronts();
    const { lane } = await both(call("Get", getBody("Tom"), "Connect-Timeout-Ms: 5000\r\n"));
    expect(lane.status).toBe(200);
  });

  describe("with auth on (the header is captured by the lane)", () => {
    const secret = "s3cr3t value";
    it.each([
      ["no secret", 401, ""],
      ["a wrong secret", 401, "X-Tinycache-Auth: nope\r\n"],
      ["the secret", 200, `x-tinycache-auth: ${secret}\r\n`],
      ["the secret, its name in any case, padded", 200, `X-TINYCACHE-AUTH:  ${secret} \r\n`],
    ])("a Get with %s: %i", async (_what, status, header) => {
      const { both, group } = await fronts({ auth: { secret } });
      const { lane } = await both(call("Get", getBody("Tom"), header), {
        refusedUnread: status === 401,
      });
      expect(lane.status).toBe(status);
      if (status === 401) {
        expect(connectError(lane)).toEqual({
          code: "unauthenticated",
          message: "missing or wrong peer secret",
        });
        expect(group.calls).toEqual([]);
      }
    });

    it("GetMany, Set and Remove without the secret: unauthenticated, nothing done; with it: 200", async () => {
      const { both, group } = await fronts({ auth: { secret } });
      const set = bin(pb.SetRequestSchema, { group: "scores", key: "k", value: enc("v") });
      const rm = bin(pb.RemoveRequestSchema, { group: "scores", key: "Tom" });
      for (const [m, body] of [
        ["GetMany", manyBody(["Tom"])],
        ["Set", set],
        ["Remove", rm],
      ] as const) {
        expect((await both(call(m, body), { refusedUnread: true })).lane.status).toBe(401);
      }
      expect(group.calls).toEqual([]);
      expect([...group.data.keys()]).toEqual(["Tom", "exp"]);
      const auth = `x-tinycache-auth: ${secret}\r\n`;
      expect((await both(call("GetMany", manyBody(["Tom"]), auth))).lane.status).toBe(200);
      expect((await both(call("Set", set, auth))).lane.status).toBe(200);
      expect(group.data.has("k")).toBe(true);
    });

    it("a custom header name is captured too", async () => {
      const { both } = await fronts({ auth: { secret, header: "X-Peer-Key" } });
      expect(
        (await both(call("Get", getBody("Tom"), `x-peer-key: ${secret}\r\n`))).lane.status,
      ).toBe(200);
      expect(
        (
          await both(call("Get", getBody("Tom"), `x-tinycache-auth: ${secret}\r\n`), {
            refusedUnread: true,
          })
        ).lane.status,
      ).toBe(401);
    });

    it("a secret sent twice is node:http's (it joins them): unauthenticated", async () => {
      const { both } = await fronts({ auth: { secret } });
      const twice = `x-tinycache-auth: ${secret}\r\nx-tinycache-auth: ${secret}\r\n`;
      const { lane } = await both(call("Get", getBody("Tom"), twice), { handedOver: true });
      expect(lane.status).toBe(401);
    });
  });

  it("pipelined calls on one connection: answered in order, by the lane", async () => {
    const { lane, group } = await fronts();
    group.data.set("a", { value: enc("A") });
    const raw = new Raw(lane.port);
    raw.write(
      Buffer.concat([
        call("Get", getBody("Tom")),
        call("Get", getBody("nobody")),
        call("Set", bin(pb.SetRequestSchema, { group: "scores", key: "b", value: enc("B") })),
        call("GetMany", manyBody(["a", "b"])),
      ]),
    );
    expect(dec(fromBinary(pb.GetResponseSchema, (await raw.one()).body).value)).toBe("630");
    expect((await raw.one()).status).toBe(404);
    expect((await raw.one()).status).toBe(200);
    const many = fromBinary(pb.GetManyResponseSchema, (await raw.one()).body).results;
    expect(many.map((r) => (r.result.case === "value" ? dec(r.result.value.value) : "?"))).toEqual([
      "A",
      "B",
    ]);
    expect(lane.nodeRequests()).toBe(0);
  });
});

describe("Get of a key the owner has cached: answered at once by the lane, counted once", () => {
  it("a cached value, a cached not-found and a miss: the same bytes as node:http's", async () => {
    const registry = new GroupRegistry();
    let loads = 0;
    const group = registry.newGroup({
      name: "scores",
      cacheBytes: 1 << 20,
      negativeTtlMs: 60_000,
      getter: async (key) => {
        loads++;
        if (key === "nobody") throw new NotFoundError(key);
        return `v:${key}`;
      },
    });
    const lane = await front({ self: "http://127.0.0.1:1", registry, lane: true });
    const node = await front({ self: "http://127.0.0.1:1", registry, lane: false });
    const answers: Record<string, RawResponse[]> = {};
    for (const f of [lane, node]) {
      const before = { ...group.stats };
      const loadsBefore = loads;
      const key = `k${f.port}`;
      const first = await ask(f.port, call("Get", getBody(key))); // a miss: loads
      const again = await ask(f.port, call("Get", getBody(key))); // cached
      expect([first.status, again.status]).toEqual([200, 200]);
      expect(hex(again.body)).toBe(hex(first.body));
      expect(dec(fromBinary(pb.GetResponseSchema, again.body).value)).toBe(`v:${key}`);
      const nobody = [
        await ask(f.port, call("Get", getBody("nobody"))),
        await ask(f.port, call("Get", getBody("nobody"))),
      ];
      for (const a of nobody) {
        expect(a.status).toBe(404);
        expect(a.headers["tinycache-verdict"]).toBe("not_found");
        expect(connectError(a)?.code).toBe("not_found");
      }
      answers[f === lane ? "lane" : "node"] = [again, ...nobody];
      const s = group.stats;
      // 4 calls, each counted once. The first front loads its key and "nobody"; the
      // second finds "nobody" cached (negatively) from the first.
      const firstPass = f === lane;
      expect(s.serverRequests - before.serverRequests).toBe(4);
      expect(s.gets - before.gets).toBe(4);
      expect(s.cacheHits - before.cacheHits).toBe(firstPass ? 2 : 3);
      expect(s.negativeHits - before.negativeHits).toBe(firstPass ? 1 : 2);
      expect(loads - loadsBefore).toBe(firstPass ? 2 : 1);
    }
    expect(lane.nodeRequests(), "the lane answered every call").toBe(0);
    // Same status, headers and bytes (the value differs only by its key: the not-founds).
    expect(answers.lane?.slice(1).map(essentials)).toEqual(answers.node?.slice(1).map(essentials));
  });

  it("a malformed GetRequest or a key that is not UTF-8: invalid_argument from both, the group never asked", async () => {
    const registry = new GroupRegistry();
    let loads = 0;
    registry.newGroup({
      name: "scores",
      cacheBytes: 1 << 20,
      getter: async (key) => {
        loads++;
        return key;
      },
    });
    const lane = await front({ self: "http://127.0.0.1:1", registry, lane: true });
    const node = await front({ self: "http://127.0.0.1:1", registry, lane: false });
    const bodies = [
      Uint8Array.from([0x0a, 0x06, 0x73, 0x63, 0x6f, 0x72, 0x65, 0x73, 0x12, 0x05, 0x61]), // cut short
      Uint8Array.from([0x0a, 0x06, 0x73, 0x63, 0x6f, 0x72, 0x65, 0x73, 0x12, 0x02, 0x61, 0xff]), // not UTF-8
    ];
    for (const body of bodies) {
      const a = await ask(lane.port, call("Get", body));
      const b = await ask(node.port, call("Get", body));
      expect(a.status).toBe(400);
      expect(connectError(a)?.code).toBe("invalid_argument");
      expect(connectError(a)?.message).toMatch(/^malformed request: /);
      expect(essentials(a)).toEqual(essentials(b));
    }
    expect(lane.nodeRequests()).toBe(0);
    expect(loads).toBe(0);
  });
});

describe("everything else is handed to node:http and answered as before on the lane's port", () => {
  const getValue = (r: RawResponse) =>
    expect(dec(fromBinary(pb.GetResponseSchema, r.body).value)).toBe("630");
  const grpcWebFrame = (msg: Uint8Array) => {
    const frame = Buffer.alloc(5 + msg.length);
    frame.writeUInt32BE(msg.length, 1);
    frame.set(msg, 5);
    return frame;
  };
  const jsonGet = req(
    "POST",
    `${SERVICE}Get`,
    Buffer.from('{"group":"scores","key":"Tom"}'),
    "Content-Type: application/json\r\n",
  );
  // [what, request, status, check of the answer, whether node:http refuses it itself]
  it.each<[string, Buffer, number, (r: RawResponse) => void, boolean?]>([
    [
      "the JSON codec (application/json)",
      jsonGet,
      200,
      (r) =>
        expect(JSON.parse(r.body.toString())).toEqual({
          value: Buffer.from("630").toString("base64"),
        }),
    ],
    [
      "gzip (Content-Encoding: gzip)",
      call("Get", gzipSync(getBody("Tom")), "Content-Encoding: gzip\r\n"),
      200,
      getValue,
    ],
    [
      "br: unimplemented, with the accepted list",
      call("Get", getBody("Tom"), "Content-Encoding: br\r\n"),
      501,
      (r) => {
        expect(connectError(r)?.code).toBe("unimplemented");
        expect(r.headers["accept-encoding"]).toBe("gzip");
      },
    ],
    [
      // connect-node checks the version only when told to (requireConnectProtocolHeader).
      "Connect-Protocol-Version: 2",
      call(
        "Get",
        getBody("Tom"),
        "",
        "Content-Type: application/proto\r\nConnect-Protocol-Version: 2\r\n",
      ),
      200,
      getValue,
    ],
    [
      "a Connect GET (Get has no side effects)",
      req(
        "GET",
        `${SERVICE}Get?connect=v1&encoding=proto&base64=1&message=${Buffer.from(getBody("Tom")).toString("base64url")}`,
      ),
      200,
      getValue,
    ],
    [
      "gRPC-Web over HTTP/1.1",
      req(
        "POST",
        `${SERVICE}Get`,
        grpcWebFrame(getBody("Tom")),
        "Content-Type: application/grpc-web+proto\r\n",
      ),
      200,
      (r) => {
        expect(r.headers["content-type"]).toBe("application/grpc-web+proto");
        // The message frame, then the trailers frame with grpc-status: 0.
        const n = r.body.readUInt32BE(1);
        expect(r.body[0]).toBe(0);
        expect(dec(fromBinary(pb.GetResponseSchema, r.body.subarray(5, 5 + n)).value)).toBe("630");
        expect(r.body.subarray(5 + n).toString("latin1")).toContain("grpc-status: 0");
      },
    ],
    [
      "a method the service lacks: Connect's 404",
      call("Nope" as Method, getBody("Tom")),
      404,
      (r) => expect(r.headers["tinycache-verdict"]).toBeUndefined(),
    ],
    [
      "a path outside the service: the handler's own",
      req("GET", "/healthz"),
      200,
      (r) => expect(r.body.toString()).toBe("ok"),
    ],
    [
      "Content-Type with parameters: the adapter's unsupported media type",
      call("Get", getBody("Tom"), "", "Content-Type: application/proto; charset=utf-8\r\n"),
      415,
      () => {},
    ],
    ["Connection: close", call("Get", getBody("Tom"), "Connection: close\r\n"), 200, getValue],
    [
      "HTTP/1.0",
      Buffer.concat([
        Buffer.from(
          `POST ${SERVICE}Get HTTP/1.0\r\nHost: peer\r\nContent-Type: application/proto\r\nContent-Length: ${getBody("Tom").length}\r\n\r\n`,
        ),
        getBody("Tom"),
      ]),
      200,
      getValue,
    ],
    [
      "a chunked body",
      Buffer.concat([
        Buffer.from(
          `POST ${SERVICE}Get HTTP/1.1\r\nHost: peer\r\n${PROTO}Transfer-Encoding: chunked\r\n\r\n${getBody("Tom").length.toString(16)}\r\n`,
        ),
        getBody("Tom"),
        Buffer.from("\r\n0\r\n\r\n"),
      ]),
      200,
      getValue,
    ],
    [
      "a query string on the call's path",
      req("POST", `${SERVICE}Get?trace=1`, getBody("Tom"), PROTO),
      200,
      getValue,
    ],
    [
      "no Host header: node:http's 400",
      Buffer.concat([
        Buffer.from(
          `POST ${SERVICE}Get HTTP/1.1\r\n${PROTO}Content-Length: ${getBody("Tom").length}\r\n\r\n`,
        ),
        getBody("Tom"),
      ]),
      400,
      () => {},
      true,
    ],
    [
      "Content-Type in other letter cases",
      call("Get", getBody("Tom"), "", "Content-Type: Application/Proto\r\n"),
      200,
      getValue,
    ],
    [
      "Expect: 100-continue",
      call("Get", getBody("Tom"), "Expect: 100-continue\r\n"),
      200,
      getValue,
    ],
  ])("%s", async (_what, bytes, status, check, refused = false) => {
    const { both } = await fronts();
    const { lane } = await both(bytes, { handedOver: true, refused });
    expect(lane.status).toBe(status);
    check(lane);
  });

  it("a request split across reads is node:http's, answered the same", async () => {
    const { lane, group } = await fronts();
    const bytes = call("Get", getBody("Tom"));
    const split = bytes.length - 3;
    const raw = new Raw(lane.port);
    const delivered = lane.nextNodeRequest();
    raw.write(bytes.subarray(0, split));
    // node:http delivers the request once it read the head: the body is not all sent yet.
    await delivered;
    raw.write(bytes.subarray(split));
    const res = await raw.one();
    expect(res.status).toBe(200);
    expect(dec(fromBinary(pb.GetResponseSchema, res.body).value)).toBe("630");
    expect(group.calls).toEqual(["Tom"]);
  });

  it("one connection: the lane's answers, then a handed-over call's, then node:http keeps it", async () => {
    const { lane } = await fronts();
    const raw = new Raw(lane.port);
    raw.write(
      Buffer.concat([
        call("Get", getBody("Tom")),
        req(
          "POST",
          `${SERVICE}Get`,
          Buffer.from('{"group":"scores","key":"Tom"}'),
          "Content-Type: application/json\r\n",
        ),
        call("Get", getBody("nobody")),
      ]),
    );
    const first = await raw.one();
    expect(first.head).toContain("\r\nContent-Type: application/proto\r\n"); // the lane's spelling
    expect(JSON.parse((await raw.one()).body.toString())).toEqual({
      value: Buffer.from("630").toString("base64"),
    });
    const third = await raw.one();
    expect(third.status).toBe(404);
    expect(third.headers["tinycache-verdict"]).toBe("not_found");
    expect(lane.nodeRequests()).toBe(2);
    raw.write(call("Get", getBody("Tom")));
    expect((await raw.one()).head).toContain("\r\ncontent-type: application/proto\r\n"); // node:http's
    expect(lane.nodeRequests()).toBe(3);
  });

  const clients: { protocol: PeerProtocol; httpVersion: "1.1" | "2" }[] = [
    { protocol: "grpc", httpVersion: "2" },
    { protocol: "connect", httpVersion: "2" },
    { protocol: "grpcweb", httpVersion: "1.1" },
    { protocol: "grpcweb", httpVersion: "2" },
  ];
  it.each(clients)(
    "a ConnectPool client speaking $protocol over HTTP/$httpVersion: get, getMany, set, remove, errors",
    async (v) => {
      const { lane, group } = await fronts();
      const client = new ConnectPool({ self: "http://client.invalid:1", registry: lookup(), ...v });
      cleanups.push(() => client.close());
      client.setPeers(lane.url);
      const peer = client.peerClients()[0];
      if (peer === undefined) throw new Error("no peer");
      expect(dec((await peer.get({ group: "scores", key: "Tom" })).value)).toBe("630");
      await expect(peer.get({ group: "scores", key: "nobody" })).rejects.toMatchObject({
        kind: "not_found",
      });
      const many = await peer.getMany("scores", ["Tom", "boom"]);
      expect(many.map((e) => e.ok)).toEqual([true, false]);
      await peer.set({ group: "scores", key: "n", value: enc("1") });
      expect(dec(group.data.get("n")?.value ?? enc("?"))).toBe("1");
      await peer.remove({ group: "scores", key: "n" });
      expect(group.data.has("n")).toBe(false);
      // Each call was node:http's (or node:http2's): the lane answered none.
      expect(lane.nodeRequests()).toBe(5);
    },
  );

  it("the default client (Connect, HTTP/1.1) is answered by the lane", async () => {
    const { lane } = await fronts();
    const client = new ConnectPool({ self: "http://client.invalid:1", registry: lookup() });
    cleanups.push(() => client.close());
    client.setPeers(lane.url);
    const peer = client.peerClients()[0];
    if (peer === undefined) throw new Error("no peer");
    expect(dec((await peer.get({ group: "scores", key: "Tom" })).value)).toBe("630");
    await expect(peer.get({ group: "scores", key: "nobody" })).rejects.toMatchObject({
      kind: "not_found",
    });
    await expect(peer.get({ group: "scores", key: "boom" })).rejects.toMatchObject({
      kind: "getter_failed",
    });
    expect((await peer.getMany("scores", ["Tom", "x"])).map((e) => e.ok)).toEqual([true, false]);
    await peer.set({ group: "scores", key: "n", value: enc("1") });
    await peer.remove({ group: "scores", key: "n" });
    expect(lane.nodeRequests()).toBe(0);
  });
});

/**
 * A TCP proxy to `port` that passes the client's first chunk on in pieces cut at `cuts`,
 * so that the server reads them apart, and everything else as it comes.
 */
async function splittingProxy(port: number, cuts: number[]): Promise<string> {
  const sockets = new Set<Socket>();
  const proxy = createNetServer((c) => {
    const up = connect(port, "127.0.0.1");
    for (const s of [c, up]) {
      sockets.add(s);
      s.on("error", () => {});
      s.once("close", () => {
        c.destroy();
        up.destroy();
      });
    }
    up.pipe(c);
    c.once("data", (first: Buffer) => {
      c.pause();
      const pieces: Buffer[] = [];
      let from = 0;
      for (const cut of [...cuts, first.length]) {
        if (cut > from && cut <= first.length) pieces.push(first.subarray(from, cut));
        from = Math.max(from, Math.min(cut, first.length));
      }
      const next = (): void => {
        const piece = pieces.shift();
        if (piece === undefined) {
          c.pipe(up);
          return;
        }
        // Two turns of the event loop after the write: on loopback, in one process, the
        // server has read the piece (apart from the next) by then.
        up.write(piece, () => setImmediate(() => setImmediate(next)));
      };
      next();
    });
  });
  proxy.listen(0, "127.0.0.1");
  await once(proxy, "listening");
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        proxy.close(() => resolve());
      }),
  );
  return `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
}

describe("the hand-over's edges", () => {
  it.each([
    ["in the request line", [3, 10]],
    ["right after its blank line", [18]],
    ["byte by byte", Array.from({ length: 24 }, (_, i) => i + 1)],
    ["at its end and inside the first frame", [24, 28]],
  ])("an HTTP/2 preface split %s reaches node:http2 whole", async (_what, cuts) => {
    const { lane } = await fronts();
    const url = await splittingProxy(lane.port, cuts);
    for (const v of [
      { protocol: "grpc", httpVersion: "2" },
      { protocol: "connect", httpVersion: "2" },
    ] as const) {
      const client = new ConnectPool({
        self: "http://client.invalid:1",
        registry: lookup(),
        batch: false,
        ...v,
      });
      cleanups.push(() => client.close());
      client.setPeers(url);
      const peer = client.peerClients()[0];
      if (peer === undefined) throw new Error("no peer");
      expect(dec((await peer.get({ group: "scores", key: "Tom" })).value)).toBe("630");
      const many = await Promise.all(
        Array.from({ length: 20 }, () => peer.get({ group: "scores", key: "Tom" })),
      );
      expect(many.map((g) => dec(g.value))).toEqual(Array(20).fill("630"));
    }
    expect(lane.nodeRequests()).toBe(42);
  });

  it("a Connect call split across reads (the proxy's cuts) is node:http's, answered the same", async () => {
    const { lane } = await fronts();
    const url = await splittingProxy(lane.port, [20, 60]);
    const client = new ConnectPool({ self: "http://client.invalid:1", registry: lookup() });
    cleanups.push(() => client.close());
    client.setPeers(url);
    const peer = client.peerClients()[0];
    if (peer === undefined) throw new Error("no peer");
    expect(dec((await peer.get({ group: "scores", key: "Tom" })).value)).toBe("630");
    await expect(peer.get({ group: "scores", key: "nobody" })).rejects.toMatchObject({
      kind: "not_found",
    });
    // The first call came in pieces: its connection, kept alive, is node:http's since.
    expect(lane.nodeRequests()).toBe(2);
  });

  it("a handed-over call waits for the lane's pending answer: the answers keep their order", async () => {
    const { lane, group } = await fronts();
    const raw = new Raw(lane.port);
    // node:http gets the JSON call only once the lane answered the hung Get (its deadline).
    const delivered = lane.nextNodeRequest().then(() => group.hangSignals[0]?.aborted);
    raw.write(
      Buffer.concat([
        call("Get", getBody("hang"), "Connect-Timeout-Ms: 200\r\n"),
        jsonGetRequest(),
        call("Get", getBody("Tom")),
      ]),
    );
    const first = await raw.one();
    expect(connectError(first)?.code).toBe("deadline_exceeded");
    expect(first.head).toContain("\r\nContent-Type: application/json\r\n"); // the lane's
    expect((await raw.one()).headers["content-type"]).toBe("application/json");
    const third = await raw.one();
    expect(dec(fromBinary(pb.GetResponseSchema, third.body).value)).toBe("630");
    expect(third.head).toContain("\r\ncontent-type: application/proto\r\n"); // node:http's
    expect(await delivered).toBe(true);
    expect(lane.nodeRequests()).toBe(2);
  });

  it("answers piling up unread (backpressure), then a hand-over: every answer arrives, in order", async () => {
    const { lane, group } = await fronts();
    const big = Uint8Array.from({ length: 256 * 1024 }, (_, i) => i % 251);
    group.data.set("big", { value: big });
    const raw = new Raw(lane.port);
    raw.socket.pause(); // read nothing for now: the server's writes pile up
    const gets = (n: number) => Array.from({ length: n }, () => call("Get", getBody("big")));
    await new Promise<void>((resolve) =>
      raw.socket.write(Buffer.concat(gets(12)), () => resolve()),
    );
    raw.write(Buffer.concat([...gets(12), jsonGetRequest(), call("Get", getBody("Tom"))]));
    raw.socket.resume();
    for (let i = 0; i < 24; i++) {
      const res = await raw.one();
      expect(res.status).toBe(200);
      const value = fromBinary(pb.GetResponseSchema, res.body).value;
      expect(value.length).toBe(big.length);
      expect(Buffer.from(value).equals(Buffer.from(big))).toBe(true);
    }
    expect((await raw.one()).headers["content-type"]).toBe("application/json");
    expect(dec(fromBinary(pb.GetResponseSchema, (await raw.one()).body).value)).toBe("630");
    expect(lane.nodeRequests()).toBe(2);
  });

  it("an idle lane connection is closed after serverLimits.keepAliveTimeoutMs", async () => {
    const { lane } = await fronts({ serverLimits: { keepAliveTimeoutMs: 200 } });
    const raw = new Raw(lane.port);
    raw.write(call("Get", getBody("Tom")));
    expect((await raw.one()).status).toBe(200);
    await raw.closed;
    expect(lane.nodeRequests()).toBe(0);
  });

  it("listen on a port in use rejects (EADDRINUSE); close still works", async () => {
    const { lane } = await fronts();
    const pool = new ConnectPool({ self: "http://127.0.0.1:1", registry: lookup() });
    await expect(pool.listen(lane.port, "127.0.0.1")).rejects.toMatchObject({
      code: "EADDRINUSE",
    });
    await pool.close();
  });

  it("close drops a lane connection with a call in flight: the getter's signal aborts", async () => {
    const { lane, group } = await fronts();
    const raw = new Raw(lane.port);
    const { aborted } = await hang(raw, group, call("Get", getBody("hang")));
    await lane.server.close();
    await aborted;
    await raw.closed;
  });
});

describe("deadlines and clients that go away", () => {
  it("a Get with Connect-Timeout-Ms whose getter hangs: deadline_exceeded around the timeout, as node:http answers", async () => {
    const { lane, node, group } = await fronts();
    const timeoutMs = 300;
    const bytes = call("Get", getBody("hang"), `Connect-Timeout-Ms: ${timeoutMs}\r\n`);
    const timed = async (f: Front) => {
      const raw = new Raw(f.port);
      const start = performance.now();
      raw.write(bytes);
      const res = await raw.one();
      const elapsed = performance.now() - start;
      // The connection is still good afterwards.
      raw.write(call("Get", getBody("Tom")));
      expect((await raw.one()).status).toBe(200);
      return { res, elapsed };
    };
    const a = await timed(lane);
    const b = await timed(node);
    expect(lane.nodeRequests()).toBe(0);
    expect(essentials(a.res)).toEqual(essentials(b.res));
    expect(connectError(a.res)?.code).toBe("deadline_exceeded");
    for (const { elapsed } of [a, b]) {
      expect(elapsed).toBeGreaterThanOrEqual(timeoutMs - 5);
      expect(elapsed).toBeLessThan(timeoutMs + 5_000);
    }
    // Each hung load got a signal that aborted at the deadline.
    expect(group.hangSignals).toHaveLength(2);
    for (const s of group.hangSignals) {
      expect(s.aborted).toBe(true);
      expect((s.reason as Error).name).toBe("TimeoutError");
    }
  });

  it("a GetMany with Connect-Timeout-Ms: the hung key deadline_exceeded, the others answered, as node:http answers", async () => {
    const { both, group } = await fronts();
    const body = bin(pb.GetManyRequestSchema, {
      group: "scores",
      keys: ["Tom", "hang", "nobody"],
      timeoutMs: 600_000,
    });
    const { lane } = await both(call("GetMany", body, "Connect-Timeout-Ms: 200\r\n"));
    expect(lane.status).toBe(200);
    const out = fromBinary(pb.GetManyResponseSchema, lane.body).results;
    expect(out.map((r) => (r.result.case === "error" ? r.result.value.code : "ok"))).toEqual([
      "ok",
      "deadline_exceeded",
      "not_found",
    ]);
    // The hung loads wait on their connections, not on a timer of their own: they stop
    // once the clients close them.
    expect(group.hangSignals).toHaveLength(2);
    for (const s of group.hangSignals) if (!s.aborted) await once(s, "abort");
  });

  it.each([
    ["a Get", () => call("Get", getBody("hang"))],
    [
      "a Get with a long Connect-Timeout-Ms",
      () => call("Get", getBody("hang"), "Connect-Timeout-Ms: 600000\r\n"),
    ],
    ["a GetMany", () => call("GetMany", manyBody(["Tom", "hang"]))],
  ])("%s whose client closes its connection: the getter's signal aborts", async (_what, bytes) => {
    const { lane, group } = await fronts();
    const raw = new Raw(lane.port);
    const { signal, aborted } = await hang(raw, group, bytes());
    expect(signal.aborted).toBe(false);
    raw.socket.destroy();
    await aborted;
    expect((signal.reason as Error).name).toBe("AbortError");
    expect(lane.nodeRequests()).toBe(0);
  });

  it("a client that half-closes after its request: the lane ends the connection, the load is abandoned", async () => {
    const { lane, group } = await fronts();
    const raw = new Raw(lane.port);
    const { aborted } = await hang(raw, group, call("Get", getBody("hang")));
    raw.socket.end();
    await raw.closed;
    await aborted;
  });
});

describe("a cluster of two ConnectPools with lanes", () => {
  it("gets (single and batched), set and remove work end to end, every peer call answered by a lane", async () => {
    const ports = [await freePort(), await freePort()];
    const urls = ports.map((p) => `http://127.0.0.1:${p}`);
    const loads: string[][] = [[], []];
    const groups: ReturnType<GroupRegistry["newGroup"]>[] = [];
    const counts: (() => number)[] = [];
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
      const pool = new ConnectPool({ self: urls[i] as string, registry, health: false });
      let requests = 0;
      const server = pool.peerServer((rq, rs) => {
        requests++;
        pool.handler(rq, rs);
      });
      cleanups.push(() => pool.close());
      cleanups.push(() => server.close());
      await server.listen(ports[i] as number, "127.0.0.1");
      pool.setPeers(...urls);
      registry.registerPeers(pool);
      counts.push(() => requests);
    }
    const [a, b] = groups;
    if (a === undefined || b === undefined) throw new Error("no groups");
    const ring = new HashRing().add(...urls);
    const keys = Array.from({ length: 40 }, (_, i) => `key ${i}`);
    const remote = keys.filter((k) => ring.get(k) === urls[1]);
    const local = keys.filter((k) => ring.get(k) === urls[0]);
    expect(remote.length).toBeGreaterThan(2);
    expect(local.length).toBeGreaterThan(2);
    // A lone get, then the rest at once (batched into GetMany calls).
    expect((await a.get(remote[0] as string)).toString()).toBe(`v:${remote[0]}`);
    const got = await Promise.all(keys.map((k) => a.get(k)));
    expect(got.map((v) => v.toString())).toEqual(keys.map((k) => `v:${k}`));
    for (const k of keys) {
      const owner = urls.indexOf(ring.get(k) as string);
      expect(loads[owner]?.filter((x) => x === k)).toEqual([k]);
      expect(loads[1 - owner]).not.toContain(k);
    }
    // The other way.
    const back = await Promise.all(local.map((k) => b.get(k)));
    expect(back.map((v) => v.toString())).toEqual(local.map((k) => `v:${k}`));
    // Set at the owner through A, read at the owner without a load.
    const key = remote[1] as string;
    await a.set(key, "set by a");
    expect((await b.get(key)).toString()).toBe("set by a");
    expect((await a.get(key)).toString()).toBe("set by a");
    // Remove at the owner (and every peer): the next get loads again.
    const removed = await a.remove(key);
    expect(removed.ok).toBe(true);
    expect(removed.owner).toBe(urls[1]);
    const before = loads[1]?.filter((x) => x === key).length ?? 0;
    expect((await a.get(key)).toString()).toBe(`v:${key}`);
    expect(loads[1]?.filter((x) => x === key).length).toBe(before + 1);
    // Neither node's node:http saw a request: the lanes answered them all.
    expect(counts.map((c) => c())).toEqual([0, 0]);
  });
});

describe("the lane option and createCleartextServer's lane", () => {
  it("new ConnectPool({ lane: 1 }) throws a TypeError naming lane", () => {
    const make = () =>
      new ConnectPool({
        self: "http://127.0.0.1:1",
        registry: lookup(),
        lane: 1 as unknown as boolean,
      });
    expect(make).toThrow(TypeError);
    expect(make).toThrow(/lane/);
  });

  it("listen() serves through the lane by default, through node:http alone with lane: false", async () => {
    const spelling = async (lane: boolean | undefined) => {
      const group = new FakeGroup("scores");
      group.data.set("Tom", { value: enc("630") });
      const pool = new ConnectPool({
        self: "http://127.0.0.1:1",
        registry: lookup(group),
        ...(lane === undefined ? {} : { lane }),
      });
      cleanups.push(() => pool.close());
      const { port } = await pool.listen(0, "127.0.0.1");
      const res = await ask(port, call("Get", getBody("Tom")));
      expect(dec(fromBinary(pb.GetResponseSchema, res.body).value)).toBe("630");
      // The lane spells its header lines so; node:http writes writeHead's lower-case names.
      return res.lines[0]?.[0] === "content-type" && res.head.includes("\r\nContent-Type:")
        ? "lane"
        : "node";
    };
    expect(await spelling(undefined)).toBe("lane");
    expect(await spelling(true)).toBe("lane");
    expect(await spelling(false)).toBe("node");
  });

  it("createCleartextServer(handler, { lane }): the lane answers the direct path's calls, and no other", async () => {
    const group = new FakeGroup("scores");
    group.data.set("Tom", { value: enc("630") });
    const cache = new CacheServer(
      resolveOptions({ self: "http://127.0.0.1:1", registry: lookup(group) }),
    );
    let laneCalls = 0;
    let nodeCalls = 0;
    const server = createCleartextServer(
      (rq, rs) => {
        nodeCalls++;
        cache.handler(rq, rs);
      },
      {
        lane: {
          ...cache.lane,
          handle: (rq, reply) => {
            laneCalls++;
            cache.lane.handle(rq, reply);
          },
        },
      },
    );
    cleanups.push(() => server.close());
    const { port } = await server.listen(0, "127.0.0.1");
    expect((await ask(port, call("Get", getBody("Tom")))).status).toBe(200);
    expect([laneCalls, nodeCalls]).toEqual([1, 0]);
    // The rest, over the wire and through clients: node:http's (or http2's), never the lane's.
    const json = req(
      "POST",
      `${SERVICE}Get`,
      Buffer.from('{"group":"scores","key":"Tom"}'),
      "Content-Type: application/json\r\n",
    );
    expect((await ask(port, json)).status).toBe(200);
    expect(
      (await ask(port, call("Get", gzipSync(getBody("Tom")), "Content-Encoding: gzip\r\n"))).status,
    ).toBe(200);
    expect([laneCalls, nodeCalls]).toEqual([1, 2]);
    for (const v of [
      { protocol: "grpc", httpVersion: "2" },
      { protocol: "connect", httpVersion: "2" },
      { protocol: "grpcweb", httpVersion: "1.1" },
    ] as const) {
      const client = new ConnectPool({ self: "http://client.invalid:1", registry: lookup(), ...v });
      cleanups.push(() => client.close());
      client.setPeers(`http://127.0.0.1:${port}`);
      const peer = client.peerClients()[0];
      if (peer === undefined) throw new Error("no peer");
      expect(dec((await peer.get({ group: "scores", key: "Tom" })).value)).toBe("630");
    }
    expect([laneCalls, nodeCalls]).toEqual([1, 5]);
  });

  it("createCleartextServer without a lane: node:http answers everything", async () => {
    const group = new FakeGroup("scores");
    group.data.set("Tom", { value: enc("630") });
    const pool = new ConnectPool({ self: "http://127.0.0.1:1", registry: lookup(group) });
    cleanups.push(() => pool.close());
    let nodeCalls = 0;
    const server = createCleartextServer((rq, rs) => {
      nodeCalls++;
      pool.handler(rq, rs);
    });
    cleanups.push(() => server.close());
    const { port } = await server.listen(0, "127.0.0.1");
    expect((await ask(port, call("Get", getBody("Tom")))).status).toBe(200);
    expect(nodeCalls).toBe(1);
  });
});

describe("hardening: the lane's port goes on after bad requests", () => {
  it("a body of exactly maxBodyBytes is the lane's; one byte more is node:http's resource_exhausted", async () => {
    const { both } = await fronts({ maxBodyBytes: 1024 });
    const set = (size: number) => {
      const head = bin(pb.SetRequestSchema, {
        group: "scores",
        key: "big",
        value: new Uint8Array(0),
      });
      // The value's length prefix takes 2 bytes for 128..16383 bytes.
      const value = new Uint8Array(size - head.length - 3);
      const body = bin(pb.SetRequestSchema, { group: "scores", key: "big", value });
      expect(body.length).toBe(size);
      return body;
    };
    expect((await both(call("Set", set(1024)))).lane.status).toBe(200);
    const { lane } = await both(call("Set", set(1025)), { handedOver: true });
    expect(lane.status).toBe(429);
    expect(connectError(lane)).toEqual({
      code: "resource_exhausted",
      message: "message larger than 1024 bytes",
    });
  });

  it("after a body over maxBodyBytes (node:http's resource_exhausted, closed) and a malformed one, new connections are served by the lane", async () => {
    const { lane } = await fronts({ maxBodyBytes: 1024 });
    // A malformed call: the lane's invalid_argument, and its connection stays.
    const raw = new Raw(lane.port);
    raw.write(call("Get", Buffer.from([0xff, 0xff])));
    expect(connectError(await raw.one())?.code).toBe("invalid_argument");
    raw.write(call("Get", getBody("Tom")));
    expect((await raw.one()).status).toBe(200);
    expect(lane.nodeRequests()).toBe(0);
    // A whole body over the cap: handed over; node:http says resource_exhausted and closes.
    const big = new Raw(lane.port);
    big.write(call("GetMany", Buffer.alloc(2000, 0x0a)));
    const tooLarge = await big.one();
    expect(tooLarge.status).toBe(429);
    expect(connectError(tooLarge)?.code).toBe("resource_exhausted");
    expect(tooLarge.headers.connection).toBe("close");
    await big.closed;
    expect(lane.nodeRequests()).toBe(1);
    // Declared and chunked 8 MiB bodies: node:http answers and stops reading them.
    for (const contentLength of [true, false]) {
      const huge = await sendLargeBody(lane.port, {
        path: `${SERVICE}Get`,
        headers: { "content-type": "application/proto", "connect-protocol-version": "1" },
        totalBytes: 8 * 1024 * 1024,
        contentLength,
      });
      expect(huge.cutOff).toBe(true);
      if (huge.status !== undefined) expect(huge.status).toBe(429);
    }
    // Malformed head bytes: node:http's 400, closed.
    const junk = new Raw(lane.port);
    junk.write("POST /tinycache.v1.CacheService/Get HTTP/1.1\r\nHost: peer\r\nBad Header\r\n\r\n");
    expect((await junk.one()).status).toBe(400);
    await junk.closed;
    // New connections: the lane's again.
    const after = lane.nodeRequests();
    const res = await ask(lane.port, call("GetMany", manyBody(["Tom", "nobody"])));
    expect(
      fromBinary(pb.GetManyResponseSchema, res.body).results.map((r) => r.result.case),
    ).toEqual(["value", "error"]);
    expect(lane.nodeRequests()).toBe(after);
  });

  it("random bodies on every method: each answered, the lane answering all of them", async () => {
    const { both } = await fronts();
    for (let i = 0; i < 60; i++) {
      const method = (["Get", "GetMany", "Set", "Remove"] as const)[i % 4] as Method;
      const body = Buffer.from(Array.from({ length: i % 50 }, (_, j) => (i * 31 + j * 17) & 0xff));
      const { lane } = await both(call(method, body));
      expect([200, 400, 404, 412, 500]).toContain(lane.status);
    }
  });
});
