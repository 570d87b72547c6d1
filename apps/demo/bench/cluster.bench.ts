/**
 * The cluster benchmark (issue 11): the demo's API against what a team would run instead,
 * all started here, driven by the same load in the same run (docs/benchmarks.md):
 * - Go groupcache: three real golang/groupcache peers (go/cluster/main.go, Debian's
 *   golang-github-golang-groupcache-dev), the API on one of them;
 * - tinycache HTTP and tinycache Connect: three demo nodes each (dist/node.js), the API
 *   on one of them, as `pnpm demo` runs them;
 * - Redis + ioredis: one Node API doing cache-aside in redis-server (redis-api.ts).
 * Every one serves the demo's SQLite rows at GET /api?key=K. wrk (-t1 -c64) asks
 * user000001.. in a fixed order, each round going on where that contender's last stopped;
 * rounds rotate in a Williams order after warm-up rounds that pass every key once.
 * Workloads: 2,000 keys (warm: everything cached), 100,000 keys (mostly the peer path), the
 * peer path with hot caches too small to hold the keys, and that peer path at light load
 * (2 connections: no batching to speak of, every remote key its own call).
 * Each workload also prints every contender's CPU per request during the measured rounds,
 * split between its API process and the processes that API asks (the other nodes,
 * redis-server; from Linux's /proc): the contenders share one CPU, so this says which
 * process a difference in req/s comes from.
 * A missing tool (go, wrk, redis-server) skips what needs it, with a line saying so.
 * wrk gets a CPU of its own and the contenders the rest (pinCpus: unpinned, where the
 * scheduler put wrk decided more than the code did).
 *
 * Env: TINYCACHE_CLUSTER_ROUNDS (measured rounds, default 8), TINYCACHE_CLUSTER_SECONDS
 * (per round, default 5), TINYCACHE_CLUSTER_WARMUP (least warm-up rounds, default 1),
 * TINYCACHE_CLUSTER_WORKLOADS (ids of the workloads to run, comma-separated: warm, 100k,
 * peer-path, light; default all).
 */
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { HashRing } from "@tinycache/consistenthash";
import { freePort, goal, median, quantile, roundOrders } from "@tinycache/testkit";
import { Cluster } from "../src/cluster.js";
import { peerUrl } from "../src/config.js";
import { seedDatabase } from "../src/db.js";
import { generatedKey, generatedScore } from "../src/keys.js";
import { createLogger } from "../src/log.js";
import { autocannonDriver, type Driver, type Round, wrkDriver } from "./cluster-load.js";
import {
  buildGoPeer,
  dumpTsv,
  getText,
  missingTools,
  Procs,
  pinCpus,
  redisInfoStats,
  waitHttp,
} from "./cluster-procs.js";
import { type ContenderPids, sampleCpu } from "./cpu-time.js";

