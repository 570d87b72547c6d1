/**
 * transport-http benchmark (docs/benchmarks.md, cluster method): each server is a real
 * child process, driven over loopback by autocannon (as a library) from this process,
 * for a bounded time per run, in interleaved rounds.
 *
 * 1. Server: HttpPool's handler answering peer GETs of cached keys it owns (the work a
 *    remote owner does per peer fetch) vs a bare node:http server writing the same bytes
 *    with the same headers. Goal: >= 0.9x.
 * 2. Client (informational): HttpPool's PeerGetter.get vs a bare keep-alive
 *    http.request loop, same concurrency, both against the bare server.
 * 3. The peer path, batch on vs off: HttpPool clients (`batch: true` / `false`) fetching
 *    distinct keys from the pool server (the owner, keys cached), 64 gets in flight. Goal:
 *    batching >= 1.5x.
 */
import * as http from "node:http";
import { fileURLToPath } from "node:url";
import type { PeerGetter } from "@tinycache/core/transport";
import {
  type Comparison,
  goal,
  median,
  printTable,
  ratio,
  type Spawned,
  spawnNode,
} from "@tinycache/testkit";
import autocannon from "autocannon";
import { HttpPool } from "../dist/index.js";

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 8);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 2);
const CONNECTIONS = 64;
const KEYS = 100;

const serverEntry = fileURLToPath(new URL("./server.ts", import.meta.url));
const procs: Spawned[] = [];

async function startServer(mode: "pool" | "bare"): Promise<number> {
  const p = spawnNode(["--import", "tsx", serverEntry, "--mode", mode, "--keys", String(KEYS)]);
  procs.push(p);
  const line = await p.waitForLine(/"event":"ready"/, 30_000);
  return (JSON.parse(line) as { port: number }).port;
}

const paths = Array.from({ length: KEYS }, (_, i) => `/_groupcache/scores/k${i}`);

interface Run {
  rps: number;
  p50: number;
  p99: number;
  errors: number;
}

async function cannon(port: number, seconds: number): Promise<Run> {
  const r = await autocannon({
    url: `http://127.0.0.1:${port}`,
    connections: CONNECTIONS,
    duration: seconds,
    requests: paths.map((path) => ({ method: "GET", path })),
  });
  const bad = r.errors + r.timeouts + r.non2xx;
  return { rps: r.requests.total / seconds, p50: r.latency.p50, p99: r.latency.p99, errors: bad };
}

/** Drives `get` with CONNECTIONS loops in flight for `seconds`; returns fetches/s. */
async function clientLoad(get: (i: number) => Promise<unknown>, seconds: number): Promise<Run> {
  const end = performance.now() + seconds * 1000;
  const lat: number[] = [];
  let done = 0;
  let errors = 0;
  await Promise.all(
    Array.from({ length: CONNECTIONS }, async (_, c) => {
      for (let i = c; performance.now() < end; i += CONNECTIONS) {
        const t0 = performance.now();
        try {
          await get(i % KEYS);
          done++;
        } catch {
          errors++;
        }
        lat.push(performance.now() - t0);
      }
    }),
  );
  lat.sort((a, b) => a - b);
  const q = (x: number) => lat[Math.min(lat.length - 1, Math.floor(lat.length * x))] ?? Number.NaN;
  return { rps: done / seconds, p50: q(0.5), p99: q(0.99), errors };
}

function report(
  title: string,
  runs: Map<string, Run[]>,
  baseline: string,
  goalName?: string,
  target = 0.9,
) {
  const cmp: Comparison = {
    title,
    names: [...runs.keys()],
    opsPerSec: new Map([...runs].map(([k, v]) => [k, v.map((r) => r.rps)])),
  };
  printTable(cmp, baseline, "req/s");
  console.log(
    "\n| impl | p50 ms (median of runs) | p99 ms (median of runs) | errors |\n|---|---|---|---|",
  );
  for (const [name, rs] of runs) {
    const errs = rs.reduce((n, r) => n + r.errors, 0);
    console.log(
      `| ${name} | ${median(rs.map((r) => r.p50)).toFixed(2)} | ${median(rs.map((r) => r.p99)).toFixed(2)} | ${errs} |`,
    );
  }
  const [a] = cmp.names.filter((n) => n !== baseline) as [string];
  const r = ratio(cmp, a, baseline);
  const detail = `(p10-p90 ${r.p10.toFixed(2)}-${r.p90.toFixed(2)}, ${ROUNDS} rounds x ${SECONDS}s, ${CONNECTIONS} in flight)`;
  if (goalName) goal(goalName, r.median, target, detail);
  else console.log(`info ${a} vs ${baseline}: ${r.median.toFixed(2)} ${detail}`);
}

