import type { LogLevel, TransportName } from "./cli.js";

/** A node's settings, from its command line. */
export interface NodeConfig {
  port: number;
  api: boolean;
  apiPort: number;
  transport: TransportName;
  peers: string[];
  self: string;
  host: string;
  dataDir: string;
  dbLatencyMs: number;
  cacheBytes: number;
  hotCache: boolean;
  /** ms; Infinity = never expire, 0 = expire at once (cache nothing). */
  ttlMs: number;
  negativeTtlMs: number;
  /** API requests still waiting after this long (ms) get a 504; undefined = twice the peer timeout. */
  apiTimeoutMs: number | undefined;
  logLevel: LogLevel;
}
