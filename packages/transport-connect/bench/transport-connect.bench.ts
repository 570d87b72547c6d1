/**
 * Peer fetches per second over loopback: our ConnectPool client against a ConnectPool
 * server, beside a @grpc/grpc-js client against a @grpc/grpc-js server, serving the
 * same RPC (CacheService/Get, same protobuf bytes, same cached key of a core group).
 *
 * The servers run in one child process (a peer is another process); this process runs
 * one load generator for every contender: 64 requests kept in flight for ROUND_MS,
 * rounds interleaved in rotating order (testkit `compare`). Prints req/s, p50/p99
 * latency and `goal transport-connect vs grpc-js`. Those clients send one call per get
 * (`batch: false`): the comparison is of the RPC layer.
 *
 * Then the peer path, batch on vs off: ConnectPool clients (`batch: true` / `false`)
 * fetching distinct cached keys (64 gets in flight) from the same server. Prints
 * `goal transport-connect peer path batch on vs off`.
 */
import { fileURLToPath } from "node:url";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import type { PeerGetter } from "@tinycache/core/transport";
import { tinycachev1 as pb } from "@tinycache/protocol";
import { compare, goal, printTable, quantile, ratio, spawnNode } from "@tinycache/testkit";
import { ConnectPool, type ConnectPoolOptions } from "../dist/index.js";

const IN_FLIGHT = 64;
const ROUND_MS = Number(process.env.ROUND_MS ?? 3000);
const ROUNDS = Number(process.env.ROUNDS ?? 5);
const WARMUP = 1;
const KEY = "hot-key";

