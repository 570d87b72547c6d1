/**
 * The shared body of a cluster-suite node entry (see cluster.ts for the contract): the
 * argument parsing, the "scores" group, the control server and the ready line are the
 * same for every transport; only the pool differs. A transport's entry is then:
 *
 * ```ts
 * import { GroupRegistry, NotFoundError } from "@tinycache/core";
 * import { runClusterNode } from "@tinycache/testkit";
 * await runClusterNode({ GroupRegistry, NotFoundError, pool: (self, registry) => new MyPool({ self, registry }) });
 * ```
 *
 * testkit depends on no package of ours, so core's classes are passed in and described
 * here by the little the node uses of them.
 */
import * as http from "node:http";
import { parseArgs } from "node:util";

/** What the node uses of a core Group. */
export interface ClusterNodeGroup {
  get(key: string): Promise<{ toString(): string }>;
  set(key: string, value: string): Promise<unknown>;
  remove(key: string): Promise<{ failures: readonly unknown[] }>;
  readonly stats: unknown;
}

/** What the node uses of a core GroupRegistry. */
export interface ClusterNodeRegistry {
  newGroup(options: {
    name: string;
    cacheBytes: number;
    getter: (key: string) => Promise<string>;
  }): ClusterNodeGroup;
  /** Takes the pool (a core PeerPicker, which testkit cannot name: hence `never`). */
  registerPeers(peers: never): void;
}

/** What the node uses of a transport's pool: a slice of core's `PeerPool` contract (testkit cannot import core). */
export interface ClusterNodePool {
  setPeers(...urls: string[]): void;
  listen(port: number, host?: string): Promise<unknown>;
}

/** Options of {@link runClusterNode}. */
export interface ClusterNodeOptions<R extends ClusterNodeRegistry> {
  /** core's GroupRegistry. */
  GroupRegistry: new () => R;
  /** core's NotFoundError: the getter throws it for unknown keys, the control maps it to 404. */
  NotFoundError: new (
    key: string,
  ) => Error;
  /** Makes the transport's pool with default ring options; the node sets its peers. */
  pool: (self: string, registry: R) => ClusterNodePool;
}

/**
 * Runs one cluster node as cluster.ts describes, from `process.argv` (--port, --peers,
 * --self, --client-port). Resolves once both servers listen and `{"event":"ready"}` is
 * printed; the process then lives until the suite kills it.
 */
export async function runClusterNode<R extends ClusterNodeRegistry>(
  o: ClusterNodeOptions<R>,
): Promise<void> {
  const { values } = parseArgs({
    options: {
      port: { type: "string" },
      peers: { type: "string" },
      self: { type: "string" },
      "client-port": { type: "string" },
    },
  });
  const port = Number(values.port);
  const clientPort = Number(values["client-port"]);
  const self = values.self as string;
  const peers = (values.peers as string).split(",");
  const { NotFoundError } = o;

  /** One JSON line per event on stdout (the suite reads them; libraries stay silent). */
  const emit = (ev: object) => process.stdout.write(`${JSON.stringify(ev)}\n`);

  const db: Record<string, string> = { Tom: "630", Jack: "589", Sam: "567" };

  const registry = new o.GroupRegistry();
  const group = registry.newGroup({
    name: "scores",
    cacheBytes: 64 << 20,
    getter: async (key) => {
      emit({ event: "load", key });
      const v = db[key] ?? (/^k\d+$/.test(key) ? `v${key.slice(1)}` : undefined);
      if (v === undefined) throw new NotFoundError(key);
      return v;
    },
  });

  const pool = o.pool(self, registry);
  pool.setPeers(...peers);
  // The pool is the transport's PeerPicker: the registry's own type checks it at runtime.
  registry.registerPeers(pool as never);

  const reply = (res: http.ServerResponse, status: number, body: string, type = "text/plain") => {
    res.writeHead(status, { "content-type": type });
    res.end(body);
  };

  const control = http.createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://x");
    const key = url.searchParams.get("key") ?? "";
    const fail = (err: unknown) =>
      reply(res, err instanceof NotFoundError ? 404 : 500, String((err as Error)?.message ?? err));
    if (req.method === "GET" && url.pathname === "/get") {
      group.get(key).then((v) => reply(res, 200, v.toString()), fail);
    } else if (req.method === "POST" && url.pathname === "/set") {
      group.set(key, url.searchParams.get("value") ?? "").then(() => reply(res, 200, "ok"), fail);
    } else if (req.method === "POST" && url.pathname === "/remove") {
      group
        .remove(key)
        .then((r) => reply(res, 200, JSON.stringify({ ...r, failures: r.failures.length })), fail);
    } else if (req.method === "GET" && url.pathname === "/stats") {
      reply(res, 200, JSON.stringify(group.stats), "application/json");
    } else reply(res, 404, "not found");
  });

  await pool.listen(port, "127.0.0.1");
  await new Promise<void>((r) => control.listen(clientPort, "127.0.0.1", r));
  emit({ event: "ready" });
}
