/**
 * One node of the shared cluster suite (@tinycache/testkit clusterSuite), over
 * @tinycache/transport-http. Run as:
 *   node --import tsx test/cluster-node.ts --port <peerPort> --peers <u1,u2,u3> \
 *     --self <url> --client-port <port>
 * See tools/testkit/src/cluster.ts for the contract and cluster-node.ts for the node.
 */
import { GroupRegistry, NotFoundError } from "@tinycache/core";
import { runClusterNode } from "@tinycache/testkit";
import { HttpPool } from "../src/index.js";

// The suite asserts that each key loads exactly once, on its owner. A peer call that
// outlives the timeout (correctly) falls back to a local load, and on a loaded 2-core CI
// machine a first call can take longer than the 500 ms default: give it room.
const timeoutMs = 5_000;
await runClusterNode({
  GroupRegistry,
  NotFoundError,
  pool: (self, registry) => new HttpPool({ self, registry, timeoutMs }),
});
