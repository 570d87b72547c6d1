/**
 * Helpers of the cluster benchmark (cluster.bench.ts): which outside tools are there,
 * one owner for every process it starts (so each exit path can stop them all), readiness
 * by polling HTTP, and the Go peer's build and data.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { writeFileSync } from "node:fs";
import { connect } from "node:net";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { buildGoProgram, whyNoGoGroupcache } from "@tinycache/testkit";
import Database from "better-sqlite3";
import type { Cluster } from "../src/cluster.js";
import { seedDatabase } from "../src/db.js";

/** Whether `cmd` can be run at all (its exit code does not matter: `wrk -v` exits 1). */
function runs(cmd: string, args: string[]): boolean {
  return spawnSync(cmd, args, { stdio: "ignore" }).error === undefined;
}

/** Why a contender's tool is missing, by tool; absent when it is there. */
export function missingTools(): { go?: string; wrk?: string; redis?: string } {
  const out: { go?: string; wrk?: string; redis?: string } = {};
  const go = whyNoGoGroupcache();
  if (go !== undefined) out.go = go;
  if (!runs("wrk", ["-v"])) out.wrk = "wrk is not installed (apt-get install -y wrk)";
  if (!runs("redis-server", ["--version"])) {
    out.redis = "redis-server is not installed (apt-get install -y redis-server)";
  }
  return out;
}

/** Where the benchmark runs: the load generator's CPU and its contenders' (taskset lists). */
export interface Pinning {
  loadCpu: string;
  serverCpus: string;
}

/**
 * Gives the load generator a CPU of its own and every contender the others: this process
 * (and so every process it starts, which inherits its affinity) goes to `serverCpus`,
 * and wrk is started on `loadCpu`. Unpinned, the scheduler tends to run wrk and the API
 * process it wakes on the same CPU while the other idles, and which contender that
 * happens to is decided at random, per process: the same cluster measured 56k req/s in
 * one run and 74k in the next. Returns why not, when it cannot (one CPU, no taskset, or
 * TINYCACHE_CLUSTER_PIN=0).
 */
export function pinCpus(): Pinning | string {
  if (process.env.TINYCACHE_CLUSTER_PIN === "0") return "TINYCACHE_CLUSTER_PIN=0";
  const n = availableParallelism();
  if (n < 2) return "one CPU";
  const loadCpu = String(n - 1);
  const serverCpus = n === 2 ? "0" : `0-${n - 2}`;
  const r = spawnSync("taskset", ["-a", "-p", "-c", serverCpus, String(process.pid)], {
    stdio: "ignore",
  });
  if (r.error !== undefined || r.status !== 0) {
    return `taskset failed (${r.error?.message ?? `exit ${r.status}`}; apt-get install -y util-linux)`;
  }
  return { loadCpu, serverCpus };
}

/** Builds the Go peer (GOPATH mode, as the transport-http interop test does) into `outDir`. */
export function buildGoPeer(outDir: string): Promise<string> {
  return buildGoProgram(
    fileURLToPath(new URL("./go/cluster/", import.meta.url)),
    join(outDir, "groupcache-peer"),
  );
}

/** The demo database (seeded in `dataDir`) as name<TAB>score lines, for the Go peers. */
export function dumpTsv(dataDir: string, out: string): void {
  const db = new Database(seedDatabase(dataDir).file, { readonly: true });
  try {
    const rows = db.prepare<[], { name: string; score: string }>("SELECT name, score FROM scores");
    const lines: string[] = [];
    for (const { name, score } of rows.iterate()) lines.push(`${name}\t${score}\n`);
    writeFileSync(out, lines.join(""));
  } finally {
    db.close();
  }
}

/**
 * Every process the benchmark starts, so that one call stops them all, on every exit path.
 * Children get a stdin pipe: those that can (the Go peers, the Redis API) exit when it
 * closes, which covers a benchmark killed by SIGKILL too.
 */
export class Procs {
  readonly #children = new Set<ChildProcess>();
  readonly #clusters = new Set<Cluster>();
  #stopping = false;

