/**
 * `@tinycache/core`: what a service author needs to give a service a shared cache. Two
 * subpaths serve other audiences: `@tinycache/core/transport` (for transport authors: the
 * pool contract, the shared HTTP/1.1 client, request checks, error mapping) and
 * `@tinycache/core/testing` (in-memory peers for tests).
 */
export { ByteView } from "@tinycache/byteview";
export {
  InvalidArgumentError,
  NotFoundError,
  OverloadedError,
  PeerError,
  type PeerErrorKind,
  TinycacheError,
} from "./errors.js";
export { Group } from "./group.js";
export {
  FrequencyPromotion,
  type FrequencyPromotionOptions,
  type HotCachePolicy,
  type HotCacheView,
  RandomPromotion,
  type RandomPromotionOptions,
  RatePromotion,
  type RatePromotionOptions,
} from "./hotpolicy.js";
export {
  type FollowPeersOptions,
  followPeers,
  type Membership,
  type MembershipStats,
  type PeerListTarget,
  type PeerSink,
  type PeerSource,
} from "./membership.js";
export type {
  GroupObserver,
  LoadEvent,
  LoadOutcome,
  PeerCallEvent,
  PeerCallOutcome,
} from "./observer.js";
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
export type { Logger, PeerGetOptions, PeerPicker } from "./peers.js";
export { GroupRegistry, type GroupRegistryOptions } from "./registry.js";
export type {
  CacheStats,
  CacheType,
  GroupStats,
  LoadLimitStats,
  RecentKey,
} from "./stats.js";
