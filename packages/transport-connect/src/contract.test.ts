import { GroupRegistry, InvalidArgumentError, NotFoundError, PeerError } from "@tinycache/core";
import { describeTransportContract } from "@tinycache/testkit";
import {
  ConnectPool,
  createCleartextServer,
  type PeerProtocol,
  type RequestListener,
} from "./index.js";

const core = { GroupRegistry, NotFoundError, InvalidArgumentError, PeerError };
const variants: [PeerProtocol, "1.1" | "2"][] = [
  ["connect", "1.1"],
  ["connect", "2"],
  ["grpc", "2"],
  ["grpcweb", "1.1"],
];
for (const [protocol, httpVersion] of variants) {
  describeTransportContract({
    name: `ConnectPool (${protocol} over HTTP/${httpVersion})`,
    pool: (options) => new ConnectPool({ ...options, protocol, httpVersion }),
    // Only the HTTP/1.1 Connect client is core's; connect-node's buffer on their own.
    inflightBudget: protocol === "connect" && httpVersion === "1.1",
    // The mounted cases' server: HTTP/1.1 and h2c on one port, as the HTTP/2 clients need.
    // (The suite's listener uses only what HTTP/2's compat request and response share.)
    server: (listener) => createCleartextServer(listener as RequestListener),
    ...core,
  });
}
