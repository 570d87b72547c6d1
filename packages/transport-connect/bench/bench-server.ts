/**
 * The server side of the transport-connect benchmark, in its own process (a peer is
 * another process): one core group with a cached key, served both by a ConnectPool
 * (Connect, gRPC, gRPC-Web on one port) and by a bare @grpc/grpc-js server whose Get
 * handler asks the same group and answers the same protobuf bytes.
 * Prints one JSON line {"pool": port, "grpc": port} when both listen.
 */
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { GroupRegistry } from "@tinycache/core";
import { tinycachev1 as pb } from "@tinycache/protocol";
import { ConnectPool } from "../dist/index.js";

const registry = new GroupRegistry();
const group = registry.newGroup({
  name: "bench",
  cacheBytes: 16 << 20,
  getter: async (key) => `value-of-${key}-${"x".repeat(64)}`,
});
await group.get("hot-key"); // cached from now on: the benchmark measures the RPC

const pool = new ConnectPool({ self: "http://127.0.0.1:1", registry });
const { port } = await pool.listen(0, "127.0.0.1");

const getDef: grpc.MethodDefinition<pb.GetRequest, pb.GetResponse> = {
  path: "/tinycache.v1.CacheService/Get",
  requestStream: false,
  responseStream: false,
  requestSerialize: (m) => Buffer.from(toBinary(pb.GetRequestSchema, m)),
  requestDeserialize: (b) => fromBinary(pb.GetRequestSchema, b),
  responseSerialize: (m) => Buffer.from(toBinary(pb.GetResponseSchema, m)),
  responseDeserialize: (b) => fromBinary(pb.GetResponseSchema, b),
};
const server = new grpc.Server();
server.addService({ Get: getDef } as grpc.ServiceDefinition, {
  Get: (
    call: grpc.ServerUnaryCall<pb.GetRequest, pb.GetResponse>,
    cb: grpc.sendUnaryData<pb.GetResponse>,
  ) => {
    const served = registry.getGroup(call.request.group);
    if (!served) {
      cb({ code: grpc.status.FAILED_PRECONDITION, details: "no such group" });
      return;
    }
    served.serveGet(call.request.key).then(
      ({ value, expiresAt }) =>
        cb(
          null,
          create(pb.GetResponseSchema, {
            value: value.byteSlice(),
            expiresAtMs: BigInt(expiresAt ?? 0),
          }),
        ),
      (err: Error) => cb({ code: grpc.status.INTERNAL, details: err.message }),
    );
  },
});
const grpcPort = await new Promise<number>((resolve, reject) =>
  server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, p) =>
    err ? reject(err) : resolve(p),
  ),
);
process.stdout.write(`${JSON.stringify({ pool: port, grpc: grpcPort })}\n`);
