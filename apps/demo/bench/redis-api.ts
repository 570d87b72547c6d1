/**
 * The cluster benchmark's Redis contender: what a Node team writes instead of a peer
 * cache. One API process doing cache-aside in Redis through ioredis (auto-pipelining
 * on: concurrent GETs leave in one write) over the demo's SQLite file, with the demo
 * API's URL and answers (GET /api?key=K -> 200 score, 404 "K not exist", 400).
 *
 *   node --import tsx bench/redis-api.ts --port P --redis-port R --data-dir D
 *
 * GET /healthz answers 200 only once Redis answers PING, so the benchmark's readiness
 * poll covers Redis too. It exits when its stdin closes (the benchmark is gone).
 *
 * Its HTTP front is the demo API's: the lean lane (src/lean-http.ts) answers GET /api and
 * node:http the rest, so the benchmark compares the caches behind the same front.
 */
import { createServer } from "node:http";
import { join } from "node:path";
import { parseArgs } from "node:util";
import Database from "better-sqlite3";
import { Redis } from "ioredis";
import { BadQueryError, keyOf } from "../dist/api.js";
import { DB_FILE } from "../dist/db.js";
import { type LaneReply, LeanServer } from "../dist/lean-http.js";
import { pathOf, ResponseReply, sendText } from "../dist/routes.js";

const { values } = parseArgs({
  options: {
    port: { type: "string" },
    "redis-port": { type: "string" },
    "data-dir": { type: "string" },
    // A cache-aside entry's lifetime, as such code sets one; longer than the benchmark.
    "ttl-s": { type: "string", default: "3600" },
  },
});
const port = Number(values.port);
const ttl = Number(values["ttl-s"]);
const db = new Database(join(values["data-dir"] ?? ".", DB_FILE), {
  readonly: true,
  fileMustExist: true,
});
const find = db.prepare<[string], { score: string }>("SELECT score FROM scores WHERE name = ?");
const redis = new Redis({
  host: "127.0.0.1",
  port: Number(values["redis-port"]),
  enableAutoPipelining: true,
  commandTimeout: 5_000,
  // Fail fast while Redis is down instead of queueing every request.
  maxRetriesPerRequest: 1,
});
redis.on("error", () => {}); // reconnects by itself; requests meanwhile answer 502

async function serveKey(reply: LaneReply, key: string): Promise<void> {
  const cached = await redis.get(key);
  if (cached !== null) return reply.send(200, cached);
  const row = find.get(key);
  if (row === undefined) return reply.send(404, `${key} not exist`);
  // Cache-aside: answer now, fill Redis on the side (a lost SET only costs a reload).
  redis.set(key, row.score, "EX", ttl).catch(() => {});
  reply.send(200, row.score);
}

function serveApi(url: string, reply: LaneReply): void {
  let key: string | null;
  try {
    key = keyOf(url);
  } catch (err) {
    if (!(err instanceof BadQueryError)) throw err;
    reply.send(400, `${err.message}\n`);
    return;
  }
  if (!key) {
    reply.send(400, "missing query parameter: key (e.g. /api?key=Tom)\n");
    return;
  }
  serveKey(reply, key).catch((err: Error) =>
    reply.send(502, `failed to load ${key}: ${err.message}\n`),
  );
}

const fallback = createServer({ keepAliveTimeout: 30_000 }, (req, res) => {
  const url = req.url ?? "/";
  const path = pathOf(url);
  if (path === "/healthz") {
    redis.ping().then(
      () => sendText(res, 200, "ok\n"),
      (err: Error) => sendText(res, 503, `redis: ${err.message}\n`),
    );
    return;
  }
  if (path !== "/api") return sendText(res, 404, `no route ${path}\n`);
  serveApi(url, new ResponseReply(res));
});
const lane = new LeanServer({
  path: "/api",
  handle: serveApi,
  fallback,
  keepAliveTimeoutMs: 30_000,
  headersTimeoutMs: 60_000,
  maxConnections: 10_000,
  // Its best setting, measured: its answers already leave in bursts (one Redis reply
  // resolves many), and waiting for the turn's end cost it ~3% (4 alternating runs each).
  coalesceWrites: false,
});
await lane.listen(port, "127.0.0.1");

// The benchmark holds our stdin: when it ends (even by SIGKILL) we go too.
process.stdin.resume();
process.stdin.on("close", () => process.exit(0));
process.on("SIGTERM", () => process.exit(0));
