/**
 * Generated protobuf-es code for tinycache's peer protocols, produced by `pnpm gen`
 * (buf generate) from /proto. Both transports import it from here, so there is one copy.
 *
 * - `groupcachepb`: golang/groupcache's messages (plus mailgun/groupcache's expiry and
 *   SetRequest), spoken by @tinycache/transport-http.
 * - `tinycachev1`: tinycache's own CacheService, spoken by @tinycache/transport-connect.
 *
 * The two packages share message names (GetRequest, ...), hence the namespaces; the
 * subpath exports `@tinycache/protocol/groupcachepb` and `@tinycache/protocol/tinycache/v1`
 * give the same modules flat.
 */

export {
  type BatchAnswerLike,
  type DecodedGetMany,
  type DecodedResult,
  type DecodedValue,
  decodeGetManyRequest,
  decodeGetManyResponse,
  encodeGetManyRequest,
  encodeGetManyResponse,
  MalformedMessage,
} from "./batch.js";
export * as groupcachepb from "./gen/groupcachepb/groupcache_pb.js";
export * as tinycachev1 from "./gen/tinycache/v1/cache_pb.js";
export { type DecodedGet, decodeGetRequest, decodeGetResponse, encodeGetRequest } from "./get.js";
export { varintLength, writeVarint } from "./varint.js";
