#!/usr/bin/env node
/**
 * One tinycache node = one process, as the original's `-port` / `-api` flags:
 *   node apps/demo/dist/node.js --port 8001
 *   node apps/demo/dist/node.js --port 8003 --api
 * Run --help for every flag.
 */
import { createServer } from "node:http";
import { parseArgs } from "node:util";
import { GroupRegistry, NotFoundError } from "@tinycache/core";
import { createApiHandler } from "./api.js";
import {
  LOG_LEVELS,
  type LogLevel,
  parseChoice,
  parseCount,
  parsePeerList,
  parsePort,
  reportUsageError,
  TRANSPORTS,
  type TransportName,
  UsageError,
} from "./cli.js";
import {
  DEFAULT_API_PORT,
  DEFAULT_DATA_DIR,
  DEFAULT_HOST,
  DEFAULT_PORTS,
  GROUP_NAME,
  peerTimeoutFor,
  peerUrl,
} from "./config.js";
import { ScoreDb } from "./db.js";
import { createLogger } from "./log.js";
import { createMetrics } from "./metrics.js";
import { observabilityRoutes } from "./routes.js";
import { closeServer, listen, startPeerServer } from "./transport.js";

const PROGRAM = "tinycache-node";

const HELP = `Usage: node apps/demo/dist/node.js --port <port> [options]

One tinycache cache node (one process). Serves the peer transport on --port, plus
GET /metrics (Prometheus) and GET /stats (JSON) on the same port. With --api it also
serves the user API: GET /api?key=K, GET /healthz, /metrics, /stats on --api-port.

Options:
  --port <n>            peer port of this node (default 8001)
  --api                 also serve the user API (the original's -api)
  --api-port <n>        port of the user API (default ${DEFAULT_API_PORT})
  --transport <name>    peer transport: http (groupcache-compatible) or connect
                        (Connect/gRPC); every node of a cluster must use the same
                        (default http)
  --peers <urls>        comma-separated base URLs of every node, this one included,
                        identical on every node (default ${DEFAULT_PORTS.map((p) => peerUrl(p)).join(",")})
  --self <url>          this node's URL in --peers (default http://127.0.0.1:<port>)
  --host <addr>         address to listen on (default ${DEFAULT_HOST})
  --data-dir <dir>      database folder, created and seeded on first start
                        (default apps/demo/data)
  --db-latency-ms <n>   make every database read take n ms more (default 0)
  --cache-bytes <n>     cache budget in bytes, main + hot (default 67108864)
  --hot-cache <on|off>  keep some values owned by other nodes locally (default on)
  --ttl-ms <n>          expire cached values after n ms, 0 = never (default 0)
  --negative-ttl-ms <n> cache "not exist" answers for n ms (default 5000)
  --log-level <level>   ${LOG_LEVELS.join("|")} (default info)
  -h, --help            show this help

Logs are one JSON object per line, pretty-printed when stdout is a terminal
(force with LOG_PRETTY=1 or LOG_PRETTY=0).

Examples (one terminal each):
  node apps/demo/dist/node.js --port 8001
  node apps/demo/dist/node.js --port 8002
  node apps/demo/dist/node.js --port 8003 --api
  curl "http://localhost:9999/api?key=Tom"     # 630
`;

interface NodeConfig {
  port: number;
  api: boolean;
  apiPort: number;
  transport: TransportName;
  peers: string[];
  self: string;
  host: string;
  dataDir: string;
  dbLatencyMs: number;
  cacheBytes: number;
  hotCache: boolean;
  ttlMs: number;
  negativeTtlMs: number;
  logLevel: LogLevel;
}

