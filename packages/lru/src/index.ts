export {
  type EvictionReason,
  LRUCache,
  type LRUCacheOptions,
  type SetOptions,
} from "./lru.js";
