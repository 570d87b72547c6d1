/**
 * The demo cluster under load, same run, same load generator (autocannon as a library),
 * interleaved rounds (docs/benchmarks.md):
 * - the API on hot keys (cached on the API node) vs its HTTP front alone (the lean lane
 *   over node:http) answering the same bytes, each in its own process: goal >= 0.8x;
 * - the peer path: keys owned by another node, hot cache off (every request crosses to
 *   the owner), per transport (http, connect), as ratios to the same bare server;
 * - the cold-load rate with --db-latency-ms 5 (every request a key never seen).
 * Bounded: about two minutes. Every process started here is stopped at the end.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { HashRing } from "@tinycache/consistenthash";
import {
  type Comparison,
  compare,
  freePort,
  goal,
  median,
  printTable,
  ratio,
  type Spawned,
  spawnNode,
} from "@tinycache/testkit";
import autocannon from "autocannon";
import { Cluster } from "../src/cluster.js";
import { seedDatabase } from "../src/db.js";
import { generatedKey } from "../src/keys.js";
import { createLogger } from "../src/log.js";

const NODE_ENTRY = fileURLToPath(new URL("../dist/node.js", import.meta.url));
const LEAN_ENTRY = new URL("../dist/lean-http.js", import.meta.url).href;
const CONNECTIONS = 32;
const SECONDS = 2;
const ROUNDS = 8;
const PEER_ROUNDS = 5;

const dataDir = mkdtempSync(join(tmpdir(), "tinycache-demo-bench-"));
seedDatabase(dataDir);
const logger = createLogger({ level: "warn", base: { node: "bench" }, pretty: false });
const clusters: Cluster[] = [];
let bare: Spawned | undefined;

async function ports(n: number): Promise<number[]> {
  const s = new Set<number>();
  while (s.size < n) s.add(await freePort());
  return [...s];
}

async function startCluster(
  transport: "http" | "connect",
  dbLatencyMs: number,
): Promise<{ api: string; peers: string[]; apiPeer: string }> {
  const [a, b, c, apiPort] = await ports(4);
  const cluster = new Cluster({
    ports: [a!, b!, c!],
    apiPort: apiPort!,
    transport,
    dataDir,
    dbLatencyMs,
    logLevel: "warn",
    nodeEntry: NODE_ENTRY,
    nodeArgs: ["--hot-cache", "off"],
    restart: false,
    logger,
    onLine: (port, line) => {
      if (/"level":[56]0/.test(line)) console.error(`[${port}] ${line}`);
    },
  });
  clusters.push(cluster);
  await cluster.start();
  return {
    api: `http://127.0.0.1:${apiPort}`,
    peers: cluster.peers,
    apiPeer: `http://127.0.0.1:${c}`,
  };
}

/** `n` generated keys from `from` on whose owner `pred` holds. */
function keysWhere(peers: string[], pred: (owner: string) => boolean, n: number, from: number) {
  const ring = new HashRing().add(...peers);
  const out: string[] = [];
  for (let i = from; out.length < n; i++) {
    if (pred(ring.get(generatedKey(i))!)) out.push(generatedKey(i));
  }
  return out;
}

async function warm(api: string, keys: string[]): Promise<void> {
  for (let i = 0; i < keys.length; i += 50) {
    await Promise.all(
      keys.slice(i, i + 50).map(async (k) => {
        const res = await fetch(`${api}/api?key=${k}`);
        if (res.status !== 200) throw new Error(`warm-up ${k}: ${res.status}`);
        await res.text();
      }),
    );
  }
}

const p99s = new Map<string, number[]>();
const failures = new Map<string, number>();

function load(name: string, url: string, requests: autocannon.Request[]): () => Promise<number> {
  return async () => {
    const r = await autocannon({
      url,
      connections: CONNECTIONS,
      duration: SECONDS,
      requests,
    });
    p99s.set(name, [...(p99s.get(name) ?? []), r.latency.p99]);
    failures.set(name, (failures.get(name) ?? 0) + r.errors + r.timeouts + r.non2xx);
    return r.requests.total;
  };
}

async function dbReads(peers: string[]): Promise<number> {
  let sum = 0;
  for (const p of peers) {
    const s = (await (await fetch(`${p}/stats`)).json()) as { db: { reads: number } };
    sum += s.db.reads;
  }
  return sum;
}

