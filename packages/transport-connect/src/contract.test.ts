import { GroupRegistry, InvalidArgumentError, NotFoundError, PeerError } from "@tinycache/core";
import { describeTransportContract } from "@tinycache/testkit";
import { ConnectPool, type PeerProtocol } from "./index.js";

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
    ...core,
  });
}
