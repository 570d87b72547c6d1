import type {
  CacheStats,
  CacheType,
  GroupObserver,
  GroupStats,
  LoadEvent,
  LoadLimitStats,
  PeerCallEvent,
} from "@tinycache/core";
import { Counter, Gauge, type Registry } from "prom-client";
import { TallyHistogram } from "./private/tally-histogram.js";

/**
 * Histogram buckets in seconds, for both histograms: from half a millisecond (a peer's
 * cached answer on a LAN) to ten seconds (a slow source of truth, core's default
 * `peerTimeoutMs`). prom-client's own default starts at 5 ms, where a cache's peer calls
 * would all fall in the first bucket.
 */
export const DEFAULT_BUCKETS: readonly number[] = Object.freeze([
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
]);

/** What {@link TinycacheMetrics.watch} reads from a group: core's `Group` is one. */
export interface WatchedGroup {
  readonly name: string;
  /** Monotonic counters, read at each scrape. */
  readonly stats: Readonly<GroupStats>;
  cacheStats(which: CacheType): CacheStats;
  /** The getter limit now; exported as gauges when present. */
  readonly loadLimit?: LoadLimitStats;
}

/** A set of groups read at each scrape: core's `GroupRegistry` is one. */
export interface WatchedRegistry {
  names(): readonly string[];
  get(name: string): WatchedGroup | undefined;
}

/** Options of {@link createTinycacheMetrics}. */
export interface TinycacheMetricsOptions {
  /**
   * The prom-client registry to register every metric in. Required: prom-client's global
   * `register` is used only if you pass it, so two nodes in one process (or a library
   * and its host) never mix their series.
   */
  registry: Registry;
  /** Prepended to every metric name. Default `"tinycache_"`; `""` for none. */
  prefix?: string;
  /** Upper bounds in seconds of both histograms' buckets. Default {@link DEFAULT_BUCKETS}. */
  buckets?: readonly number[];
}

/** The metrics of one prom-client registry; see {@link createTinycacheMetrics}. */
export interface TinycacheMetrics {
  /**
   * Feeds the two histograms. Give it to groups: `GroupRegistryOptions.observer` (every
   * group of a registry) or `GroupOptions.observer` (one group).
   */
  readonly observer: GroupObserver;
  /**
   * Exports the counters and cache gauges of a group, or of every group of a registry
   * (groups created later included), read at each scrape. Watching the same object again
   * changes nothing. Returns a function that stops watching it (its series go at the
   * next scrape; the histograms keep theirs). Groups of the same name (two registries watched by one metrics object) add
   * up; give each node its own prom-client registry instead.
   */
  watch(source: WatchedGroup | WatchedRegistry): () => void;
  /**
   * Drops every series of `peer` (its id, as in the `peer` label) from the peer-call
   * histogram, e.g. when the peer left the cluster: peer ids come and go with membership,
   * and each id would otherwise keep its series until the process ends. A peer seen
   * again starts from zero (a counter reset, which Prometheus' `rate` handles).
   */
  forgetPeer(peer: string): void;
  /**
   * Forgets (as {@link forgetPeer}) every peer not in `peers`: call it with the current
   * peer list whenever membership changes (ids not seen yet are ignored).
   */
  retainPeers(peers: Iterable<string>): void;
}

/** Help of each group counter, complete by type: a counter new in core fails to compile here. */
const GROUP_HELP: Readonly<Record<keyof GroupStats, string>> = {
  gets: "Get calls with a valid key",
  cacheHits: "Gets answered from the main or hot cache",
  peerLoads: "Successful fetches from the owning peer",
  peerErrors: "Failed peer fetches that fell back to a local load",
  loads: "Gets that missed the caches (before de-duplication)",
  loadsDeduped: "Loads that ran after singleflight de-duplication",
  localLoads: "Getter calls that answered (a value or not-found)",
  localLoadErrs: "Getter calls that failed",
  serverRequests: "Requests from peers answered by this node",
  negativeHits: "Gets answered not-found from the negative cache",
  notFounds: "Loads whose answer was not-found",
  hotPromotions: "Peer fetches promoted into the hot cache",
  loadsQueued: "Getter calls that waited for a slot (maxConcurrentLoads were running)",
  loadsRejected: "Loads refused because the getter limit and its queue were full",
};

