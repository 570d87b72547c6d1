/**
 * One round of load on one contender, for the cluster benchmark: wrk (a C load
 * generator, so the client costs little of the 2 shared cores), or autocannon in-process
 * when wrk is missing. Both ask /api?key=user000001 .. user<keys> in a fixed order,
 * going on from `first`, over `connections` keep-alive connections.
 */
import { fileURLToPath } from "node:url";
import autocannon from "autocannon";
import { generatedKey } from "../src/keys.js";
import type { Procs } from "./cluster-procs.js";

export interface Round {
  /** Answers per second (over wrk's own measured duration). */
  rps: number;
  requests: number;
  p50ms: number;
  p99ms: number;
  /** Socket errors, timeouts and non-2xx answers. */
  failed: number;
}

export interface LoadOptions {
  url: string;
  keys: number;
  /** The first key's number (1-based). */
  first: number;
  seconds: number;
  connections: number;
}

export type Driver = (o: LoadOptions) => Promise<Round>;

const LUA = fileURLToPath(new URL("./keys.lua", import.meta.url));

/** wrk, on CPU `cpu` (a taskset list) when given. */
export function wrkDriver(procs: Procs, cpu?: string): Driver {
  return async ({ url, keys, first, seconds, connections }) => {
    const args = ["-t1", `-c${connections}`, `-d${seconds}s`, "--latency", "-s", LUA, url, "--"];
    args.push(String(keys), String(first));
    const child =
      cpu === undefined
        ? procs.spawn("wrk", "wrk", args)
        : procs.spawn("wrk", "taskset", ["-c", cpu, "wrk", ...args]);
    let out = "";
    child.stdout?.on("data", (b: Buffer) => {
      out += b.toString();
    });
    const code = await new Promise<number | null>((resolve) => child.once("close", resolve));
    const m =
      /RESULT requests=(\d+) duration_us=(\d+) p50_us=(\d+) p99_us=(\d+) errors=(\d+) non2xx=(\d+)/.exec(
        out,
      );
    if (m === null) throw new Error(`wrk exited (${code}) without a result:\n${out}`);
    const [requests, us, p50, p99, errors, non2xx] = m.slice(1).map(Number) as number[];
    return {
      rps: (requests! * 1e6) / us!,
      requests: requests!,
      p50ms: p50! / 1000,
      p99ms: p99! / 1000,
      failed: errors! + non2xx!,
    };
  };
}

/** In this process, so it competes with nothing else the benchmark runs (it waits). */
export const autocannonDriver: Driver = async ({ url, keys, first, seconds, connections }) => {
  let next = first;
  const r = await autocannon({
    url,
    connections,
    duration: seconds,
    requests: [
      {
        method: "GET",
        setupRequest: (req) => {
          const path = `/api?key=${generatedKey(next)}`;
          next = (next % keys) + 1;
          return { ...req, path };
        },
      },
    ],
  });
  return {
    rps: r.requests.total / seconds,
    requests: r.requests.total,
    p50ms: r.latency.p50,
    p99ms: r.latency.p99,
    failed: r.errors + r.timeouts + r.non2xx,
  };
};
