import { fileURLToPath } from "node:url";

/** Where the database lives unless --data-dir says otherwise: apps/demo/data/ (gitignored). */
export const DEFAULT_DATA_DIR = fileURLToPath(new URL("../data/", import.meta.url));
/** The original's topology: cache nodes on 8001..8003, the API on 9999 (with 8003). */
export const DEFAULT_PORTS = [8001, 8002, 8003] as const;
export const DEFAULT_API_PORT = 9999;
export const DEFAULT_HOST = "127.0.0.1";
/** The group every node serves. */
export const GROUP_NAME = "scores";

/** Base URL of the node on `port`: the string every node puts on its hash ring. */
export function peerUrl(port: number, host = DEFAULT_HOST): string {
  return `http://${host}:${port}`;
}

/**
 * Per-request timeout of peer calls: above the slowest getter, or a slow database would
 * make callers give up on the owner and read the database themselves.
 */
export function peerTimeoutFor(dbLatencyMs: number): number {
  return Math.max(2_000, dbLatencyMs * 2 + 1_000);
}
