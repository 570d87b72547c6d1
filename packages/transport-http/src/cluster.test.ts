import { fileURLToPath } from "node:url";
import { HashRing } from "@tinycache/consistenthash";
import { clusterSuite } from "@tinycache/testkit";

clusterSuite("transport-http", fileURLToPath(new URL("../test/cluster-node.ts", import.meta.url)), {
  ownerOf: (key, urls) => new HashRing().add(...urls).get(key),
});
