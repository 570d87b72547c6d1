import { Counter, collectDefaultMetrics, Gauge, Registry } from "prom-client";

/** What the exporters read from a group: core's `Group` satisfies it. */
export interface StatsSource {
  readonly name: string;
  readonly stats: object;
  cacheStats(which: "main" | "hot"): {
    bytes: number;
    items: number;
    gets: number;
    hits: number;
    evictions: number;
  };
}

/** Plain counters the demo keeps itself (cheaper than prom-client labels per request). */
export interface DemoCounters {
  /** Database reads ([SlowDB] lines) by this process. */
  dbReads(): number;
  /** API responses by status code (empty when this node serves no API). */
  apiResponses: Map<number, number>;
}

const HELP: Record<string, string> = {
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
  loadsQueued: "Getter calls that waited for a slot (--max-loads were running)",
  loadsRejected: "Loads refused because the getter limit and its queue were full",
};

function snake(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

/**
 * A Prometheus registry of this process only (never prom-client's global one, so two nodes
 * in one test process would not mix): the group's counters, each cache's gauges and
 * counters, the demo's own counters, and Node's default process metrics.
 */
export function createMetrics(group: StatsSource, counters: DemoCounters): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });

  // Group counters are monotonic: exported as counters, read at scrape time.
  const groupStats = group.stats as Record<string, unknown>;
  for (const [key, value] of Object.entries(groupStats)) {
    if (typeof value !== "number") continue;
    new Counter({
      name: `tinycache_group_${snake(key)}_total`,
      help: HELP[key] ?? `Group counter ${key}`,
      labelNames: ["group"],
      registers: [registry],
      collect() {
        const now = (group.stats as Record<string, number>)[key] ?? 0;
        this.reset();
        this.inc({ group: group.name }, now);
      },
    });
  }

  const caches = ["main", "hot"] as const;
  const cacheGauge = (field: "bytes" | "items", help: string) =>
    new Gauge({
      name: `tinycache_cache_${field}`,
      help,
      labelNames: ["group", "cache"],
      registers: [registry],
      collect() {
        for (const cache of caches) {
          this.set({ group: group.name, cache }, group.cacheStats(cache)[field]);
        }
      },
    });
  cacheGauge("bytes", "Bytes held (key + value bytes of every entry)");
  cacheGauge("items", "Entries held");
  const cacheCounter = (field: "gets" | "hits" | "evictions", help: string) =>
    new Counter({
      name: `tinycache_cache_${field}_total`,
      help,
      labelNames: ["group", "cache"],
      registers: [registry],
      collect() {
        this.reset();
        for (const cache of caches) {
          this.inc({ group: group.name, cache }, group.cacheStats(cache)[field]);
        }
      },
    });
  cacheCounter("gets", "Lookups in the cache");
  cacheCounter("hits", "Lookups that found a live entry");
  cacheCounter("evictions", "Entries evicted to keep the byte budget");

  new Counter({
    name: "tinycache_demo_db_reads_total",
    help: "Reads of the source-of-truth database by this process",
    registers: [registry],
    collect() {
      this.reset();
      this.inc(counters.dbReads());
    },
  });
  new Counter({
    name: "tinycache_demo_api_responses_total",
    help: "User API responses by HTTP status",
    labelNames: ["status"],
    registers: [registry],
    collect() {
      this.reset();
      for (const [status, n] of counters.apiResponses) this.inc({ status: String(status) }, n);
    },
  });
  return registry;
}