function parse(argv: string[]): NodeConfig | "help" {
  const { values, positionals } = parseArgs({
    args: argv,
    strict: true,
    allowPositionals: true,
    options: {
      port: { type: "string", default: String(DEFAULT_PORTS[0]) },
      api: { type: "boolean", default: false },
      "api-port": { type: "string", default: String(DEFAULT_API_PORT) },
      transport: { type: "string", default: "http" },
      peers: { type: "string" },
      self: { type: "string" },
      host: { type: "string", default: DEFAULT_HOST },
      "data-dir": { type: "string", default: DEFAULT_DATA_DIR },
      "db-latency-ms": { type: "string", default: "0" },
      "cache-bytes": { type: "string", default: String(64 << 20) },
      "hot-cache": { type: "string", default: "on" },
      "ttl-ms": { type: "string", default: "0" },
      "negative-ttl-ms": { type: "string", default: "5000" },
      "log-level": { type: "string", default: "info" },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) return "help";
  if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  const port = parsePort("port", values.port);
  const apiPort = parsePort("api-port", values["api-port"]);
  const host = values.host;
  const peers = parsePeerList(
    "peers",
    values.peers ?? DEFAULT_PORTS.map((p) => peerUrl(p)).join(","),
  );
  const self = values.self === undefined ? peerUrl(port) : parsePeerList("self", values.self)[0]!;
  if (!peers.includes(self)) {
    throw new UsageError(
      `this node (${self}) is not in --peers (${peers.join(",")}); every node must list itself, or pass --self`,
    );
  }
  if (values.api && apiPort === port) {
    throw new UsageError(`--api-port must differ from --port (both ${port})`);
  }
  return {
    port,
    api: values.api,
    apiPort,
    transport: parseChoice("transport", values.transport, TRANSPORTS),
    peers,
    self,
    host,
    dataDir: values["data-dir"],
    dbLatencyMs: parseCount("db-latency-ms", values["db-latency-ms"], 600_000),
    cacheBytes: parseCount("cache-bytes", values["cache-bytes"]),
    hotCache: parseChoice("hot-cache", values["hot-cache"], ["on", "off"] as const) === "on",
    ttlMs: parseCount("ttl-ms", values["ttl-ms"]),
    negativeTtlMs: parseCount("negative-ttl-ms", values["negative-ttl-ms"]),
    logLevel: parseChoice("log-level", values["log-level"], LOG_LEVELS),
  };
}

async function run(cfg: NodeConfig): Promise<void> {
  const logger = createLogger({ level: cfg.logLevel, base: { node: cfg.port } });
  const db = new ScoreDb({ dataDir: cfg.dataDir, logger, latencyMs: cfg.dbLatencyMs });
  const peerTimeoutMs = peerTimeoutFor(cfg.dbLatencyMs);

  const registry = new GroupRegistry();
  const group = registry.newGroup({
    name: GROUP_NAME,
    cacheBytes: cfg.cacheBytes,
    ttlMs: cfg.ttlMs,
    ttlJitter: 0.1,
    negativeTtlMs: cfg.negativeTtlMs,
    hotCache: cfg.hotCache ? undefined : false,
    peerTimeoutMs,
    logger: logger.child({ component: "core" }),
    getter: async (key, { signal }) => {
      const score = await db.find(key, { signal });
      if (score === undefined) throw new NotFoundError(key);
      return score;
    },
  });

  const apiResponses = new Map<number, number>();
  const startedAt = Date.now();
  const metrics = createMetrics(group, { dbReads: () => db.reads, apiResponses });
  const stats = () => ({
    node: {
      self: cfg.self,
      port: cfg.port,
      api: cfg.api ? `http://${cfg.host}:${cfg.apiPort}` : null,
      transport: cfg.transport,
      peers: cfg.peers,
      pid: process.pid,
      uptimeMs: Date.now() - startedAt,
    },
    group: {
      name: group.name,
      stats: group.stats,
      main: group.cacheStats("main"),
      hot: group.cacheStats("hot"),
    },
    db: { file: db.file, reads: db.reads, latencyMs: cfg.dbLatencyMs },
    api: cfg.api ? { responses: Object.fromEntries(apiResponses) } : null,
  });
  const routes = observabilityRoutes(metrics, stats);

  const peerServer = await startPeerServer({
    transport: cfg.transport,
    self: cfg.self,
    peers: cfg.peers,
    registry,
    host: cfg.host,
    port: cfg.port,
    timeoutMs: peerTimeoutMs,
    logger: logger.child({ component: `transport-${cfg.transport}` }),
    routes,
  });
  group.registerPeers(peerServer.picker);

  const apiServer = cfg.api
    ? createServer(
        { keepAliveTimeout: 30_000 },
        createApiHandler({
          group,
          logger,
          routes,
          responses: apiResponses,
          timeoutMs: peerTimeoutMs * 2,
        }),
      )
    : undefined;
  if (apiServer) {
    try {
      await listen(apiServer, cfg.apiPort, cfg.host);
    } catch (err) {
      await peerServer.close();
      throw err;
    }
  }

  let stopping = false;
  const stop = (signal: NodeJS.Signals | "disconnect") => {
    if (stopping) {
      // A second Ctrl-C means "now"; a SIGTERM from the launcher right after the
      // terminal's SIGINT (both reach us on Ctrl-C) must not cut the graceful stop short.
      if (signal !== "SIGINT") return;
      logger.warn({ event: "forced_exit", signal }, "second signal: exiting now");
      process.exit(1);
    }
    stopping = true;
    logger.info({ event: "stopping", signal }, "shutting down");
    const closing = Promise.all([
      apiServer ? closeServer(apiServer) : undefined,
      peerServer.close(),
    ]);
    closing.then(
      () => {
        db.close();
        logger.info({ event: "stopped" }, "stopped");
        process.exit(0);
      },
      (err: unknown) => {
        logger.error({ err, event: "stop_failed" }, "shutdown failed");
        process.exit(1);
      },
    );
  };
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
  // Started by the launcher with an IPC channel: stop when the launcher goes away, even
  // if it was SIGKILLed and could not stop us itself (no orphans holding the ports).
  if (process.connected) process.once("disconnect", () => stop("disconnect"));

  const apiUrl = cfg.api ? `http://${cfg.host}:${cfg.apiPort}` : null;
  logger.info(
    {
      event: "ready",
      port: cfg.port,
      self: cfg.self,
      api: apiUrl,
      transport: cfg.transport,
      peers: cfg.peers,
      db: db.file,
      dbLatencyMs: cfg.dbLatencyMs,
    },
    `node ready: peers on ${cfg.self}${apiUrl ? `, API on ${apiUrl}` : ""}, metrics on ${peerServer.observabilityUrl}/metrics`,
  );
}

let cfg: NodeConfig | "help";
try {
  cfg = parse(process.argv.slice(2));
} catch (err) {
  if (!reportUsageError(err, PROGRAM)) throw err;
  process.exit(2);
}
if (cfg === "help") {
  process.stdout.write(HELP);
} else {
  run(cfg).catch((err: unknown) => {
    const code = (err as { code?: string }).code;
    process.stderr.write(
      `${PROGRAM}: failed to start: ${err instanceof Error ? err.message : String(err)}\n`,
    );
    process.exit(code === "EADDRINUSE" ? 3 : 1);
  });
}
