import { GroupRegistry, InvalidArgumentError, NotFoundError, PeerError } from "@tinycache/core";
import { describeTransportContract } from "@tinycache/testkit";
import { HttpPool } from "./index.js";

describeTransportContract({
  name: "HttpPool",
  pool: (options) => new HttpPool(options),
  GroupRegistry,
  NotFoundError,
  InvalidArgumentError,
  PeerError,
});
