import { once } from "node:events";
import * as http from "node:http";
import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { ByteView, PeerError } from "@tinycache/core";
import type { GroupLookup } from "@tinycache/core/transport";
import { tinycachev1 as pb } from "@tinycache/protocol";
import { httpRequest } from "@tinycache/testkit";
import { afterEach, describe, expect, it } from "vitest";
import { dec, enc, FakeGroup } from "./fake-group.test-util.js";
import { ConnectPool, type ConnectPoolOptions, type PeerProtocol } from "./index.js";
import { encodeGetResponse } from "./private/wire.js";

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

function lookup(...groups: FakeGroup[]): GroupLookup {
  const m = new Map(groups.map((g) => [g.name, g]));
  return { getGroup: (name) => m.get(name) };
}

/** A serving pool on a free port and a client pool whose only peer is that server. */
async function pair(
  clientOpts: Partial<ConnectPoolOptions> = {},
  { maxKeyBytes, ...serverOpts }: Partial<ConnectPoolOptions> & { maxKeyBytes?: number } = {},
) {
  const group = new FakeGroup("scores", maxKeyBytes);
  group.data.set("Tom", { value: enc("630") });
  group.data.set("exp", { value: enc("soon"), expiresAt: 1_900_000_000_123 });
  group.data.set("empty", { value: new Uint8Array(0) });
  const server = new ConnectPool({
    self: "http://127.0.0.1:1",
    registry: lookup(group),
    ...serverOpts,
  });
  const addr = await server.listen(0, "127.0.0.1");
  const url = `http://127.0.0.1:${addr.port}`;
  const client = new ConnectPool({
    self: "http://client.invalid:1",
    registry: lookup(),
    ...clientOpts,
  });
  client.setPeers(url);
  cleanups.push(
    () => server.close(),
    () => client.close(),
  );
  const peer = client.peerClients()[0];
  if (!peer) throw new Error("no peer");
  return { group, server, client, peer, url, port: addr.port };
}

async function peerError(p: Promise<unknown>): Promise<PeerError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(PeerError);
    return err as PeerError;
  }
  throw new Error("expected a PeerError, the call succeeded");
}

const variants: { protocol: PeerProtocol; httpVersion: "1.1" | "2" }[] = [
  { protocol: "connect", httpVersion: "1.1" },
  { protocol: "connect", httpVersion: "2" },
  { protocol: "grpc", httpVersion: "2" },
  { protocol: "grpcweb", httpVersion: "1.1" },
  { protocol: "grpcweb", httpVersion: "2" },
];

