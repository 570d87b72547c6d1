/**
 * The contract suite of core's `PeerPool` that every peer transport runs, so that the
 * transports are proven to behave the same whatever their wire: a transport's
 * `contract.test.ts` is only
 *
 * ```ts
 * import { GroupRegistry, InvalidArgumentError, NotFoundError, PeerError } from "@tinycache/core";
 * import { describeTransportContract } from "@tinycache/testkit";
 * describeTransportContract({
 *   name: "HttpPool",
 *   pool: (options) => new HttpPool(options),
 *   GroupRegistry, NotFoundError, InvalidArgumentError, PeerError,
 * });
 * ```
 *
 * Every test runs real servers on 127.0.0.1: two pools A and B, each with its own
 * registry and a "scores" group whose getter records its calls; both rings are
 * `[A, B]`. A peer must know its own URL before it listens (it is `self`), so the two
 * pools listen on ports picked by {@link freePort}; the lifecycle tests listen on port 0.
 * Nothing sleeps and nothing is timed: tests await promises (see {@link deferred}), and
 * everything started is closed in afterEach.
 *
 * testkit depends on no package of ours (that would be a workspace cycle), so core's
 * classes are passed in and described here by the little the suite uses of them.
 */
import { once } from "node:events";
import { Agent, createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AgentOptions } from "node:https";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { deferred } from "./deferred.ts";
import { httpRequest } from "./http.ts";
import { freePort } from "./proc.ts";

/** Which key of which group (core's KeyRequest). */
export interface ContractKeyRequest {
  group: string;
  key: string;
}

/** What the suite uses of a remote peer's client (core's PeerGetter). */
export interface ContractPeerGetter {
  readonly id: string;
  get(
    req: ContractKeyRequest,
    opts?: { signal?: AbortSignal; maxValueBytes?: number },
  ): Promise<{ value: Uint8Array; expiresAt?: number }>;
  set(
    req: ContractKeyRequest & { value: Uint8Array; expiresAt?: number },
    opts?: { signal?: AbortSignal },
  ): Promise<void>;
  remove(req: ContractKeyRequest, opts?: { signal?: AbortSignal }): Promise<void>;
}

/** The pool under test: core's `PeerPool` contract. */
export interface ContractPool {
  readonly self: string;
  /** core's `PeerHandler`: a request listener with a `next` fallback, and `handles`. */
  readonly handler: {
    (req: IncomingMessage, res: ServerResponse, next?: (err?: unknown) => void): void;
    handles(req: { readonly url?: string | undefined }): boolean;
  };
  setPeers(...urls: string[]): void;
  readonly peerUrls: readonly string[];
  pickPeer(key: string): ContractPeerGetter | undefined;
  peers(): readonly ContractPeerGetter[];
  listen(port?: number, host?: string): Promise<AddressInfo>;
  close(): Promise<void>;
}

/** A value as a group hands it out (core's ByteView). */
export interface ContractValue {
  readonly byteLength: number;
  byteSlice(): Uint8Array;
  toString(): string;
}

/** What the suite uses of a core Group. */
export interface ContractGroup {
  get(key: string, opts?: { signal?: AbortSignal }): Promise<ContractValue>;
  set(key: string, value: string | Uint8Array): Promise<void>;
  remove(key: string): Promise<{
    ok: boolean;
    owner: string | undefined;
    failures: readonly unknown[];
  }>;
}

/** The group options the suite uses (core's GroupOptions). */
export interface ContractGroupOptions {
  name: string;
  cacheBytes: number;
  getter: (key: string, opts: { signal: AbortSignal }) => Promise<string | Uint8Array>;
  maxKeyBytes?: number;
  maxValueBytes?: number;
  hotCache?: false;
}

/** What the suite uses of a core GroupRegistry. */
export interface ContractRegistry {
  newGroup(options: ContractGroupOptions): ContractGroup;
  /** Takes the pool (a core PeerPicker, which testkit cannot name: hence `never`). */
  registerPeers(peers: never): void;
}

/** pino-compatible logger (core's Logger). */
export interface ContractLogger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

/** The options every pool takes (core's `PeerPoolOptions`), as the factory gets them. */
export interface ContractPoolOptions<R> {
  self: string;
  registry: R;
  replicas?: number;
  hash?: (s: string) => number;
  timeoutMs?: number;
  auth?: { secret: string; header?: string };
  maxBodyBytes?: number;
  maxInflightBodyBytes?: number;
  agentOptions?: AgentOptions;
  logger?: ContractLogger;
  batch?: boolean;
  maxBatchKeys?: number;
}

/** A core error with its {@link ContractPeerError.kind} (core's PeerError). */
export interface ContractPeerError extends Error {
  readonly kind: string;
  readonly peer: string;
}

/** Options of {@link describeTransportContract}. */
export interface TransportContractOptions<R extends ContractRegistry> {
  /** The transport's name, for the describe block, e.g. `"HttpPool"`. */
  name: string;
  /** Makes a pool of the transport from the common options (the suite sets no others). */
  pool: (options: ContractPoolOptions<R>) => ContractPool;
  /** core's GroupRegistry. */
  GroupRegistry: new () => R;
  /** core's NotFoundError. */
  NotFoundError: new (
    key: string,
  ) => Error;
  /** core's InvalidArgumentError. */
  InvalidArgumentError: abstract new (
    message: string,
  ) => Error;
  /** core's PeerError. */
  PeerError: abstract new (
    ...args: never[]
  ) => ContractPeerError;
  /**
   * Whether the pool's clients honour `maxInflightBodyBytes` (core's HTTP/1.1 client
   * does; a client stack that buffers on its own may not). Default true.
   */
  inflightBudget?: boolean;
  /**
   * Whether the pool batches concurrent gets (core's Batcher): then the suite also checks
   * that they coalesce into few requests. Batching must be invisible either way, so every
   * other batch case runs regardless. Default true.
   */
  batches?: boolean;
  /**
   * The server the "mounted in an app" cases put a request listener of their own in (the
   * pool's handler with a `next` fallback to an app). Default: a node:http server, which
   * serves HTTP/1.1 clients only: a transport whose clients may speak HTTP/2 passes a
   * server that speaks it (Connect: `createCleartextServer`).
   */
  server?: (listener: (req: IncomingMessage, res: ServerResponse) => void) => ContractServer;
}

/** A server for a request listener (core's `PoolServer`). */
export interface ContractServer {
  listen(port: number, host?: string): Promise<unknown>;
  close(): Promise<void>;
}

