import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { ByteView, GroupRegistry, InvalidArgumentError, NotFoundError } from "@tinycache/core";
import { groupcachepb } from "@tinycache/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type Call,
  echoGroup,
  fakeGroup,
  hex,
  keyLimitedLookup,
  lookup,
  request,
  type Served,
  serve,
} from "./fixtures.test-util.js";
import { HttpPool } from "./http-pool.js";

const calls: Call[] = [];
const scores = echoGroup("scores", calls);
const empty = fakeGroup("empty", async () => ({ value: ByteView.empty }));
const big = fakeGroup("big", async () => ({ value: ByteView.from("x".repeat(200)) }));
const expiring = fakeGroup("expiring", async () => ({
  value: ByteView.from("e"),
  expiresAt: 1_700_000_000_123,
}));
const failing = fakeGroup("failing", async (key) => {
  if (key === "missing") throw new NotFoundError(key);
  if (key === "bad") throw new InvalidArgumentError("key is bad");
  if (key === "sync") throw new Error("never here");
  throw new Error(`db down for ${key}`);
});
const throwsSync: typeof failing = {
  ...fakeGroup("sync", async () => ({ value: ByteView.empty })),
  serveGet() {
    throw new Error("thrown synchronously");
  },
  serveSet() {
    throw new InvalidArgumentError("value too large");
  },
};

let srv: Served;
let pool: HttpPool;

beforeAll(async () => {
  pool = new HttpPool({
    self: "http://127.0.0.1:1",
    registry: keyLimitedLookup(256, scores, empty, big, expiring, failing, throwsSync),
    maxBodyBytes: 1024,
  });
  srv = await serve(pool.handler);
});
afterAll(async () => {
  await srv.close();
  await pool.close();
});

const lastKey = () => calls.at(-1)?.key;

describe("GET, as a Go groupcache client sends it", () => {
  it("answers 200 application/x-protobuf with Go's exact bytes", async () => {
    const a = await request(srv.port, "GET", "/_groupcache/scores/somekey");
    expect(a.status).toBe(200);
    expect(a.headers["content-type"]).toBe("application/x-protobuf");
    expect(a.headers["content-length"]).toBe("11");
    expect(hex(a.body)).toBe("0a 09 76 3a 73 6f 6d 65 6b 65 79");
    expect(lastKey()).toBe("somekey");
  });

  it("encodes the empty value as 0a 00 and a 200-byte value with a 2-byte length", async () => {
    expect(hex((await request(srv.port, "GET", "/_groupcache/empty/k")).body)).toBe("0a 00");
    const b = (await request(srv.port, "GET", "/_groupcache/big/k")).body;
    // Go's proto.Marshal of a 200-byte value (checked with go1.19 + golang/protobuf).
    expect(hex(b.subarray(0, 3))).toBe("0a c8 01");
    expect(b.length).toBe(203);
    // The wire doc's "0a ca 01" is the v:<key> answer for a 200-byte key (202 bytes).
    const c = (await request(srv.port, "GET", `/_groupcache/scores/${"k".repeat(200)}`)).body;
    expect(hex(c.subarray(0, 3))).toBe("0a ca 01");
    expect(fromBinary(groupcachepb.GetResponseSchema, b).value.length).toBe(200);
  });

  it("adds mailgun's expire (Unix ns) only when the value expires", async () => {
    const a = await request(srv.port, "GET", "/_groupcache/expiring/k");
    const msg = fromBinary(groupcachepb.GetResponseSchema, a.body);
    expect(msg.expire).toBe(1_700_000_000_123_000_000n);
    expect(new TextDecoder().decode(msg.value)).toBe("e");
    const plain = await request(srv.port, "GET", "/_groupcache/scores/k");
    expect(plain.body.includes(0x18)).toBe(false);
  });

  it.each([
    // Go's url.QueryEscape output -> the key Go's own server would load.
    ["a+b", "a+b"], // Go client's escape of "a b": the owner loads "a+b" (groupcache#25)
    ["a%2Bb", "a+b"],
    ["a%20b", "a b"], // our client's escape of "a b"
    ["a%2Fb", "a/b"],
    ["a/b/c", "a/b/c"], // raw slashes after the first belong to the key
    ["a%3Fb", "a?b"],
    ["a%23b", "a#b"],
    ["100%25", "100%"],
    ["%E4%B8%AD%E6%96%87", "中文"],
    ["%F0%9F%98%80", "😀"],
    ["caf%C3%A9", "café"],
    ["", ""], // empty key part: Go passes "" to the group
    ["~-_.!*'()", "~-_.!*'()"],
  ])("decodes %s to the key %s and keeps + literal", async (raw, key) => {
    const a = await request(srv.port, "GET", `/_groupcache/scores/${raw}`);
    expect(a.status).toBe(200);
    expect(lastKey()).toBe(key);
    expect(new TextDecoder().decode(fromBinary(groupcachepb.GetResponseSchema, a.body).value)).toBe(
      `v:${key}`,
    );
  });

  it("ignores a query string, as Go reads r.URL.Path", async () => {
    const a = await request(srv.port, "GET", "/_groupcache/scores/k1?x=1");
    expect(a.status).toBe(200);
    expect(lastKey()).toBe("k1");
  });

  it("accepts an absolute-form request target", async () => {
    const a = await request(srv.port, "GET", `http://127.0.0.1:${srv.port}/_groupcache/scores/abs`);
    expect(a.status).toBe(200);
    expect(lastKey()).toBe("abs");
  });

  it("passes an AbortSignal that aborts when the client goes away", async () => {
    let seen: AbortSignal | undefined;
    let started!: () => void;
    const startedP = new Promise<void>((r) => {
      started = r;
    });
    const hang = fakeGroup("hang", (_k, opts) => {
      seen = opts?.signal;
      started();
      return new Promise((_, reject) => {
        opts?.signal?.addEventListener("abort", () => reject(opts.signal?.reason));
      });
    });
    const p2 = new HttpPool({ self: "http://127.0.0.1:1", registry: lookup(hang) });
    const s2 = await serve(p2.handler);
    try {
      const http = await import("node:http");
      const r = http.request({ host: "127.0.0.1", port: s2.port, path: "/_groupcache/hang/k" });
      r.on("error", () => {});
      r.end();
      await startedP;
      expect(seen?.aborted).toBe(false);
      const aborted = new Promise((r) => seen?.addEventListener("abort", r));
      r.destroy();
      await aborted;
      expect(seen?.aborted).toBe(true);
    } finally {
      await s2.close();
      await p2.close();
    }
  });
});