describe.each(variants)("client $protocol over HTTP/$httpVersion", (v) => {
  it("gets a value, its expiry, an empty value and a unicode key", async () => {
    const { peer, group } = await pair(v);
    expect(peer.id).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const tom = await peer.get({ group: "scores", key: "Tom" });
    expect(dec(tom.value)).toBe("630");
    expect(tom.expiresAt).toBeUndefined();
    const exp = await peer.get({ group: "scores", key: "exp" });
    expect(exp.expiresAt).toBe(1_900_000_000_123);
    expect((await peer.get({ group: "scores", key: "empty" })).value.length).toBe(0);
    const key = "ключ 🔑/with spaces+%?#";
    group.data.set(key, { value: enc("юникод ✓") });
    expect(dec((await peer.get({ group: "scores", key })).value)).toBe("юникод ✓");
  });

  it("maps not found, getter failure and unknown group to PeerError kinds", async () => {
    const { peer } = await pair(v);
    const nf = await peerError(peer.get({ group: "scores", key: "nobody" }));
    expect(nf.kind).toBe("not_found");
    expect(nf.message).toContain("nobody not exist");
    const boom = await peerError(peer.get({ group: "scores", key: "boom" }));
    expect(boom.kind).toBe("getter_failed");
    expect(boom.message).toContain("database is down");
    const nogroup = await peerError(peer.get({ group: "nope", key: "Tom" }));
    expect(nogroup.kind).toBe("unavailable");
    expect(nogroup.message).toContain("failed_precondition");
  });

  it("rejects an empty group and an oversized key as invalid_argument", async () => {
    const { peer } = await pair(v, { maxKeyBytes: 16 });
    expect((await peerError(peer.get({ group: "", key: "Tom" }))).kind).toBe("invalid_argument");
    const long = await peerError(peer.get({ group: "scores", key: "k".repeat(17) }));
    expect(long.kind).toBe("invalid_argument");
    // 6 characters, 18 UTF-8 bytes: the limit is in bytes.
    const wide = await peerError(peer.get({ group: "scores", key: "ééééééééé" }));
    expect(wide.kind).toBe("invalid_argument");
    // The server is still fine afterwards.
    expect(dec((await peer.get({ group: "scores", key: "Tom" })).value)).toBe("630");
  });

  it("sets (with expiry), removes, and survives a 1 MiB value", async () => {
    const { peer, group } = await pair(v);
    await peer.set({ group: "scores", key: "new", value: enc("1"), expiresAt: 1_800_000_000_000 });
    expect(dec(group.data.get("new")?.value ?? enc("?"))).toBe("1");
    expect(group.data.get("new")?.expiresAt).toBe(1_800_000_000_000);
    await peer.set({ group: "scores", key: "forever", value: enc("2") });
    expect(group.data.get("forever")?.expiresAt).toBeUndefined();
    await peer.remove({ group: "scores", key: "new" });
    expect(group.data.has("new")).toBe(false);
    const big = new Uint8Array(1024 * 1024).map((_, i) => i % 251);
    await peer.set({ group: "scores", key: "big", value: big });
    expect(Buffer.from(group.data.get("big")?.value ?? []).equals(big)).toBe(true);
    expect(Buffer.from((await peer.get({ group: "scores", key: "big" })).value).equals(big)).toBe(
      true,
    );
  });

  it("answers a batch key by key: one failing key does not fail the others", async () => {
    const { peer } = await pair(v, { maxKeyBytes: 16 });
    const out = await peer.getMany("scores", ["Tom", "nobody", "boom", "x".repeat(40), "exp"]);
    expect(out.map((e) => e.key)).toEqual(["Tom", "nobody", "boom", "x".repeat(40), "exp"]);
    expect(out[0]?.ok && dec(out[0].value.value)).toBe("630");
    expect(!out[1]?.ok && out[1]?.error.kind).toBe("not_found");
    expect(!out[2]?.ok && out[2]?.error.kind).toBe("getter_failed");
    expect(!out[3]?.ok && out[3]?.error.kind).toBe("invalid_argument");
    expect(out[4]?.ok && out[4].value.expiresAt).toBe(1_900_000_000_123);
    expect(await peer.getMany("scores", [])).toEqual([]);
    expect((await peerError(peer.getMany("nope", ["Tom"]))).kind).toBe("unavailable");
  });

  it("sends concurrent gets of one peer as one GetMany and counts it per peer in stats().peerBatches; a lone get counts nothing", async () => {
    for (const batch of [true, false]) {
      const { client, group, url } = await pair({ ...v, batch });
      const keys = Array.from({ length: 10 }, (_, i) => `k${i}`);
      for (const k of keys) group.data.set(k, { value: enc(`v:${k}`) });
      // Through the pool, as core asks it (the health-watched getter).
      const get = (key: string) => {
        const peer = client.pickPeer(key);
        if (peer === undefined) throw new Error(`no owner of ${key}`);
        return peer.get({ group: "scores", key });
      };
      expect(dec((await get("Tom")).value)).toBe("630");
      expect(client.stats().peerBatches).toEqual([{ url, batches: 0, batchedKeys: 0 }]);
      const got = await Promise.all(keys.map(get));
      expect(got.map((x) => dec(x.value))).toEqual(keys.map((k) => `v:${k}`));
      expect(client.stats().peerBatches).toEqual([
        batch ? { url, batches: 1, batchedKeys: 10 } : { url, batches: 0, batchedKeys: 0 },
      ]);
    }
  });

  it("times out as unavailable and the server stops waiting", async () => {
    // Long enough that the request surely reaches the server on a loaded machine first.
    const { peer, group } = await pair({ ...v, timeoutMs: 1_000 });
    const started = group.hangStarted;
    const err = await peerError(peer.get({ group: "scores", key: "hang" }));
    expect(err.kind).toBe("unavailable");
    await started;
    // The server got the deadline too (or saw the client go away): its signal aborts.
    const signal = group.hangSignals[0];
    expect(signal).toBeDefined();
    if (signal && !signal.aborted) await once(signal, "abort");
    expect(signal?.aborted).toBe(true);
  });

  it("reports the caller's abort as aborted", async () => {
    const { peer, group } = await pair({ ...v, timeoutMs: 10_000 });
    const ac = new AbortController();
    const started = group.hangStarted;
    const call = peerError(peer.get({ group: "scores", key: "hang" }, { signal: ac.signal }));
    await started;
    ac.abort();
    expect((await call).kind).toBe("aborted");
    const pre = await peerError(peer.get({ group: "scores", key: "Tom" }, { signal: ac.signal }));
    expect(pre.kind).toBe("aborted");
  });

  it("authenticates with a shared secret", async () => {
    const secret = "s3cr3t value";
    const ok = await pair({ ...v, auth: { secret } }, { auth: { secret } });
    expect(dec((await ok.peer.get({ group: "scores", key: "Tom" })).value)).toBe("630");
    await ok.peer.set({ group: "scores", key: "a", value: enc("b") });

    const none = await pair(v, { auth: { secret } });
    const e1 = await peerError(none.peer.get({ group: "scores", key: "Tom" }));
    expect(e1.kind).toBe("unavailable");
    expect(e1.message).toContain("unauthenticated");
    expect(none.group.calls).toEqual([]);

    const wrong = await pair({ ...v, auth: { secret: "guess" } }, { auth: { secret } });
    expect((await peerError(wrong.peer.get({ group: "scores", key: "Tom" }))).kind).toBe(
      "unavailable",
    );
    const custom = await pair(
      { ...v, auth: { secret, header: "X-Peer-Key" } },
      { auth: { secret, header: "x-peer-key" } },
    );
    expect(dec((await custom.peer.get({ group: "scores", key: "Tom" })).value)).toBe("630");
  });

  it("many concurrent calls on one reused transport", async () => {
    // A generous deadline: this checks concurrency, not speed, on a loaded machine.
    const { peer, group } = await pair({ ...v, timeoutMs: 20_000 });
    for (let i = 0; i < 200; i++) group.data.set(`k${i}`, { value: enc(`v${i}`) });
    const got = await Promise.all(
      Array.from({ length: 200 }, (_, i) => peer.get({ group: "scores", key: `k${i}` })),
    );
    expect(got.map((g) => dec(g.value))).toEqual(Array.from({ length: 200 }, (_, i) => `v${i}`));
  });
});

