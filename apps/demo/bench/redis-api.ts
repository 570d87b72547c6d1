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
 */
import { createServer, type ServerResponse } from "node:http";
import { join } from "node:path";
import { parseArgs } from "node:util";
import Database from "better-sqlite3";
import { Redis } from "ioredis";
import { BadQueryError, keyOf } from "../src/api.js";
import { DB_FILE } from "../src/db.js";
import { pathOf } from "../src/routes.js";

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

function send(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, {
    "content-type": "text/plain; charset=utf-8",
    "content-length": Buffer.byteLength(body),
  });
  res.end(body);
}

async function serveKey(res: ServerResponse, key: string): Promise<void> {
  const cached = await redis.get(key);
  if (cached !== null) return send(res, 200, cached);
  const row = find.get(key);
  if (row === undefined) return send(res, 404, `${key} not exist`);
  // Cache-aside: answer now, fill Redis on the side (a lost SET only costs a reload).
  redis.set(key, row.score, "EX", ttl).catch(() => {});
  send(res, 200, row.score);
}

const server = createServer({ keepAliveTimeout: 30_000 }, (req, res) => {
  const url = req.url ?? "/";
  const path = pathOf(url);
  if (path === "/healthz") {
    redis.ping().then(
      () => send(res, 200, "ok\n"),
      (err: Error) => send(res, 503, `redis: ${err.message}\n`),
    );
    return;
  }
  if (path !== "/api") return send(res, 404, `no route ${path}\n`);
  let key: string | null;
  try {
    key = keyOf(url);
  } catch (err) {
    if (err instanceof BadQueryError) return send(res, 400, `${err.message}\n`);
    throw err;
  }
  if (!key) return send(res, 400, "missing query parameter: key (e.g. /api?key=Tom)\n");
  serveKey(res, key).catch((err: Error) =>
    send(res, 502, `failed to load ${key}: ${err.message}\n`),
  );
});
server.listen(port, "127.0.0.1");

// The benchmark holds our stdin: when it ends (even by SIGKILL) we go too.
process.stdin.resume();
process.stdin.on("close", () => process.exit(0));
process.on("SIGTERM", () => process.exit(0));
