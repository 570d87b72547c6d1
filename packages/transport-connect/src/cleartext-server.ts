import {
  type LaneHandlers,
  type Logger,
  type PoolServer,
  resolveServerLimits,
  type ServerLimitsOptions,
} from "@tinycache/core/transport";
import { DualServer } from "./private/dual-server.js";
import type { RequestListener } from "./server.js";

/** Options of {@link createCleartextServer}. */
export interface CleartextServerOptions {
  /**
   * Header, request and keep-alive timeouts and `maxConnections` (core's
   * `ServerLimitsOptions`, with its defaults: 10 s, 30 s, 30 s, 8192).
   */
  serverLimits?: ServerLimitsOptions;
  /** pino-compatible logger for server errors. Default: silent. */
  logger?: Logger;
  /**
   * A lean lane in front: plain Connect unary calls read over node:net, everything else
   * to the handler. A pool's `peerServer(handler)` is this server with the pool's own
   * lane; here, for a lane of your own (core's LeanServer handlers). Default: none.
   */
  lane?: LaneHandlers;
}

/**
 * The server {@link ConnectPool.listen} runs, for a handler of your own (e.g. the pool's
 * `handler` behind routes of yours): HTTP/1.1 and HTTP/2 cleartext ("h2c with prior
 * knowledge", what gRPC clients speak) on one port, with the server limits. Start it with
 * `listen(port, host)`; `close()` drops every connection.
 * @throws RangeError for bad limits.
 */
export function createCleartextServer(
  handler: RequestListener,
  options: CleartextServerOptions = {},
): PoolServer {
  return new DualServer(
    handler,
    resolveServerLimits("createCleartextServer", options.serverLimits),
    options.logger,
    options.lane,
  );
}
