/**
 * `@tinycache/core/transport`: what a transport author needs, and nothing a service author
 * does. A transport is only a codec (paths, wire format, code mapping) over these pieces:
 * the pool contract and its wire-independent half ({@link PeerPoolBase}), one HTTP/1.1
 * unary client ({@link UnaryClient}), one server-side request check ({@link RequestCheck})
 * and one error mapping ({@link statusOf}, {@link peerErrorFor}). See the README's
 * "Writing a transport".
 */
export { PeerError, type PeerErrorKind } from "../errors.js";
export {
  ANSWER_FRAMING_BYTES,
  type CallOptions,
  type GroupLookup,
  type KeyRequest,
  type Logger,
  type PeerGetOptions,
  type PeerGetter,
  type PeerPicker,
  type PeerValue,
  type ServedGroup,
  type SetRequest,
} from "../peers.js";
export {
  BATCH_MAX_KEY_BYTES,
  BATCH_MAX_KEYS,
  type BatchCallOptions,
  type BatchEntry,
  Batcher,
  type BatcherOptions,
  type PeerBatchStats,
  type SendBatch,
} from "./batch.js";
export {
  BATCH_ANSWER_FRACTION,
  BATCH_ENTRY_OVERHEAD,
  type BatchAnswer,
  batchSizeError,
  DEFAULT_MAX_BATCH_KEYS,
  type ServeBatchOptions,
  serveBatch,
  serveCachedGet,
} from "./batch-server.js";
export { ByteBudget } from "./byte-budget.js";
export {
  HEALTH_DEFAULTS,
  HEALTH_PROBE_GROUP,
  isConnectionError,
  MonitoredPeer,
  PeerHealth,
  type PeerHealthOptions,
  type PeerHealthStats,
  type ResolvedHealthOptions,
  resolveHealthOptions,
} from "./health.js";
export {
  type LaneHandlers,
  type LaneMethod,
  type LaneReply,
  type LaneRequest,
  LeanServer,
  type LeanServerOptions,
  leanPoolServer,
} from "./lean-server.js";
export {
  type MountableHandler,
  mountable,
  type NextHandler,
  type RequestTarget,
  requestPath,
} from "./mount.js";
export {
  checkPeerUrl,
  DEFAULT_AUTH_HEADER,
  makeSecretCheck,
  positiveIntOption,
  type ResolvedSharedSecret,
  resolveSharedSecret,
  type SharedSecretOptions,
  timeoutMsOption,
} from "./options.js";
export { PeerSet, type PeerSetOptions } from "./peer-set.js";
export {
  DEFAULT_MAX_BODY_BYTES,
  DEFAULT_MAX_INFLIGHT_BODY_BYTES,
  DEFAULT_TIMEOUT_MS,
  nodeServer,
  type PeerHandler,
  type PeerPool,
  PeerPoolBase,
  type PeerPoolOptions,
  type PeerPoolStats,
  type PoolParts,
  type PoolServer,
  type ResolvedPoolOptions,
  resolvePoolOptions,
} from "./pool.js";
export {
  type ClosableResponseLike,
  RequestCheck,
  type RequestCheckOptions,
  type RequestLike,
  type ResponseLike,
} from "./request-check.js";
export {
  applyServerLimits,
  connectionsCheckingIntervalMs,
  DEFAULT_SERVER_LIMITS,
  resolveServerLimits,
  type ServerLimits,
  type ServerLimitsOptions,
} from "./server-limits.js";
export {
  errorMessage,
  kindOfStatus,
  MAX_ERROR_MESSAGE,
  peerErrorFor,
  type StatusCode,
  statusOf,
  toPeerError,
} from "./status.js";
export {
  createAgent,
  HeaderBlock,
  protobufFirstFieldEnd,
  UnaryClient,
  type UnaryClientOptions,
  type UnaryRequest,
  type UnaryResponse,
} from "./unary-client.js";
