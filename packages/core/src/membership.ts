import type { Logger } from "./peers.js";
import { NOOP_LOGGER } from "./private/noop-logger.js";

/**
 * Where a source sends what it learns. A source calls `update` with each complete peer
 * list it reads (not only changes: the membership drops repeats), `fail` when a lookup
 * failed (the last good list stays), and `leave` when this process itself is leaving (its
 * own endpoint is terminating): it then drops out of its own ring to drain.
 */
export interface PeerSink {
  /** A complete list of peer base URLs, this process's own included when it is a member. */
  update(urls: readonly string[]): void;
  /** A lookup failed; the reason is logged and counted, the last good list kept. */
  fail(reason: unknown): void;
  /** This process is leaving: apply `urls` (the others) even though self is not among them. */
  leave(urls: readonly string[]): void;
}

/**
 * A source of peer lists: a static list, a watched file, DNS, the Kubernetes API, ...
 * `subscribe` starts it; it stops when `signal` aborts. It must never throw from a timer
 * or callback: every failure goes to `sink.fail`.
 */
export interface PeerSource {
  /** For logs and stats, e.g. `"dns:cache.default.svc:8001"`. */
  readonly name: string;
  subscribe(sink: PeerSink, signal: AbortSignal): void;
}

/** What a membership drives: any tinycache pool (`setPeers`, and its own URL). */
export interface PeerListTarget {
  readonly self: string;
  setPeers(...urls: string[]): void;
}

/** Options of {@link followPeers}. */
export interface FollowPeersOptions {
  /**
   * Changes that arrive within this many ms of the first are applied as one ring change
   * (a rolling deploy, a scaling step). The first list is applied at once.
   * @default 500
   */
  batchMs?: number;
  /** pino-compatible logger: applied changes at info, refused lists at warn. Default: silent. */
  logger?: Logger;
  /** Clock in ms since the epoch (for `lastChangeAt`). Default `Date.now`. */
  now?: () => number;
}

/** Counters of a {@link Membership}. */
export interface MembershipStats {
  /** Lists applied to the pool (ring changes). */
  changes: number;
  /** Lists refused because they were empty (the source answered nothing). */
  refusedEmpty: number;
  /** Lists refused because this process's own URL was not in them. */
  refusedWithoutSelf: number;
  /** URLs dropped from lists because they do not parse as http(s) base URLs. */
  invalidUrls: number;
  /** Failed lookups reported by the source. */
  failures: number;
}

/** What can be read of a membership: for /stats, a status page, tests. */
export interface Membership {
  /** The source's name. */
  readonly source: string;
  /** The list applied last (sorted), or empty before the first good list. */
  readonly peers: readonly string[];
  /** When the last list was applied (ms since the epoch), or undefined before the first. */
  readonly lastChangeAt: number | undefined;
  /** Why the last list was not applied, while that lasts; undefined when all is well. */
  readonly problem: string | undefined;
  readonly stats: Readonly<MembershipStats>;
  /** Stops the source and any pending change. Safe to call twice. */
  close(): void;
}

function validPeerUrl(u: string): boolean {
  if (typeof u !== "string" || u.length === 0) return false;
  try {
    const url = new URL(u);
    return (url.protocol === "http:" || url.protocol === "https:") && !url.search && !url.hash;
  } catch {
    return false;
  }
}

/**
 * Connects a {@link PeerSource} to a pool: the one place where membership rules live.
 *
 * - Changes that arrive close together become one ring change (`batchMs`).
 * - Never applied: an empty list, a failed lookup, or a list without this process's own
 *   URL; the last good list stays. Each such episode is logged once (at warn) and counted.
 * - URLs that do not parse are dropped from a list (logged once per list, counted).
 * - Each applied change is logged once (who joined, who left) and counted.
 *
 * ```ts
 * const membership = followPeers(pool, dnsSource({ name: "cache", port: 8001 }), { logger });
 * membership.peers; // the current list
 * ```
 */
