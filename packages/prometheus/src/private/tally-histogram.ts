import { Histogram, type HistogramConfiguration, type LabelValues } from "prom-client";

/**
 * A prom-client Histogram whose observations cost a few Map lookups and increments.
 *
 * Why: prom-client's own `observe` validates the labels, builds a string of them (its
 * hash) and indexes an object by it, then finds the bucket by converting the bound to a
 * property name: ~0.5 µs and some garbage per call in a tight loop, more in a busy
 * process. Core calls the observer once per key fetched from a peer, so on the demo's
 * peer path (hot cache off) that was ~8% of the cluster's throughput, measured A/B.
 *
 * Here each label set's series sits at the end of a chain of Maps, one per label, keyed
 * by the label's value (strings: their hash is computed once per string); a series keeps
 * per-bucket counts in a Float64Array. Scrapes read the same values prom-client's
 * Histogram would give, in the same order and shape, so the exposition text and JSON are
 * the same (pinned by the tests against prom-client's own Histogram).
 *
 * Limits, as it is internal: at most three label names, no exemplars.
 */

/** A label the observation did not give (prom-client allows a subset of the label names). */
const MISSING = Symbol("missing label");
type Key = string | typeof MISSING;
type Labels = LabelValues<string>;

/** One label set's observations. */
interface Series {
  /** The labels as first observed (prom-client keeps the caller's object and order). */
  labels: Labels;
  /** Per bucket, not cumulative; the last counts what is above every bound. */
  counts: Float64Array;
  sum: number;
  count: number;
}

type Level = Map<Key, Level | Series>;

/** One value of a scrape, as prom-client's Histogram gives it. */
interface ValuePair {
  labels: Labels;
  sharedLabels?: Labels;
  value: number;
  metricName: string;
  exemplar?: null;
}

const MAX_LABELS = 3;

function keyOf(v: unknown): Key {
  return v === undefined ? MISSING : String(v);
}

export class TallyHistogram<T extends string> extends Histogram<T> {
  // Declared without initializers: prom-client's constructor calls reset() before a
  // subclass's fields exist. Set (once) in our constructor, after super().
  declare readonly name: string;
  declare readonly labelNames: readonly string[];
  declare readonly collect?: () => unknown;
  #bounds!: Float64Array;
  #root!: Level;
  /** Every series, in the order first observed (the order of a scrape). */
  #all!: Set<Series>;

  constructor(config: HistogramConfiguration<T>) {
    if ((config.labelNames?.length ?? 0) > MAX_LABELS) {
      throw new RangeError(`TallyHistogram takes at most ${MAX_LABELS} label names`);
    }
    if (config.enableExemplars) throw new TypeError("TallyHistogram has no exemplars");
    super(config);
    // prom-client validated the config (name, help, labels) and registered the metric.
    this.#bounds = Float64Array.from((this as unknown as { upperBounds: number[] }).upperBounds);
    this.#root = new Map();
    this.#all = new Set();
    // As prom-client's: a histogram without labels starts with its one (empty) series.
    if (this.labelNames.length === 0) this.#seriesOf({});
    // prom-client's constructor sets `observe` on the instance: ours replaces it.
    this.observe = this.#observe as Histogram<T>["observe"];
  }

  /**
   * The hot path: one observation of the series whose label values, in `labelNames`
   * order, are `a`, `b`, `c` (as many as there are label names).
   * @throws TypeError for a value that is not a finite number
   */
  tally(value: number, a?: string, b?: string, c?: string): void {
    if (!Number.isFinite(value)) throw notFinite(value);
    const s = this.#series(keyOf(a), keyOf(b), keyOf(c), a, b, c, undefined);
    this.#add(s, value);
  }

