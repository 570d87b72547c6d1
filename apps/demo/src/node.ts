#!/usr/bin/env node
/**
 * One tinycache node = one process, as the original's `-port` / `-api` flags:
 *   node apps/demo/dist/node.js --port 8001
 *   node apps/demo/dist/node.js --port 8003 --api
 * Run --help for every flag.
 */
import { parseArgs } from "node:util";
import { DEFAULT_SERVER_LIMITS } from "@tinycache/core/transport";
import {
  isLoopbackHost,
  LOG_LEVELS,
  parseChoice,
  parseCount,
  parseHostPort,
  parsePeerList,
  parsePeerSpec,
  parsePort,
  parseSecret,
  reportUsageError,
  SECRET_ENV,
  TRANSPORTS,
  UsageError,
} from "./cli.js";
import {
  DEFAULT_API_PORT,
  DEFAULT_DATA_DIR,
  DEFAULT_HOST,
  DEFAULT_PORTS,
  peerUrl,
} from "./config.js";
import type { NodeConfig } from "./node-config.js";

const PROGRAM = "tinycache-node";

const HELP = `Usage: node apps/demo/dist/node.js --port <port> [options]

One tinycache cache node (one process). Serves the peer transport on --port, plus
GET /metrics (Prometheus), GET /stats (JSON) and GET /healthz on the same port. With
--api it also serves the user API: GET /api?key=K, /healthz, /metrics, /stats on
--api-port, and the status page: GET /status (GET / redirects to it).

Peers authenticate with a shared secret: set ${SECRET_ENV} (or --secret) to the same
value on every node. Then peer calls without it get 401 / unauthenticated, and so does
GET /stats (send it in the x-tinycache-auth header); /metrics and /healthz stay open.
A node listening on an address other than loopback refuses to start without a secret,
unless --insecure is given.

Options:
  --port <n>            peer port of this node (default 8001)
  --api                 also serve the user API (the original's -api)
  --api-port <n>        port of the user API (default ${DEFAULT_API_PORT})
  --transport <name>    peer transport: http (groupcache-compatible) or connect
                        (Connect/gRPC); every node of a cluster must use the same
                        (default http)
  --peers <spec>        where the peer list comes from (default ${DEFAULT_PORTS.map((p) => peerUrl(p)).join(",")}):
                          URL,URL,...  base URLs of every node, this one included,
                                       identical on every node
                          dns:NAME:PORT  every A/AAAA address of NAME, on PORT,
                                       polled (a Kubernetes headless Service, a
                                       docker-compose service name)
                          file:PATH    one URL per line (or a JSON array), reloaded
                                       when the file changes
                          k8s:[NAMESPACE/]SERVICE:PORT  the serving endpoints of a
                                       Kubernetes Service (needs RBAC: see deploy/)
  --self <url>          this node's URL as the peer list gives it
                        (default http://<host>:<port>, 127.0.0.1 for 0.0.0.0)
  --dns-server <h:p>    DNS server for dns: peers (default: the system's)
  --dns-poll-ms <n>     shortest time between DNS lookups (default 5000; the
                        records' TTL makes it longer)
  --host <addr>         address to listen on (default ${DEFAULT_HOST})
  --data-dir <dir>      database folder, created and seeded on first start
                        (default apps/demo/data)
  --db-latency-ms <n>   make every database read take n ms more (default 0)
  --cache-bytes <n>     cache budget in bytes, main + hot, each entry counted with
                        its measured overhead (default 67108864); a value may be
                        at most an eighth of it
  --peer-inflight-bytes <n>
                        most bytes of peers' answers buffered at once; an answer
                        that does not fit is loaded locally (default 67108864)
  --peer-batch <on|off> send concurrent fetches of keys owned by one peer as one
                        batch call per two event-loop turns, answered key by key
                        (only to tinycache peers; Go groupcache peers get one
                        request per key) (default on)
  --api-lane <on|off>   answer plain GET /api requests on the API port with a lean
                        HTTP/1.1 reader over node:net, and hand every other
                        connection to node:http (default on)
  --peer-lane <on|off>  the same for peer calls on the peer port (gets, batches,
                        sets, removes; Connect's unary binary calls) (default on)
  --hot-cache <on|off>  keep some values owned by other nodes locally (default on)
  --ttl-ms <n>          expire cached values after n ms (default: never)
  --negative-ttl-ms <n> cache "not exist" answers for n ms (default 5000)
  --max-loads <n>       most database reads at once; more wait in a queue of
                        10000, beyond which a load fails (503) (default 64)
  --status <on|off|auto>  serve the status page (/status, /status/data) on the
                        API port; it shows key names to whoever reaches that port
                        (default auto: on when --host is a loopback address)
  --api-timeout-ms <n>  answer 504 to an API request still waiting after n ms
                        (default: twice the peer timeout, >= 4000)
  --log-level <level>   ${LOG_LEVELS.join("|")} (default info)
  --secret <s>          shared peer secret, printable ASCII (default: the
                        ${SECRET_ENV} environment variable, which is better:
                        a command line shows in ps)
  --insecure            allow a non-loopback --host without a secret: anyone who
                        reaches the peer port can then change what users read
  --max-connections <n> most open connections per server, peer and API (default
                        ${DEFAULT_SERVER_LIMITS.maxConnections}; keep it under ulimit -n)
  --headers-timeout-ms <n>  close a connection whose request head is not complete
                        after n ms, one that never sends a byte included
                        (default ${DEFAULT_SERVER_LIMITS.headersTimeoutMs})
  --request-timeout-ms <n>  close a connection whose request is not complete
                        after n ms (default ${DEFAULT_SERVER_LIMITS.requestTimeoutMs})
  --keep-alive-timeout-ms <n>  close an idle kept-alive connection after n ms
                        (default ${DEFAULT_SERVER_LIMITS.keepAliveTimeoutMs})
  -h, --help            show this help

Logs are one JSON object per line, pretty-printed when stdout is a terminal
(force with LOG_PRETTY=1 or LOG_PRETTY=0).

Examples (one terminal each):
  node apps/demo/dist/node.js --port 8001
  node apps/demo/dist/node.js --port 8002
  node apps/demo/dist/node.js --port 8003 --api
  curl "http://localhost:9999/api?key=Tom"     # 630
`;

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
      "dns-server": { type: "string" },
      "dns-poll-ms": { type: "string", default: "5000" },
      self: { type: "string" },
      host: { type: "string", default: DEFAULT_HOST },
      "data-dir": { type: "string", default: DEFAULT_DATA_DIR },
      "db-latency-ms": { type: "string", default: "0" },
      "cache-bytes": { type: "string", default: String(64 << 20) },
      "peer-inflight-bytes": { type: "string", default: String(64 << 20) },
      "hot-cache": { type: "string", default: "on" },
      "peer-batch": { type: "string", default: "on" },
      "api-lane": { type: "string", default: "on" },
      "peer-lane": { type: "string", default: "on" },
      "ttl-ms": { type: "string" },
      "negative-ttl-ms": { type: "string", default: "5000" },
      "api-timeout-ms": { type: "string" },
      status: { type: "string", default: "auto" },
      "max-loads": { type: "string", default: "64" },
      "log-level": { type: "string", default: "info" },
      secret: { type: "string" },
      insecure: { type: "boolean", default: false },
      "max-connections": { type: "string" },
      "headers-timeout-ms": { type: "string" },
      "request-timeout-ms": { type: "string" },
      "keep-alive-timeout-ms": { type: "string" },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) return "help";
  if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  const port = parsePort("port", values.port);
  const apiPort = parsePort("api-port", values["api-port"]);
  const host = values.host;
  const peerSource = parsePeerSpec(
    "peers",
    values.peers ?? DEFAULT_PORTS.map((p) => peerUrl(p)).join(","),
  );
  const selfHost = host === "0.0.0.0" || host === "::" ? DEFAULT_HOST : host;
  const self =
    values.self === undefined
      ? `http://${selfHost.includes(":") ? `[${selfHost}]` : selfHost}:${port}`
      : parsePeerList("self", values.self)[0]!;
  if (peerSource.kind === "list" && !peerSource.urls.includes(self)) {
    throw new UsageError(
      `this node (${self}) is not in --peers (${peerSource.urls.join(",")}); every node must list itself, or pass --self`,
    );
  }
  if (values["dns-server"] !== undefined && peerSource.kind !== "dns") {
    throw new UsageError("--dns-server only goes with --peers dns:NAME:PORT");
  }
  const peers = peerSource.kind === "list" ? peerSource.urls : [self];
  if (values.api && apiPort === port) {
    throw new UsageError(`--api-port must differ from --port (both ${port})`);
  }
  const secret = parseSecret("secret", values.secret, process.env);
  if (secret === undefined && !values.insecure && !isLoopbackHost(host)) {
    throw new UsageError(
      `--host ${host} is not a loopback address, and no peer secret is set: anyone who reaches port ${port} could change what users read. Set ${SECRET_ENV} (or --secret) to the same secret on every node, or pass --insecure to run without one`,
    );
  }
  const serverLimits = {
    maxConnections: positive("max-connections", values["max-connections"], "maxConnections"),
    headersTimeoutMs: positive(
      "headers-timeout-ms",
      values["headers-timeout-ms"],
      "headersTimeoutMs",
    ),
    requestTimeoutMs: positive(
      "request-timeout-ms",
      values["request-timeout-ms"],
      "requestTimeoutMs",
    ),
    keepAliveTimeoutMs: positive(
      "keep-alive-timeout-ms",
      values["keep-alive-timeout-ms"],
      "keepAliveTimeoutMs",
    ),
  };
  if (serverLimits.headersTimeoutMs > serverLimits.requestTimeoutMs) {
    throw new UsageError(
      `--headers-timeout-ms (${serverLimits.headersTimeoutMs}) must not exceed --request-timeout-ms (${serverLimits.requestTimeoutMs})`,
    );
  }
  return {
    port,
    api: values.api,
    apiPort,
    transport: parseChoice("transport", values.transport, TRANSPORTS),
    peers,
    peerSource,
    dnsServer:
      values["dns-server"] === undefined
        ? undefined
        : parseHostPort("dns-server", values["dns-server"]),
    dnsPollMs: dnsPoll(values["dns-poll-ms"]),
    self,
    host,
    dataDir: values["data-dir"],
    dbLatencyMs: parseCount("db-latency-ms", values["db-latency-ms"], 600_000),
    cacheBytes: parseCount("cache-bytes", values["cache-bytes"]),
    peerInflightBytes: inflightBytes(values["peer-inflight-bytes"]),
    peerBatch: parseChoice("peer-batch", values["peer-batch"], ["on", "off"] as const) === "on",
    apiLane: parseChoice("api-lane", values["api-lane"], ["on", "off"] as const) === "on",
    peerLane: parseChoice("peer-lane", values["peer-lane"], ["on", "off"] as const) === "on",
    hotCache: parseChoice("hot-cache", values["hot-cache"], ["on", "off"] as const) === "on",
    ttlMs:
      values["ttl-ms"] === undefined
        ? Number.POSITIVE_INFINITY
        : parseCount("ttl-ms", values["ttl-ms"]),
    negativeTtlMs: parseCount("negative-ttl-ms", values["negative-ttl-ms"]),
    apiTimeoutMs: apiTimeout(values["api-timeout-ms"]),
    logLevel: parseChoice("log-level", values["log-level"], LOG_LEVELS),
    secret,
    serverLimits,
    maxLoads: maxLoads(values["max-loads"]),
    status: statusFlag(values.status, host),
  };
}

