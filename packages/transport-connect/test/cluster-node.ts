/**
 * One node of the shared cluster suite (@tinycache/testkit clusterSuite), over
 * @tinycache/transport-connect. Run as:
 *   node --import tsx test/cluster-node.ts --port <peerPort> --peers <u1,u2,u3> \
 *     --self <url> --client-port <port>
 * See tools/testkit/src/cluster.ts for the contract.
 */
import * as http from "node:http";
import { parseArgs } from "node:util";
import { GroupRegistry, NotFoundError } from "@tinycache/core";
import { ConnectPool, type PeerProtocol } from "../src/index.js";

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

/** One JSON line per event on stdout (the suite reads them; libraries stay silent). */
const emit = (ev: object) => process.stdout.write(`${JSON.stringify(ev)}\n`);

const db: Record<string, string> = { Tom: "630", Jack: "589", Sam: "567" };

const registry = new GroupRegistry();
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

// The suite runs once per client protocol; the server always speaks all of them.
const protocol = (process.env.TINYCACHE_PROTOCOL ?? "connect") as PeerProtocol;
const httpVersion =
  process.env.TINYCACHE_HTTP_VERSION === "2" ? "2" : protocol === "grpc" ? "2" : "1.1";
const pool = new ConnectPool({ self, registry, protocol, httpVersion });
pool.setPeers(...peers);
registry.registerPeers(pool);

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
