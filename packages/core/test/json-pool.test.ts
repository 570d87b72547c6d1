import { GroupRegistry, InvalidArgumentError, NotFoundError, PeerError } from "@tinycache/core";
import { describeTransportContract } from "@tinycache/testkit";
import { JsonPool } from "./json-pool.js";

// A third transport, written from TRANSPORT.md alone, passes the suite the shipped ones do.
describeTransportContract({
  name: "JsonPool (TRANSPORT.md's example)",
  pool: (options) => new JsonPool(options),
  // The example sends one request per key (a transport may add core's Batcher).
  batches: false,
  GroupRegistry,
  NotFoundError,
  InvalidArgumentError,
  PeerError,
});
