import * as http from "node:http";
import * as https from "node:https";
import { nodeServer, PeerPoolBase, RequestCheck, UnaryClient } from "@tinycache/core/transport";
import { HttpPeer } from "./client.js";
import { type HttpPoolOptions, resolveOptions } from "./options.js";
import { createHandler } from "./server.js";

/**
 * A groupcache-compatible HTTP peer pool: the PeerPicker a group uses to find a key's
 * owner and fetch from it, and the request handler that answers the other peers. It
 * speaks golang/groupcache's wire protocol (plus mailgun's PUT and DELETE), so Node and Go
 * processes can share one cluster. Everything but the wire is core's `PeerPoolBase`.
 *
 * ```ts
 * const pool = new HttpPool({ self: "http://10.0.0.1:8001", registry });
 * pool.setPeers("http://10.0.0.1:8001", "http://10.0.0.2:8001");
 * await pool.listen(8001);
 * registry.registerPeers(pool);
 * ```
 */
export class HttpPool extends PeerPoolBase<HttpPeer> {
  constructor(options: HttpPoolOptions) {
    const o = resolveOptions(options);
    const handler = createHandler({
      registry: o.registry,
      basePath: o.basePath,
      check: new RequestCheck({ auth: o.auth, maxBodyBytes: o.maxBodyBytes }),
      logger: o.logger,
      maxBatchKeys: o.maxBatchKeys,
      timeoutMs: o.timeoutMs,
    });
    super(o, {
      name: "HttpPool",
      connect: (url) =>
        new HttpPeer(
          new UnaryClient({
            url,
            timeoutMs: o.timeoutMs,
            maxBodyBytes: o.maxBodyBytes,
            inflightBudget: o.inflightBudget,
            agent: o.agent?.(new URL(url)),
            agentOptions: o.agentOptions,
          }),
          o.basePath,
          o.auth,
          { batch: o.batch, maxBodyBytes: o.maxBodyBytes },
        ),
      // A peer that leaves finishes its calls in flight first; close cuts them.
      disconnect: (peer, why) => (why === "left" ? peer.retire() : peer.destroy()),
      handler,
      createServer: () =>
        nodeServer(
          o.tls === undefined ? http.createServer(handler) : https.createServer(o.tls, handler),
          o.logger,
          o.serverLimits,
        ),
    });
  }
}
