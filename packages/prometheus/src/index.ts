/**
 * `@tinycache/prometheus`: Prometheus metrics for tinycache groups, on prom-client (a peer
 * dependency): the groups' counters and cache gauges, and latency histograms of peer calls
 * and getter calls fed by core's `GroupObserver`.
 */
export {
  createTinycacheMetrics,
  DEFAULT_BUCKETS,
  type TinycacheMetrics,
  type TinycacheMetricsOptions,
  type WatchedGroup,
  type WatchedRegistry,
} from "./metrics.js";
