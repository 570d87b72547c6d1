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

await runClusterNode({
  GroupRegistry,
  NotFoundError,
  pool: (self, registry) => new HttpPool({ self, registry }),
});
