import { createServer } from "node:http";
import { GroupRegistry, NotFoundError } from "@tinycache/core";
import {
  applyServerLimits,
  DEFAULT_AUTH_HEADER,
  makeSecretCheck,
  type PeerPool,
  resolveServerLimits,
} from "@tinycache/core/transport";
import { createApi } from "./api.js";
import { GROUP_NAME, peerTimeoutFor } from "./config.js";
import { ScoreDb } from "./db.js";
import { LeanServer } from "./lean-http.js";
import { createLogger } from "./log.js";
import { membershipStats, PeerHistory, startMembership } from "./membership.js";
import { createMetrics } from "./metrics.js";
import type { NodeConfig } from "./node-config.js";
import { closeUnreadBody, observabilityRoutes, pathOf, type Route, sendText } from "./routes.js";
import { MAX_STATUS_KEYS, type StatusRoutes, statusRoutes } from "./status.js";
import { closeServer, listen, startPeerServer } from "./transport.js";

/**
 * The process's memory beside the cache's budget, in bytes, so an operator (or a test)
 * can check that the budget bounds memory: V8's heap (`heapUsed`, `heapTotal`), bytes
 * outside it (`arrayBuffers`: Buffers and typed arrays; `external`), the resident set now
 * (`rss`) and its peak since the process started (`maxRss`).
 */
function memoryStats(cacheBytes: number, maxValueBytes: number) {
  const m = process.memoryUsage();
  return {
    cacheBytes,
    maxValueBytes,
    heapUsed: m.heapUsed,
    heapTotal: m.heapTotal,
    arrayBuffers: m.arrayBuffers,
    external: m.external,
    rss: m.rss,
    maxRss: process.resourceUsage().maxRSS * 1024,
  };
}

/**
 * Runs one node until SIGINT/SIGTERM (or the launcher's IPC channel closes): the group over
 * the database, the peer transport with /metrics and /stats, and the API when asked.
 * Resolves once it is listening and has logged its ready line.
 */