export function followPeers(
  pool: PeerListTarget,
  source: PeerSource,
  options: FollowPeersOptions = {},
): Membership {
  const batchMs = options.batchMs ?? 500;
  if (typeof batchMs !== "number" || !(batchMs >= 0) || !Number.isFinite(batchMs)) {
    throw new RangeError(
      `followPeers: batchMs must be a finite number >= 0, got ${String(batchMs)}`,
    );
  }
  if (typeof source?.subscribe !== "function") {
    throw new TypeError("followPeers: source must have subscribe(sink, signal)");
  }
  const logger = options.logger ?? NOOP_LOGGER;
  const now = options.now ?? Date.now;
  const self = pool.self;
  const ac = new AbortController();
  const stats: MembershipStats = {
    changes: 0,
    refusedEmpty: 0,
    refusedWithoutSelf: 0,
    invalidUrls: 0,
    failures: 0,
  };
  let applied: readonly string[] = Object.freeze([]);
  let lastChangeAt: number | undefined;
  let problem: string | undefined;
  let pending: readonly string[] | undefined;
  let timer: NodeJS.Timeout | undefined;

  /** Logs a problem once per episode (until a good list clears it). */
  const refuse = (why: string, detail: object): void => {
    if (problem !== why)
      logger.warn(
        { source: source.name, ...detail },
        `tinycache: ${why}; keeping the last good peer list`,
      );
    problem = why;
  };

  const apply = (list: readonly string[]): void => {
    pending = undefined;
    if (ac.signal.aborted) return;
    const same = list.length === applied.length && list.every((u, i) => u === applied[i]);
    if (same) return;
    try {
      pool.setPeers(...list);
    } catch (err) {
      refuse("the pool refused the peer list", { err });
      return;
    }
    const joined = list.filter((u) => !applied.includes(u));
    const left = applied.filter((u) => !list.includes(u));
    applied = Object.freeze(list.slice());
    lastChangeAt = now();
    stats.changes++;
    logger.info({ source: source.name, peers: applied, joined, left }, "tinycache: peers changed");
  };

  const schedule = (list: readonly string[]): void => {
    if (lastChangeAt === undefined || batchMs === 0) {
      apply(list); // the first list: at once, so a starting node joins without delay
      return;
    }
    pending = list;
    if (timer === undefined) {
      timer = setTimeout(() => {
        timer = undefined;
        if (pending !== undefined) apply(pending);
      }, batchMs);
    }
  };

  /** The valid, unique URLs of a list, sorted (sources may give them in any order). */
  const clean = (urls: readonly string[]): string[] | undefined => {
    if (!Array.isArray(urls)) {
      stats.failures++;
      refuse("the source gave something that is not a list", { got: typeof urls });
      return undefined;
    }
    const bad = urls.filter((u) => !validPeerUrl(u));
    if (bad.length > 0) {
      stats.invalidUrls += bad.length;
      logger.warn(
        { source: source.name, bad: bad.slice(0, 10).map(String) },
        "tinycache: peer URLs that do not parse were skipped",
      );
    }
    return [...new Set(urls.filter(validPeerUrl))].sort();
  };

  const sink: PeerSink = {
    update(urls) {
      if (ac.signal.aborted) return;
      const list = clean(urls);
      if (list === undefined) return;
      if (list.length === 0) {
        stats.refusedEmpty++;
        refuse("the source answered an empty peer list", {});
        return;
      }
      if (!list.includes(self)) {
        stats.refusedWithoutSelf++;
        refuse("the peer list does not contain this process", { self, got: list.slice(0, 10) });
        return;
      }
      if (problem !== undefined)
        logger.info({ source: source.name }, "tinycache: peer list is good again");
      problem = undefined;
      schedule(list);
    },
    fail(reason) {
      if (ac.signal.aborted) return;
      stats.failures++;
      refuse("peer lookup failed", { err: reason });
    },
    leave(urls) {
      if (ac.signal.aborted) return;
      const list = clean(urls)?.filter((u) => u !== self);
      if (list === undefined) return;
      logger.info({ source: source.name, self }, "tinycache: this process is leaving the ring");
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
      apply(list); // at once: a terminating process drains now
    },
  };

  ac.signal.addEventListener("abort", () => {
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
    pending = undefined;
  });
  try {
    source.subscribe(sink, ac.signal);
  } catch (err) {
    ac.abort();
    throw err;
  }

  return {
    source: source.name,
    get peers() {
      return applied;
    },
    get lastChangeAt() {
      return lastChangeAt;
    },
    get problem() {
      return problem;
    },
    get stats() {
      return { ...stats };
    },
    close() {
      ac.abort();
    },
  };
}
