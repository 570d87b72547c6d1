/**
 * The benchmark method of docs/benchmarks.md, in one place: every round runs each
 * contender once, in an order that rotates as a balanced Latin square (see
 * {@link roundOrders}), after warm-up rounds; each contender brings its own
 * loop function (so V8's call-site feedback stays monomorphic); we report the median of
 * per-round ratios and their p10-p90 spread, never a single absolute number.
 */

export interface Contender {
  name: string;
  /** Runs one round and returns the number of operations it did. */
  run: () => number | Promise<number>;
}

export interface CompareOptions {
  rounds?: number;
  warmup?: number;
  /**
   * What a round's duration is measured in. `"wall"` (default) is elapsed time: right for
   * anything that waits on I/O or other processes. `"cpu"` is this process's user+system
   * CPU time (all its threads, so GC helper threads count against the contender that
   * makes the garbage): for synchronous in-process loops on a shared, noisy machine it
   * leaves out the time the OS gave to other processes, which wall time cannot.
   */
  clock?: "wall" | "cpu";
}

/** Nanoseconds elapsed on the chosen clock since `start()`. */
function clockOf(kind: "wall" | "cpu"): { start(): void; elapsedNs(): number } {
  if (kind === "cpu") {
    let t0 = process.cpuUsage();
    return {
      start() {
        t0 = process.cpuUsage();
      },
      elapsedNs() {
        const d = process.cpuUsage(t0);
        return (d.user + d.system) * 1000;
      },
    };
  }
  let t0 = process.hrtime.bigint();
  return {
    start() {
      t0 = process.hrtime.bigint();
    },
    elapsedNs() {
      return Number(process.hrtime.bigint() - t0);
    },
  };
}

export interface Comparison {
  title: string;
  names: string[];
  /** ops/s per round, by contender name. */
  opsPerSec: Map<string, number[]>;
}

/**
 * The contender order of each round: a Williams design (a carryover-balanced Latin
 * square). Every contender runs once per round, takes every position equally often, and
 * -- what plain rotation `(r + i) % n` gets wrong -- follows every other contender
 * equally often. Plain rotation keeps the cyclic order, so contender k always ran right
 * after contender k-1 and always paid the GC debt (concurrent marking, sweeping) of that
 * one neighbour's garbage: a systematic bias, not noise. The design repeats every n
 * rounds for even n, every 2n for odd n (the rows and their reverses).
 */
export function roundOrders(n: number): number[][] {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`roundOrders: n must be >= 1, got ${n}`);
  // First row 0, 1, n-1, 2, n-2, ...: its n-1 steps are all different mod n, so adding
  // r to every entry (row r) makes each ordered pair adjacent exactly once over n rows.
  const first = [0];
  for (let k = 1; first.length < n; k++) first.push(k % 2 === 1 ? (k + 1) / 2 : n - k / 2);
  const rows = first.map((_, r) => first.map((x) => (x + r) % n));
  return n % 2 === 0 || n === 1 ? rows : [...rows, ...rows.map((row) => row.slice().reverse())];
}

export async function compare(
  title: string,
  contenders: Contender[],
  { rounds = 15, warmup = 2, clock = "wall" }: CompareOptions = {},
): Promise<Comparison> {
  const timer = clockOf(clock);
  // No forced GC between rounds: tried, and a full GC before each ~100 ms round threw
  // away JIT state unevenly (lru-cache fell from 10 to 3.4 Mops/s, mnemonist did not),
  // which measured the GC, not the contenders. The balanced order spreads each one's
  // garbage over all the others instead.
  const opsPerSec = new Map<string, number[]>(contenders.map((c) => [c.name, []]));
  const orders = roundOrders(contenders.length);
  // Measured rounds: a whole number of design periods, so the balance holds exactly.
  const period = orders.length;
  const measured = Math.ceil(rounds / period) * period;
  const total = warmup + measured;
  for (let r = 0; r < total; r++) {
    // Warm-up rounds take the design's last rows, so measurement starts at row 0.
    const order = orders[(((r - warmup) % period) + period) % period] as number[];
    for (const i of order) {
      const c = contenders[i] as Contender;
      timer.start();
      const ops = await c.run();
      const ns = timer.elapsedNs();
      if (r >= warmup) opsPerSec.get(c.name)?.push((ops * 1e9) / ns);
    }
  }
  return { title, names: contenders.map((c) => c.name), opsPerSec };
}