/** A node:http server for `listener`, as a {@link ContractServer}. */
function nodeHttpServer(listener: (req: IncomingMessage, res: ServerResponse) => void) {
  const server = createServer(listener);
  return {
    async listen(port: number, host?: string) {
      server.listen(port, host);
      await Promise.race([
        once(server, "listening"),
        once(server, "error").then(([err]) => Promise.reject(err)),
      ]);
    },
    async close() {
      if (!server.listening) return;
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    },
  };
}

const LOOPBACK = "127.0.0.1";
const GROUP = "scores";
const KiB = 1024;

/** The bytes of a value, as a Buffer (for exact comparisons). */
const bytes = (v: Uint8Array | ContractValue): Buffer =>
  v instanceof Uint8Array
    ? Buffer.from(v.buffer, v.byteOffset, v.byteLength)
    : Buffer.from(v.byteSlice());

/** Bytes 0..255 repeated to `n` bytes: every byte value, not valid UTF-8. */
const pattern = (n: number, seed = 0): Uint8Array => {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (i * 31 + seed) & 255;
  return out;
};

/**
 * Declares the contract suite of one transport's pool (call it at the top level of a
 * `*.test.ts` file). See the file comment.
 */
export function describeTransportContract<R extends ContractRegistry>(
  o: TransportContractOptions<R>,
): void {
  const { GroupRegistry, NotFoundError, InvalidArgumentError, PeerError } = o;

  /** One process of a cluster: a pool serving a registry with the "scores" group. */
  interface Node {
    label: string;
    url: string;
    pool: ContractPool;
    registry: R;
    group: ContractGroup;
    /** Every key the "scores" getter was called with, in order. */
    calls: string[];
    /** What the getter answers; by default `"<label>:<key>"`, so a value tells its loader. */
    load: (key: string, signal: AbortSignal) => Promise<string | Uint8Array>;
  }

  interface NodeOptions {
    pool?: Partial<ContractPoolOptions<R>>;
    group?: Partial<ContractGroupOptions>;
    /** Serves the pool on `port` of 127.0.0.1 itself, instead of the pool's `listen`. */
    serve?: (pool: ContractPool, port: number) => Promise<void>;
  }

  /** Undone in reverse order after each test: pools closed, blocked getters released. */
  const cleanups: (() => unknown)[] = [];
  afterEach(async () => {
    while (cleanups.length > 0) await cleanups.pop()?.();
  });

  /** A pool made by the transport's factory, closed after the test. */
  const makePool = (options: ContractPoolOptions<R>): ContractPool => {
    const pool = o.pool(options);
    cleanups.push(() => pool.close());
    return pool;
  };

  /** A promise that stays pending until the end of the test (a getter that hangs). */
  const untilTestEnd = (): Promise<void> => {
    const gate = deferred<void>();
    cleanups.push(() => gate.resolve());
    return gate.promise;
  };

  /** A node listening on 127.0.0.1; its ring is left empty. */
  const startNode = async (label: string, opts: NodeOptions = {}): Promise<Node> => {
    for (let attempt = 1; ; attempt++) {
      const port = await freePort();
      const url = `http://${LOOPBACK}:${port}`;
      const registry = new GroupRegistry();
      const node = { label, url, registry, calls: [] as string[] } as Node;
      node.load = async (key) => `${label}:${key}`;
      node.group = registry.newGroup({
        name: GROUP,
        cacheBytes: 64 << 20,
        // No hot cache: whether A keeps a copy of B's value would be random.
        hotCache: false,
        getter: async (key, { signal }) => {
          node.calls.push(key);
          return node.load(key, signal);
        },
        ...opts.group,
      });
      node.pool = makePool({ self: url, registry, ...opts.pool });
      try {
        if (opts.serve !== undefined) {
          await opts.serve(node.pool, port);
        } else {
          const addr = await node.pool.listen(port, LOOPBACK);
          expect(addr.port).toBe(port);
        }
        return node;
      } catch (err) {
        // Another test process took the port between freePort's probe and listen.
        if ((err as NodeJS.ErrnoException).code !== "EADDRINUSE" || attempt >= 5) throw err;
      }
    }
  };

  /**
   * Nodes A and B, both with the ring `[A, B]` and their pool registered as their
   * registry's peers; `toB` is A's client of B.
   */
  const cluster = async (
    opts: { a?: NodeOptions; b?: NodeOptions; pool?: Partial<ContractPoolOptions<R>> } = {},
  ) => {
    const a = await startNode("A", { ...opts.a, pool: { ...opts.pool, ...opts.a?.pool } });
    const b = await startNode("B", { ...opts.b, pool: { ...opts.pool, ...opts.b?.pool } });
    a.pool.setPeers(a.url, b.url);
    b.pool.setPeers(a.url, b.url);
    a.registry.registerPeers(a.pool as never);
    b.registry.registerPeers(b.pool as never);
    expect(a.pool.peers()).toHaveLength(1);
    const toB = a.pool.peers()[0] as ContractPeerGetter;
    /**
     * `base`, or `base~N` for the first N that B owns (by both rings): the key keeps what
     * `base` holds (slashes, unicode, ...) whatever the ring makes of it.
     */
    const ownedByB = (base: string): string => {
      for (let i = 0; i < 10_000; i++) {
        const key = i === 0 ? base : `${base}~${i}`;
        if (a.pool.pickPeer(key)?.id === toB.id) {
          expect(b.pool.pickPeer(key)).toBeUndefined();
          return key;
        }
      }
      throw new Error(`no key owned by B from ${base}`);
    };
    return { a, b, toB, ownedByB };
  };

  /** A client-only pool (never listening) whose only peer is `url`. */
  const clientOf = (url: string, opts: Partial<ContractPoolOptions<R>> = {}) => {
    const pool = makePool({
      self: `http://${LOOPBACK}:1`,
      registry: new GroupRegistry(),
      ...opts,
    });
    pool.setPeers(url);
    const peer = pool.peers()[0];
    if (peer === undefined) throw new Error("setPeers made no client");
    return { pool, peer };
  };

  /** What `p` rejected with, checked to be a core PeerError. */
  const peerError = async (p: Promise<unknown>): Promise<ContractPeerError> => {
    const err = await p.then(
      () => new Error("expected a PeerError, the call succeeded"),
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(PeerError);
    return err as ContractPeerError;
  };

  const validOptions = (): ContractPoolOptions<R> => ({
    self: `http://${LOOPBACK}:1`,
    registry: new GroupRegistry(),
  });

  /** What the app behind a mounted pool saw of one request handed to it. */
  interface AppRequest {
    method: string;
    url: string;
    body: Buffer;
    /** At the moment `next` was called: what the pool had done to the exchange. */
    headersSent: boolean;
    headerNames: string[];
    /** `null`: nobody had read, paused or resumed the body. */
    readableFlowing: boolean | null;
  }

  /**
   * A `serve` for {@link startNode}: a server of the transport's kind whose listener is
   * the pool's handler in front of an app (`handler(req, res, next)`), as a service mounts
   * it. `log` gets every request with what `handles` said and whether it reached the app;
   * `app` what the app saw of the requests handed to it. The app reads the whole body and
   * answers `app: <method> <url> <body length>`.
   */
  const mounted =
    (log: { url: string; handles: boolean; toApp: boolean }[], app: AppRequest[]) =>
    async (pool: ContractPool, port: number): Promise<void> => {
      const listener = (req: IncomingMessage, res: ServerResponse): void => {
        const entry = { url: req.url ?? "", handles: pool.handler.handles(req), toApp: false };
        log.push(entry);
        pool.handler(req, res, () => {
          entry.toApp = true;
          const seen: AppRequest = {
            method: req.method ?? "",
            url: req.url ?? "",
            body: Buffer.alloc(0),
            headersSent: res.headersSent,
            headerNames: res.getHeaderNames(),
            readableFlowing: req.readableFlowing,
          };
          const chunks: Buffer[] = [];
          req.on("data", (chunk: Buffer) => chunks.push(chunk));
          req.on("end", () => {
            seen.body = Buffer.concat(chunks);
            app.push(seen);
            res.writeHead(200, { "content-type": "text/plain" });
            res.end(`app: ${seen.method} ${seen.url} ${seen.body.length}`);
          });
        });
      };
      const server = (o.server ?? nodeHttpServer)(listener);
      await server.listen(port, LOOPBACK);
      cleanups.push(() => server.close());
    };

  /** A key that `from`'s ring gives to `to` (`Tom~N`). */
  const keyOwnedBy = (from: ContractPool, to: ContractPeerGetter, base = "Tom"): string => {
    for (let i = 0; i < 10_000; i++) {
      if (from.pickPeer(`${base}~${i}`)?.id === to.id) return `${base}~${i}`;
    }
    throw new Error(`no key owned by ${to.id}`);
  };

  describe(`${o.name}: PeerPool contract`, () => {
    describe("lifecycle and options", () => {
      it("listen() with no arguments serves on a free port", async () => {
        const server = await startNode("S");
        // A second pool on the same registry: listen() without a port, without a host.
        const pool = makePool({ self: `http://${LOOPBACK}:2`, registry: server.registry });
        const addr = await pool.listen();
        expect(addr.port).toBeGreaterThan(0);
        const { peer } = clientOf(`http://${LOOPBACK}:${addr.port}`);
        const got = await peer.get({ group: GROUP, key: "Tom" });
        expect(bytes(got.value).toString()).toBe("S:Tom");
      });

      it('listen(0, "127.0.0.1") serves on a free loopback port', async () => {
        const pool = makePool(validOptions());
        const addr = await pool.listen(0, LOOPBACK);
        expect(addr.port).toBeGreaterThan(0);
        expect(addr.address).toBe(LOOPBACK);
      });

      it("listen rejects while listening and after close; close is safe twice", async () => {
        const never = makePool(validOptions());
        await never.close();
        await never.close();

        const server = await startNode("S");
        const { peer } = clientOf(server.url);
        await expect(server.pool.listen(0, LOOPBACK)).rejects.toThrow();
        // Still serving after the refused second listen.
        expect(bytes((await peer.get({ group: GROUP, key: "k" })).value).toString()).toBe("S:k");
        await server.pool.close();
        await server.pool.close();
        await expect(server.pool.listen(0, LOOPBACK)).rejects.toThrow();
        // Closed means closed: the port no longer answers.
        expect((await peerError(peer.get({ group: GROUP, key: "k2" }))).kind).toBe("unavailable");
      });

      it("self and peerUrls: self included, in the order given, duplicates once", async () => {
        const self = "http://10.0.0.1:8001";
        const b = "http://10.0.0.2:8001";
        const c = "https://10.0.0.3:8443/cache";
        const pool = makePool({ ...validOptions(), self });
        expect(pool.self).toBe(self);
        expect(pool.peerUrls).toEqual([]);
        expect(pool.peers()).toEqual([]);
        pool.setPeers(b, self, b, c, self);
        expect(pool.peerUrls).toEqual([b, self, c]);
        expect(pool.peers()).toHaveLength(2);
        pool.setPeers(self);
        expect(pool.peerUrls).toEqual([self]);
        expect(pool.peers()).toEqual([]);
        expect(pool.pickPeer("any key")).toBeUndefined();
      });

      it("setPeers refuses a non-http URL with a TypeError and changes nothing", async () => {
        const self = "http://10.0.0.1:8001";
        const b = "http://10.0.0.2:8001";
        const pool = makePool({ ...validOptions(), self });
        pool.setPeers(self, b);
        const ids = () => pool.peers().map((p) => p.id);
        const before = ids();
        expect(before).toHaveLength(1);
        for (const bad of ["ftp://x", "not a url", ""]) {
          expect(() => pool.setPeers(self, "http://10.0.0.3:8001", bad)).toThrow(TypeError);
          expect(pool.peerUrls).toEqual([self, b]);
          expect(ids()).toEqual(before);
        }
      });

      it("refuses bad options: timeoutMs, replicas, maxBodyBytes, self, registry", () => {
        for (const timeoutMs of [0, Number.POSITIVE_INFINITY, -1, Number.NaN]) {
          expect(() => o.pool({ ...validOptions(), timeoutMs })).toThrow(RangeError);
        }
        expect(() => o.pool({ ...validOptions(), replicas: 1.5 })).toThrow(RangeError);
        expect(() => o.pool({ ...validOptions(), replicas: 0 })).toThrow(RangeError);
        expect(() => o.pool({ ...validOptions(), maxBodyBytes: 0 })).toThrow(RangeError);
        for (const maxInflightBodyBytes of [0, -1, 1.5]) {
          expect(() => o.pool({ ...validOptions(), maxInflightBodyBytes })).toThrow(RangeError);
        }
        void o.pool({ ...validOptions(), maxInflightBodyBytes: Number.POSITIVE_INFINITY }).close();
        expect(() => o.pool({ ...validOptions(), self: "ftp://x" })).toThrow(TypeError);
        expect(() => o.pool({ ...validOptions(), self: "" })).toThrow(TypeError);
        expect(() => o.pool({ ...validOptions(), registry: undefined as never })).toThrow(
          TypeError,
        );
      });
    });

    describe("routing and values", () => {
      it("a key owned by B, asked at A, is loaded once, by B's getter", async () => {
        const { a, b, ownedByB } = await cluster();
        const key = ownedByB("Tom");
        expect((await a.group.get(key)).toString()).toBe(`B:${key}`);
        expect((await a.group.get(key)).toString()).toBe(`B:${key}`);
        expect(b.calls).toEqual([key]);
        expect(a.calls).toEqual([]);
      });

      it("values round-trip exactly: empty, unicode, every byte, 1 MiB", async () => {
        const { a, b, toB, ownedByB } = await cluster();
        const values = new Map<string, string | Uint8Array>([
          ["empty", ""],
          ["unicode", "ключ🔑 ✓ 中文"],
          ["bytes", pattern(256)],
          ["big", pattern(1024 * KiB, 7)],
        ]);
        const byKey = new Map<string, string | Uint8Array>();
        b.load = async (key) => {
          const v = byKey.get(key);
          if (v === undefined) throw new Error(`unexpected key ${key}`);
          return v;
        };
        for (const [name, value] of values) {
          const expected = bytes(typeof value === "string" ? Buffer.from(value) : value);
          const key = ownedByB(name);
          byKey.set(key, value);
          const viaGroup = await a.group.get(key);
          expect(viaGroup.byteLength).toBe(expected.length);
          expect(bytes(viaGroup).equals(expected)).toBe(true);
          const direct = await toB.get({ group: GROUP, key });
          expect(bytes(direct.value).equals(expected)).toBe(true);
          expect(direct.expiresAt).toBeUndefined();
        }
        expect(a.calls).toEqual([]);
        expect(b.calls).toEqual([...byKey.keys()]);
      });

      it("keys with / % + space ? # .. and unicode reach the owner intact", async () => {
        const { a, b, toB, ownedByB } = await cluster();
        const keys = [
          "a/b",
          "/lead",
          "trail/",
          "100%",
          "%2F",
          "%zz",
          "a+b",
          "a b",
          "why?x=1",
          "#frag",
          "x/../y",
          "..",
          "ключ🔑",
        ];
        // Through A's group, for keys B owns (`key`, or `key~N`).
        const owned = keys.map(ownedByB);
        for (const key of owned) expect((await a.group.get(key)).toString()).toBe(`B:${key}`);
        expect(b.calls).toEqual(owned);
        // Straight to B, exactly these keys (B loads each itself, whoever owns it; those
        // already loaded above are cached).
        for (const key of keys) {
          const got = await toB.get({ group: GROUP, key });
          expect(bytes(got.value).toString()).toBe(`B:${key}`);
        }
        const all = new Set([...owned, ...keys]);
        expect(new Set(b.calls)).toEqual(all);
        expect(b.calls).toHaveLength(all.size);
        expect(a.calls).toEqual([]);
      });

      it("concurrent gets of one cold key at A call B's getter once", async () => {
        const { a, b, toB, ownedByB } = await cluster();
        const key = ownedByB("cold");
        const entered = deferred<void>();
        const release = deferred<void>();
        b.load = async (k) => {
          entered.resolve();
          await release.promise;
          return `B:${k}`;
        };
        const gets = [
          ...Array.from({ length: 10 }, () => a.group.get(key).then((v) => v.toString())),
          // Straight to B too: B's own dedupe, past A's.
          ...Array.from({ length: 10 }, () =>
            toB.get({ group: GROUP, key }).then((v) => bytes(v.value).toString()),
          ),
        ];
        await entered.promise;
        release.resolve();
        expect(await Promise.all(gets)).toEqual(Array(20).fill(`B:${key}`));
        expect(b.calls).toEqual([key]);
        expect(a.calls).toEqual([]);
      });

      it("direct set and get carry the value's expiry", async () => {
        const { b, toB } = await cluster();
        const expiresAt = Date.now() + 3_600_000;
        await toB.set({ group: GROUP, key: "exp", value: Buffer.from("soon"), expiresAt });
        const got = await toB.get({ group: GROUP, key: "exp" });
        expect(bytes(got.value).toString()).toBe("soon");
        expect(got.expiresAt).toBe(expiresAt);
        await toB.set({ group: GROUP, key: "forever", value: Buffer.from("always") });
        expect((await toB.get({ group: GROUP, key: "forever" })).expiresAt).toBeUndefined();
        expect(b.calls).toEqual([]);
      });
    });

    describe("owner answers and failures", () => {
      it("not found at the owner: NotFoundError at A, B's getter once, A's never", async () => {
        const { a, b, toB, ownedByB } = await cluster();
        b.load = async (key) => {
          throw new NotFoundError(key);
        };
        const key = ownedByB("nobody");
        await expect(a.group.get(key)).rejects.toBeInstanceOf(NotFoundError);
        expect(b.calls).toEqual([key]);
        expect(a.calls).toEqual([]);
        expect((await peerError(toB.get({ group: GROUP, key: "ghost" }))).kind).toBe("not_found");
      });

      it("a failing getter at the owner is passed on, not reloaded at A", async () => {
        const { a, b, toB, ownedByB } = await cluster();
        b.load = async () => {
          throw new Error("database is down");
        };
        const key = ownedByB("boom");
        expect((await peerError(a.group.get(key))).kind).toBe("getter_failed");
        expect(b.calls).toEqual([key]);
        expect(a.calls).toEqual([]);
        expect((await peerError(toB.get({ group: GROUP, key: "boom2" }))).kind).toBe(
          "getter_failed",
        );
      });

      it("an unreachable owner: A loads the key itself, without an error", async () => {
        const { a, b, toB, ownedByB } = await cluster();
        const warm = ownedByB("warm");
        await a.group.get(warm); // a kept-alive connection to B, now stale
        await b.pool.close();
        const key = ownedByB("orphan");
        expect((await a.group.get(key)).toString()).toBe(`A:${key}`);
        expect(a.calls).toEqual([key]);
        expect(b.calls).toEqual([warm]);
        expect((await peerError(toB.get({ group: GROUP, key: "x" }))).kind).toBe("unavailable");
      });

      it("a server that is not a peer (a bare 404 on every path) as the owner: A loads the key itself", async () => {
        // An intercepting proxy, or a placeholder peer URL that reaches some other web
        // server: its 404 is no verdict about the key, never "not found".
        const stranger = createServer((_req, res) => {
          res.writeHead(404, { "content-length": "0" });
          res.end();
        });
        stranger.listen(0, LOOPBACK);
        await once(stranger, "listening");
        cleanups.push(() => new Promise((resolve) => stranger.close(resolve)));
        const strangerUrl = `http://${LOOPBACK}:${(stranger.address() as AddressInfo).port}`;
        const a = await startNode("A");
        a.pool.setPeers(a.url, strangerUrl);
        a.registry.registerPeers(a.pool as never);
        const toStranger = a.pool.peers()[0] as ContractPeerGetter;
        let key = "";
        for (let i = 0; key === ""; i++) {
          if (a.pool.pickPeer(`Tom~${i}`)?.id === toStranger.id) key = `Tom~${i}`;
        }
        expect((await a.group.get(key)).toString()).toBe(`A:${key}`);
        expect(a.calls).toEqual([key]);
        expect((await peerError(toStranger.get({ group: GROUP, key }))).kind).toBe("unavailable");
      });

      it("an owner without the group: A loads the key itself", async () => {
        const { a, b, toB, ownedByB } = await cluster();
        const onlyA: string[] = [];
        const group = a.registry.newGroup({
          name: "only-a",
          cacheBytes: 1 << 20,
          hotCache: false,
          getter: async (key) => {
            onlyA.push(key);
            return `A-only:${key}`;
          },
        });
        const key = ownedByB("k");
        expect((await group.get(key)).toString()).toBe(`A-only:${key}`);
        expect(onlyA).toEqual([key]);
        expect(b.calls).toEqual([]);
        expect((await peerError(toB.get({ group: "only-a", key }))).kind).toBe("unavailable");
      });

      it("a key over the group's maxKeyBytes is refused by the owner as invalid_argument", async () => {
        const { a, b, toB, ownedByB } = await cluster({ b: { group: { maxKeyBytes: 16 } } });
        for (const key of ["k".repeat(17), "é".repeat(9) /* 9 characters, 18 bytes */]) {
          expect((await peerError(toB.get({ group: GROUP, key }))).kind).toBe("invalid_argument");
          const value = Buffer.from("v");
          expect((await peerError(toB.set({ group: GROUP, key, value }))).kind).toBe(
            "invalid_argument",
          );
          expect((await peerError(toB.remove({ group: GROUP, key }))).kind).toBe(
            "invalid_argument",
          );
          // The owner's group says the same on its own.
          await expect(b.group.get(key)).rejects.toBeInstanceOf(InvalidArgumentError);
        }
        // At the limit is fine, and the server is still serving.
        const atLimit = "k".repeat(16);
        expect(bytes((await toB.get({ group: GROUP, key: atLimit })).value).toString()).toBe(
          `B:${atLimit}`,
        );
        expect(b.calls).toEqual([atLimit]);
        // A's group (limit 4096) asks B, whose refusal is passed on, not loaded locally.
        const long = ownedByB("k".repeat(17));
        expect((await peerError(a.group.get(long))).kind).toBe("invalid_argument");
        expect(a.calls).toEqual([]);
        expect(b.calls).toEqual([atLimit]);
      });
    });

    describe("batched gets: invisible to callers", () => {
      /** A `serve` that counts the peer requests reaching the pool's handler. */
      const counted =
        (count: { n: number }) =>
        async (pool: ContractPool, port: number): Promise<void> => {
          const server = (o.server ?? nodeHttpServer)((req, res) => {
            if (pool.handler.handles(req)) count.n++;
            pool.handler(req, res);
          });
          await server.listen(port, LOOPBACK);
          cleanups.push(() => server.close());
        };

      /** A cluster whose B counts requests, warmed so A knows B (and speaks batches). */
      const countedCluster = async (pool: Partial<ContractPoolOptions<R>> = {}) => {
        const count = { n: 0 };
        const c = await cluster({ pool, b: { serve: counted(count) } });
        await c.a.group.get(c.ownedByB("warm"));
        count.n = 0;
        c.b.calls.length = 0;
        return { ...c, count };
      };

      it("64 concurrent gets of B's keys at A coalesce into a few requests, each answered", async () => {
        const { a, b, ownedByB, count } = await countedCluster();
        const keys = Array.from({ length: 64 }, (_, i) => ownedByB(`many${i}`));
        const got = await Promise.all(keys.map((k) => a.group.get(k)));
        expect(got.map((v) => v.toString())).toEqual(keys.map((k) => `B:${k}`));
        expect([...b.calls].sort()).toEqual([...keys].sort());
        expect(a.calls).toEqual([]);
        if (o.batches !== false) expect(count.n).toBeLessThanOrEqual(4);
      });

      it("with batch: false, one request per key", async () => {
        const { a, ownedByB, count } = await countedCluster({ batch: false });
        const keys = Array.from({ length: 16 }, (_, i) => ownedByB(`one${i}`));
        await Promise.all(keys.map((k) => a.group.get(k)));
        expect(count.n).toBe(16);
      });

      it("one batch, per-key outcomes: found, not found, getter error, each as a single get gives", async () => {
        const { a, b, ownedByB, count } = await countedCluster();
        b.load = async (key) => {
          if (key.startsWith("nobody")) throw new NotFoundError(key);
          if (key.startsWith("boom")) throw new Error("database is down");
          return `B:${key}`;
        };
        const [found, missing, broken] = [ownedByB("found"), ownedByB("nobody"), ownedByB("boom")];
        const out = await Promise.allSettled([found, missing, broken].map((k) => a.group.get(k)));
        expect(out[0]?.status === "fulfilled" && out[0].value.toString()).toBe(`B:${found}`);
        expect(out[1]?.status === "rejected" && out[1].reason).toBeInstanceOf(NotFoundError);
        const err =
          out[2]?.status === "rejected" ? (out[2].reason as ContractPeerError) : undefined;
        expect(err).toBeInstanceOf(PeerError);
        expect(err?.kind).toBe("getter_failed");
        expect(err?.message).toContain("database is down");
        expect([...b.calls].sort()).toEqual([found, missing, broken].sort());
        expect(a.calls).toEqual([]);
        if (o.batches !== false) expect(count.n).toBe(1);
      });

      it("one caller's abort rejects only that caller; the others of its batch are served", async () => {
        const { a, b, ownedByB, count } = await countedCluster();
        const slowKey = ownedByB("slow");
        const entered = deferred<void>();
        const gate = deferred<void>();
        cleanups.push(() => gate.resolve());
        b.load = async (key) => {
          if (key === slowKey) {
            entered.resolve();
            await gate.promise;
          }
          return `B:${key}`;
        };
        const ac = new AbortController();
        const slow = a.group.get(slowKey, { signal: ac.signal }).then(
          () => "served",
          () => "rejected",
        );
        const others = [ownedByB("other1"), ownedByB("other2")];
        const served = Promise.all(others.map((k) => a.group.get(k)));
        await entered.promise;
        ac.abort();
        expect(await slow).toBe("rejected");
        gate.resolve();
        expect((await served).map((v) => v.toString())).toEqual(others.map((k) => `B:${k}`));
        expect(a.calls).toEqual([]);
        if (o.batches !== false) expect(count.n).toBeLessThanOrEqual(2);
      });

      it("a slow key does not hold its batch: the others are served by B, the slow one loads at A", async () => {
        const { a, b, ownedByB } = await cluster({ pool: { timeoutMs: 1_000 } });
        await a.group.get(ownedByB("warm"));
        const slowKey = ownedByB("stuck");
        const hang = untilTestEnd();
        b.load = async (key) => {
          if (key === slowKey) await hang;
          return `B:${key}`;
        };
        const others = [ownedByB("quick1"), ownedByB("quick2"), ownedByB("quick3")];
        const got = await Promise.all([slowKey, ...others].map((k) => a.group.get(k)));
        expect(got.map((v) => v.toString())).toEqual([
          `A:${slowKey}`,
          ...others.map((k) => `B:${k}`),
        ]);
        expect(a.calls).toEqual([slowKey]);
      });

      it("a batch to a peer that dies mid-request: every key is loaded at A, no error", async () => {
        const { a, b, ownedByB } = await cluster({ a: { pool: { timeoutMs: 5_000 } } });
        await a.group.get(ownedByB("warm"));
        const keys = Array.from({ length: 8 }, (_, i) => ownedByB(`doomed${i}`));
        const all = deferred<void>();
        const hang = untilTestEnd();
        b.load = async (key) => {
          if (b.calls.length === keys.length + 1) all.resolve();
          await hang;
          return `B:${key}`;
        };
        const got = Promise.all(keys.map((k) => a.group.get(k)));
        await all.promise; // the whole batch reached B's getter
        await b.pool.close(); // B dies: its connections are cut mid-answer
        expect((await got).map((v) => v.toString())).toEqual(keys.map((k) => `A:${k}`));
        expect([...a.calls].sort()).toEqual([...keys].sort());
      });
    });

    describe("set and remove through the pool", () => {
      it("group.set at A stores the value at the owner B", async () => {
        const { a, b, ownedByB } = await cluster();
        const key = ownedByB("stored");
        await a.group.set(key, "set at A");
        expect((await b.group.get(key)).toString()).toBe("set at A");
        expect((await a.group.get(key)).toString()).toBe("set at A");
        const binary = ownedByB("binary");
        await a.group.set(binary, pattern(300, 3));
        expect(bytes(await b.group.get(binary)).equals(bytes(pattern(300, 3)))).toBe(true);
        expect(b.calls).toEqual([]);
        expect(a.calls).toEqual([]);
      });

      it("group.remove at A removes the key at the owner B and reports ok", async () => {
        const { a, b, toB, ownedByB } = await cluster();
        const key = ownedByB("gone");
        expect((await b.group.get(key)).toString()).toBe(`B:${key}`);
        expect(b.calls).toEqual([key]);
        const result = await a.group.remove(key);
        expect(result.ok).toBe(true);
        expect(result.failures).toEqual([]);
        expect(result.owner).toBe(toB.id);
        expect((await b.group.get(key)).toString()).toBe(`B:${key}`);
        expect(b.calls).toEqual([key, key]);
        expect(a.calls).toEqual([]);
      });
    });

    describe("authentication", () => {
      it.each([
        ["the default header", { secret: "s3cr3t!" }],
        ["a custom header", { secret: "s3cr3t!", header: "X-Peer-Auth" }],
      ])("peers sharing the secret (%s) get, set and remove", async (_, auth) => {
        const { a, b, ownedByB } = await cluster({ pool: { auth } });
        const key = ownedByB("Tom");
        expect((await a.group.get(key)).toString()).toBe(`B:${key}`);
        expect(b.calls).toEqual([key]);
        const stored = ownedByB("stored");
        await a.group.set(stored, "via A");
        expect((await b.group.get(stored)).toString()).toBe("via A");
        expect((await a.group.remove(key)).ok).toBe(true);
        expect((await b.group.get(key)).toString()).toBe(`B:${key}`);
        expect(b.calls).toEqual([key, key]);
        expect(a.calls).toEqual([]);
      });

      it.each([
        ["no secret", { secret: "s3cr3t!" }, undefined],
        ["a wrong secret", { secret: "s3cr3t!" }, { secret: "guess" }],
        [
          "the secret in the wrong header",
          { secret: "s3cr3t!", header: "x-peer-auth" },
          { secret: "s3cr3t!" },
        ],
      ])(
        "a client with %s is refused as unavailable and changes nothing",
        async (_, serverAuth, clientAuth) => {
          const { b } = await cluster({ pool: { auth: serverAuth } });
          const { peer } = clientOf(b.url, clientAuth === undefined ? {} : { auth: clientAuth });
          // B owns these by its own ring, so B's group loads them itself.
          const owned = (base: string): string => {
            for (let i = 0; ; i++) {
              const key = `${base}~${i}`;
              if (b.pool.pickPeer(key) === undefined) return key;
            }
          };
          const cached = owned("cached");
          expect((await b.group.get(cached)).toString()).toBe(`B:${cached}`);

          const got = owned("got");
          expect((await peerError(peer.get({ group: GROUP, key: got }))).kind).toBe("unavailable");
          expect(b.calls).toEqual([cached]);

          const set = owned("set");
          const value = Buffer.from("forged");
          expect((await peerError(peer.set({ group: GROUP, key: set, value }))).kind).toBe(
            "unavailable",
          );
          expect((await b.group.get(set)).toString()).toBe(`B:${set}`);

          expect((await peerError(peer.remove({ group: GROUP, key: cached }))).kind).toBe(
            "unavailable",
          );
          expect((await b.group.get(cached)).toString()).toBe(`B:${cached}`);
          expect(b.calls).toEqual([cached, set]);
        },
      );
    });

    describe("abort", () => {
      it("an already aborted signal rejects with aborted and asks nothing", async () => {
        const { b, toB } = await cluster();
        const signal = AbortSignal.abort();
        const err = await peerError(toB.get({ group: GROUP, key: "k" }, { signal }));
        expect(err.kind).toBe("aborted");
        expect(
          (
            await peerError(
              toB.set({ group: GROUP, key: "s", value: Buffer.from("v") }, { signal }),
            )
          ).kind,
        ).toBe("aborted");
        expect((await peerError(toB.remove({ group: GROUP, key: "s" }, { signal }))).kind).toBe(
          "aborted",
        );
        // The next call (no signal) goes through: nothing of the above reached the getter.
        expect(bytes((await toB.get({ group: GROUP, key: "after" })).value).toString()).toBe(
          "B:after",
        );
        expect(b.calls).toEqual(["after"]);
      });

      it("a signal aborted mid-call rejects with aborted, before the call's deadline", async () => {
        // With a deadline far away, a client that ignored the abort would hang (and the
        // test time out) or fail as unavailable: only a prompt abort passes.
        const { b, toB } = await cluster({ a: { pool: { timeoutMs: 60_000 } } });
        const entered = deferred<void>();
        const hang = untilTestEnd();
        b.load = async (key) => {
          entered.resolve();
          await hang;
          return `B:${key}`;
        };
        const ac = new AbortController();
        const call = peerError(toB.get({ group: GROUP, key: "slow" }, { signal: ac.signal }));
        await entered.promise;
        ac.abort();
        expect((await call).kind).toBe("aborted");
        expect(b.calls).toEqual(["slow"]);
      });
    });

    describe("deadlines and body caps", () => {
      it("a call past timeoutMs fails as unavailable, and A loads the key itself", async () => {
        const { a, b, toB, ownedByB } = await cluster({ a: { pool: { timeoutMs: 200 } } });
        const hang = untilTestEnd();
        b.load = async (key) => {
          await hang;
          return `B:${key}`;
        };
        expect((await peerError(toB.get({ group: GROUP, key: "slow" }))).kind).toBe("unavailable");
        const key = ownedByB("slow-too");
        expect((await a.group.get(key)).toString()).toBe(`A:${key}`);
        expect(a.calls).toEqual([key]);
      });

      it("an answer over the client's maxBodyBytes fails as unavailable", async () => {
        const { a, b, toB, ownedByB } = await cluster({ a: { pool: { maxBodyBytes: KiB } } });
        b.load = async (key) => (key.startsWith("big") ? pattern(4 * KiB) : pattern(KiB / 2));
        expect((await peerError(toB.get({ group: GROUP, key: "big" }))).kind).toBe("unavailable");
        // Well under the cap is fine, on the same client.
        expect((await toB.get({ group: GROUP, key: "small" })).value.byteLength).toBe(KiB / 2);
        // Through the group: the owner's answer is unreadable, so A loads it itself.
        const key = ownedByB("big");
        expect((await a.group.get(key)).toString()).toBe(`A:${key}`);
        expect(a.calls).toEqual([key]);
      });

      it("a get with maxValueBytes: a longer value fails as unavailable, and A loads it itself", async () => {
        const { a, b, toB, ownedByB } = await cluster({
          a: { group: { maxValueBytes: 4 * KiB } },
        });
        b.load = async (key) => (key.startsWith("big") ? pattern(64 * KiB) : pattern(4 * KiB));
        const over = await peerError(
          toB.get({ group: GROUP, key: "big" }, { maxValueBytes: 4 * KiB }),
        );
        expect(over.kind).toBe("unavailable");
        // At the limit exactly is fine, on the same client; without a limit, anything.
        const at = await toB.get({ group: GROUP, key: "fits" }, { maxValueBytes: 4 * KiB });
        expect(at.value.byteLength).toBe(4 * KiB);
        expect((await toB.get({ group: GROUP, key: "big" })).value.byteLength).toBe(64 * KiB);
        // Through A's group (maxValueBytes 4 KiB): B's answer is cut off, A loads it.
        const key = ownedByB("big");
        expect((await a.group.get(key)).toString()).toBe(`A:${key}`);
        expect(a.calls).toEqual([key]);
      });

      it.runIf(o.inflightBudget !== false)(
        `an answer over the pool's maxInflightBodyBytes fails as unavailable, and A loads it itself${
          o.inflightBudget === false
            ? " (SKIPPED: this client reads answers itself and does not take from the budget)"
            : ""
        }`,
        async () => {
          const { a, b, toB, ownedByB } = await cluster({
            a: { pool: { maxInflightBodyBytes: 8 * KiB } },
          });
          b.load = async (key) => (key.startsWith("big") ? pattern(64 * KiB) : pattern(4 * KiB));
          expect((await peerError(toB.get({ group: GROUP, key: "big" }))).kind).toBe("unavailable");
          // The bytes of the failed answer came back: smaller answers fit, one after another.
          for (const key of ["small1", "small2", "small3"]) {
            expect((await toB.get({ group: GROUP, key })).value.byteLength).toBe(4 * KiB);
          }
          const key = ownedByB("big");
          expect((await a.group.get(key)).toString()).toBe(`A:${key}`);
          expect(a.calls).toEqual([key]);
        },
      );

      it("a set over the server's maxBodyBytes is refused and not stored", async () => {
        const { a, b, toB, ownedByB } = await cluster({ b: { pool: { maxBodyBytes: KiB } } });
        const key = ownedByB("big");
        const err = await peerError(toB.set({ group: GROUP, key, value: pattern(4 * KiB) }));
        expect(["invalid_argument", "unavailable"]).toContain(err.kind);
        await expect(a.group.set(key, pattern(4 * KiB))).rejects.toBeInstanceOf(PeerError);
        expect((await b.group.get(key)).toString()).toBe(`B:${key}`);
        expect(b.calls).toEqual([key]);
        // Well under the cap is stored, on the same client.
        const small = ownedByB("small");
        await toB.set({ group: GROUP, key: small, value: pattern(KiB / 2) });
        expect(bytes(await b.group.get(small)).equals(bytes(pattern(KiB / 2)))).toBe(true);
        expect(b.calls).toEqual([key]);
      });
    });

    describe("mounted in an app: handler(req, res, next)", () => {
      it("peer calls are served; every other request goes to next untouched, body unread", async () => {
        const auth = { secret: "s3cr3t!" };
        const log: { url: string; handles: boolean; toApp: boolean }[] = [];
        const app: AppRequest[] = [];
        const a = await startNode("A", { pool: { auth } });
        // M's body cap is far below the app's uploads: the pool must not apply it to them.
        const m = await startNode("M", {
          pool: { auth, maxBodyBytes: KiB },
          serve: mounted(log, app),
        });
        a.pool.setPeers(a.url, m.url);
        m.pool.setPeers(a.url, m.url);
        a.registry.registerPeers(a.pool as never);
        m.registry.registerPeers(m.pool as never);
        const toM = a.pool.peers()[0] as ContractPeerGetter;

        // Get, set and remove reach M's group through the mounted handler.
        const key = keyOwnedBy(a.pool, toM);
        expect((await a.group.get(key)).toString()).toBe(`M:${key}`);
        const stored = keyOwnedBy(a.pool, toM, "stored");
        await a.group.set(stored, "set at A");
        expect((await m.group.get(stored)).toString()).toBe("set at A");
        expect((await a.group.remove(key)).ok).toBe(true);
        expect((await m.group.get(key)).toString()).toBe(`M:${key}`);
        expect(m.calls).toEqual([key, key]);
        expect(a.calls).toEqual([]);
        expect(app).toEqual([]);

        // The app's own requests, on one kept-alive connection.
        const port = Number(new URL(m.url).port);
        const agent = new Agent({ keepAlive: true, maxSockets: 1 });
        cleanups.push(() => agent.destroy());
        const upload = pattern(64 * KiB, 5);
        const answers = [
          await httpRequest(port, "GET", "/hello?x=1", { agent }),
          await httpRequest(port, "POST", "/upload", { agent, body: upload }),
          await httpRequest(port, "PUT", "/upload", {
            agent,
            body: upload,
            headers: { "transfer-encoding": "chunked" },
          }),
          await httpRequest(port, "GET", "/", { agent }),
        ];
        expect(answers.map((r) => [r.status, r.body.toString()])).toEqual([
          [200, "app: GET /hello?x=1 0"],
          [200, `app: POST /upload ${64 * KiB}`],
          [200, `app: PUT /upload ${64 * KiB}`],
          [200, "app: GET / 0"],
        ]);
        // Nothing asked the connection to close: the pool left the exchange to the app.
        for (const r of answers) expect(r.headers.connection).not.toBe("close");
        for (const r of app) {
          expect(r.headersSent).toBe(false);
          expect(r.headerNames).toEqual([]);
          expect(r.readableFlowing).toBe(null);
        }
        expect(bytes(app[1]?.body ?? Buffer.alloc(0)).equals(bytes(upload))).toBe(true);
        expect(bytes(app[2]?.body ?? Buffer.alloc(0)).equals(bytes(upload))).toBe(true);
        expect(m.calls).toEqual([key, key]);

        // handles(req) told each request's way, before anything was read.
        const peerCalls = log.filter((e) => e.handles);
        expect(peerCalls.length).toBeGreaterThanOrEqual(3);
        for (const e of log) expect(e.toApp).toBe(!e.handles);
        expect(log.filter((e) => e.toApp).map((e) => e.url)).toEqual([
          "/hello?x=1",
          "/upload",
          "/upload",
          "/",
        ]);
        for (const url of ["/", "/hello", "*", "", "no-slash"]) {
          expect(m.pool.handler.handles({ url })).toBe(false);
        }
        expect(m.pool.handler.handles({})).toBe(false);
      });

      it("a peer call without the secret is refused by the pool, never handed to the app", async () => {
        const log: { url: string; handles: boolean; toApp: boolean }[] = [];
        const app: AppRequest[] = [];
        const m = await startNode("M", {
          pool: { auth: { secret: "s3cr3t!" } },
          serve: mounted(log, app),
        });
        const { peer } = clientOf(m.url, { auth: { secret: "guess" } });
        expect((await peerError(peer.get({ group: GROUP, key: "k" }))).kind).toBe("unavailable");
        const value = Buffer.from("forged");
        expect((await peerError(peer.set({ group: GROUP, key: "k", value }))).kind).toBe(
          "unavailable",
        );
        expect(m.calls).toEqual([]);
        expect(app).toEqual([]);
        expect(log.length).toBeGreaterThanOrEqual(2);
        for (const e of log) expect(e).toMatchObject({ handles: true, toApp: false });
      });

      it("without next (a server of its own), a path that is not the pool's is 404", async () => {
        const s = await startNode("S");
        const port = Number(new URL(s.url).port);
        expect((await httpRequest(port, "GET", "/hello")).status).toBe(404);
        expect((await httpRequest(port, "POST", "/hello", { body: pattern(KiB) })).status).toBe(
          404,
        );
        expect(s.pool.handler.handles({ url: "/hello" })).toBe(false);
        expect(s.calls).toEqual([]);
        // Still serving peers.
        const { peer } = clientOf(s.url);
        expect(bytes((await peer.get({ group: GROUP, key: "k" })).value).toString()).toBe("S:k");
      });
    });

    describe("membership", () => {
      it("after B leaves A's ring, its keys load at A; after it rejoins, at B again", async () => {
        const { a, b, ownedByB } = await cluster();
        const before = ownedByB("before");
        const after = ownedByB("after");
        const back = ownedByB("back");
        expect((await a.group.get(before)).toString()).toBe(`B:${before}`);

        a.pool.setPeers(a.url);
        expect(a.pool.peerUrls).toEqual([a.url]);
        expect(a.pool.peers()).toEqual([]);
        expect(a.pool.pickPeer(after)).toBeUndefined();
        expect((await a.group.get(after)).toString()).toBe(`A:${after}`);
        expect(a.calls).toEqual([after]);
        expect(b.calls).toEqual([before]);

        a.pool.setPeers(a.url, b.url);
        expect(a.pool.peers()).toHaveLength(1);
        expect((await a.group.get(back)).toString()).toBe(`B:${back}`);
        expect(b.calls).toEqual([before, back]);
        expect(a.calls).toEqual([after]);
      });
    });
  });
}
