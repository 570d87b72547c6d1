/**
 * @tinycache/transport-connect: tinycache peers over Connect, gRPC and gRPC-Web.
 * See the README for a two-node example, the options and the error mapping.
 */
export { type CleartextServerOptions, createCleartextServer } from "./cleartext-server.js";
export { ConnectPool } from "./connect-pool.js";
export type { ConnectPoolOptions, PeerProtocol } from "./options.js";
export { ConnectPeer, type GetManyEntry } from "./peer.js";
export type { PeerHandler, RequestListener } from "./server.js";
