import type * as http from "node:http";
import { fromBinary } from "@bufbuild/protobuf";
import { HashRing } from "@tinycache/consistenthash";
import {
  ByteView,
  GroupRegistry,
  InvalidArgumentError,
  NotFoundError,
  PeerError,
} from "@tinycache/core";
import type { PeerGetter } from "@tinycache/core/transport";
import { groupcachepb } from "@tinycache/protocol";
import { freePort } from "@tinycache/testkit";
import { afterEach, describe, expect, it } from "vitest";
import { type Call, echoGroup, fakeGroup, lookup, serve } from "./fixtures.test-util.js";
import { HttpPool } from "./http-pool.js";

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A server pool on port 0 plus a client pool whose only remote peer is that server. */
async function pair(
  serverOpts: Partial<ConstructorParameters<typeof HttpPool>[0]> = {},
  clientOpts: Partial<ConstructorParameters<typeof HttpPool>[0]> = {},
  groups = [echoGroup("scores")],
) {
  const server = new HttpPool({
    self: "http://server",
    registry: lookup(...groups),
    ...serverOpts,
  });
  const urls: string[] = [];
  const srv = await serve((req, res) => {
    urls.push(req.url ?? "");
    server.handler(req, res);
  });
  const client = new HttpPool({ self: "http://client", registry: lookup(), ...clientOpts });
  client.setPeers(srv.url);
  cleanups.push(
    () => srv.close(),
    () => server.close(),
    () => client.close(),
  );
  const peer = client.peers()[0] as PeerGetter;
  return { srv, client, peer, urls };
}

/** A server whose handler the test writes, and a client peer pointing at it. */
async function rawPeer(
  handler: http.RequestListener,
  opts: { timeoutMs?: number; maxBodyBytes?: number } = {},
) {
  const srv = await serve(handler);
  const client = new HttpPool({ self: "http://client", registry: lookup(), ...opts });
  client.setPeers(srv.url);
  cleanups.push(
    () => srv.close(),
    () => client.close(),
  );
  return client.peers()[0] as PeerGetter;
}

const text = (v: Uint8Array) => new TextDecoder().decode(v);

async function kindOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return "ok";
  } catch (err) {
    expect(err).toBeInstanceOf(PeerError);
    return (err as PeerError).kind;
  }
}

