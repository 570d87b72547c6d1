/**
 * The cache the three mount examples share: one node's "scores" group and its HttpPool,
 * set up from the environment. Only where the pool's handler goes differs between them.
 *
 *   HOST       address to listen on (default 127.0.0.1: loopback only)
 *   PORT       port to listen on (default 8080)
 *   PEERS      every node's URL, comma-separated, this one included (default or empty: this node alone)
 *   TINYCACHE_SECRET   the peers' shared secret (required: peer calls need it)
 */
import { GroupRegistry, NotFoundError } from "@tinycache/core";
import { HttpPool } from "@tinycache/transport-http";

const host = process.env.HOST ?? "127.0.0.1";
const port = Number(process.env.PORT ?? 8080);
/** This node's URL, exactly as PEERS spells it: the pool needs it before it serves. */
const self = `http://${host}:${port}`;
const secret = process.env.TINYCACHE_SECRET;
if (!secret) throw new Error("set TINYCACHE_SECRET: the peers' shared secret");

// The source of truth, standing in for a database.
const table = new Map([
  ["Tom", "630"],
  ["Jack", "589"],
  ["Sam", "567"],
]);

const registry = new GroupRegistry();
const scores = registry.newGroup({
  name: "scores",
  cacheBytes: 64 << 20,
  getter: async (key) => {
    const score = table.get(key);
    if (score === undefined) throw new NotFoundError(key);
    return score;
  },
});
const pool = new HttpPool({ self, registry, auth: { secret } });
pool.setPeers(...(process.env.PEERS || self).split(","));
registry.registerPeers(pool);

export { host, pool, port, scores, self };