function envInt(name: string, fallback: number): number {
  const raw = process.env[name];
  const n = raw === undefined ? fallback : Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name} must be an integer >= 1`);
  return n;
}
const ROUNDS = envInt("TINYCACHE_CLUSTER_ROUNDS", 8);
const SECONDS = envInt("TINYCACHE_CLUSTER_SECONDS", 5);
const MIN_WARMUP = envInt("TINYCACHE_CLUSTER_WARMUP", 1);
const CONNECTIONS = 64;
/** Go's http.Transport keeps 2 idle connections per host by default: far too few here. */
const GO_IDLE_CONNS = 256;
/**
 * The workloads. With the demo's 64 MiB per node every hot cache can learn all 100,000
 * keys (Go's 1-in-10 promotion gets there over rounds, TinyLFU in one pass), so the
 * second workload ends up measuring hot hits. The third keeps the peer path on the
 * measured path: it runs against clusters whose hot caches cannot hold the keys: ours
 * with `--hot-cache off`, Go's with a 1 MiB cache: room for a node's owned keys (at most
 * ~42k, ~13.5 bytes each as Go counts them) but not for the API node's ~67k remote keys,
 * which wrk asks in a fixed cycle, the order in which an LRU that cannot hold them all
 * never hits.
 */
const WORKLOADS: Workload[] = [
  { id: "warm", title: "warm 2,000 keys", keys: 2_000, peerPath: false },
  { id: "100k", title: "100,000 keys", keys: 100_000, peerPath: false },
  {
    id: "peer-path",
    title: "100,000 keys, peer path (hot caches cannot hold them)",
    keys: 100_000,
    peerPath: true,
  },
  {
    // Found missing: at this load a Connect get cost 1.4x an HTTP one (reflective codecs,
    // a controller and timer per call on the owner), which the loaded workloads, where
    // nearly every remote key rides in a batch, never showed.
    id: "light",
    title: "100,000 keys, peer path, light load (2 connections)",
    keys: 100_000,
    peerPath: true,
    connections: 2,
    contendersAsInfo: true,
  },
].filter((w) => {
  const only = process.env.TINYCACHE_CLUSTER_WORKLOADS;
  if (only === undefined || only === "") return true;
  const ids = only.split(",").map((s) => s.trim());
  for (const id of ids) {
    if (!["warm", "100k", "peer-path", "light"].includes(id)) {
      throw new Error(
        `TINYCACHE_CLUSTER_WORKLOADS: no workload ${id} (warm, 100k, peer-path, light)`,
      );
    }
  }
  return ids.includes(w.id);
});
interface Workload {
  /** Its name in TINYCACHE_CLUSTER_WORKLOADS. */
  id: string;
  title: string;
  keys: number;
  /** Runs against the clusters whose hot caches are kept small (see WORKLOADS). */
  peerPath: boolean;
  /** wrk's connections (default CONNECTIONS). */
  connections?: number;
  /**
   * Print the comparisons with Go and Redis as info lines, not goals: the issue's targets
   * are for loaded clusters. Connect vs HTTP and the p99 goal stay goals.
   */
  contendersAsInfo?: boolean;
}
/** Go's cache size in the peer-path clusters (see WORKLOADS). */
const GO_PEER_PATH_CACHE_BYTES = 1 << 20;
const GO = "Go groupcache";
const HTTP = "tinycache HTTP";
const CONNECT = "tinycache Connect";
const REDIS = "Redis + ioredis";

const NODE_ENTRY = fileURLToPath(new URL("../dist/node.js", import.meta.url));
const REDIS_API = fileURLToPath(new URL("./redis-api.ts", import.meta.url));
const DEMO_DIR = fileURLToPath(new URL("..", import.meta.url));

interface Contender {
  name: string;
  /** Base URL of its user API. */
  api: string;
  /** Database reads so far, cluster-wide (tinycache's /stats), to show a workload is warm. */
  dbReads?: () => Promise<number>;
  /** Batch calls to peers and the keys they carried so far, cluster-wide (tinycache's /stats). */
  batches?: () => Promise<{ batches: number; keys: number }>;
  /** Its processes: the API's, and the ones the API asks (other nodes, redis-server). */
  pids?: ContenderPids;
  /** Reads redis-server has served so far (its event loop's socket reads) and commands. */
  serverReads?: () => Promise<{ reads: number; commands: number }>;
}

/** Pids of started children (a child that failed to spawn has none). */
const pidsOf = (children: { pid?: number | undefined }[]) =>
  children.flatMap((c) => (c.pid === undefined ? [] : [c.pid]));

const procs = new Procs();
const tmp = mkdtempSync(join(tmpdir(), "tinycache-cluster-bench-"));
const dataDir = join(tmp, "data");
const logger = createLogger({ level: "warn", base: { node: "bench" }, pretty: false });

async function ports(n: number): Promise<number[]> {
  const s = new Set<number>();
  while (s.size < n) s.add(await freePort());
  return [...s];
}

/**
 * Three free peer ports whose ring gives the API node (the last) a third of each
 * workload's keys, within a point. A ring of 50 points per node gives one node anywhere
 * from ~25% to ~40% of the keys, depending on the URLs alone; the API node answers its
 * own keys without a peer call, so unequal shares would decide the race, not the code.
 * Go's ring and ours hash the same way (crc32 of i + URL, 50 points per node).
 */
async function clusterPorts(): Promise<[number, number, number, number]> {
  for (let attempt = 0; attempt < 1000; attempt++) {
    const [a, b, c] = await ports(3);
    const urls = [a!, b!, c!].map((p) => peerUrl(p));
    const ring = new HashRing().add(...urls);
    const third = (n: number) => {
      let own = 0;
      for (let i = 1; i <= n; i++) if (ring.get(generatedKey(i)) === urls[2]) own++;
      return Math.abs(own / n - 1 / 3) <= 0.01;
    };
    if (WORKLOADS.every((w) => third(w.keys))) return [a!, b!, c!, await freePort()];
  }
  throw new Error("no port triple gives the API node a third of the keys");
}

async function startGo(bin: string, tsv: string, cacheBytes?: number): Promise<Contender> {
  const [a, b, c, api] = await clusterPorts();
  const peers = [a, b, c].map((p) => peerUrl(p));
  const children = [a, b, c].map((port, i) => {
    const args = ["--port", String(port), "--self", peers[i]!, "--peers", peers.join(",")];
    args.push("--data", tsv, "--idle-conns-per-host", String(GO_IDLE_CONNS), "--exit-with-stdin");
    if (cacheBytes !== undefined) args.push("--cache-bytes", String(cacheBytes));
    // The API on the last peer, as the demo serves it from its third node.
    if (i === 2) args.push("--api-port", String(api));
    return procs.spawn(`go peer ${port}`, bin, args);
  });
  await Promise.all(peers.map((p, i) => waitHttp(`${p}/healthz`, children[i])));
  await waitHttp(`http://127.0.0.1:${api}/healthz`, children[2]);
  const pids = { api: pidsOf(children.slice(2)), rest: pidsOf(children.slice(0, 2)) };
  return { name: GO, api: `http://127.0.0.1:${api}`, pids };
}