async function interleave(contenders: [string, () => Promise<Run>][]): Promise<Map<string, Run[]>> {
  const runs = new Map<string, Run[]>(contenders.map(([n]) => [n, []]));
  for (const [, run] of contenders) await run(); // warm-up (JIT, sockets, caches)
  for (let round = 0; round < ROUNDS; round++) {
    for (let i = 0; i < contenders.length; i++) {
      const [name, run] = contenders[(round + i) % contenders.length] as [
        string,
        () => Promise<Run>,
      ];
      runs.get(name)?.push(await run());
    }
  }
  return runs;
}

try {
  const [poolPort, barePort] = await Promise.all([startServer("pool"), startServer("bare")]);

  // 1. Server side: the peer path of an owner.
  const server = await interleave([
    ["transport-http (HttpPool handler)", () => cannon(poolPort, SECONDS)],
    ["bare node:http", () => cannon(barePort, SECONDS)],
  ]);
  report(
    "Peer GET served, cached key owned by the server (req/s)",
    server,
    "bare node:http",
    "transport-http vs bare node:http",
  );

  // 2. Client side: HttpPool's PeerGetter against the bare server.
  const client = new HttpPool({
    self: "http://self.invalid",
    registry: { getGroup: () => undefined },
    batch: false, // one request per get, as the bare loop sends (the bare server has no batches)
  });
  client.setPeers(`http://127.0.0.1:${barePort}`);
  const peer = client.peers()[0] as PeerGetter;
  const agent = new http.Agent({ keepAlive: true, scheduling: "lifo" });
  const bareGet = (i: number) =>
    new Promise<Buffer>((resolve, reject) => {
      const r = http.request(
        { agent, hostname: "127.0.0.1", port: barePort, path: paths[i] },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () => resolve(Buffer.concat(chunks)));
          res.on("error", reject);
        },
      );
      r.on("error", reject);
      r.end();
    });
  const clientRuns = await interleave([
    [
      "HttpPool PeerGetter.get",
      () => clientLoad((i) => peer.get({ group: "scores", key: `k${i}` }), SECONDS),
    ],
    ["bare http.request (keep-alive)", () => clientLoad(bareGet, SECONDS)],
  ]);
  report(
    "Peer fetch, client side, against the bare server (fetches/s)",
    clientRuns,
    "bare http.request (keep-alive)",
  );
  agent.destroy();
  await client.close();

  // 3. The peer path, batch on vs off, against the owner (the pool server).
  const batched = new Map<string, PeerGetter>();
  const clients: HttpPool[] = [];
  for (const batch of [true, false]) {
    const c = new HttpPool({
      self: "http://self.invalid",
      registry: { getGroup: () => undefined },
      batch,
      health: false,
    });
    c.setPeers(`http://127.0.0.1:${poolPort}`);
    clients.push(c);
    batched.set(batch ? "batch on" : "batch off", c.peers()[0] as PeerGetter);
  }
  const on = batched.get("batch on") as PeerGetter;
  const off = batched.get("batch off") as PeerGetter;
  const batchRuns = await interleave([
    ["batch on", () => clientLoad((i) => on.get({ group: "scores", key: `k${i}` }), SECONDS)],
    ["batch off", () => clientLoad((i) => off.get({ group: "scores", key: `k${i}` }), SECONDS)],
  ]);
  report(
    "Peer path, 64 gets of distinct remote keys in flight: batch on vs off (fetches/s)",
    batchRuns,
    "batch off",
    "transport-http peer path batch on vs off",
    1.5,
  );
  await Promise.all(clients.map((c) => c.close()));
} finally {
  await Promise.all(procs.map((p) => p.kill()));
}