export function quantile(values: readonly number[], q: number): number {
  const s = values.slice().sort((a, b) => a - b);
  if (s.length === 0) return Number.NaN;
  const pos = (s.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return (s[lo] as number) + ((s[hi] as number) - (s[lo] as number)) * (pos - lo);
}

export const median = (values: readonly number[]): number => quantile(values, 0.5);

export interface Ratio {
  median: number;
  p10: number;
  p90: number;
}

/** Per-round ratio a/b of ops/s (a faster than b gives > 1). */
export function ratio(cmp: Comparison, a: string, b: string): Ratio {
  const xs = cmp.opsPerSec.get(a);
  const ys = cmp.opsPerSec.get(b);
  if (!xs || !ys) throw new Error(`unknown contender ${xs ? b : a}`);
  const rs = xs.map((x, i) => x / (ys[i] as number));
  return { median: median(rs), p10: quantile(rs, 0.1), p90: quantile(rs, 0.9) };
}

const fmt = (n: number, d = 2): string => (Number.isFinite(n) ? n.toFixed(d) : String(n));

/** Prints a Markdown table: median Mops/s, p10-p90, and the ratio to `baseline`. */
export function printTable(cmp: Comparison, baseline?: string, unit = "Mops/s"): void {
  const scale = unit === "Mops/s" ? 1e-6 : unit === "Kops/s" ? 1e-3 : 1;
  console.log(`\n### ${cmp.title}\n`);
  const head = baseline ? ` vs ${baseline} (median, p10-p90) |` : "";
  console.log(`| impl | ${unit} (median) | p10-p90 |${head}`);
  console.log(`|---|---|---|${baseline ? "---|" : ""}`);
  for (const name of cmp.names) {
    const xs = cmp.opsPerSec.get(name) ?? [];
    let tail = "";
    if (baseline) {
      const r = ratio(cmp, name, baseline);
      tail = ` ${fmt(r.median)}x (${fmt(r.p10)}-${fmt(r.p90)}) |`;
    }
    console.log(
      `| ${name} | ${fmt(median(xs) * scale)} | ${fmt(quantile(xs, 0.1) * scale)}-${fmt(quantile(xs, 0.9) * scale)} |${tail}`,
    );
  }
}

/** Prints `goal <name>: <ratio> (target >= <x>)` and returns whether it holds. */
export function goal(name: string, value: number, target: number, detail = ""): boolean {
  const ok = value >= target;
  console.log(
    `goal ${name}: ${fmt(value)} (target >= ${target})${detail ? ` ${detail}` : ""} ${ok ? "ok" : "MISSED"}`,
  );
  return ok;
}

/** Heap growth in bytes across `fn`, after forcing GC when --expose-gc is on. */
export function heapGrowth(fn: () => void): number {
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  const before = process.memoryUsage().heapUsed;
  fn();
  const after = process.memoryUsage().heapUsed;
  return after - before;
}

/** One contender's loop per way of coding a protobuf message (each its own function). */
export interface CodecLoops {
  /** Our hand-written codec, when there is one. */
  hand?: () => number;
  /** The same with @bufbuild/protobuf's low-level `wire` BinaryWriter / BinaryReader. */
  wire: () => number;
  /** The same with @bufbuild/protobuf's reflective toBinary / fromBinary. */
  reflective: () => number;
}

/**
 * Races the ways of encoding or decoding one message (CPU clock), prints the table against
 * the `wire` API, and the line that decides whether a hand-written codec may stay: a goal
 * `hand-written vs @bufbuild/protobuf/wire >= 1`, or, without one, how the reflective
 * codec in use compares (info).
 */
export async function raceProtobufCodecs(
  title: string,
  direction: "encode" | "decode",
  loops: CodecLoops,
): Promise<Comparison> {
  const wire = `protobuf/wire ${direction === "encode" ? "BinaryWriter" : "BinaryReader"}`;
  const reflective = direction === "encode" ? "toBinary" : "fromBinary";
  const contenders: Contender[] = [
    { name: wire, run: loops.wire },
    { name: reflective, run: loops.reflective },
  ];
  if (loops.hand) contenders.unshift({ name: "hand-written", run: loops.hand });
  const cmp = await compare(`${title} ${direction}`, contenders, { clock: "cpu" });
  printTable(cmp, wire);
  if (loops.hand) {
    const r = ratio(cmp, "hand-written", wire);
    goal(
      `hand-written ${title} ${direction} vs @bufbuild/protobuf/wire (kept only while faster)`,
      r.median,
      1.0,
      `(p10-p90 ${fmt(r.p10)}-${fmt(r.p90)})`,
    );
  } else {
    const r = ratio(cmp, reflective, wire);
    console.log(
      `info ${reflective} ${title} vs @bufbuild/protobuf/wire: ${fmt(r.median)} (p10-p90 ${fmt(r.p10)}-${fmt(r.p90)})`,
    );
  }
  return cmp;
}