async function startTinycache(
  name: string,
  transport: "http" | "connect",
  nodeArgs: string[] = [],
): Promise<Contender> {
  const [a, b, c, apiPort] = await clusterPorts();
  const cluster = procs.track(
    new Cluster({
      ports: [a, b, c],
      apiPort,
      transport,
      dataDir,
      dbLatencyMs: 0,
      logLevel: "warn",
      nodeArgs,
      nodeEntry: NODE_ENTRY,
      restart: false,
      logger,
      onLine: (port, line) => {
        if (/"level":[56]0/.test(line)) console.error(`[${name} ${port}] ${line}`);
      },
    }),
  );
  await cluster.start();
  await waitHttp(`${cluster.apiUrl}/healthz`);
  interface Stats {
    db: { reads: number };
    peerBatches?: { batches: number; batchedKeys: number }[];
  }
  const stats = () =>
    Promise.all(cluster.peers.map(async (p) => JSON.parse(await getText(`${p}/stats`)) as Stats));
  const dbReads = async () => (await stats()).reduce((n, s) => n + s.db.reads, 0);
  const batches = async () => {
    let b = 0;
    let k = 0;
    for (const s of await stats()) {
      for (const p of s.peerBatches ?? []) {
        b += p.batches;
        k += p.batchedKeys;
      }
    }
    return { batches: b, keys: k };
  };
  const nodes = [...cluster.nodes.values()];
  const pids = {
    api: nodes.filter((n) => n.api).map((n) => n.pid),
    rest: nodes.filter((n) => !n.api).map((n) => n.pid),
  };
  return { name, api: cluster.apiUrl, dbReads, batches, pids };
}

async function startRedis(): Promise<Contender> {
  const [redisPort = 0, apiPort = 0] = await ports(2);
  const args = ["--port", String(redisPort), "--bind", "127.0.0.1", "--save", "", "--appendonly"];
  const server = procs.spawn("redis-server", "redis-server", [...args, "no"]);
  const api = procs.spawn(
    "redis api",
    process.execPath,
    [
      "--import",
      "tsx",
      REDIS_API,
      "--port",
      String(apiPort),
      "--redis-port",
      String(redisPort),
      "--data-dir",
      dataDir,
    ],
    DEMO_DIR,
  ); // tsx resolves from the demo's folder
  // 200 only once Redis answers PING: covers redis-server's start too.
  await waitHttp(`http://127.0.0.1:${apiPort}/healthz`, api);
  const pids = { api: pidsOf([api]), rest: pidsOf([server]) };
  const serverReads = async () => {
    const info = await redisInfoStats(redisPort);
    return { reads: info.total_reads_processed ?? 0, commands: info.total_commands_processed ?? 0 };
  };
  return { name: REDIS, api: `http://127.0.0.1:${apiPort}`, pids, serverReads };
}

/** Every contender must give the same answers before its speed means anything. */
async function check(c: Contender): Promise<void> {
  for (const [key, want] of [
    ["Tom", "630"],
    ["user000001", generatedScore(1)],
  ] as const) {
    const got = await getText(`${c.api}/api?key=${key}`);
    if (got !== want) throw new Error(`${c.name}: /api?key=${key} answered ${got}, not ${want}`);
  }
  const res = await fetch(`${c.api}/api?key=nobody`, { signal: AbortSignal.timeout(10_000) });
  const body = await res.text();
  if (res.status !== 404 || body !== "nobody not exist") {
    throw new Error(`${c.name}: /api?key=nobody answered ${res.status} ${body}, not 404`);
  }
}