export async function run(cfg: NodeConfig): Promise<void> {
  const logger = createLogger({ level: cfg.logLevel, base: { node: cfg.port } });
  // Lifecycle lines (ready, stopping, stopped) are the launcher's and tests' signals: they
  // are written at any --log-level, even warn or silent.
  const lifecycle = logger.child({}, { level: "info" });
  const db = new ScoreDb({ dataDir: cfg.dataDir, logger, latencyMs: cfg.dbLatencyMs });
  const peerTimeoutMs = peerTimeoutFor(cfg.dbLatencyMs);

  const apiResponses = new Map<number, number>();
  const startedAt = Date.now();
  // The peer transport's pool, once it is up (below): /stats and /metrics read it.
  let pool: PeerPool | undefined;
  const metrics = createMetrics({
    dbReads: () => db.reads,
    apiResponses,
    peerBatches: () => pool?.stats().peerBatches ?? [],
  });
  const registry = new GroupRegistry();
  const group = registry.newGroup({
    name: GROUP_NAME,
    cacheBytes: cfg.cacheBytes,
    ttlMs: cfg.ttlMs,
    ttlJitter: 0.1,
    negativeTtlMs: cfg.negativeTtlMs,
    hotCache: cfg.hotCache ? undefined : false,
    peerTimeoutMs,
    maxConcurrentLoads: cfg.maxLoads,
    logger: logger.child({ component: "core" }),
    // Times each peer call and database read, for the /metrics histograms.
    observer: metrics.tinycache.observer,
    getter: async (key, { signal }) => {
      const score = await db.find(key, { signal });
      if (score === undefined) throw new NotFoundError(key);
      return score;
    },
  });

  metrics.tinycache.watch(group);
  let membership: Awaited<ReturnType<typeof startMembership>>;
  const peerHistory = new PeerHistory();
  const stats = () => ({
    node: {
      self: cfg.self,
      port: cfg.port,
      api: cfg.api ? `http://${cfg.host}:${cfg.apiPort}` : null,
      transport: cfg.transport,
      peers: membership?.peers ?? cfg.peers,
      pid: process.pid,
      uptimeMs: Date.now() - startedAt,
    },
    group: {
      name: group.name,
      stats: group.stats,
      main: group.cacheStats("main"),
      hot: group.cacheStats("hot"),
      loadLimit: group.loadLimit,
    },
    // The most recently used keys of each cache (the status page's "hot keys"): key
    // names, which is one more reason /stats wants the peer secret.
    recentKeys: {
      main: group.recentKeys("main", MAX_STATUS_KEYS),
      hot: group.recentKeys("hot", MAX_STATUS_KEYS),
    },
    // Each peer's health as this node judges it (unhealthy: its keys load here).
    peerHealth: pool?.stats().peers ?? [],
    // Per remote peer: batch calls this node sent it and the keys they carried
    // (batchedKeys / batches = keys per batch call; a lone key's plain get counts in neither).
    peerBatches: pool?.stats().peerBatches ?? [],
    membership: membershipStats(cfg, membership, peerHistory),
    db: { file: db.file, reads: db.reads, latencyMs: cfg.dbLatencyMs },
    memory: memoryStats(cfg.cacheBytes, group.maxValueBytes),
    api: cfg.api ? { responses: Object.fromEntries(apiResponses) } : null,
  });
  // With a peer secret, /stats wants it too (in the peers' header); /metrics stays open.
  const secretOk = cfg.secret === undefined ? undefined : makeSecretCheck(cfg.secret);
  const routes = observabilityRoutes(metrics.registry, stats, (headers) =>
    secretOk === undefined ? true : secretOk(headers[DEFAULT_AUTH_HEADER]),
  );
  const limits = resolveServerLimits("tinycache-node", cfg.serverLimits);

  const peerServer = await startPeerServer({
    transport: cfg.transport,
    batch: cfg.peerBatch,
    lane: cfg.peerLane,
    self: cfg.self,
    peers: cfg.peers,
    registry,
    host: cfg.host,
    port: cfg.port,
    timeoutMs: peerTimeoutMs,
    maxInflightBodyBytes: cfg.peerInflightBytes,
    logger: logger.child({ component: `transport-${cfg.transport}` }),
    routes,
    secret: cfg.secret,
    serverLimits: limits,
  });
  group.registerPeers(peerServer.picker);
  pool = peerServer.pool;
  try {
    // Membership changes are rare and matter to operators: logged at any --log-level, as
    // the lifecycle lines are.
    membership = await startMembership(
      cfg,
      peerServer.pool,
      logger.child({ component: "membership" }, { level: "info" }),
      peerHistory,
      // Peers that left take their peer-call series with them.
      (urls) => metrics.tinycache.retainPeers(urls),
    );
  } catch (err) {
    await peerServer.close();
    throw err;
  }

  // The status page (API port only): on unless --status off (auto: on a loopback host).
  const status: StatusRoutes | undefined =
    cfg.api && cfg.status
      ? statusRoutes({
          self: cfg.self,
          peers: () => peerServer.pool.peerUrls,
          localStats: stats,
          secret: cfg.secret,
          authHeader: DEFAULT_AUTH_HEADER,
          logger,
        })
      : undefined;
  const apiRoutes: Route = (req, res) =>
    (status === undefined ? statusOff(req, res) : status.route(req, res)) || routes(req, res);
  const api = cfg.api
    ? createApi({
        group,
        logger,
        routes: apiRoutes,
        responses: apiResponses,
        timeoutMs: cfg.apiTimeoutMs ?? peerTimeoutMs * 2,
      })
    : undefined;
  const apiHttp = api ? applyServerLimits(createServer(api.handler), limits) : undefined;
  // With the lane on, it listens and node:http serves only what it hands over.
  const apiLane =
    api && apiHttp && cfg.apiLane
      ? new LeanServer({
          path: "/api",
          handle: api.serveKey,
          fallback: apiHttp,
          keepAliveTimeoutMs: limits.keepAliveTimeoutMs,
          headersTimeoutMs: limits.headersTimeoutMs,
          maxConnections: limits.maxConnections,
        })
      : undefined;
  if (apiHttp) {
    try {
      if (apiLane) await apiLane.listen(cfg.apiPort, cfg.host);
      else await listen(apiHttp, cfg.apiPort, cfg.host);
    } catch (err) {
      await peerServer.close();
      throw err;
    }
    // Later errors (e.g. out of file descriptors) are logged, not fatal.
    const onError = (err: Error) => logger.error({ err, event: "api_error" }, "API server error");
    apiHttp.on("error", onError);
    apiLane?.onError(onError);
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
    lifecycle.info({ event: "stopping", signal }, "shutting down");
    membership?.close();
    status?.close();
    const closing = Promise.all([
      apiLane ? apiLane.close() : apiHttp ? closeServer(apiHttp) : undefined,
      peerServer.close(),
    ]);
    closing.then(
      () => {
        db.close();
        lifecycle.info({ event: "stopped" }, "stopped");
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
  lifecycle.info(
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

/** With --status off: the page's paths say so, instead of a bare 404. */
const statusOff: Route = (req, res) => {
  const path = pathOf(req.url);
  if (path !== "/status" && path !== "/status/data") return false;
  closeUnreadBody(req, res);
  sendText(res, 404, "the status page is off on this node (--status off)\n");
  return true;
};
