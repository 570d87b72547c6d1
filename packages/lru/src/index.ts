export {
  type EvictionReason,
  LRU_ENTRY_OVERHEAD,
  LRUCache,
  type LRUCacheOptions,
  type SetOptions,
} from "./lru.js";