const fmt = (n: number | undefined, d = 2) =>
  n === undefined || !Number.isFinite(n) ? "-" : n.toFixed(d);
const kilo = (n: number) => `${(n / 1000).toFixed(1)}k`;

async function runWorkload(
  contenders: Contender[],
  drive: Driver,
  { title, keys, connections = CONNECTIONS, contendersAsInfo = false }: Workload,
): Promise<void> {
  const next = new Map(contenders.map((c) => [c.name, 1]));
  const round = async (c: Contender): Promise<Round> => {
    const first = next.get(c.name)!;
    const r = await drive({ url: c.api, keys, first, seconds: SECONDS, connections });
    next.set(c.name, ((first - 1 + r.requests) % keys) + 1);
    return r;
  };
  const orders = roundOrders(contenders.length);

  // Warm-up: until each contender has been asked every key once (cold loads are not what
  // is measured), and at least MIN_WARMUP rounds each.
  const asked = new Map(contenders.map((c) => [c.name, 0]));
  for (let w = 0; w < 20; w++) {
    const todo = orders[w % orders.length]!.map((i) => contenders[i]!).filter(
      (c) => w < MIN_WARMUP || asked.get(c.name)! < keys,
    );
    if (todo.length === 0) break;
    for (const c of todo) asked.set(c.name, asked.get(c.name)! + (await round(c)).requests);
    console.error(`${title}: warm-up round ${w + 1}: ${todo.map((c) => c.name).join(", ")}`);
  }

  const readsBefore = await Promise.all(contenders.map((c) => c.dbReads?.()));
  const batchesBefore = await Promise.all(contenders.map((c) => c.batches?.()));
  const serverReadsBefore = await Promise.all(contenders.map((c) => c.serverReads?.()));
  const rounds = new Map(contenders.map((c) => [c.name, [] as Round[]]));
  // CPU seconds used during the measured rounds, by the API process and by the rest.
  const cpu = new Map(contenders.map((c) => [c.name, { api: 0, rest: 0, known: true }]));
  for (let r = 0; r < ROUNDS; r++) {
    for (const i of orders[r % orders.length]!) {
      const c = contenders[i]!;
      const used = cpu.get(c.name)!;
      const before = c.pids === undefined ? undefined : sampleCpu(c.pids);
      rounds.get(c.name)!.push(await round(c));
      const after = c.pids === undefined ? undefined : sampleCpu(c.pids);
      if (before === undefined || after === undefined) used.known = false;
      else {
        used.api += after.api - before.api;
        used.rest += after.rest - before.rest;
      }
    }
    const line = contenders.map((c) => `${c.name} ${kilo(rounds.get(c.name)![r]!.rps)}`);
    console.error(`${title}: round ${r + 1}/${ROUNDS}: ${line.join(", ")}`);
  }

  const of = (name: string) => rounds.get(name);
  /** Median of per-round ratios f(a) / f(b); undefined when either is missing. */
  const perRound = (a: string, b: string, f: (r: Round) => number) => {
    const xs = of(a);
    const ys = of(b);
    if (!xs || !ys) return undefined;
    const rs = xs.map((x, i) => f(x) / f(ys[i]!));
    return { median: median(rs), p10: quantile(rs, 0.1), p90: quantile(rs, 0.9) };
  };
  const rps = (r: Round) => r.rps;

  console.log(
    `\n### ${title} (wrk -t1 -c${connections}, ${ROUNDS} rounds of ${SECONDS} s, Williams order, after warm-up)\n`,
  );
  console.log(
    `| contender | req/s (median) | p10-p90 | p50 ms | p99 ms | vs ${GO} | vs ${REDIS} | failed |`,
  );
  console.log("|---|---|---|---|---|---|---|---|");
  for (const c of contenders) {
    const rs = of(c.name)!;
    const xs = rs.map(rps);
    console.log(
      `| ${c.name} | ${Math.round(median(xs))} | ${Math.round(quantile(xs, 0.1))}-${Math.round(quantile(xs, 0.9))} | ${fmt(median(rs.map((r) => r.p50ms)))} | ${fmt(median(rs.map((r) => r.p99ms)))} | ${fmt(perRound(c.name, GO, rps)?.median)} | ${fmt(perRound(c.name, REDIS, rps)?.median)} | ${rs.reduce((n, r) => n + r.failed, 0)} |`,
    );
  }
  const reads = await Promise.all(
    contenders.map(async (c, i) => {
      const after = await c.dbReads?.();
      return after === undefined ? [] : [`${c.name} ${after - readsBefore[i]!}`];
    }),
  );
  console.log(`\ninfo database reads during the measured rounds: ${reads.flat().join(", ")}`);
  /** Calls the asked processes answered during the measured rounds, and what they carried. */
  const calls = await Promise.all(
    contenders.map(async (c, i) => {
      const batches = await c.batches?.();
      const before = batchesBefore[i];
      if (batches !== undefined && before !== undefined) {
        const n = batches.batches - before.batches;
        return { what: "batch call", n, items: batches.keys - before.keys };
      }
      const reads = await c.serverReads?.();
      const readsBefore = serverReadsBefore[i];
      if (reads !== undefined && readsBefore !== undefined) {
        const n = reads.reads - readsBefore.reads;
        return { what: "redis-server read", n, items: reads.commands - readsBefore.commands };
      }
      return undefined;
    }),
  );
  const perBatch = contenders.flatMap((c, i) => {
    const k = calls[i];
    if (k === undefined || k.what !== "batch call") return [];
    return [
      `${c.name} ${k.n === 0 ? "no batch calls" : `${(k.items / k.n).toFixed(1)} (${k.n} calls)`}`,
    ];
  });
  console.log(`info keys per peer batch call during the measured rounds: ${perBatch.join(", ")}`);
  // Where each contender's CPU goes, per request: its req/s is the shared CPU divided by
  // the total, so this says which process a difference in req/s comes from.
  const perRequest = contenders.flatMap((c) => {
    const used = cpu.get(c.name)!;
    const requests = of(c.name)!.reduce((n, r) => n + r.requests, 0);
    if (c.pids === undefined || !used.known || requests === 0) return [];
    const us = (s: number) => ((s * 1e6) / requests).toFixed(1);
    return [`${c.name} ${us(used.api)} + ${us(used.rest)} = ${us(used.api + used.rest)}`];
  });
  console.log(
    perRequest.length === 0
      ? "info CPU per request: not measured (no /proc here)"
      : `info CPU per request during the measured rounds, µs (API process + the processes it asks = total): ${perRequest.join(", ")}`,
  );
  // The asked processes' CPU per call they answered: a call wakes its process, which costs
  // the kernel and the runtime something whatever the call holds. Only where calls carry
  // the remote keys (not at light load, where most go as single gets).
  const perCall = contenders.flatMap((c, i) => {
    const used = cpu.get(c.name)!;
    const k = calls[i];
    const requests = of(c.name)!.reduce((n, r) => n + r.requests, 0);
    if (k === undefined || k.n === 0 || !used.known || c.pids === undefined) return [];
    if (k.what === "batch call" && k.items < 0.5 * requests) return [];
    const us = ((used.rest * 1e6) / k.n).toFixed(0);
    return [
      `${c.name} ${us} µs per ${k.what} (${(k.items / k.n).toFixed(1)} keys or commands each)`,
    ];
  });
  console.log(
    perCall.length === 0
      ? ""
      : `info CPU of the asked processes per call they answered: ${perCall.join(", ")}\n`,
  );

  const goalOf = (name: string, a: string, b: string, target: number, f = rps, inverse = false) => {
    const v = inverse ? perRound(b, a, f) : perRound(a, b, f);
    if (v === undefined) console.log(`info goal ${name}: not measured (${b} not running)`);
    else goal(name, v.median, target, `(p10-p90 ${fmt(v.p10)}-${fmt(v.p90)})`);
  };
  const infoOf = (name: string, a: string, b: string) => {
    const v = perRound(a, b, rps);
    if (v !== undefined) {
      console.log(
        `info ${name}: ${fmt(v.median)} (p10-p90 ${fmt(v.p10)}-${fmt(v.p90)}; no target)`,
      );
    }
  };
  const versus = contendersAsInfo ? infoOf : goalOf;
  versus(`${HTTP} vs ${GO}, ${title}`, HTTP, GO, 1.2);
  versus(`${HTTP} vs ${REDIS}, ${title}`, HTTP, REDIS, 1.0);
  goalOf(`${CONNECT} vs ${HTTP}, ${title}`, CONNECT, HTTP, 1.0);
  if (keys >= 100_000) {
    // Lower is better for latency: Go's p99 over ours, so >= 1 means ours is no worse.
    const p99 = (r: Round) => r.p99ms;
    goalOf(`peer-path p99, ${GO} p99 / ${HTTP} p99, ${title}`, HTTP, GO, 1.0, p99, true);
  }
}

