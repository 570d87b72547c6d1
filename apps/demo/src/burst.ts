#!/usr/bin/env node
/**
 * `pnpm demo:burst`: the original's burst script. Fires many concurrent requests for one
 * cold key at the API and shows, from every node's /stats (and the [SlowDB] log lines when
 * it started the cluster itself), that the database was read once, on the key's owner.
 */
import { Agent, request } from "node:http";
import { parseArgs } from "node:util";
import {
  parseChoice,
  parseCount,
  parsePort,
  parsePortList,
  reportUsageError,
  SECRET_ENV,
  TRANSPORTS,
  UsageError,
} from "./cli.js";
import type { Cluster } from "./cluster.js";
import { DEFAULT_API_PORT, DEFAULT_DATA_DIR, DEFAULT_PORTS, peerUrl } from "./config.js";
import { GENERATED_ROWS, generatedKey } from "./keys.js";

const PROGRAM = "tinycache-burst";

const HELP = `Usage: pnpm demo:burst [-- options]   (or: node apps/demo/dist/burst.js [options])

Fires --requests concurrent GET /api?key=<key> at the API and reports how many database
reads they caused (from every node's /stats, which needs the cluster's peer secret in
TINYCACHE_SECRET when the cluster was started with one): one, thanks to singleflight on each node
and one owner per key across the cluster.

If no cluster answers on --api-port, starts one (like pnpm demo) with a slow database
(--db-latency-ms) so that every request arrives while the key is still loading, and
stops it afterwards.

Options:
  --requests <n>        requests to fire (default 1000)
  --key <key>           key to ask for (default: a random cold key userNNNNNN)
  --api-port <n>        user API port (default ${DEFAULT_API_PORT})
  --ports <list>        peer ports of the nodes, for /stats (default ${DEFAULT_PORTS.join(",")})
  --start <mode>        auto (start a cluster when none answers), always, never (default auto)
  --transport <name>    transport of a cluster started here: http or connect (default http)
  --db-latency-ms <n>   database latency of a cluster started here (default 300)
  --data-dir <dir>      database folder of a cluster started here (default apps/demo/data)
  --json                print one JSON summary line instead of text
  -h, --help            show this help
`;

function parse(argv: string[]) {
  const { values, positionals } = parseArgs({
    // `pnpm demo -- --ports ...` hands the script a leading "--": not a positional.
    args: argv[0] === "--" ? argv.slice(1) : argv,
    strict: true,
    allowPositionals: true,
    options: {
      requests: { type: "string", default: "1000" },
      key: { type: "string" },
      "api-port": { type: "string", default: String(DEFAULT_API_PORT) },
      ports: { type: "string", default: DEFAULT_PORTS.join(",") },
      start: { type: "string", default: "auto" },
      transport: { type: "string", default: "http" },
      "db-latency-ms": { type: "string", default: "300" },
      "data-dir": { type: "string", default: DEFAULT_DATA_DIR },
      json: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) return "help" as const;
  if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  const requests = parseCount("requests", values.requests, 1_000_000);
  if (requests < 1) throw new UsageError("--requests must be at least 1");
  if (values.key === "") throw new UsageError("--key must not be empty");
  return {
    requests,
    key: values.key ?? generatedKey(1 + Math.floor(Math.random() * GENERATED_ROWS)),
    apiPort: parsePort("api-port", values["api-port"]),
    ports: parsePortList("ports", values.ports),
    start: parseChoice("start", values.start, ["auto", "always", "never"] as const),
    transport: parseChoice("transport", values.transport, TRANSPORTS),
    dbLatencyMs: parseCount("db-latency-ms", values["db-latency-ms"], 600_000),
    dataDir: values["data-dir"],
    json: values.json,
  };
}

interface Answer {
  status: number;
  body: string;
}

function get(
  url: string,
  agent: Agent | undefined,
  timeoutMs: number,
  headers: Record<string, string> = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const opts = { agent, headers, signal: AbortSignal.timeout(timeoutMs) };
    const req = request(url, opts, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () =>
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") }),
      );
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end();
  });
}

async function dbReads(ports: readonly number[]): Promise<Map<number, number>> {
  const out = new Map<number, number>();
  await Promise.all(
    ports.map(async (port) => {
      // /stats wants the cluster's peer secret when it has one.
      const secret = process.env[SECRET_ENV];
      const headers: Record<string, string> =
        secret === undefined ? {} : { "x-tinycache-auth": secret };
      const { status, body } = await get(`${peerUrl(port)}/stats`, undefined, 5_000, headers);
      if (status === 401) {
        throw new Error(
          `GET ${peerUrl(port)}/stats answered 401: set ${SECRET_ENV} to the cluster's peer secret`,
        );
      }
      if (status !== 200) throw new Error(`GET ${peerUrl(port)}/stats answered ${status}`);
      out.set(port, (JSON.parse(body) as { db: { reads: number } }).db.reads);
    }),
  );
  return out;
}