describe("abort signal per connection", () => {
  it("keep-alive requests share one signal and leave no abort listeners behind", async () => {
    const { EventEmitter } = await import("node:events");
    const http = await import("node:http");
    const signals = new Set<AbortSignal>();
    // A miss-like group: it listens to the signal while "loading", then cleans up.
    const g = fakeGroup("g", (key, opts) => {
      const signal = opts?.signal as AbortSignal;
      signals.add(signal);
      const onAbort = () => {};
      signal.addEventListener("abort", onAbort);
      return new Promise((resolve) =>
        setImmediate(() => {
          signal.removeEventListener("abort", onAbort);
          resolve({ value: ByteView.from(key) });
        }),
      );
    });
    const p2 = new HttpPool({ self: "http://127.0.0.1:1", registry: lookup(g) });
    const s2 = await serve(p2.handler);
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      for (let i = 0; i < 50; i++) {
        expect((await request(s2.port, "GET", `/_groupcache/g/k${i}`, { agent })).status).toBe(200);
      }
      expect(signals.size).toBe(1);
      const [signal] = [...signals] as [AbortSignal];
      expect(signal.aborted).toBe(false);
      expect(EventEmitter.getEventListeners(signal, "abort")).toHaveLength(0);
      const closed = new Promise((r) => signal.addEventListener("abort", r));
      agent.destroy();
      await closed; // the connection closed: whatever it still waited for is abandoned
    } finally {
      agent.destroy();
      await s2.close();
      await p2.close();
    }
  });
});