try {
  // The API's HTTP front alone in its own process (the lean lane over node:http, as the
  // API serves), answering what the API answers for Tom: what the API costs on top of it.
  const barePort = await freePort();
  bare = spawnNode([
    "--input-type=module",
    "-e",
    `import { createServer } from "node:http";
     import { LeanServer } from ${JSON.stringify(LEAN_ENTRY)};
     const fallback = createServer({ keepAliveTimeout: 30000 }, (req, res) => {
       res.writeHead(200, { "content-type": "text/plain; charset=utf-8", "content-length": 3 });
       res.end("630");
     });
     const lane = new LeanServer({ path: "/api", handle: (_url, reply) => reply.send(200, "630"),
       fallback, keepAliveTimeoutMs: 30000, headersTimeoutMs: 60000, maxConnections: 10000 });
     await lane.listen(${barePort}, "127.0.0.1");
     console.log("ready");`,
  ]);
  await bare.waitForLine(/ready/);

  const http = await startCluster("http", 0);
  const connect = await startCluster("connect", 0);

  // Hot: keys the API node owns, cached in its main cache after one read.
  const hot = keysWhere(http.peers, (o) => o === http.apiPeer, 10, 1);
  // Peer path: keys another node owns, cached there; hot cache off, so every get crosses
  // to the owner. 1,000 of them, so that concurrent requests rarely share a key (the API
  // node's singleflight would collapse those into one peer call and flatter the figure).
  const remoteHttp = keysWhere(http.peers, (o) => o !== http.apiPeer, 1000, 1);
  const remoteConnect = keysWhere(connect.peers, (o) => o !== connect.apiPeer, 1000, 1);
  await warm(http.api, [...hot, ...remoteHttp]);
  await warm(connect.api, remoteConnect);
  const paths = (keys: string[]) =>
    keys.map((k) => ({ method: "GET" as const, path: `/api?key=${k}` }));

  console.log(
    `## tinycache demo: ${CONNECTIONS} connections, ${SECONDS} s per run, ${ROUNDS} (hot) / ${PEER_ROUNDS} (peer) rounds (+1 warm-up), interleaved`,
  );
  const latencyTable = (names: string[]) => {
    console.log("\n| impl | p99 latency ms (median of rounds) | failed requests |\n|---|---|---|");
    for (const name of names) {
      console.log(`| ${name} | ${median(p99s.get(name) ?? [])} | ${failures.get(name) ?? 0} |`);
    }
  };

  // 1. Hot keys. The bare server gets the very same requests (it ignores the path), so the
  // load generator does the same work for both. Its own comparison: a peer-path run on the
  // same API node leaves garbage behind that the next run would pay for.
  const hotCmp = await compare(
    "API on hot keys vs bare HTTP front, requests/s (autocannon, loopback)",
    [
      {
        name: "bare HTTP front",
        run: load("bare HTTP front", `http://127.0.0.1:${barePort}`, paths(hot)),
      },
      { name: "demo api, hot keys", run: load("demo api, hot keys", http.api, paths(hot)) },
    ],
    { rounds: ROUNDS, warmup: 1 },
  );
  printTable(hotCmp, "bare HTTP front", "req/s");
  latencyTable(hotCmp.names);
  const reqs = (cmp: Comparison, name: string) => Math.round(median(cmp.opsPerSec.get(name) ?? []));
  const api = ratio(hotCmp, "demo api, hot keys", "bare HTTP front");
  goal(
    "demo api vs bare HTTP front",
    api.median,
    0.8,
    `(p10-p90 ${api.p10.toFixed(2)}-${api.p90.toFixed(2)}; ${reqs(hotCmp, "demo api, hot keys")} vs ${reqs(hotCmp, "bare HTTP front")} req/s; p99 ${median(p99s.get("demo api, hot keys") ?? [])} vs ${median(p99s.get("bare HTTP front") ?? [])} ms)`,
  );

  // 2. The peer path, per transport: API hop + one peer call per request.
  const peerCmp = await compare(
    "Peer path (keys owned by another node, hot cache off), requests/s",
    [
      {
        name: "bare HTTP front",
        run: load("bare HTTP front", `http://127.0.0.1:${barePort}`, paths(remoteHttp)),
      },
      { name: "peer path, http", run: load("peer path, http", http.api, paths(remoteHttp)) },
      {
        name: "peer path, connect",
        run: load("peer path, connect", connect.api, paths(remoteConnect)),
      },
    ],
    { rounds: PEER_ROUNDS, warmup: 1 },
  );
  printTable(peerCmp, "bare HTTP front", "req/s");
  latencyTable(peerCmp.names);
  for (const t of ["http", "connect"]) {
    const name = `peer path, ${t}`;
    const r = ratio(peerCmp, name, "bare HTTP front");
    console.log(
      `info peer path (${t} transport) vs bare HTTP front: ${r.median.toFixed(2)} (${reqs(peerCmp, name)} req/s, p99 ${median(p99s.get(name) ?? [])} ms; each request = API hop + peer RPC)`,
    );
  }
  const pc = ratio(peerCmp, "peer path, connect", "peer path, http");
  console.log(`info peer path connect vs http: ${pc.median.toFixed(2)}`);

  for (const c of clusters.splice(0)) await c.stop();

  // Cold loads: every request a key never asked before, database latency 5 ms.
  const cold = await startCluster("http", 5);
  let next = 1;
  const before = await dbReads(cold.peers);
  const rates: number[] = [];
  let ok = 0;
  for (let round = 0; round < 3; round++) {
    const r = await autocannon({
      url: cold.api,
      connections: CONNECTIONS,
      duration: SECONDS,
      requests: [
        {
          method: "GET",
          setupRequest: (req) => ({ ...req, path: `/api?key=${generatedKey(next++)}` }),
        },
      ],
    });
    rates.push(r.requests.total / SECONDS);
    ok += r["2xx"];
  }
  const reads = (await dbReads(cold.peers)) - before;
  const asked = next - 1;
  const ideal = (CONNECTIONS * 1000) / 5;
  // autocannon cuts the requests in flight when a run ends: those keys were (or were not
  // yet) read but never answered, so reads lie between the answers and the keys asked.
  const once = reads >= ok && reads <= asked;
  console.log(
    `info cold-load rate with --db-latency-ms 5: ${Math.round(median(rates))} loads/s (median of 3 runs; ${CONNECTIONS} connections bound it at ${ideal}/s: ${(median(rates) / ideal).toFixed(2)} of that); ${asked} distinct keys asked, ${ok} answered, ${reads} database reads (${once ? "at most one per key" : "MORE THAN ONE PER KEY"})`,
  );
} finally {
  await Promise.all(clusters.map((c) => c.stop()));
  await bare?.kill();
  rmSync(dataDir, { recursive: true, force: true });
}
