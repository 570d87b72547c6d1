export { ByteView } from "@tinycache/byteview";
export {
  InvalidArgumentError,
  NotFoundError,
  PeerError,
  type PeerErrorKind,
  TinycacheError,
} from "./errors.js";
export { Group, type ServedValue } from "./group.js";
export {
  type HotCachePolicy,
  RandomPromotion,
  type RandomPromotionOptions,
  RatePromotion,
  type RatePromotionOptions,
} from "./hotpolicy.js";
export {
  type InMemoryCall,
  InMemoryNetwork,
  type InMemoryNetworkOptions,
} from "./memory-peers.js";
export type {
  GetOptions,
  Getter,
  GetterResult,
  GetterValue,
  GroupOptions,
  PeerFailure,
  RemoveOptions,
  RemoveResult,
  SetOptions,
} from "./options.js";
export { PeerSet, type PeerSetOptions } from "./peer-set.js";
export type {
  CallOptions,
  GroupLookup,
  KeyRequest,
  Logger,
  PeerGetter,
  PeerPicker,
  PeerValue,
  ServedGroup,
  SetRequest,
} from "./peers.js";
export { GroupRegistry, type GroupRegistryOptions } from "./registry.js";
export type { CacheStats, CacheType, GroupStats } from "./stats.js";
export {
  checkPeerUrl,
  DEFAULT_AUTH_HEADER,
  makeSecretCheck,
  positiveIntOption,
  type ResolvedSharedSecret,
  resolveSharedSecret,
  type SharedSecretOptions,
  timeoutMsOption,
} from "./transport-kit.js";