async function main(): Promise<void> {
  if (!existsSync(NODE_ENTRY)) throw new Error(`${NODE_ENTRY} is missing: run pnpm build first`);
  const missing = missingTools();
  console.log(
    `## Cluster benchmark: API on one node of three; wrk -t1 -c${CONNECTIONS} (light load: -c2); ${ROUNDS} rounds of ${SECONDS} s per workload`,
  );
  for (const why of Object.values(missing)) console.log(`skipped: ${why}`);
  const pinning = pinCpus();
  if (typeof pinning === "string") {
    console.log(`CPUs: not pinned (${pinning}): contenders and the load generator share them`);
  } else {
    console.log(
      `CPUs: wrk on CPU ${pinning.loadCpu}, every contender's processes on CPU ${pinning.serverCpus} (TINYCACHE_CLUSTER_PIN=0: not pinned)`,
    );
  }
  let drive: Driver = wrkDriver(procs, typeof pinning === "string" ? undefined : pinning.loadCpu);
  if (missing.wrk) {
    console.log("load generator: autocannon in the benchmark's process instead of wrk");
    drive = autocannonDriver;
  }
  seedDatabase(dataDir);

  // Only the clusters some chosen workload runs against.
  const wantMain = WORKLOADS.some((w) => !w.peerPath);
  const wantPeerPath = WORKLOADS.some((w) => w.peerPath);
  const contenders: Contender[] = [];
  // The same contenders for the peer-path workload, with hot caches kept small.
  const peerPath: Contender[] = [];
  if (!missing.go) {
    try {
      const tsv = join(tmp, "scores.tsv");
      dumpTsv(dataDir, tsv);
      const bin = await buildGoPeer(tmp);
      if (wantMain) contenders.push(await startGo(bin, tsv));
      if (wantPeerPath) peerPath.push(await startGo(bin, tsv, GO_PEER_PATH_CACHE_BYTES));
      console.log(
        `${GO}: 3 peers, Go's HTTP transport with MaxIdleConnsPerHost ${GO_IDLE_CONNS} (Go's default of 2 would make most peer fetches open a connection)`,
      );
    } catch (err) {
      console.log(`skipped: ${GO} did not start: ${(err as Error).message}`);
    }
  }
  if (wantMain) {
    contenders.push(await startTinycache(HTTP, "http"));
    contenders.push(await startTinycache(CONNECT, "connect"));
  }
  if (wantPeerPath) {
    peerPath.push(await startTinycache(HTTP, "http", ["--hot-cache", "off"]));
    peerPath.push(await startTinycache(CONNECT, "connect", ["--hot-cache", "off"]));
  }
  if (!missing.redis) {
    try {
      const redis = await startRedis();
      if (wantMain) contenders.push(redis);
      if (wantPeerPath) peerPath.push(redis); // Redis has no hot cache: the same API serves both
    } catch (err) {
      console.log(`skipped: ${REDIS} did not start: ${(err as Error).message}`);
    }
  }
  for (const c of [...contenders, ...peerPath]) await check(c);
  const names = new Set([...contenders, ...peerPath].map((c) => c.name));
  console.log(`contenders: ${[...names].join(", ")}`);
  console.log(
    "every cluster's API node owns a third (+-1 point) of each workload's keys; the others are one peer call away",
  );
  console.log(
    `peer-path workload: tinycache nodes with --hot-cache off; Go peers with a ${GO_PEER_PATH_CACHE_BYTES >> 20} MiB cache (room for their own keys, not for the API node's remote ones)`,
  );
  for (const w of WORKLOADS) await runWorkload(w.peerPath ? peerPath : contenders, drive, w);
}

let cleaning: Promise<void> | undefined;
let interrupted = false;
const cleanup = () => {
  cleaning ??= procs.stopAll().finally(() => rmSync(tmp, { recursive: true, force: true }));
  return cleaning;
};
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
  process.on(signal, () => {
    interrupted = true;
    console.error(`\n${signal}: stopping every process the benchmark started`);
    void cleanup().finally(() => process.exit(130));
  });
}
try {
  await main();
} catch (err) {
  // After a signal, a round that fails because its processes are stopping is no news.
  if (interrupted) await new Promise(() => {}); // the signal handler exits
  console.error(`cluster benchmark failed: ${(err as Error).stack ?? err}`);
  process.exitCode = 1;
} finally {
  await cleanup();
}