const server = spawnNode([
  "--import",
  "tsx",
  fileURLToPath(new URL("./bench-server.ts", import.meta.url)),
]);
const ports = JSON.parse(await server.waitForLine(/^\{"pool"/, 30_000)) as {
  pool: number;
  grpc: number;
};
const poolUrl = `http://127.0.0.1:${ports.pool}`;

/** Latencies (ms) of every measured request, per contender. */
const latencies = new Map<string, number[]>();

/**
 * Keeps IN_FLIGHT calls going for ROUND_MS; returns how many completed. Each contender
 * gets its own closure (monomorphic call sites). A failed call ends the run loudly.
 */
function loadLoop(name: string, call: () => Promise<unknown>): () => Promise<number> {
  const lat: number[] = [];
  latencies.set(name, lat);
  return async () => {
    const end = performance.now() + ROUND_MS;
    let done = 0;
    const worker = async () => {
      for (;;) {
        const t0 = performance.now();
        if (t0 >= end) return;
        await call();
        lat.push(performance.now() - t0);
        done++;
      }
    };
    await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
    return done;
  };
}

function poolPeer(opts: Partial<ConnectPoolOptions>): { peer: PeerGetter; pool: ConnectPool } {
  const pool = new ConnectPool({
    self: "http://127.0.0.1:2",
    registry: { getGroup: () => undefined },
    timeoutMs: 10_000, // a loaded 2-core box: measure, don't time out
    batch: false, // one call per get: this compares the RPC layers
    health: false,
    ...opts,
  });
  pool.setPeers(poolUrl);
  const peer = pool.peers()[0];
  if (!peer) throw new Error("no peer");
  return { peer, pool };
}

const h1 = poolPeer({});
const h2 = poolPeer({ protocol: "connect", httpVersion: "2" });
const g2 = poolPeer({ protocol: "grpc" });
const req = { group: "bench", key: KEY };

const grpcClient = new grpc.Client(`127.0.0.1:${ports.grpc}`, grpc.credentials.createInsecure());
const grpcReq = create(pb.GetRequestSchema, req);
const ser = (m: pb.GetRequest) => Buffer.from(toBinary(pb.GetRequestSchema, m));
const de = (b: Buffer) => fromBinary(pb.GetResponseSchema, b);
const grpcGet = () =>
  new Promise<pb.GetResponse>((resolve, reject) => {
    grpcClient.makeUnaryRequest(
      "/tinycache.v1.CacheService/Get",
      ser,
      de,
      grpcReq,
      new grpc.Metadata(),
      { deadline: Date.now() + 10_000 },
      (err, res) => (err || !res ? reject(err) : resolve(res)),
    );
  });

// Sanity: every contender returns the same value before anything is timed.
const expect = new TextDecoder().decode((await h1.peer.get(req)).value);
for (const v of [
  (await h2.peer.get(req)).value,
  (await g2.peer.get(req)).value,
  (await grpcGet()).value,
]) {
  if (new TextDecoder().decode(v) !== expect) throw new Error("contenders disagree on the value");
}

const OURS = "tinycache connect h1 (default)";
const GRPC = "grpc-js server + client";
console.log(
  `\nloopback RPC, ${IN_FLIGHT} in flight, ${ROUND_MS} ms per run, ${ROUNDS} rounds (+${WARMUP} warm-up), value ${expect.length} B`,
);
const cmp = await compare(
  "CacheService/Get over loopback (server in a child process)",
  [
    { name: OURS, run: loadLoop(OURS, () => h1.peer.get(req)) },
    { name: GRPC, run: loadLoop(GRPC, grpcGet) },
    { name: "tinycache connect h2", run: loadLoop("tinycache connect h2", () => h2.peer.get(req)) },
    { name: "tinycache grpc h2", run: loadLoop("tinycache grpc h2", () => g2.peer.get(req)) },
  ],
  { rounds: ROUNDS, warmup: WARMUP },
);
printTable(cmp, GRPC, "req/s");

console.log("\n| impl | p50 ms | p99 ms |\n|---|---|---|");
for (const name of cmp.names) {
  const lat = latencies.get(name) ?? [];
  console.log(`| ${name} | ${quantile(lat, 0.5).toFixed(2)} | ${quantile(lat, 0.99).toFixed(2)} |`);
}

const r = ratio(cmp, OURS, GRPC);
console.log("");
goal(
  "transport-connect vs grpc-js",
  r.median,
  1.0,
  `(p10-p90 ${r.p10.toFixed(2)}-${r.p90.toFixed(2)})`,
);

// The peer path, batch on vs off: 64 gets of distinct keys in flight.
const DISTINCT = 100;
const on = poolPeer({ batch: true });
const off = poolPeer({ batch: false });
const distinct = (peer: PeerGetter) => {
  let n = 0;
  return () => peer.get({ group: "bench", key: `k${n++ % DISTINCT}` });
};
const ON = "batch on";
const OFF = "batch off";
const batchCmp = await compare(
  "Peer path, 64 gets of distinct remote keys in flight: batch on vs off (fetches/s)",
  [
    { name: ON, run: loadLoop(ON, distinct(on.peer)) },
    { name: OFF, run: loadLoop(OFF, distinct(off.peer)) },
  ],
  { rounds: ROUNDS, warmup: WARMUP },
);
printTable(batchCmp, OFF, "fetches/s");
console.log("\n| impl | p50 ms | p99 ms |\n|---|---|---|");
for (const name of batchCmp.names) {
  const lat = latencies.get(name) ?? [];
  console.log(`| ${name} | ${quantile(lat, 0.5).toFixed(2)} | ${quantile(lat, 0.99).toFixed(2)} |`);
}
const b = ratio(batchCmp, ON, OFF);
console.log("");
goal(
  "transport-connect peer path batch on vs off",
  b.median,
  1.5,
  `(p10-p90 ${b.p10.toFixed(2)}-${b.p90.toFixed(2)})`,
);

grpcClient.close();
await Promise.all([
  h1.pool.close(),
  h2.pool.close(),
  g2.pool.close(),
  on.pool.close(),
  off.pool.close(),
]);
await server.kill();
