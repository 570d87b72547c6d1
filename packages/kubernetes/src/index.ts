/**
 * `@tinycache/kubernetes`: a tinycache node's peers from the EndpointSlices of a
 * Kubernetes Service. {@link endpointSliceSource} is a `PeerSource` for `followPeers`
 * (from `@tinycache/core`), which owns the rules (batching, refusing empty lists,
 * logging, counting); the source only lists, watches and reports.
 */
export { type EndpointSliceSourceOptions, endpointSliceSource } from "./endpoint-slice.js";
