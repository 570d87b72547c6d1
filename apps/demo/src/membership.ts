import { followPeers, type Logger, type Membership, type PeerSource } from "@tinycache/core";
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

/**
 * Starts following the cluster when `--peers` names a source; undefined for a fixed list.
 * `onPeers` is told each list applied to the pool.
 */
export async function startMembership(
  cfg: NodeConfig,
  pool: PeerPool,
  logger: Logger,
  onPeers?: (urls: readonly string[]) => void,
): Promise<Membership | undefined> {
  const source = await peerSourceFor(cfg);
  if (source === undefined) return undefined;
  const target = {
    self: pool.self,
    setPeers(...urls: string[]): void {
      pool.setPeers(...urls); // throws, changing nothing, for a list the pool refuses
      onPeers?.(urls);
    },
  };
  return followPeers(target, source, { logger });
}

/** The membership part of /stats: the current list, when it last changed, and why not. */
export function membershipStats(cfg: NodeConfig, m: Membership | undefined): object {
  if (m === undefined) {
    return { source: "static", peers: cfg.peers, lastChangeAt: null, problem: null };
  }
  return {
    source: m.source,
    peers: m.peers,
    lastChangeAt: m.lastChangeAt === undefined ? null : new Date(m.lastChangeAt).toISOString(),
    problem: m.problem ?? null,
    stats: m.stats,
  };
}
