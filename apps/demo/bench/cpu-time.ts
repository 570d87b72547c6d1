/**
 * CPU time of the benchmark's processes, read from Linux's /proc/<pid>/stat (user +
 * system), so the cluster benchmark can say where each contender spends its CPU per
 * request: in the API process, or in the processes it asks (the other cache nodes,
 * redis-server). On the pinned setup every contender's processes share one CPU, so a
 * contender's req/s is that CPU divided by its CPU per request; this line shows which
 * process the difference comes from, without a profiler.
 */

import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";

/** Kernel clock ticks per second (`getconf CLK_TCK`; 100 on every common Linux). */
const TICKS_PER_SECOND = (() => {
  const r = spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" });
  const n = Number(r.stdout?.trim());
  return Number.isInteger(n) && n > 0 ? n : 100;
})();

/**
 * CPU seconds (user + system, every thread) the process has used so far; undefined
 * where /proc is missing (not Linux) or the process is gone.
 */
function cpuSeconds(pid: number): number | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return undefined;
  }
  // Fields after the command name, which is in parentheses and may hold spaces:
  // state is field 3, utime 14 and stime 15 (proc(5)).
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) return undefined;
  return (utime + stime) / TICKS_PER_SECOND;
}

/** The processes of one contender: the one wrk talks to, and the ones it asks. */
export interface ContenderPids {
  api: number[];
  rest: number[];
}

/** CPU seconds of a contender's API process(es) and of the others. */
export interface CpuSample {
  api: number;
  rest: number;
}

/** A sample of `pids`' CPU time; undefined when any cannot be read. */
export function sampleCpu(pids: ContenderPids): CpuSample | undefined {
  const sum = (list: number[]) => {
    let s = 0;
    for (const pid of list) {
      const c = cpuSeconds(pid);
      if (c === undefined) return undefined;
      s += c;
    }
    return s;
  };
  const api = sum(pids.api);
  const rest = sum(pids.rest);
  return api === undefined || rest === undefined ? undefined : { api, rest };
}