  /** Starts `cmd`; an unexpected exit is reported with the last lines it wrote. */
  spawn(name: string, cmd: string, args: string[], cwd?: string): ChildProcess {
    const child = spawn(cmd, args, { cwd, stdio: ["pipe", "pipe", "pipe"] });
    const tail: string[] = [];
    const keep = (b: Buffer) => {
      tail.push(...b.toString().split("\n").filter(Boolean));
      tail.splice(0, Math.max(0, tail.length - 20));
    };
    child.stdout?.on("data", keep);
    child.stderr?.on("data", keep);
    child.on("error", (err) => console.error(`${name}: ${err.message}`));
    this.#children.add(child);
    child.once("exit", (code, signal) => {
      this.#children.delete(child);
      if (!this.#stopping && code !== 0) {
        console.error(`${name} exited (${code ?? signal}):\n${tail.join("\n")}`);
      }
    });
    return child;
  }

  /** A cluster to stop with the rest. */
  track(cluster: Cluster): Cluster {
    this.#clusters.add(cluster);
    return cluster;
  }

  /** SIGTERM to everything, SIGKILL to what is left after 3 s; resolves once all are gone. */
  async stopAll(): Promise<void> {
    this.#stopping = true;
    const waits = [...this.#children].map(async (child) => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = once(child, "exit");
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 3_000);
      await exited;
      clearTimeout(timer);
    });
    await Promise.all([...waits, ...[...this.#clusters].map((c) => c.stop())]);
  }
}

/**
 * Polls `url` until it answers 200 (a server that is up but not ready answers otherwise,
 * or refuses the connection). Fails when `child` exits first or after `timeoutMs`.
 */
export async function waitHttp(url: string, child?: ChildProcess, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  let last = "no answer";
  while (Date.now() < deadline) {
    if (child && (child.exitCode !== null || child.signalCode !== null)) {
      throw new Error(`${url}: the process exited before it answered`);
    }
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(1_000) });
      last = `${res.status} ${await res.text()}`;
      if (res.status === 200) return;
    } catch (err) {
      last = (err as Error).message;
    }
    await delay(50); // between attempts, so a starting server is not flooded
  }
  throw new Error(`${url} not ready after ${timeoutMs} ms (last: ${last})`);
}

/** GET `url` and its body, or an error when the answer is not 200. */
export async function getText(url: string): Promise<string> {
  const res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
  const body = await res.text();
  if (res.status !== 200) throw new Error(`${url}: ${res.status} ${body}`);
  return body;
}

/**
 * redis-server's `INFO stats` counters (e.g. total_reads_processed: its event loop's
 * socket reads; total_commands_processed), over a connection of its own.
 */
export function redisInfoStats(port: number, timeoutMs = 10_000): Promise<Record<string, number>> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1");
    let data = "";
    const done = (err?: Error) => {
      clearTimeout(timer);
      socket.destroy();
      if (err) reject(err);
    };
    const timer = setTimeout(() => done(new Error("redis INFO timed out")), timeoutMs);
    socket.setEncoding("latin1");
    socket.on("error", done);
    socket.on("close", () => done(new Error("redis INFO: connection closed")));
    socket.on("connect", () => socket.write("INFO stats\r\n"));
    socket.on("data", (chunk: string) => {
      data += chunk;
      // A bulk string: $<length>\r\n<payload>\r\n (the payload is ASCII).
      const eol = data.indexOf("\r\n");
      if (eol < 0) return;
      if (data[0] !== "$") return done(new Error(`redis INFO: ${data.slice(0, eol)}`));
      const length = Number(data.slice(1, eol));
      if (data.length < eol + 2 + length) return;
      const out: Record<string, number> = {};
      for (const line of data.slice(eol + 2, eol + 2 + length).split("\r\n")) {
        const colon = line.indexOf(":");
        if (colon > 0) out[line.slice(0, colon)] = Number(line.slice(colon + 1));
      }
      done();
      resolve(out);
    });
  });
}
