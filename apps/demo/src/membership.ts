import {
  followPeers,
  type Logger,
  type Membership,
  type MembershipStats,
  type PeerSource,
} from "@tinycache/core";
import type { PeerPool } from "@tinycache/core/transport";
import type { NodeConfig } from "./node-config.js";

/**
 * The source of a node's peer list, from `--peers`. A fixed list needs none; the others
 * are loaded on demand, so that a node with a fixed list pays for no DNS or Kubernetes
 * code (the Kubernetes client especially is large).
 */
export async function peerSourceFor(cfg: NodeConfig): Promise<PeerSource | undefined> {
  const spec = cfg.peerSource;
  switch (spec.kind) {
    case "list":
      return undefined;
    case "dns": {
      const { dnsSource } = await import("@tinycache/discovery");
      return dnsSource({
        name: spec.name,
        port: spec.port,
        ...(cfg.dnsServer === undefined ? {} : { server: cfg.dnsServer }),
        minIntervalMs: cfg.dnsPollMs,
      });
    }
    case "file": {
      const { fileSource } = await import("@tinycache/discovery");
      return fileSource(spec.path);
    }
    case "k8s": {
      const { endpointSliceSource } = await import("@tinycache/kubernetes");
      return endpointSliceSource({
        service: spec.service,
        ...(spec.namespace === undefined ? {} : { namespace: spec.namespace }),
        port: spec.port,
        self: cfg.self,
      });
    }
  }
}

/** One peer list this node applied to its ring, and what changed from the one before. */
export interface PeerChange {
  /** When it was applied (ISO 8601). */
  at: string;
  peers: string[];
  joined: string[];
  left: string[];
}

/** Changes kept by a {@link PeerHistory}: the status page shows the recent ones. */
export const PEER_HISTORY_SIZE = 20;

/**
 * The last {@link PEER_HISTORY_SIZE} peer lists a node applied, with times. core's
 * membership keeps counters and the last change's time only; the history comes from
 * watching what reaches the pool (see {@link startMembership}).
 */
export class PeerHistory {
  readonly #changes: PeerChange[] = [];
  #current: readonly string[] = [];
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  /** Records a list applied to the ring (the same list again is not a change). */
  record(peers: readonly string[]): void {
    const prev = this.#current;
    if (peers.length === prev.length && peers.every((u, i) => u === prev[i])) return;
    this.#changes.push({
      at: new Date(this.#now()).toISOString(),
      peers: [...peers],
      joined: peers.filter((u) => !prev.includes(u)),
      left: prev.filter((u) => !peers.includes(u)),
    });
    if (this.#changes.length > PEER_HISTORY_SIZE) this.#changes.shift();
    this.#current = [...peers];
  }

  /** Oldest first. */
  get changes(): readonly PeerChange[] {
    return this.#changes;
  }
}

/**
 * Starts following the cluster when `--peers` names a source; undefined for a fixed list
 * (recorded in `history` as is). Every list the membership applies is recorded in
 * `history` on its way to the pool, and `onPeers` is told it.
 */
export async function startMembership(
  cfg: NodeConfig,
  pool: PeerPool,
  logger: Logger,
  history: PeerHistory,
  onPeers?: (urls: readonly string[]) => void,
): Promise<Membership | undefined> {
  const source = await peerSourceFor(cfg);
  if (source === undefined) {
    history.record(cfg.peers);
    return undefined;
  }
  const target = {
    self: pool.self,
    setPeers(...urls: string[]): void {
      pool.setPeers(...urls); // throws, changing nothing, for a list the pool refuses
      history.record(urls);
      onPeers?.(urls);
    },
  };
  return followPeers(target, source, { logger });
}

/** The membership part of /stats. */
export interface MembershipView {
  /** "static" for a fixed --peers list, else the source's name. */
  source: string;
  peers: readonly string[];
  lastChangeAt: string | null;
  problem: string | null;
  stats?: Readonly<MembershipStats>;
  /** The last peer lists applied, oldest first. */
  history: readonly PeerChange[];
}

/** The membership part of /stats: the current list, when it last changed, why not, and the recent changes. */
export function membershipStats(
  cfg: NodeConfig,
  m: Membership | undefined,
  history: PeerHistory,
): MembershipView {
  if (m === undefined) {
    return {
      source: "static",
      peers: cfg.peers,
      lastChangeAt: null,
      problem: null,
      history: history.changes,
    };
  }
  return {
    source: m.source,
    peers: m.peers,
    lastChangeAt: m.lastChangeAt === undefined ? null : new Date(m.lastChangeAt).toISOString(),
    problem: m.problem ?? null,
    stats: m.stats,
    history: history.changes,
  };
}
