import { fileURLToPath } from "node:url";
import { HashRing } from "@tinycache/consistenthash";
import { clusterSuite } from "@tinycache/testkit";

const entry = fileURLToPath(new URL("../test/cluster-node.ts", import.meta.url));
const ownerOf = (key: string, urls: readonly string[]) => new HashRing().add(...urls).get(key);

// The default client (Connect protocol, binary, HTTP/1.1 keep-alive) ...
clusterSuite("transport-connect, connect over HTTP/1.1", entry, { ownerOf });
// ... and gRPC over HTTP/2 (connect-node's client against the same h1+h2c port).
clusterSuite("transport-connect, gRPC over HTTP/2", entry, {
  ownerOf,
  env: { TINYCACHE_PROTOCOL: "grpc", TINYCACHE_HTTP_VERSION: "2" },
});
