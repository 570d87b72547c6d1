import { createTinycacheMetrics, type TinycacheMetrics } from "@tinycache/prometheus";
import { Counter, collectDefaultMetrics, Registry } from "prom-client";

/** Plain counters the demo keeps itself (cheaper than prom-client labels per request). */
export interface DemoCounters {
  /** Database reads ([SlowDB] lines) by this process. */
  dbReads(): number;
  /** API responses by status code (empty when this node serves no API). */
  apiResponses: Map<number, number>;
}

/** A node's metrics: the registry /metrics serves, and tinycache's metrics in it. */
export interface NodeMetrics {
  registry: Registry;
  /** `observer` for the group; `watch` it; `retainPeers` on membership changes. */
  tinycache: TinycacheMetrics;
}

/**
 * A Prometheus registry of this process only (never prom-client's global one, so two nodes
 * in one test process would not mix): tinycache's metrics (`@tinycache/prometheus`: group
 * counters, cache gauges, peer-call and load histograms), the demo's own counters, and
 * Node's default process metrics.
 */
export function createMetrics(counters: DemoCounters): NodeMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const tinycache = createTinycacheMetrics({ registry });

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
  return { registry, tinycache };
}
