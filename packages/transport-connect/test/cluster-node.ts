/**
 * One node of the shared cluster suite (@tinycache/testkit clusterSuite), over
 * @tinycache/transport-connect. Run as:
 *   node --import tsx test/cluster-node.ts --port <peerPort> --peers <u1,u2,u3> \
 *     --self <url> --client-port <port>
 * See tools/testkit/src/cluster.ts for the contract and cluster-node.ts for the node.
 */
import { GroupRegistry, NotFoundError } from "@tinycache/core";
import { runClusterNode } from "@tinycache/testkit";
import { ConnectPool, type PeerProtocol } from "../src/index.js";

// The suite runs once per client protocol; the server always speaks all of them.
const protocol = (process.env.TINYCACHE_PROTOCOL ?? "connect") as PeerProtocol;
const httpVersion =
  process.env.TINYCACHE_HTTP_VERSION === "2" ? "2" : protocol === "grpc" ? "2" : "1.1";

// The suite asserts that each key loads exactly once, on its owner. A peer call that
// outlives the timeout (correctly) falls back to a local load, and on a loaded 2-core CI
// machine a first call can take longer than the 500 ms default: give it room.
const timeoutMs = 5_000;
await runClusterNode({
  GroupRegistry,
  NotFoundError,
  pool: (self, registry) => new ConnectPool({ self, registry, protocol, httpVersion, timeoutMs }),
});