describe("ConnectPool ring and peers", () => {
  const registry = lookup();

  it("owns keys itself with no peers, and picks remote owners otherwise", () => {
    const self = "http://127.0.0.1:8001";
    const pool = new ConnectPool({ self, registry });
    cleanups.push(() => pool.close());
    expect(pool.pickPeer("Tom")).toBeUndefined();
    expect(pool.peers()).toEqual([]);
    pool.setPeers(self, "http://127.0.0.1:8002", "http://127.0.0.1:8003", self);
    expect(pool.peers().map((p) => p.id)).toEqual([
      "http://127.0.0.1:8002",
      "http://127.0.0.1:8003",
    ]);
    const owners = new Set<string>();
    for (let i = 0; i < 300; i++) owners.add(pool.pickPeer(`key${i}`)?.id ?? "self");
    expect(owners).toEqual(new Set(["self", "http://127.0.0.1:8002", "http://127.0.0.1:8003"]));
  });

  it("keeps the clients of unchanged peers and closes removed ones", async () => {
    const pool = new ConnectPool({ self: "http://127.0.0.1:8001", registry });
    cleanups.push(() => pool.close());
    pool.setPeers("http://127.0.0.1:8001", "http://127.0.0.1:8002", "http://127.0.0.1:8003");
    const [p2, p3] = pool.peers();
    pool.setPeers("http://127.0.0.1:8001", "http://127.0.0.1:8002", "http://127.0.0.1:8004");
    expect(pool.peers()[0]).toBe(p2);
    expect(pool.peers().map((p) => p.id)).toEqual([
      "http://127.0.0.1:8002",
      "http://127.0.0.1:8004",
    ]);
    const e = await peerError(p3?.get({ group: "g", key: "k" }) ?? Promise.resolve());
    expect(e.kind).toBe("unavailable");
    pool.setPeers();
    expect(pool.pickPeer("Tom")).toBeUndefined();
  });

  it("rejects bad options and bad peer URLs with typed errors", () => {
    expect(() => new ConnectPool({ self: "ftp://x", registry })).toThrow(TypeError);
    expect(() => new ConnectPool({ self: "http://x", registry: {} as GroupLookup })).toThrow(
      TypeError,
    );
    expect(() => new ConnectPool({ self: "http://x", registry, timeoutMs: 0 })).toThrow(RangeError);
    expect(() => new ConnectPool({ self: "http://x", registry, replicas: 0 })).toThrow(RangeError);
    expect(
      () => new ConnectPool({ self: "http://x", registry, protocol: "grpc", httpVersion: "1.1" }),
    ).toThrow(TypeError);
    expect(
      () => new ConnectPool({ self: "http://x", registry, protocol: "soap" as PeerProtocol }),
    ).toThrow(TypeError);
    expect(() => new ConnectPool({ self: "http://x", registry, auth: { secret: "a\nb" } })).toThrow(
      TypeError,
    );
    const pool = new ConnectPool({ self: "http://x", registry });
    cleanups.push(() => pool.close());
    pool.setPeers("http://a");
    expect(() => pool.setPeers("http://a", "not a url")).toThrow(TypeError);
    expect(pool.peers().map((p) => p.id)).toEqual(["http://a"]);
  });

  it("a peer that is down fails as unavailable", async () => {
    const { freePort } = await import("@tinycache/testkit");
    const port = await freePort();
    for (const v of variants) {
      const pool = new ConnectPool({ self: "http://x", registry, ...v });
      cleanups.push(() => pool.close());
      pool.setPeers(`http://127.0.0.1:${port}`);
      const e = await peerError(
        pool.peers()[0]?.get({ group: "g", key: "k" }) ?? Promise.resolve(),
      );
      expect(e.kind).toBe("unavailable");
    }
  });

  it("an internal error not marked by a tinycache owner counts as unavailable", async () => {
    // A stranger (proxy, wrong service) answering with Connect-looking errors must not
    // make core believe the owner's getter failed.
    const stranger = http.createServer((req, res) => {
      req.resume();
      if (req.url?.endsWith("/Get")) {
        res.writeHead(500, { "content-type": "application/json" });
        res.end('{"code":"internal","message":"proxy trouble"}');
      } else {
        res.writeHead(400, { "content-type": "text/plain" });
        res.end("bad request");
      }
    });
    stranger.listen(0, "127.0.0.1");
    await once(stranger, "listening");
    cleanups.push(() => new Promise((r) => stranger.close(r)));
    const pool = new ConnectPool({ self: "http://x", registry });
    cleanups.push(() => pool.close());
    pool.setPeers(`http://127.0.0.1:${(stranger.address() as AddressInfo).port}`);
    const peer = pool.peers()[0]!;
    const e1 = await peerError(peer.get({ group: "g", key: "k" }));
    expect(e1.kind).toBe("unavailable");
    expect(e1.message).toContain("proxy trouble");
    expect((await peerError(peer.remove({ group: "g", key: "k" }))).kind).toBe("unavailable");
  });

  it("retries once when a kept-alive socket is closed under a reused call", async () => {
    const group = new FakeGroup("scores");
    group.data.set("Tom", { value: enc("630") });
    const served = new ConnectPool({ self: "http://x", registry: lookup(group) });
    // The first connection dies on its second request, as when the server's keep-alive
    // timeout closes an idle socket just as the client reuses it.
    let first: import("node:net").Socket | undefined;
    let onFirst = 0;
    const server = http.createServer({ keepAliveTimeout: 60_000 }, (req, res) => {
      first ??= req.socket;
      if (req.socket === first && ++onFirst === 2) {
        req.socket.destroy();
        return;
      }
      served.handler(req, res);
    });
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    cleanups.push(
      () => new Promise((r) => server.close(r)),
      () => server.closeAllConnections(),
      () => served.close(),
    );
    const pool = new ConnectPool({ self: "http://y", registry, timeoutMs: 10_000 });
    cleanups.push(() => pool.close());
    pool.setPeers(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    const peer = pool.peers()[0]!;
    expect(dec((await peer.get({ group: "scores", key: "Tom" })).value)).toBe("630");
    expect(dec((await peer.get({ group: "scores", key: "Tom" })).value)).toBe("630");
    expect(onFirst).toBe(2);
    expect(group.calls).toEqual(["Tom", "Tom"]);
  });

  it("listen twice fails; close is idempotent", async () => {
    const pool = new ConnectPool({ self: "http://x", registry });
    await pool.listen(0, "127.0.0.1");
    await expect(pool.listen(0)).rejects.toThrow(/already listening/);
    await pool.close();
    await pool.close();
    await expect(pool.listen(0)).rejects.toThrow(/closed/);
  });
});

describe("server", () => {
  async function served(opts: Partial<ConnectPoolOptions> = {}) {
    const group = new FakeGroup("scores");
    group.data.set("Tom", { value: enc("630"), expiresAt: 1_900_000_000_000 });
    const pool = new ConnectPool({ self: "http://x", registry: lookup(group), ...opts });
    const { port } = await pool.listen(0, "127.0.0.1");
    cleanups.push(() => pool.close());
    return { pool, group, port };
  }

  const post = (port: number, path: string, body: Uint8Array | string, headers = {}) =>
    httpRequest(port, "POST", path, {
      headers,
      body: typeof body === "string" ? Buffer.from(body) : body,
    });

  it("answers a GetMany over HTTP/1.1 by the sooner of Connect-Timeout-Ms and the request's timeoutMs, the slow keys deadline_exceeded", async () => {
    const { port, group } = await served();
    const body = toBinary(
      pb.GetManyRequestSchema,
      create(pb.GetManyRequestSchema, {
        group: "scores",
        keys: ["Tom", "hang"],
        timeoutMs: 600_000,
      }),
    );
    const res = await post(port, "/tinycache.v1.CacheService/GetMany", body, {
      "content-type": "application/proto",
      "connect-protocol-version": "1",
      "connect-timeout-ms": "200",
    });
    expect(res.status).toBe(200);
    const out = fromBinary(pb.GetManyResponseSchema, res.body);
    expect(out.results.map((r) => [r.key, r.result.case])).toEqual([
      ["Tom", "value"],
      ["hang", "error"],
    ]);
    const err = out.results[1]?.result;
    expect(err?.case === "error" && err.value.code).toBe("deadline_exceeded");
    // The hung load waits on the connection (as on the HTTP transport), not on a timer
    // of its own; it stops when the client is gone.
    expect(group.hangSignals).toHaveLength(1);
  });

  it("answers a real @grpc/grpc-js client over h2c on the same port", async () => {
    const { port } = await served();
    const client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
    cleanups.push(() => client.close());
    const call = (key: string, meta = new grpc.Metadata()) =>
      new Promise<pb.GetResponse>((resolve, reject) => {
        client.makeUnaryRequest(
          "/tinycache.v1.CacheService/Get",
          (m: pb.GetRequest) => Buffer.from(toBinary(pb.GetRequestSchema, m)),
          (b: Buffer) => fromBinary(pb.GetResponseSchema, b),
          create(pb.GetRequestSchema, { group: "scores", key }),
          meta,
          { deadline: Date.now() + 5000 },
          (err, res) => (err || !res ? reject(err) : resolve(res)),
        );
      });
    const res = await call("Tom");
    expect(dec(res.value)).toBe("630");
    expect(res.expiresAtMs).toBe(1_900_000_000_000n);
    await expect(call("nobody")).rejects.toMatchObject({ code: grpc.status.NOT_FOUND });
    await expect(call("boom")).rejects.toMatchObject({ code: grpc.status.INTERNAL });
  });

  it("gRPC clients are refused without the secret", async () => {
    const { port } = await served({ auth: { secret: "pw" } });
    const client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
    cleanups.push(() => client.close());
    const call = (meta: grpc.Metadata) =>
      new Promise<pb.GetResponse>((resolve, reject) => {
        client.makeUnaryRequest(
          "/tinycache.v1.CacheService/Get",
          (m: pb.GetRequest) => Buffer.from(toBinary(pb.GetRequestSchema, m)),
          (b: Buffer) => fromBinary(pb.GetResponseSchema, b),
          create(pb.GetRequestSchema, { group: "scores", key: "Tom" }),
          meta,
          (err, res) => (err || !res ? reject(err) : resolve(res)),
        );
      });
    await expect(call(new grpc.Metadata())).rejects.toMatchObject({
      code: grpc.status.UNAUTHENTICATED,
    });
    const meta = new grpc.Metadata();
    meta.set("x-tinycache-auth", "pw");
    expect(dec((await call(meta)).value)).toBe("630");
  });

  it("answers Connect JSON too (curl-able)", async () => {
    const { port } = await served();
    const res = await post(
      port,
      "/tinycache.v1.CacheService/Get",
      '{"group":"scores","key":"Tom"}',
      {
        "content-type": "application/json",
      },
    );
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body.toString())).toEqual({
      value: Buffer.from("630").toString("base64"),
      expiresAtMs: "1900000000000",
    });
  });

  it("turns malformed, oversized and unknown requests into 4xx, never a crash", async () => {
    const { port } = await served({ maxBodyBytes: 1024 });
    const path = "/tinycache.v1.CacheService/Get";
    const proto = { "content-type": "application/proto" };
    const junk = await post(port, path, Buffer.from([0xff, 0xff, 0xff, 0xff]), proto);
    expect(junk.status).toBe(400);
    expect(JSON.parse(junk.body.toString())).toMatchObject({ code: "invalid_argument" });
    const big = await post(port, path, Buffer.alloc(4096), proto);
    expect(big.status).toBe(429);
    expect(JSON.parse(big.body.toString())).toMatchObject({ code: "resource_exhausted" });
    const missing = await post(port, "/tinycache.v1.CacheService/Nope", "", proto);
    expect(missing.status).toBe(404);
    const elsewhere = await post(port, "/", "hello", { "content-type": "text/plain" });
    expect(elsewhere.status).toBeGreaterThanOrEqual(400);
    expect(elsewhere.status).toBeLessThan(500);
    const badJson = await post(port, path, "{not json", { "content-type": "application/json" });
    expect(badJson.status).toBe(400);
    // Random bodies on every method: each gets an answer, the server stays up.
    for (let i = 0; i < 200; i++) {
      const method = ["Get", "GetMany", "Set", "Remove"][i % 4];
      const body = Buffer.from(Array.from({ length: i % 50 }, (_, j) => (i * 31 + j * 17) & 0xff));
      const r = await post(port, `/tinycache.v1.CacheService/${method}`, body, proto);
      expect([200, 400, 404, 412, 500]).toContain(r.status);
    }
    const ok = await post(
      port,
      path,
      toBinary(pb.GetRequestSchema, create(pb.GetRequestSchema, { group: "scores", key: "Tom" })),
      proto,
    );
    expect(ok.status).toBe(200);
    expect(ok.headers["content-type"]).toBe("application/proto");
  });

  it("handler works in a plain http2 server", async () => {
    const group = new FakeGroup("scores");
    group.data.set("Tom", { value: enc("630") });
    const pool = new ConnectPool({ self: "http://x", registry: lookup(group) });
    const server = http2.createServer(pool.handler);
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    const port = (server.address() as AddressInfo).port;
    const client = new ConnectPool({ self: "http://y", registry: lookup(), protocol: "grpc" });
    client.setPeers(`http://127.0.0.1:${port}`);
    cleanups.push(
      () => new Promise((r) => server.close(r)),
      () => client.close(),
      () => pool.close(),
    );
    expect(dec((await client.peers()[0]!.get({ group: "scores", key: "Tom" })).value)).toBe("630");
  });
});

describe("encodeGetResponse", () => {
  it("writes exactly what protobuf-es writes", () => {
    const cases: [Uint8Array, number | undefined][] = [
      [enc("630"), undefined],
      [new Uint8Array(0), undefined],
      [new Uint8Array(0), 5],
      [enc("x"), 1_900_000_000_123],
      [new Uint8Array(300).fill(7), 127],
      [new Uint8Array(70_000).fill(1), 128],
      [enc("y"), Number.MAX_SAFE_INTEGER],
      [enc("z"), -5],
      [enc("z"), 0],
      [enc("w"), 1.5e12 + 0.7],
    ];
    for (const [value, expiresAt] of cases) {
      const mine = encodeGetResponse(ByteView.from(value), expiresAt);
      const ref = toBinary(
        pb.GetResponseSchema,
        create(pb.GetResponseSchema, {
          value,
          expiresAtMs:
            expiresAt !== undefined && expiresAt > 0 ? BigInt(Math.floor(expiresAt)) : 0n,
        }),
      );
      expect(new Uint8Array(mine)).toEqual(ref);
    }
  });
});
