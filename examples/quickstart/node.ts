// examples/quickstart/node.ts: one node of a tinycache cluster; start one per node.
import http from "node:http";
import { GroupRegistry, NotFoundError } from "@tinycache/core";
import { HttpPool } from "@tinycache/transport-http";

const self = process.env.SELF ?? "http://127.0.0.1:8001"; // this node, as PEERS spells it
const peers = (process.env.PEERS ?? self).split(","); // every node, this one included
const secret = process.env.TINYCACHE_SECRET; // the same on every node
if (!secret) throw new Error("set TINYCACHE_SECRET: peers refuse calls without it");

// Your source of truth; here a slow in-memory table that counts its reads.
const table = new Map(Object.entries({ Tom: 630, Jack: 589, Sam: 567 }));
let reads = 0;
async function findScore(key: string): Promise<number | undefined> {
  await new Promise((resolve) => setTimeout(resolve, 100));
  console.log(`source read #${++reads}: ${key}`);
  return table.get(key);
}

const registry = new GroupRegistry();
const scores = registry.newGroup({
  name: "scores",
  cacheBytes: 64 << 20,
  getter: async (key) => {
    const score = await findScore(key);
    if (score === undefined) throw new NotFoundError(key);
    return { value: String(score), ttlMs: 60_000 };
  },
});
const pool = new HttpPool({ self, registry, auth: { secret } });
pool.setPeers(...peers);
registry.registerPeers(pool);

// One port: the pool answers the peers (/_groupcache/...), your API gets the rest.
async function api(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const key = new URL(req.url ?? "/", self).searchParams.get("key") ?? "";
  try {
    res.end((await scores.get(key)).toString());
  } catch (err) {
    res.writeHead(err instanceof NotFoundError ? 404 : 500).end(`${err}\n`);
  }
}
const { hostname, port } = new URL(self);
http
  .createServer((req, res) => pool.handler(req, res, () => void api(req, res)))
  .listen(Number(port), hostname, () => console.log(`listening on ${self}`));
