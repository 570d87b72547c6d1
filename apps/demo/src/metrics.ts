import type { PeerBatchStats } from "@tinycache/core/transport";
import { createTinycacheMetrics, type TinycacheMetrics } from "@tinycache/prometheus";
import { Counter, collectDefaultMetrics, Registry } from "prom-client";

/** Plain counters the demo keeps itself (cheaper than prom-client labels per request). */
export interface DemoCounters {
  /** Database reads ([SlowDB] lines) by this process. */
  dbReads(): number;
  /** API responses by status code (empty when this node serves no API). */
  apiResponses: Map<number, number>;
  /**
   * Each remote peer's batch counters now (the pool's `stats().peerBatches`; empty before
   * the transport is up). Read at each scrape: a peer that left is gone from the next one.
   */
  peerBatches(): readonly PeerBatchStats[];
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
 * counters, cache gauges, peer-call and load histograms), the demo's own counters
 * (`tinycache_demo_*`, among them the pool's batch counters per peer, which
 * `@tinycache/prometheus` does not see: it watches groups, not pools), and Node's default
 * process metrics.
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
  // Per remote peer, read from the pool at each scrape: rate(keys) / rate(batches) is the
  // mean number of keys per batch call.
  const peerBatchCounter = (name: string, help: string, field: "batches" | "batchedKeys") =>
    new Counter({
      name,
      help,
      labelNames: ["peer"],
      registers: [registry],
      collect() {
        this.reset();
        for (const p of counters.peerBatches()) this.inc({ peer: p.url }, p[field]);
      },
    });
  peerBatchCounter(
    "tinycache_demo_peer_batches_total",
    "Batch calls sent to each peer (a lone key goes as a plain get and is not counted)",
    "batches",
  );
  peerBatchCounter(
    "tinycache_demo_peer_batched_keys_total",
    "Keys sent to each peer in batch calls",
    "batchedKeys",
  );
  return { registry, tinycache };
}