  #add(s: Series, value: number): void {
    const bounds = this.#bounds;
    let i = 0;
    while (i < bounds.length && value > (bounds[i] as number)) i++;
    s.counts[i] = (s.counts[i] as number) + 1;
    s.sum += value;
    s.count++;
  }

  /**
   * The series of these keys, made on first use with `given` as its labels (else the
   * values under their names).
   */
  #series(
    k0: Key,
    k1: Key,
    k2: Key,
    v0: unknown,
    v1: unknown,
    v2: unknown,
    given: Labels | undefined,
  ): Series {
    const n = this.labelNames.length;
    let level = this.#root;
    for (let i = 0; ; i++) {
      const k = n === 0 ? MISSING : i === 0 ? k0 : i === 1 ? k1 : k2;
      const next = level.get(k);
      if (i >= n - 1) {
        if (next !== undefined) return next as Series;
        let labels = given;
        if (labels === undefined) {
          labels = {};
          const values = [v0, v1, v2];
          for (let j = 0; j < n; j++) {
            const v = values[j];
            if (v !== undefined) labels[this.labelNames[j] as string] = v as string;
          }
        }
        const s: Series = {
          labels,
          counts: new Float64Array(this.#bounds.length + 1),
          sum: 0,
          count: 0,
        };
        level.set(k, s);
        this.#all.add(s);
        return s;
      }
      if (next === undefined) {
        const made: Level = new Map();
        level.set(k, made);
        level = made;
      } else level = next as Level;
    }
  }

  /** Throws prom-client's error for a label name the histogram was not made with. */
  #check(labels: Labels): void {
    const names = this.labelNames;
    for (const name in labels) {
      if (!names.includes(name)) {
        throw new Error(
          `Added label "${name}" is not included in initial labelset: [ ${names.map((n) => `'${n}'`).join(", ")} ]`,
        );
      }
    }
  }

  /** The series of a checked labels object, made if new. */
  #seriesOf(labels: Labels): Series {
    const names = this.labelNames;
    const v0 = labels[names[0] as string];
    const v1 = labels[names[1] as string];
    const v2 = labels[names[2] as string];
    return this.#series(keyOf(v0), keyOf(v1), keyOf(v2), v0, v1, v2, labels);
  }

  readonly #observe = (labelsOrValue: Labels | number, maybeValue?: number): void => {
    const labelled = typeof labelsOrValue === "object" && labelsOrValue !== null;
    const value = labelled ? maybeValue : labelsOrValue;
    const labels = labelled ? labelsOrValue : {};
    this.#check(labels);
    if (typeof value !== "number" || !Number.isFinite(value)) throw notFinite(value);
    this.#add(this.#seriesOf(labels), value);
  };

  override zero(labels: LabelValues<T>): void {
    this.#check(labels);
    const s = this.#seriesOf(labels);
    s.counts.fill(0);
    s.sum = 0;
    s.count = 0;
  }

  override reset(): void {
    // Also called by prom-client's constructor, before ours has made the maps.
    if (!(#all in this)) return;
    this.#root = new Map();
    this.#all = new Set();
  }

  override remove(...args: unknown[]): void {
    const labels = this.#labelArgs(args);
    this.#check(labels);
    const names = this.labelNames;
    const n = names.length;
    const depth = Math.max(n, 1); // a histogram without labels keeps its series one level down
    const path: Level[] = [];
    let level = this.#root;
    for (let i = 0; i < depth; i++) {
      path.push(level);
      const k = n === 0 ? MISSING : keyOf(labels[names[i] as string]);
      const next = level.get(k);
      if (next === undefined) return;
      if (i === depth - 1) {
        this.#all.delete(next as Series);
        level.delete(k);
        break;
      }
      level = next as Level;
    }
    // Drop the levels left empty, deepest first.
    for (let i = path.length - 1; i > 0; i--) {
      if ((path[i] as Level).size > 0) break;
      const k = keyOf(labels[names[i - 1] as string]);
      (path[i - 1] as Level).delete(k);
    }
  }

  /** The values (as strings) the label `name` has in the series held now. */
  valuesOf(name: string): Set<string> {
    const out = new Set<string>();
    for (const s of this.#all) {
      const v = s.labels[name];
      if (v !== undefined) out.add(String(v));
    }
    return out;
  }

  /** Drops every series whose label `name` has `value` (as a string). */
  removeWhere(name: string, value: string): void {
    for (const s of [...this.#all]) {
      const v = s.labels[name];
      if (v !== undefined && String(v) === value) this.remove(s.labels);
    }
  }

  override labels(...args: unknown[]): Histogram.Internal<T> {
    const labels = this.#labelArgs(args);
    this.#check(labels);
    return {
      observe: (value: number) => this.#observe(labels, value),
      startTimer: () => this.startTimer(labels as LabelValues<T>),
    } as unknown as Histogram.Internal<T>;
  }

  override startTimer(labels?: LabelValues<T>): (labels?: LabelValues<T>) => number {
    const start = process.hrtime.bigint();
    return (end?: LabelValues<T>) => {
      const seconds = Number(process.hrtime.bigint() - start) / 1e9;
      this.#observe({ ...labels, ...end } as Labels, seconds);
      return seconds;
    };
  }

  /** What prom-client's registry reads for the text exposition: its Histogram's shape. */
  async getForPromString(): Promise<{
    name: string;
    help: string;
    type: "histogram";
    values: ValuePair[];
    aggregator: string;
  }> {
    if (this.collect !== undefined) await this.collect();
    const self = this as unknown as { help: string; aggregator: string };
    const bucket = `${this.name}_bucket`;
    const values: ValuePair[] = [];
    for (const s of this.#all) {
      let acc = 0;
      for (let i = 0; i < this.#bounds.length; i++) {
        acc += s.counts[i] as number;
        values.push({
          labels: { le: this.#bounds[i] as number },
          sharedLabels: s.labels,
          value: acc,
          metricName: bucket,
          exemplar: null,
        });
      }
      values.push(
        {
          labels: { le: "+Inf" },
          sharedLabels: s.labels,
          value: s.count,
          metricName: bucket,
          exemplar: null,
        },
        { labels: {}, sharedLabels: s.labels, value: s.sum, metricName: `${this.name}_sum` },
        { labels: {}, sharedLabels: s.labels, value: s.count, metricName: `${this.name}_count` },
      );
    }
    return {
      name: this.name,
      help: self.help,
      type: "histogram",
      values,
      aggregator: self.aggregator,
    };
  }

  override async get(): Promise<Awaited<ReturnType<Histogram<T>["get"]>>> {
    const data = await this.getForPromString();
    const values = data.values.map(({ sharedLabels, labels, ...rest }) => ({
      ...rest,
      labels: { ...labels, ...sharedLabels },
    }));
    return { ...data, values } as unknown as Awaited<ReturnType<Histogram<T>["get"]>>;
  }

  /** `labels(...)`'s and `remove(...)`'s arguments: one labels object, or values in order. */
  #labelArgs(args: unknown[]): Labels {
    if (typeof args[0] === "object" && args[0] !== null) return args[0] as Labels;
    if (args.length !== this.labelNames.length) {
      throw new Error(
        `Invalid number of arguments (${args.length}): "${args.join(", ")}" for label names (${this.labelNames.length}): "${this.labelNames.join(", ")}".`,
      );
    }
    const labels: Labels = {};
    this.labelNames.forEach((name, i) => {
      labels[name] = args[i] as string;
    });
    return labels;
  }
}

function notFinite(value: unknown): TypeError {
  return new TypeError(`Value is not a valid number: ${String(value)}`);
}