describe("errors: text/plain, ending in a newline, Go's wording", () => {
  const cases: [string, string, number, string][] = [
    ["GET", "/_groupcache/scores", 400, "bad request\n"],
    ["GET", "/_groupcache/", 400, "bad request\n"],
    ["GET", "/_groupcache/nope/k", 404, "no such group: nope\n"],
    ["GET", "/_groupcache//k", 404, "no such group: \n"],
    ["GET", "/_groupcache/n%C3%A9/k", 404, "no such group: né\n"],
    ["GET", "/_groupcache/failing/missing", 404, "missing not exist\n"],
    ["GET", "/_groupcache/failing/bad", 400, "key is bad\n"],
    ["GET", "/_groupcache/failing/other", 500, "db down for other\n"],
    ["GET", "/_groupcache/sync/k", 500, "thrown synchronously\n"],
    ["GET", "/elsewhere/scores/k", 404, "path outside /_groupcache/\n"],
    ["GET", "/_groupcach", 404, "path outside /_groupcache/\n"],
    ["GET", "/_groupcache/scores/a%zz", 400, "bad request: invalid percent-encoding\n"],
    ["GET", "/_groupcache/scores/a%2", 400, "bad request: invalid percent-encoding\n"],
    ["GET", "/_groupcache/sc%G0/k", 400, "bad request: invalid percent-encoding\n"],
    ["GET", "/_groupcache/scores/%FF%FE", 400, "bad request: path is not UTF-8\n"],
    ["GET", "/_groupcache/scores/%ED%A0%80", 400, "bad request: path is not UTF-8\n"],
    ["GET", `/_groupcache/scores/${"k".repeat(257)}`, 400, "key too long (max 256 bytes)\n"],
    ["GET", `/_groupcache/scores/${"%C3%A9".repeat(129)}`, 400, "key too long (max 256 bytes)\n"],
    ["POST", "/_groupcache/scores/k", 405, "method not allowed\n"],
    ["HEAD", "/_groupcache/scores/k", 405, ""],
    ["PATCH", "/_groupcache/scores/k", 405, "method not allowed\n"],
    ["PUT", "/_groupcache/scores/k", 400, "bad request: malformed SetRequest\n"],
    ["PUT", "/_groupcache/nope/k", 404, "no such group: nope\n"],
    ["DELETE", "/_groupcache/nope/k", 404, "no such group: nope\n"],
  ];
  it.each(cases)("%s %s -> %i", async (method, path, status, body) => {
    const a = await request(srv.port, method, path, {
      body: method === "PUT" ? Buffer.from([0xff, 0xff, 0xff]) : undefined,
    });
    expect(a.status).toBe(status);
    expect(a.headers["content-type"]).toBe("text/plain; charset=utf-8");
    expect(a.body.toString("utf8")).toBe(body);
    if (status === 405) expect(a.headers.allow).toBe("GET, PUT, DELETE");
    // Only the owner's "not found" carries tinycache's marker: no other 404 is a verdict.
    expect(a.headers["tinycache-verdict"]).toBe(
      body === "missing not exist\n" ? "not_found" : undefined,
    );
  });

  it("accepts a key of exactly maxKeyBytes", async () => {
    const a = await request(srv.port, "GET", `/_groupcache/scores/${"k".repeat(256)}`);
    expect(a.status).toBe(200);
  });
});

describe("PUT and DELETE (mailgun/groupcache)", () => {
  const setBody = (
    fields: Partial<{ group: string; key: string; value: Uint8Array; expire: bigint }>,
  ) => toBinary(groupcachepb.SetRequestSchema, create(groupcachepb.SetRequestSchema, fields));

  it("PUT stores the SetRequest's value with its expiry (ns -> ms)", async () => {
    const a = await request(srv.port, "PUT", "/_groupcache/scores/a%20b", {
      body: setBody({
        group: "scores",
        key: "a b",
        value: new Uint8Array([1, 2, 3]),
        expire: 1_800_000_000_000_000_000n,
      }),
    });
    expect(a.status).toBe(200);
    expect(a.body.length).toBe(0);
    expect(calls.at(-1)).toMatchObject({
      op: "set",
      key: "a b",
      value: new Uint8Array([1, 2, 3]),
      expiresAt: 1_800_000_000_000,
    });
  });

  it("PUT without expire stores without expiry; an empty value is fine", async () => {
    const a = await request(srv.port, "PUT", "/_groupcache/scores/e", {
      body: setBody({ group: "scores", key: "e" }),
    });
    expect(a.status).toBe(200);
    expect(calls.at(-1)).toMatchObject({ op: "set", key: "e", expiresAt: undefined });
    expect(calls.at(-1)?.value?.length).toBe(0);
  });

  it("PUT whose body names another key is refused", async () => {
    const a = await request(srv.port, "PUT", "/_groupcache/scores/x", {
      body: setBody({ group: "scores", key: "y", value: new Uint8Array([1]) }),
    });
    expect(a.status).toBe(400);
    expect(a.body.toString()).toBe("bad request: SetRequest group/key differ from the path\n");
  });

  it("PUT over maxBodyBytes gets 413 (declared or streamed)", async () => {
    const body = setBody({ group: "scores", key: "k", value: new Uint8Array(2000) });
    const a = await request(srv.port, "PUT", "/_groupcache/scores/k", { body });
    expect(a.status).toBe(413);
    expect(a.body.toString()).toBe("request body too large (max 1024 bytes)\n");
    const b = await request(srv.port, "PUT", "/_groupcache/scores/k", {
      body,
      headers: { "transfer-encoding": "chunked" },
    });
    expect(b.status).toBe(413);
  });

  it("PUT rejected by the group maps its error", async () => {
    const a = await request(srv.port, "PUT", "/_groupcache/sync/k", {
      body: setBody({ group: "sync", key: "k", value: new Uint8Array([1]) }),
    });
    expect(a.status).toBe(400);
    expect(a.body.toString()).toBe("value too large\n");
  });

  it("DELETE removes and answers 200 with an empty body", async () => {
    const a = await request(srv.port, "DELETE", "/_groupcache/scores/a%2Fb");
    expect(a.status).toBe(200);
    expect(a.body.length).toBe(0);
    expect(calls.at(-1)).toEqual({ op: "remove", key: "a/b" });
  });
});

