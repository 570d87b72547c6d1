/**
 * Counters of a group, named as golang/groupcache names them so that dashboards built for
 * Go peers read the same. Snapshots are plain objects (easy to export as metrics).
 */

/** Group-level counters. All are monotonic since the group was created. */
export interface GroupStats {
  /** Every `get` call with a valid key. */
  gets: number;
  /** Gets answered from the main or hot cache, including the re-check inside a load. */
  cacheHits: number;
  /** Successful fetches from the owning peer. */
  peerLoads: number;
  /** Failed fetches from a peer that made this node load locally instead. */
  peerErrors: number;
  /** Gets that missed the caches (before de-duplication). */
  loads: number;
  /** Loads that actually ran after singleflight de-duplication and the cache re-check. */
  loadsDeduped: number;
  /** Getter calls that answered (a value, or "not found"). */
  localLoads: number;
  /** Getter calls that failed (not counting "not found"). */
  localLoadErrs: number;
  /** Requests from peers answered by this node (`serveGet`). */
  serverRequests: number;
  /** Gets answered "not found" from a negative cache entry. */
  negativeHits: number;
  /** Loads whose answer was "not found" (from the local getter or from the owner). */
  notFounds: number;
  /** Values fetched from a peer that the hot-cache policy promoted into the hot cache. */
  hotPromotions: number;
  /** Getter calls that waited for a slot (`maxConcurrentLoads` were running). */
  loadsQueued: number;
  /** Loads refused with OverloadedError: the limit and the queue (`maxQueuedLoads`) were full. */
  loadsRejected: number;
}

/** The getter-call limit of a group, now (see `maxConcurrentLoads`). */
export interface LoadLimitStats {
  /** Getter calls running. */
  active: number;
  /** Getter calls waiting for a slot. */
  waiting: number;
  /** The `maxConcurrentLoads` option (`Infinity`: no limit; JSON shows null). */
  maxConcurrentLoads: number;
  /** The `maxQueuedLoads` option. */
  maxQueuedLoads: number;
}

/** Counters of one of the two caches (main or hot). */
export interface CacheStats {
  /** Bytes held: the sum of key bytes + value bytes of every entry. */
  bytes: number;
  /** Entries held (expired ones may linger until looked up or evicted). */
  items: number;
  /** Lookups in this cache. */
  gets: number;
  /** Lookups that found a live entry. */
  hits: number;
  /** Entries removed to keep the shared byte budget. */
  evictions: number;
}

/** Which of a group's two caches. */
export type CacheType = "main" | "hot";

/** One key of {@link Group.recentKeys}: held in the cache, and whether it is a "not found". */
export interface RecentKey {
  key: string;
  /** A negative entry: the cache holds "not found" for this key. */
  notFound: boolean;
}

/** Most keys one {@link Group.recentKeys} call returns. */
export const MAX_RECENT_KEYS = 1000;

/** A zeroed set of group counters. */
export function newGroupStats(): GroupStats {
  return {
    gets: 0,
    cacheHits: 0,
    peerLoads: 0,
    peerErrors: 0,
    loads: 0,
    loadsDeduped: 0,
    localLoads: 0,
    localLoadErrs: 0,
    serverRequests: 0,
    negativeHits: 0,
    notFounds: 0,
    hotPromotions: 0,
    loadsQueued: 0,
    loadsRejected: 0,
  };
}

/**
 * A live, read-only view of `counters` whose `gets` and `cacheHits` also count the hits
 * taken by the cache's fast path (kept apart so that a hit costs one increment), and
 * whose `loadsQueued` and `loadsRejected` are the getter limit's (`loads`), when given. Made
 * once per group: reading it allocates nothing, and spreading it (`{ ...view }`) gives a
 * plain snapshot.
 */
export function liveGroupStats(
  counters: GroupStats,
  fastHits: () => number,
  loads?: () => { queued: number; rejected: number },
): Readonly<GroupStats> {
  const view = {} as GroupStats;
  for (const name of Object.keys(counters) as (keyof GroupStats)[]) {
    const get =
      name === "gets" || name === "cacheHits"
        ? () => counters[name] + fastHits()
        : loads !== undefined && name === "loadsQueued"
          ? () => loads().queued
          : loads !== undefined && name === "loadsRejected"
            ? () => loads().rejected
            : () => counters[name];
    Object.defineProperty(view, name, { get, enumerable: true });
  }
  return Object.freeze(view);
}
