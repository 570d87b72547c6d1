import { GroupRegistry, NotFoundError } from "@tinycache/core";
import { decodeGetManyResponse, encodeGetManyRequest } from "@tinycache/protocol";
import { freePort, httpRequest } from "@tinycache/testkit";
import { afterEach, describe, expect, it } from "vitest";
import { HttpPool, type HttpPoolOptions } from "./index.js";

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

async function served(opts: Partial<HttpPoolOptions> = {}) {
  const registry = new GroupRegistry();
  registry.newGroup({
    name: "scores",
    cacheBytes: 1 << 20,
    maxKeyBytes: 16,
    getter: async (key) => {
      if (key === "nobody") throw new NotFoundError(key);
      if (key === "boom") throw new Error("getter failed");
      if (key.startsWith("big")) return new Uint8Array(1000);
      return `v:${key}`;
    },
  });
  const port = await freePort();
  const pool = new HttpPool({ self: `http://127.0.0.1:${port}`, registry, ...opts });
  cleanups.push(() => pool.close());
  await pool.listen(port, "127.0.0.1");
  return { pool, port };
}

const post = (port: number, body: Uint8Array, group = "scores") =>
  httpRequest(port, "POST", `/_groupcache/_batch/${group}`, {
    headers: { "content-type": "application/x-protobuf" },
    body,
  });

/** The node still answers a plain get after a refusal. */
async function stillServing(port: number) {
  const ok = await httpRequest(port, "GET", "/_groupcache/scores/after");
  expect(ok.status).toBe(200);
  expect(ok.body.toString()).toContain("v:after");
}

describe("HTTP batch endpoint: POST {basePath}_batch/{group}", () => {
  it("answers per key, in order, and every answer carries tinycache-batch: 1", async () => {
    const { port } = await served();
    const res = await post(
      port,
      encodeGetManyRequest("scores", ["Tom", "nobody", "boom", "x".repeat(40)], 0),
    );
    expect(res.status).toBe(200);
    expect(res.headers["tinycache-batch"]).toBe("1");
    const out = decodeGetManyResponse(res.body);
    expect(out.map((r) => (r.ok ? Buffer.from(r.value.value).toString() : r.code))).toEqual([
      "v:Tom",
      "not_found",
      "internal",
      "invalid_argument",
    ]);
    for (const path of [
      "/_groupcache/scores/Tom",
      "/_groupcache/scores/nobody",
      "/_groupcache/nope/k",
    ]) {
      expect((await httpRequest(port, "GET", path)).headers["tinycache-batch"]).toBe("1");
    }
  });

  it("keeps the answer within the asker's max_answer_bytes: the rest are resource_exhausted", async () => {
    const { port } = await served();
    const res = await post(port, encodeGetManyRequest("scores", ["big1", "big2", "big3"], 2200));
    const out = decodeGetManyResponse(res.body);
    expect(out.map((r) => (r.ok ? "ok" : r.code))).toEqual(["ok", "ok", "resource_exhausted"]);
  });

  it("more than maxBatchKeys keys -> 413, and the node keeps serving", async () => {
    const { port } = await served({ maxBatchKeys: 10 });
    const keys = Array.from({ length: 11 }, (_, i) => `k${i}`);
    const res = await post(port, encodeGetManyRequest("scores", keys, 0));
    expect(res.status).toBe(413);
    expect(res.body.toString()).toMatch(/11 keys/);
    expect((await post(port, encodeGetManyRequest("scores", keys.slice(1), 0))).status).toBe(200);
    await stillServing(port);
  });

  it("a body over maxBodyBytes -> 413, and the node keeps serving", async () => {
    const { port } = await served({ maxBodyBytes: 4096 });
    const keys = Array.from({ length: 600 }, (_, i) => `key${i}`);
    const res = await post(port, encodeGetManyRequest("scores", keys, 0));
    expect(res.status).toBe(413);
    await stillServing(port);
  });

  it("a malformed body -> 400, a group that differs from the path -> 400; still serving", async () => {
    const { port } = await served();
    for (const body of [
      Buffer.from([0x0a, 0x7f, 0x01]),
      Buffer.from("garbage!"),
      encodeGetManyRequest("other", ["a"], 0),
    ]) {
      const res = await post(port, body);
      expect(res.status).toBe(400);
    }
    expect(
      (
        await httpRequest(port, "POST", "/_groupcache/_batch/scores/extra", {
          body: encodeGetManyRequest("scores", ["a"], 0),
        })
      ).status,
    ).toBe(400);
    await stillServing(port);
  });

  it("an unknown group -> 404 (no verdict); a wrong secret -> 401; POST elsewhere -> 405", async () => {
    const { port } = await served({ auth: { secret: "s3cret" } });
    const body = encodeGetManyRequest("nope", ["a"], 0);
    expect((await post(port, body, "nope")).status).toBe(401);
    const auth = { "x-tinycache-auth": "s3cret" };
    const res = await httpRequest(port, "POST", "/_groupcache/_batch/nope", {
      headers: auth,
      body,
    });
    expect(res.status).toBe(404);
    expect(res.headers["tinycache-verdict"]).toBeUndefined();
    expect(
      (await httpRequest(port, "POST", "/_groupcache/scores/k", { headers: auth, body })).status,
    ).toBe(405);
  });
});

describe("HttpPool client: batches only with peers that said they speak them", () => {
  it("learns it from the first answer; batch: false never batches", async () => {
    const { port } = await served();
    for (const batch of [true, false]) {
      const client = new HttpPool({
        self: "http://127.0.0.1:1",
        registry: new GroupRegistry(),
        batch,
      });
      cleanups.push(() => client.close());
      client.setPeers(`http://127.0.0.1:${port}`);
      const peer = client.peerClients()[0];
      if (peer === undefined) throw new Error("no client");
      expect(peer.batching).toBe(false);
      await peer.get({ group: "scores", key: "first" });
      expect(peer.batching).toBe(batch);
      // A lone get is a plain get: no batch counted.
      await peer.get({ group: "scores", key: "lone" });
      const url = `http://127.0.0.1:${port}`;
      expect(client.stats().peerBatches).toEqual([{ url, batches: 0, batchedKeys: 0 }]);
      const keys = Array.from({ length: 20 }, (_, i) => `k${i}`);
      const got = await Promise.all(keys.map((key) => peer.get({ group: "scores", key })));
      expect(got.map((v) => Buffer.from(v.value).toString())).toEqual(keys.map((k) => `v:${k}`));
      expect(peer.batchStats()).toEqual(batch ? { batches: 1, keys: 20 } : { batches: 0, keys: 0 });
      // The pool reports the same counters per peer, for /stats and metrics.
      expect(client.stats().peerBatches).toEqual([
        batch ? { url, batches: 1, batchedKeys: 20 } : { url, batches: 0, batchedKeys: 0 },
      ]);
    }
  });
});