describe("auth", () => {
  let authed: Served;
  let p: HttpPool;
  beforeAll(async () => {
    p = new HttpPool({
      self: "http://127.0.0.1:1",
      registry: lookup(echoGroup("scores")),
      auth: { secret: "s3cret" },
    });
    authed = await serve(p.handler);
  });
  afterAll(async () => {
    await authed.close();
    await p.close();
  });

  it.each([
    [undefined, 401],
    ["wrong", 401],
    ["s3cret-longer", 401],
    ["", 401],
    ["s3cret", 200],
  ])("secret %s -> %i", async (secret, status) => {
    const headers = secret === undefined ? undefined : { "x-tinycache-auth": secret };
    const a = await request(authed.port, "GET", "/_groupcache/scores/k", { headers });
    expect(a.status).toBe(status);
    if (status === 401) expect(a.body.toString()).toBe("unauthorized\n");
  });

  it("checks the secret before the method and the group", async () => {
    expect((await request(authed.port, "POST", "/_groupcache/x/k")).status).toBe(401);
  });
});

describe("options", () => {
  const registry = lookup();
  it.each([
    [{ self: "" }, TypeError],
    [{ self: "ftp://x" }, TypeError],
    [{ self: "http://x", registry: {} }, TypeError],
    [{ self: "http://x", basePath: "nope" }, TypeError],
    [{ self: "http://x", basePath: "/a b/" }, TypeError],
    [{ self: "http://x", timeoutMs: 0 }, RangeError],
    [{ self: "http://x", replicas: 0 }, RangeError],
    [{ self: "http://x", maxBodyBytes: 1.5 }, RangeError],
    [{ self: "http://x", auth: { secret: "a\nb" } }, TypeError],
    [{ self: "http://x", auth: { secret: "a", header: "bad header" } }, TypeError],
  ])("rejects %j", (o, cls) => {
    expect(() => new HttpPool({ registry, ...o } as never)).toThrow(cls);
  });

  it("serves a custom basePath", async () => {
    const p = new HttpPool({
      self: "http://x",
      registry: lookup(echoGroup("g")),
      basePath: "/cache/",
    });
    const s = await serve(p.handler);
    try {
      expect((await request(s.port, "GET", "/cache/g/k")).status).toBe(200);
      const a = await request(s.port, "GET", "/_groupcache/g/k");
      expect([a.status, a.body.toString()]).toEqual([404, "path outside /cache/\n"]);
    } finally {
      await s.close();
      await p.close();
    }
  });
});

describe("GET of a key the owner has cached: answered at once, counted once", () => {
  it("a cached value, a cached not-found and a miss, through the handler and the lane", async () => {
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
    const owner = new HttpPool({ self: "http://127.0.0.1:1", registry });
    const viaHandler = await serve(owner.handler);
    const viaLane = new HttpPool({ self: "http://127.0.0.1:1", registry });
    const port = (await viaLane.listen(0, "127.0.0.1")).port;
    try {
      for (const p of [viaHandler.port, port]) {
        const before = { ...group.stats };
        const loadsBefore = loads;
        const first = await request(p, "GET", `/_groupcache/scores/k${p}`); // a miss: loads
        const again = await request(p, "GET", `/_groupcache/scores/k${p}`); // cached
        expect([first.status, again.status]).toEqual([200, 200]);
        expect(hex(again.body)).toBe(hex(first.body));
        const value = fromBinary(groupcachepb.GetResponseSchema, again.body).value;
        expect(Buffer.from(value).toString()).toBe(`v:k${p}`);
        const nobody = [
          await request(p, "GET", "/_groupcache/scores/nobody"),
          await request(p, "GET", "/_groupcache/scores/nobody"),
        ];
        for (const a of nobody) {
          expect(a.status).toBe(404);
          expect(a.headers["tinycache-verdict"]).toBe("not_found");
        }
        expect(nobody[1]?.body.toString()).toBe(nobody[0]?.body.toString());
        const s = group.stats;
        // 4 requests, each counted once. The first pass loads its key and "nobody"; the
        // second finds "nobody" cached (negatively) from the first.
        const firstPass = p === viaHandler.port;
        expect(s.serverRequests - before.serverRequests).toBe(4);
        expect(s.gets - before.gets).toBe(4);
        expect(s.cacheHits - before.cacheHits).toBe(firstPass ? 2 : 3);
        expect(s.negativeHits - before.negativeHits).toBe(firstPass ? 1 : 2);
        expect(loads - loadsBefore).toBe(firstPass ? 2 : 1);
      }
    } finally {
      await viaHandler.close();
      await owner.close();
      await viaLane.close();
    }
  });
});