async function main(argv: string[]): Promise<number> {
  let cfg: ReturnType<typeof parse>;
  try {
    cfg = parse(argv);
  } catch (err) {
    if (reportUsageError(err, PROGRAM)) return 2;
    throw err;
  }
  if (cfg === "help") {
    process.stdout.write(HELP);
    return 0;
  }
  const say = (s: string) => {
    if (!cfg.json) process.stdout.write(`${s}\n`);
  };
  const api = `http://127.0.0.1:${cfg.apiPort}`;
  const running =
    cfg.start !== "always" &&
    (await get(`${api}/healthz`, undefined, 1_000).then(
      (a) => a.status === 200,
      () => false,
    ));
  if (!running && cfg.start === "never") {
    process.stderr.write(`${PROGRAM}: no cluster answers on ${api} (and --start never)\n`);
    return 1;
  }

  let cluster: Cluster | undefined;
  const slowDbLines: { port: number; key: string }[] = [];
  if (!running) {
    say(
      `no cluster on ${api}: starting one (${cfg.transport}, database latency ${cfg.dbLatencyMs} ms)...`,
    );
    const [{ Cluster }, { seedDatabase }, { createLogger }] = await Promise.all([
      import("./cluster.js"),
      import("./db.js"),
      import("./log.js"),
    ]);
    seedDatabase(cfg.dataDir);
    cluster = new Cluster({
      ports: cfg.ports,
      apiPort: cfg.apiPort,
      transport: cfg.transport,
      dataDir: cfg.dataDir,
      dbLatencyMs: cfg.dbLatencyMs,
      logLevel: "info",
      restart: false,
      logger: createLogger({ level: "warn", base: { node: "burst" }, pretty: !cfg.json }),
      onLine: (port, line) => {
        if (!line.includes("[SlowDB]")) return;
        try {
          const { key } = JSON.parse(line) as { key: string };
          slowDbLines.push({ port, key });
        } catch {
          // not one of ours
        }
      },
    });
    // `on`, not `once`: one Ctrl-C under pnpm arrives twice (the terminal signals the
    // process group, and pnpm forwards its own), and the second must not end the process
    // before the cluster is stopped. Exit 130: the burst was interrupted, not done.
    let stopping = false;
    const stopCluster = () => {
      if (stopping) return;
      stopping = true;
      void cluster?.stop().then(() => process.exit(130));
    };
    process.on("SIGINT", stopCluster);
    process.on("SIGTERM", stopCluster);
    await cluster.start();
  }

  try {
    const before = await dbReads(cfg.ports);
    const url = `${api}/api?key=${encodeURIComponent(cfg.key)}`;
    say(`firing ${cfg.requests} concurrent requests: GET ${url}`);
    // Many sockets, so the requests really are in flight together; below the server's
    // listen backlog (511), so none waits for a SYN retry.
    const agent = new Agent({ keepAlive: true, maxSockets: 256 });
    const started = performance.now();
    const answers = await Promise.allSettled(
      Array.from({ length: cfg.requests }, () => get(url, agent, 30_000)),
    );
    const ms = performance.now() - started;
    agent.destroy();
    const after = await dbReads(cfg.ports);

    const byStatus = new Map<string, number>();
    for (const a of answers) {
      const k =
        a.status === "fulfilled" ? `${a.value.status} ${JSON.stringify(a.value.body)}` : "error";
      byStatus.set(k, (byStatus.get(k) ?? 0) + 1);
    }
    const perNode = cfg.ports.map((p) => ({
      port: p,
      reads: (after.get(p) ?? 0) - (before.get(p) ?? 0),
    }));
    const reads = perNode.reduce((s, n) => s + n.reads, 0);
    const lines = slowDbLines.filter((l) => l.key === cfg.key);
    const ok = answers.filter((a) => a.status === "fulfilled" && a.value.status === 200).length;

    if (cfg.json) {
      process.stdout.write(
        `${JSON.stringify({
          event: "burst",
          key: cfg.key,
          requests: cfg.requests,
          ok,
          answers: Object.fromEntries(byStatus),
          ms: Math.round(ms),
          dbReads: reads,
          perNode,
          slowDbLines: cluster ? lines.length : null,
        })}\n`,
      );
    } else {
      say(`done in ${ms.toFixed(0)} ms:`);
      for (const [k, n] of byStatus) say(`  ${String(n).padStart(6)} x ${k}`);
      say(`database reads caused, per node (from /stats):`);
      for (const n of perNode) say(`  node ${n.port}: ${n.reads}`);
      if (cluster) {
        say(`[SlowDB] lines for ${cfg.key}: ${lines.length}`);
        for (const l of lines) say(`  [${l.port}] [SlowDB] search key ${l.key}`);
      }
      say(
        reads === 1
          ? `=> ${cfg.requests} requests, 1 database read: the cache held the crowd back.`
          : `=> ${cfg.requests} requests, ${reads} database reads (expected 1${reads === 0 ? "; was the key already cached? pick a cold one with --key" : ""}).`,
      );
    }
    return reads === 1 && ok === cfg.requests ? 0 : 1;
  } finally {
    await cluster?.stop();
  }
}

process.exitCode = await main(process.argv.slice(2)).catch((err: unknown) => {
  process.stderr.write(`${PROGRAM}: ${err instanceof Error ? err.message : String(err)}\n`);
  return 1;
});