/** A server limit flag: an integer >= 1, or core's default when left out. */
function positive(
  flag: string,
  raw: string | undefined,
  name: keyof typeof DEFAULT_SERVER_LIMITS,
): number {
  if (raw === undefined) return DEFAULT_SERVER_LIMITS[name];
  const n = parseCount(flag, raw, 2_147_483_647);
  if (n < 1) throw new UsageError(`--${flag} must be at least 1, got ${n}`);
  return n;
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
  // Heavy modules (core, transports, SQLite, prom-client) load only now, so --help and
  // flag errors answer at once.
  const { run } = await import("./serve.js");
  await run(cfg).catch((err: unknown) => {
    const code = (err as { code?: string }).code;
    process.stderr.write(
      `${PROGRAM}: failed to start: ${err instanceof Error ? err.message : String(err)}\n`,
    );
    process.exit(code === "EADDRINUSE" ? 3 : 1);
  });
}

/** `--api-timeout-ms`: left out = twice the peer timeout; 0 has no use and is refused. */
function apiTimeout(raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  const ms = parseCount("api-timeout-ms", raw, 600_000);
  if (ms === 0) {
    throw new UsageError("--api-timeout-ms must be > 0; leave it out for twice the peer timeout");
  }
  return ms;
}

/** `--max-loads`: at least 1. */
function maxLoads(raw: string): number {
  const n = parseCount("max-loads", raw, 1_000_000);
  if (n < 1) throw new UsageError(`--max-loads must be at least 1, got ${n}`);
  return n;
}

/** `--peer-inflight-bytes`: at least 1 (0 would refuse every peer answer). */
function inflightBytes(raw: string): number {
  const n = parseCount("peer-inflight-bytes", raw);
  if (n === 0) throw new UsageError("--peer-inflight-bytes must be > 0");
  return n;
}

/** `--dns-poll-ms`: at least 10 ms, so a typo cannot flood the DNS server. */
function dnsPoll(raw: string): number {
  const ms = parseCount("dns-poll-ms", raw, 3_600_000);
  if (ms < 10) throw new UsageError(`--dns-poll-ms must be at least 10, got ${ms}`);
  return ms;
}

/**
 * `--status`: the page shows key names and the cluster's layout to anyone who reaches
 * the API port, so `auto` serves it only on a loopback host (the demo on a laptop), not
 * on 0.0.0.0 (a container, a pod) unless asked for with `on`.
 */
function statusFlag(raw: string, host: string): boolean {
  const choice = parseChoice("status", raw, ["on", "off", "auto"] as const);
  return choice === "auto" ? isLoopbackHost(host) : choice === "on";
}