describe("escaping: every key round-trips, never a +", () => {
  const keys = [
    "plain",
    "a b",
    "a+b",
    "a b+c",
    "a/b",
    "/leading/slash/",
    "100%",
    "%2F",
    "what?",
    "x#frag",
    "中文",
    "😀 emoji",
    "café",
    "",
    "~-_.!*'()",
    "&=;,:@$",
    "\u0000nul\u007f",
    "tab\tnew\nline",
  ];
  it.each(keys)("key %j", async (key) => {
    const calls: Call[] = [];
    const { peer, urls } = await pair({}, {}, [echoGroup("scores", calls)]);
    const got = await peer.get({ group: "scores", key });
    expect(text(got.value)).toBe(`v:${key}`);
    expect(got.expiresAt).toBeUndefined();
    expect(calls.at(-1)?.key).toBe(key);
    const path = urls.at(-1) as string;
    expect(path.startsWith("/_groupcache/scores/")).toBe(true);
    expect(path.slice("/_groupcache/scores/".length)).not.toMatch(/[+ /?#]/);
  });

  it("sends a space as %20 and a plus as %2B", async () => {
    const { peer, urls } = await pair();
    await peer.get({ group: "scores", key: "a b+c/d" });
    expect(urls.at(-1)).toBe("/_groupcache/scores/a%20b%2Bc%2Fd");
  });

  it("escapes the group name too", async () => {
    const { peer, urls } = await pair({}, {}, [echoGroup("my group")]);
    expect(text((await peer.get({ group: "my group", key: "k" })).value)).toBe("v:k");
    expect(urls.at(-1)).toBe("/_groupcache/my%20group/k");
  });

  it("a key with a lone surrogate cannot travel: unavailable (load locally)", async () => {
    const { peer } = await pair();
    expect(await kindOf(peer.get({ group: "scores", key: "a\uD800" }))).toBe("unavailable");
  });

  it("keeps a base URL path and a custom basePath", async () => {
    const server = new HttpPool({
      self: "http://s",
      registry: lookup(echoGroup("g")),
      basePath: "/c/",
    });
    const srv = await serve((req, res) => {
      req.url = (req.url ?? "").replace(/^\/prefix/, "");
      server.handler(req, res);
    });
    const client = new HttpPool({ self: "http://c", registry: lookup(), basePath: "/c/" });
    client.setPeers(`${srv.url}/prefix/`);
    cleanups.push(
      () => srv.close(),
      () => server.close(),
      () => client.close(),
    );
    const peer = client.peers()[0] as PeerGetter;
    expect(text((await peer.get({ group: "g", key: "k" })).value)).toBe("v:k");
  });
});

describe("answers map to PeerError kinds", () => {
  const failing = fakeGroup("scores", async (key) => {
    if (key === "missing") throw new NotFoundError(key);
    if (key === "bad") throw new InvalidArgumentError("bad key");
    throw new Error("db down");
  });

  it.each([
    ["missing", "not_found"],
    ["bad", "invalid_argument"],
    ["other", "getter_failed"],
  ])("%s -> %s", async (key, kind) => {
    const { peer } = await pair({}, {}, [failing]);
    const err = await peer.get({ group: "scores", key }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PeerError);
    expect((err as PeerError).kind).toBe(kind);
    expect((err as PeerError).peer).toBe(peer.id);
  });

  it("unknown group at the peer -> unavailable (the owner cannot answer for it)", async () => {
    const { peer } = await pair();
    expect(await kindOf(peer.get({ group: "nope", key: "k" }))).toBe("unavailable");
  });

  it("a different basePath at the peer -> unavailable", async () => {
    const { peer } = await pair({ basePath: "/other/" });
    expect(await kindOf(peer.get({ group: "scores", key: "k" }))).toBe("unavailable");
  });

  it("wrong or missing secret -> unavailable; the right one works", async () => {
    const a = await pair({ auth: { secret: "s1" } }, { auth: { secret: "s2" } });
    expect(await kindOf(a.peer.get({ group: "scores", key: "k" }))).toBe("unavailable");
    const b = await pair({ auth: { secret: "s1" } });
    expect(await kindOf(b.peer.get({ group: "scores", key: "k" }))).toBe("unavailable");
    const c = await pair(
      { auth: { secret: "s1", header: "x-cache-key" } },
      { auth: { secret: "s1", header: "X-Cache-Key" } },
    );
    expect(text((await c.peer.get({ group: "scores", key: "k" })).value)).toBe("v:k");
    await c.peer.set({ group: "scores", key: "k", value: new Uint8Array([1]) });
    await c.peer.remove({ group: "scores", key: "k" });
  });

  it.each([
    [404, "404 page not found\n", "unavailable", {}], // Go's default mux: not a groupcache peer
    // A "not found" without tinycache's marker (mailgun's, a proxy's) is no verdict.
    [404, "k not exist\n", "unavailable", {}],
    [404, "", "unavailable", {}], // an intercepting proxy's bare 404
    [404, "k not exist\n", "not_found", { "tinycache-verdict": "not_found" }],
    [404, "", "unavailable", { "tinycache-verdict": "something else" }],
    [503, "busy\n", "unavailable", {}],
    [502, "", "unavailable", {}],
    [401, "unauthorized\n", "unavailable", {}],
    [413, "too large\n", "invalid_argument", {}],
    [200, "\xff\xff\xff", "unavailable", {}], // not a GetResponse
  ])("HTTP %i %j -> %s (headers %j)", async (status, body, kind, headers) => {
    const peer = await rawPeer((_req, res) => {
      res.writeHead(status, { "content-type": "text/plain", ...headers });
      res.end(Buffer.from(body, "latin1"));
    });
    expect(await kindOf(peer.get({ group: "g", key: "k" }))).toBe(kind);
  });

  it("reads mailgun's expire and skips unknown fields", async () => {
    // value "hi", minute_qps 1.5, expire 1.8e18 ns, unknown field 9 (varint 7)
    const body = Buffer.from([
      0x0a, 0x02, 0x68, 0x69, 0x11, 0, 0, 0, 0, 0, 0, 0xf8, 0x3f, 0x18, 0x80, 0x80, 0xe4, 0xd5,
      0xd7, 0xe1, 0x9f, 0xfd, 0x18, 0x48, 0x07,
    ]);
    const msg = fromBinary(groupcachepb.GetResponseSchema, body);
    const peer = await rawPeer((_req, res) => {
      res.writeHead(200, { "content-type": "application/x-protobuf" });
      res.end(body);
    });
    const got = await peer.get({ group: "g", key: "k" });
    expect(text(got.value)).toBe("hi");
    expect(got.expiresAt).toBe(Number(msg.expire / 1_000_000n));
  });

  it("a response body over maxBodyBytes -> unavailable", async () => {
    const peer = await rawPeer(
      (_req, res) => {
        res.writeHead(200);
        res.end(Buffer.alloc(4096));
      },
      { maxBodyBytes: 1000 },
    );
    const err = await peer.get({ group: "g", key: "k" }).catch((e: unknown) => e);
    expect((err as PeerError).kind).toBe("unavailable");
    expect((err as PeerError).message).toMatch(/maxBodyBytes/);
  });

  it("connection refused -> unavailable", async () => {
    const srv = await serve(() => {});
    const url = srv.url;
    await srv.close();
    const client = new HttpPool({ self: "http://c", registry: lookup() });
    cleanups.push(() => client.close());
    client.setPeers(url);
    expect(await kindOf((client.peers()[0] as PeerGetter).get({ group: "g", key: "k" }))).toBe(
      "unavailable",
    );
  });

  it("the server dropping the connection mid-answer -> unavailable", async () => {
    const peer = await rawPeer((_req, res) => {
      res.writeHead(200, { "content-length": "100" });
      res.write(Buffer.from([0x0a, 0x62, 1, 2]));
      setImmediate(() => res.socket?.destroy());
    });
    expect(await kindOf(peer.get({ group: "g", key: "k" }))).toBe("unavailable");
  });
});

describe("timeout and abort", () => {
  const hanging = () => {
    const pending: http.ServerResponse[] = [];
    return {
      pending,
      handler: (_req: http.IncomingMessage, res: http.ServerResponse) => {
        pending.push(res);
      },
    };
  };

  it("a peer that never answers times out -> unavailable, caused by a TimeoutError", async () => {
    const h = hanging();
    const peer = await rawPeer(h.handler, { timeoutMs: 50 });
    const err = await peer.get({ group: "g", key: "k" }).catch((e: unknown) => e);
    expect((err as PeerError).kind).toBe("unavailable");
    expect((err as PeerError).message).toMatch(/timed out after 50 ms/);
    // What lets a group's observer report it as a timeout.
    expect(((err as PeerError).cause as Error).name).toBe("TimeoutError");
  });

  it("the caller's signal aborts a call in flight -> aborted, with the reason as cause", async () => {
    const h = hanging();
    let arrived!: () => void;
    const arrivedP = new Promise<void>((r) => {
      arrived = r;
    });
    const peer = await rawPeer(
      (req, res) => {
        h.handler(req, res);
        arrived();
      },
      { timeoutMs: 10_000 },
    );
    const ac = new AbortController();
    const p = peer.get({ group: "g", key: "k" }, { signal: ac.signal });
    await arrivedP;
    const reason = new Error("caller gave up");
    ac.abort(reason);
    const err = await p.catch((e: unknown) => e);
    expect((err as PeerError).kind).toBe("aborted");
    expect((err as PeerError).cause).toBe(reason);
  });

  it("an already aborted signal fails at once for get, set and remove", async () => {
    let hits = 0;
    const peer = await rawPeer((_req, res) => {
      hits++;
      res.end();
    });
    const signal = AbortSignal.abort();
    expect(await kindOf(peer.get({ group: "g", key: "k" }, { signal }))).toBe("aborted");
    expect(
      await kindOf(peer.set({ group: "g", key: "k", value: new Uint8Array() }, { signal })),
    ).toBe("aborted");
    expect(await kindOf(peer.remove({ group: "g", key: "k" }, { signal }))).toBe("aborted");
    expect(hits).toBe(0);
  });

  it("reuses one keep-alive connection for sequential calls", async () => {
    const { peer, srv } = await pair();
    let connections = 0;
    srv.server.on("connection", () => connections++);
    for (let i = 0; i < 20; i++) await peer.get({ group: "scores", key: `k${i}` });
    expect(connections).toBe(1);
  });
});

describe("set and remove", () => {
  it("PUT carries value and expiry; DELETE removes", async () => {
    const calls: Call[] = [];
    const { peer, urls } = await pair({}, {}, [echoGroup("scores", calls)]);
    await peer.set({
      group: "scores",
      key: "a b",
      value: new Uint8Array([7, 8]),
      expiresAt: 1_800_000_000_456,
    });
    expect(calls.at(-1)).toMatchObject({
      op: "set",
      key: "a b",
      value: new Uint8Array([7, 8]),
      expiresAt: 1_800_000_000_456,
    });
    expect(urls.at(-1)).toBe("/_groupcache/scores/a%20b");
    await peer.set({ group: "scores", key: "n", value: new Uint8Array() });
    expect(calls.at(-1)).toMatchObject({ op: "set", key: "n", expiresAt: undefined });
    await peer.remove({ group: "scores", key: "x/y" });
    expect(calls.at(-1)).toEqual({ op: "remove", key: "x/y" });
  });

  it("get returns the owner's expiry", async () => {
    const g = fakeGroup("scores", async () => ({
      value: ByteView.from("v"),
      expiresAt: 1_900_000_000_789,
    }));
    const { peer } = await pair({}, {}, [g]);
    const got = await peer.get({ group: "scores", key: "k" });
    expect(text(got.value)).toBe("v");
    expect(got.expiresAt).toBe(1_900_000_000_789);
  });

  it("set to an unknown group or over the peer's body limit fails with a kind", async () => {
    const { peer } = await pair({ maxBodyBytes: 100 });
    expect(await kindOf(peer.set({ group: "nope", key: "k", value: new Uint8Array(1) }))).toBe(
      "unavailable",
    );
    expect(await kindOf(peer.set({ group: "scores", key: "k", value: new Uint8Array(1000) }))).toBe(
      "invalid_argument",
    );
  });
});

describe("the ring", () => {
  const urls = ["http://127.0.0.1:8001", "http://127.0.0.1:8002", "http://127.0.0.1:8003"];

  it("picks the Go-compatible owner; self's keys are local", () => {
    const pool = new HttpPool({ self: urls[0] as string, registry: lookup() });
    cleanups.push(() => pool.close());
    pool.setPeers(...urls);
    const ring = new HashRing().add(...urls);
    let local = 0;
    for (let i = 0; i < 500; i++) {
      const key = `key-${i}`;
      const owner = ring.get(key);
      const picked = pool.pickPeer(key);
      if (owner === urls[0]) {
        expect(picked).toBeUndefined();
        local++;
      } else expect(picked?.id).toBe(owner);
    }
    expect(local).toBeGreaterThan(0);
    expect(pool.peers().map((p) => p.id)).toEqual(urls.slice(1));
  });

  it("setPeers replaces the ring (no duplicated points) and keeps surviving getters", () => {
    const pool = new HttpPool({ self: urls[0] as string, registry: lookup() });
    cleanups.push(() => pool.close());
    pool.setPeers(...urls);
    const second = pool.peers()[0];
    pool.setPeers(...urls);
    pool.setPeers(urls[0] as string, urls[1] as string);
    expect(pool.peerUrls).toEqual(urls.slice(0, 2));
    expect(pool.peers()).toEqual([second]);
    const ring = new HashRing().add(urls[0] as string, urls[1] as string);
    for (let i = 0; i < 200; i++) {
      const owner = ring.get(`k${i}`);
      expect(pool.pickPeer(`k${i}`)?.id ?? urls[0]).toBe(owner);
    }
  });

  it("no peers, or a bad URL: no owner, ring unchanged", () => {
    const pool = new HttpPool({ self: urls[0] as string, registry: lookup() });
    cleanups.push(() => pool.close());
    expect(pool.pickPeer("k")).toBeUndefined();
    expect(pool.peers()).toEqual([]);
    pool.setPeers(urls[1] as string);
    expect(() => pool.setPeers("not a url")).toThrow(TypeError);
    expect(() => pool.setPeers("ftp://x")).toThrow(TypeError);
    expect(pool.pickPeer("k")?.id).toBe(urls[1]);
    pool.setPeers();
    expect(pool.pickPeer("k")).toBeUndefined();
  });
});

describe("two nodes with core's Group", () => {
  it("each key is loaded once, on its owner; both nodes answer every key", async () => {
    const ports = [await freePort(), await freePort()];
    const urls = ports.map((p) => `http://127.0.0.1:${p}`);
    const nodes = await Promise.all(
      urls.map(async (self, i) => {
        const loads: string[] = [];
        const registry = new GroupRegistry();
        const group = registry.newGroup({
          name: "scores",
          cacheBytes: 1 << 20,
          getter: async (key) => {
            loads.push(key);
            if (key === "missing") throw new NotFoundError(key);
            return `v:${key}`;
          },
        });
        const pool = new HttpPool({ self, registry });
        cleanups.push(() => pool.close());
        pool.setPeers(...urls);
        registry.registerPeers(pool);
        await pool.listen(ports[i], "127.0.0.1");
        return { loads, group };
      }),
    );
    const ring = new HashRing().add(...urls);
    const keys = Array.from({ length: 40 }, (_, i) => `key ${i}/+%?#é`);
    for (const key of keys) {
      for (const n of nodes) expect((await n.group.get(key)).toString()).toBe(`v:${key}`);
    }
    for (const key of keys) {
      const owner = urls.indexOf(ring.get(key) as string);
      expect(nodes[owner]?.loads.filter((k) => k === key)).toEqual([key]);
      expect(nodes[1 - owner]?.loads.includes(key)).toBe(false);
    }
    const remote = nodes.find((_, i) => urls[i] !== ring.get("missing")) as (typeof nodes)[0];
    await expect(remote.group.get("missing")).rejects.toBeInstanceOf(NotFoundError);
    expect(remote.loads).not.toContain("missing"); // the owner's answer is passed on
  });
});
