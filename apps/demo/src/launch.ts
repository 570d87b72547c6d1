#!/usr/bin/env node
/**
 * `pnpm demo`: the original's run.sh in one command. Seeds the database, starts three node
 * processes (8001, 8002, 8003; 8003 also serves the API on 9999), forwards their logs,
 * waits until all are ready, prints what to try, and stops them all on Ctrl-C / SIGTERM.
 */
import { randomBytes } from "node:crypto";
import { parseArgs } from "node:util";
import {
  LOG_LEVELS,
  parseChoice,
  parseCount,
  parsePort,
  parsePortList,
  parseSecret,
  reportUsageError,
  SECRET_ENV,
  TRANSPORTS,
  UsageError,
} from "./cli.js";
import type { Cluster } from "./cluster.js";
import { DEFAULT_API_PORT, DEFAULT_DATA_DIR, DEFAULT_PORTS } from "./config.js";
import type { Logger } from "./log.js";

const PROGRAM = "tinycache-demo";

const HELP = `Usage: pnpm demo [-- options]   (or: node apps/demo/dist/launch.js [options])

Starts the classic tinycache cluster: one process per cache node, the last one also
serving the user API. Ctrl-C (or SIGTERM) stops every node; so does the end of the
launcher's parent (a killed pnpm or shell), and a node whose launcher is gone stops
itself.

The nodes authenticate each other with a shared secret: ${SECRET_ENV} (or --secret)
if set, else a random one made at start. Peer calls and GET /stats without it get 401.

Options:
  --ports <list>        peer ports, comma-separated (default ${DEFAULT_PORTS.join(",")})
  --api-port <n>        user API port, served by the last node (default ${DEFAULT_API_PORT})
  --transport <name>    http or connect (default http)
  --data-dir <dir>      database folder (default apps/demo/data)
  --db-latency-ms <n>   extra latency per database read, in ms (default 0)
  --hot-cache <on|off>  hot cache for keys owned by other nodes (default on)
  --peer-batch <on|off> batch concurrent fetches to one peer into one call (default on)
  --status <on|off>     the status page on the API port, http://localhost:<api-port>/status
                        (default on; it shows key names)
  --restart <on|off>    restart a node that dies unexpectedly (default on)
  --log-level <level>   ${LOG_LEVELS.join("|")} (default info)
  --secret <s>          shared peer secret (default: $${SECRET_ENV}, else random)
  -h, --help            show this help

Logs: pretty in a terminal, JSON lines otherwise (LOG_PRETTY=1 / LOG_PRETTY=0 to force).
`;

