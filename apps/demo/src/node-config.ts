import type { LogLevel, PeerSpec, TransportName } from "./cli.js";

/** A node's settings, from its command line. */
export interface NodeConfig {
  port: number;
  api: boolean;
  apiPort: number;
  transport: TransportName;
  /** The peer list to start with: the --peers list, or just self when a source follows the cluster. */
  peers: string[];
  /** Where the peer list comes from (--peers). */
  peerSource: PeerSpec;
  /** DNS server of a dns: source, `HOST:PORT` (--dns-server); undefined = the system's. */
  dnsServer: string | undefined;
  /** Shortest time between two DNS lookups, in ms (--dns-poll-ms). */
  dnsPollMs: number;
  self: string;
  host: string;
  dataDir: string;
  dbLatencyMs: number;
  cacheBytes: number;
  /** Most bytes of peers' answers buffered at once (--peer-inflight-bytes). */
  peerInflightBytes: number;
  /** Batch concurrent gets to one peer into one call (--peer-batch). */
  peerBatch: boolean;
  /** Serve plain GET /api requests through the lean lane (--api-lane; lean-http.ts). */
  apiLane: boolean;
  /** Serve batch requests on the peer port through the HTTP pool's lane (--peer-lane). */
  peerLane: boolean;
  hotCache: boolean;
  /** ms; Infinity = never expire, 0 = expire at once (cache nothing). */
  ttlMs: number;
  negativeTtlMs: number;
  /** API requests still waiting after this long (ms) get a 504; undefined = twice the peer timeout. */
  apiTimeoutMs: number | undefined;
  logLevel: LogLevel;
  /** Shared peer secret (--secret / TINYCACHE_SECRET); undefined = peers unauthenticated. */
  secret: string | undefined;
  /** Connection limits of both servers (--max-connections, --headers-timeout-ms, ...). */
  serverLimits: {
    maxConnections: number;
    headersTimeoutMs: number;
    requestTimeoutMs: number;
    keepAliveTimeoutMs: number;
  };
  /** Most database reads (getter calls) at once; more wait (--max-loads). */
  maxLoads: number;
  /** Serve the status page on the API port (--status; auto = on a loopback host). */
  status: boolean;
}