const CACHES: readonly CacheType[] = ["main", "hot"];
const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;

function snake(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

function isRegistry(source: WatchedGroup | WatchedRegistry): source is WatchedRegistry {
  return typeof (source as WatchedRegistry).names === "function";
}

function checkBuckets(buckets: unknown): number[] {
  if (
    !Array.isArray(buckets) ||
    buckets.length === 0 ||
    !buckets.every(
      (b, i) =>
        typeof b === "number" && Number.isFinite(b) && b > 0 && (i === 0 || b > buckets[i - 1]),
    )
  ) {
    throw new RangeError(
      `buckets must be a non-empty array of increasing finite numbers > 0 (seconds), got ${String(buckets)}`,
    );
  }
  return [...buckets];
}

/**
 * Registers tinycache's metrics in `opts.registry` (names with the default prefix):
 *
 * - `tinycache_peer_call_duration_seconds{group, peer, outcome}` and
 *   `tinycache_load_duration_seconds{group, outcome}`: histograms fed by
 *   {@link TinycacheMetrics.observer};
 * - `tinycache_group_<counter>_total{group}` (every `group.stats` counter),
 *   `tinycache_group_loads_active` / `_waiting{group}`, `tinycache_cache_bytes` /
 *   `_items{group, cache}`, `tinycache_cache_gets_total` / `_hits_total` /
 *   `_evictions_total{group, cache}`: read at each scrape from what
 *   {@link TinycacheMetrics.watch} was given.
 *
 * Node's process metrics are not included: call prom-client's `collectDefaultMetrics`
 * with the same registry if you want them.
 * @throws TypeError for a missing registry or a bad prefix; RangeError for bad buckets;
 *   Error when a metric of one of these names is already in the registry (another
 *   metrics object with the same prefix).
 */
export function createTinycacheMetrics(opts: TinycacheMetricsOptions): TinycacheMetrics {
  const registry = opts?.registry;
  if (
    registry === null ||
    typeof registry !== "object" ||
    typeof registry.registerMetric !== "function" ||
    typeof registry.getSingleMetric !== "function"
  ) {
    throw new TypeError(
      "registry must be a prom-client Registry (pass prom-client's `register` to use the global one)",
    );
  }
  const prefix = opts.prefix ?? "tinycache_";
  if (typeof prefix !== "string" || (prefix !== "" && !METRIC_NAME.test(prefix))) {
    throw new TypeError(`prefix must match ${METRIC_NAME} or be "", got ${String(prefix)}`);
  }
  const buckets = checkBuckets(opts.buckets ?? DEFAULT_BUCKETS);

  const names = {
    peerCall: `${prefix}peer_call_duration_seconds`,
    load: `${prefix}load_duration_seconds`,
    group: (key: string) => `${prefix}group_${snake(key)}_total`,
    loadsActive: `${prefix}group_loads_active`,
    loadsWaiting: `${prefix}group_loads_waiting`,
    cache: (field: string) => `${prefix}cache_${field}`,
  };
  const all = [
    names.peerCall,
    names.load,
    ...Object.keys(GROUP_HELP).map(names.group),
    names.loadsActive,
    names.loadsWaiting,
    ...["bytes", "items", "gets_total", "hits_total", "evictions_total"].map(names.cache),
  ];
  // Checked before registering anything, so a clash leaves the registry as it was.
  const taken = all.filter((n) => registry.getSingleMetric(n) !== undefined);
  if (taken.length > 0) {
    throw new Error(
      `metrics already registered in this registry: ${taken.join(", ")} (use one metrics object per registry, or another prefix)`,
    );
  }
  const registers = [registry];

  // ---- histograms, fed by the observer (once per peer call and load: see TallyHistogram) ----
  const peerCalls = new TallyHistogram({
    name: names.peerCall,
    help: "Gets sent to a key's owner, by peer and outcome (ok, timeout, unavailable, not_found, getter_failed, invalid_argument, aborted)",
    labelNames: ["group", "peer", "outcome"] as const,
    buckets,
    registers,
  });
  const loads = new TallyHistogram({
    name: names.load,
    help: "Getter calls on this node, by outcome (ok, not_found, error)",
    labelNames: ["group", "outcome"] as const,
    buckets,
    registers,
  });
  const observer: GroupObserver = Object.freeze({
    peerCall(e: PeerCallEvent): void {
      peerCalls.tally(e.seconds, e.group, e.peer, e.outcome);
    },
    load(e: LoadEvent): void {
      loads.tally(e.seconds, e.group, e.outcome);
    },
  });
  // The histogram knows its series: forgetting a peer asks it, so nothing is kept beside
  // it (and a peer call pays for no bookkeeping of its own).
  const forgetPeer = (peer: string): void => peerCalls.removeWhere("peer", peer);

  // ---- counters and gauges, read from the watched groups at each scrape ----
  const sources = new Set<WatchedGroup | WatchedRegistry>();
  /** The watched groups now, each once (a group may be watched itself and via its registry). */
  const groups = (): Set<WatchedGroup> => {
    const out = new Set<WatchedGroup>();
    for (const s of sources) {
      if (!isRegistry(s)) {
        out.add(s);
        continue;
      }
      for (const name of s.names()) {
        const g = s.get(name);
        if (g !== undefined) out.add(g);
      }
    }
    return out;
  };

  for (const key of Object.keys(GROUP_HELP) as (keyof GroupStats)[]) {
    // Monotonic in the group: exported as counters, set to the group's value at scrape.
    new Counter({
      name: names.group(key),
      help: GROUP_HELP[key],
      labelNames: ["group"] as const,
      registers,
      collect() {
        this.reset();
        for (const g of groups()) this.inc({ group: g.name }, g.stats[key] ?? 0);
      },
    });
  }
  const limitGauge = (name: string, help: string, field: "active" | "waiting") =>
    new Gauge({
      name,
      help,
      labelNames: ["group"] as const,
      registers,
      collect() {
        this.reset();
        for (const g of groups()) {
          const limit = g.loadLimit;
          if (limit !== undefined) this.inc({ group: g.name }, limit[field]);
        }
      },
    });
  limitGauge(names.loadsActive, "Getter calls running now", "active");
  limitGauge(names.loadsWaiting, "Getter calls waiting for a slot now", "waiting");

  const cacheGauge = (field: "bytes" | "items", help: string) =>
    new Gauge({
      name: names.cache(field),
      help,
      labelNames: ["group", "cache"] as const,
      registers,
      collect() {
        this.reset();
        for (const g of groups()) {
          for (const cache of CACHES)
            this.inc({ group: g.name, cache }, g.cacheStats(cache)[field]);
        }
      },
    });
  cacheGauge("bytes", "Bytes held (key + value bytes of every entry)");
  cacheGauge("items", "Entries held");
  const cacheCounter = (field: "gets" | "hits" | "evictions", help: string) =>
    new Counter({
      name: names.cache(`${field}_total`),
      help,
      labelNames: ["group", "cache"] as const,
      registers,
      collect() {
        this.reset();
        for (const g of groups()) {
          for (const cache of CACHES)
            this.inc({ group: g.name, cache }, g.cacheStats(cache)[field]);
        }
      },
    });
  cacheCounter("gets", "Lookups in the cache");
  cacheCounter("hits", "Lookups that found a live entry");
  cacheCounter("evictions", "Entries evicted to keep the byte budget");

  return Object.freeze({
    observer,
    watch(source: WatchedGroup | WatchedRegistry): () => void {
      const ok =
        source !== null &&
        typeof source === "object" &&
        (isRegistry(source)
          ? typeof source.get === "function"
          : typeof source.name === "string" && typeof source.cacheStats === "function");
      if (!ok) throw new TypeError("watch expects a tinycache Group or GroupRegistry");
      sources.add(source);
      return () => {
        sources.delete(source);
      };
    },
    forgetPeer(peer: string): void {
      forgetPeer(peer);
    },
    retainPeers(peers: Iterable<string>): void {
      const keep = new Set(peers);
      for (const peer of peerCalls.valuesOf("peer")) if (!keep.has(peer)) forgetPeer(peer);
    },
  });
}