function parse(argv: string[]) {
  const { values, positionals } = parseArgs({
    // `pnpm demo -- --ports ...` hands the script a leading "--": not a positional.
    args: argv[0] === "--" ? argv.slice(1) : argv,
    strict: true,
    allowPositionals: true,
    options: {
      ports: { type: "string", default: DEFAULT_PORTS.join(",") },
      "api-port": { type: "string", default: String(DEFAULT_API_PORT) },
      transport: { type: "string", default: "http" },
      "data-dir": { type: "string", default: DEFAULT_DATA_DIR },
      "db-latency-ms": { type: "string", default: "0" },
      "hot-cache": { type: "string", default: "on" },
      "peer-batch": { type: "string", default: "on" },
      restart: { type: "string", default: "on" },
      status: { type: "string", default: "on" },
      "log-level": { type: "string", default: "info" },
      secret: { type: "string" },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) return "help" as const;
  if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  const ports = parsePortList("ports", values.ports);
  const apiPort = parsePort("api-port", values["api-port"]);
  if (ports.includes(apiPort)) throw new UsageError(`--api-port ${apiPort} is also in --ports`);
  return {
    ports,
    apiPort,
    transport: parseChoice("transport", values.transport, TRANSPORTS),
    dataDir: values["data-dir"],
    dbLatencyMs: parseCount("db-latency-ms", values["db-latency-ms"], 600_000),
    hotCache: parseChoice("hot-cache", values["hot-cache"], ["on", "off"] as const),
    peerBatch: parseChoice("peer-batch", values["peer-batch"], ["on", "off"] as const),
    restart: parseChoice("restart", values.restart, ["on", "off"] as const) === "on",
    status: parseChoice("status", values.status, ["on", "off"] as const),
    logLevel: parseChoice("log-level", values["log-level"], LOG_LEVELS),
    secret: parseSecret("secret", values.secret, process.env),
  };
}

/**
 * Calls `onGone` once when this process's parent has gone away. `pnpm demo` runs the
 * launcher with `exec` (package.json), so pnpm's own SIGTERM reaches it directly; but a
 * parent that dies without passing a signal on (pnpm or a shell killed with SIGKILL, a
 * closed terminal's shell) would leave the launcher orphaned with its nodes holding
 * their ports. Node offers no event for a parent's death (no prctl(PR_SET_PDEATHSIG), no
 * pidfd), so, as a last resort, an unref'd timer compares `process.ppid` (one getppid
 * call) with the parent at start, once a second: orphaned, the process is reparented
 * and its ppid changes. Not started when the parent is already init (pid 1), e.g. in a
 * container, where there is nothing to watch.
 */
function watchParent(onGone: () => void, everyMs = 1000): void {
  const parent = process.ppid;
  if (parent <= 1) return;
  const timer = setInterval(() => {
    if (process.ppid === parent) return;
    clearInterval(timer);
    onGone();
  }, everyMs);
  timer.unref();
}

/**
 * A SIGINT this soon after the first stop signal is the same Ctrl-C, not a second one: the
 * terminal signals its whole foreground process group (pnpm and this launcher alike) and
 * pnpm forwards the SIGINT it got to its script, so one Ctrl-C under `pnpm demo` reaches
 * the launcher twice, a few ms apart. A person's second Ctrl-C takes longer than this.
 */
const SAME_CTRL_C_MS = 500;

async function main(argv: string[]): Promise<void> {
  let cfg: ReturnType<typeof parse>;
  try {
    cfg = parse(argv);
  } catch (err) {
    if (reportUsageError(err, PROGRAM)) process.exit(2);
    throw err;
  }
  if (cfg === "help") {
    process.stdout.write(HELP);
    return;
  }

  // Signal handlers before anything slow (module loading, seeding a fresh database): until
  // a handler is set, Node's default action ends the process by the signal, which pnpm
  // then reports as a failed script (ELIFECYCLE). A stop before the cluster exists has
  // nothing to stop; during start-up, cluster.stop() stops the nodes started so far.
  let logger: Logger | undefined;
  let cluster: Cluster | undefined;
  let stopping: Promise<void> | undefined;
  let firstSignalAt: number | undefined;
  let forced = false;
  const stop = (signal: NodeJS.Signals | "parent_gone") => {
    const now = performance.now();
    if (firstSignalAt !== undefined) {
      const again = signal === "SIGINT" && now - firstSignalAt >= SAME_CTRL_C_MS;
      if (again && !forced && cluster !== undefined) {
        forced = true;
        logger?.warn({ event: "forced_stop" }, "second Ctrl-C: killing every node now");
        for (const n of cluster.nodes.values()) n.child.kill("SIGKILL");
      }
      return;
    }
    firstSignalAt = now;
    if (cluster === undefined) {
      // Nothing runs yet (the signal came while modules loaded): a plain, clean exit.
      logger?.info({ event: "stopped", signal }, `${signal}: stopped before any node started`);
      process.exit(0);
    }
    logger?.info({ event: "stopping", signal }, `${signal}: stopping every node`);
    stopping = cluster.stop().then(() => {
      logger?.info({ event: "stopped" }, "all nodes stopped");
      process.exit(0);
    });
  };
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
  watchParent(() => stop("parent_gone"));

  // Loaded after the flags are checked, so --help and flag errors answer at once.
  const [
    { Cluster: ClusterOf },
    { GENERATED_ROWS, seedDatabase },
    { createLogger, createPrettifier, wantPretty },
  ] = await Promise.all([import("./cluster.js"), import("./db.js"), import("./log.js")]);
  const pretty = wantPretty();
  logger = createLogger({ level: cfg.logLevel, base: { node: "launcher" }, pretty });
  const log = logger;

  // Seed before any node starts, so three first starts do not all build the database.
  // Synchronous: a signal meanwhile is handled right after it, the file complete.
  const seeded = seedDatabase(cfg.dataDir, {
    onCreate: (file) =>
      log.info(
        { event: "db_seeding", file },
        `creating the database (${GENERATED_ROWS.toLocaleString("en-US")} rows, first run only): ${file}`,
      ),
  });
  log.info(
    { event: "db_ready", file: seeded.file, created: seeded.created },
    seeded.created ? `database created: ${seeded.file}` : `database: ${seeded.file}`,
  );

  // In a terminal, nodes' JSON lines are pretty-printed with a [port] prefix.
  const prettify = pretty
    ? createPrettifier({
        colorize: Boolean(process.stdout.isTTY),
        ignore: "pid,hostname,node,event",
      })
    : undefined;
  // A given secret (flag or environment), else a fresh one: the nodes get it in their
  // environment, never on a command line.
  const secret = cfg.secret ?? randomBytes(18).toString("base64url");
  cluster = new ClusterOf({
    secret,
    ports: cfg.ports,
    apiPort: cfg.apiPort,
    transport: cfg.transport,
    dataDir: cfg.dataDir,
    dbLatencyMs: cfg.dbLatencyMs,
    logLevel: cfg.logLevel,
    nodeArgs: ["--hot-cache", cfg.hotCache, "--peer-batch", cfg.peerBatch, "--status", cfg.status],
    restart: cfg.restart,
    logger: log,
    onLine: (port, line, stream) => {
      const out = stream === "stdout" ? process.stdout : process.stderr;
      if (prettify === undefined) {
        out.write(`${line}\n`);
        return;
      }
      let text = line;
      if (line.startsWith("{")) {
        try {
          text = prettify(JSON.parse(line)).trimEnd();
        } catch {
          // not JSON after all: print as is
        }
      }
      out.write(`[${port}] ${text}\n`);
    },
  });

  try {
    await cluster.start();
  } catch (err) {
    if (stopping) return; // a signal arrived during start-up; stop() finishes the job
    log.error({ err, event: "start_failed" }, "the cluster did not start");
    process.exit(1);
  }
  if (stopping) return;

  const nodes = [...cluster.nodes.values()];
  const api = `http://localhost:${cfg.apiPort}`;
  log.info(
    {
      event: "cluster_ready",
      transport: cfg.transport,
      api,
      nodes: nodes.map((n) => ({ port: n.port, pid: n.pid, url: n.url, api: n.api })),
      launcherPid: process.pid,
    },
    `cluster ready: ${nodes.length} nodes, API on ${api}`,
  );
  if (pretty) {
    const apiNode = nodes.find((n) => n.api)!;
    process.stdout.write(
      [
        "",
        `tinycache demo is up (${nodes.length} nodes, ${cfg.transport} transport)`,
        `  cache nodes : ${nodes.map((n) => n.url).join("  ")}`,
        `  user API    : ${api}  (served by node ${apiNode.port})`,
        `  metrics     : ${nodes[0]!.url}/metrics   stats: ${nodes[0]!.url}/stats  (every node)`,
        ...(cfg.status === "on" ? [`  status page : ${api}/status   (open it in a browser)`] : []),
        "",
        "Try:",
        `  curl "${api}/api?key=Tom"       # 630`,
        `  curl "${api}/api?key=user000042"`,
        `  curl -i "${api}/api?key=nobody"   # 404 nobody not exist`,
        `  curl -H "x-tinycache-auth: ${cfg.secret === undefined ? "<secret>" : "$TINYCACHE_SECRET"}" "${api}/stats"   # the peer secret${cfg.secret === undefined ? ` (this run's: ${secret})` : ""}`,
        "",
        "Ctrl-C stops every node.",
        "",
      ].join("\n"),
    );
  }
}

await main(process.argv.slice(2));
