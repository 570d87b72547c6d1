import { crc32, HashRing } from "@tinycache/consistenthash";
import { CLASSIC_SCORES, GENERATED_ROWS, generatedKey } from "./keys.js";

/**
 * Points per node: HashRing's default, which is what every demo pool uses (the demo
 * passes no ring options to HttpPool or ConnectPool), and golang/groupcache's.
 */
export const RING_REPLICAS = 50;
const SPACE = 0x1_0000_0000;

/** One node of the ring, as the status page draws it. */
export interface RingNode {
  url: string;
  /** Fraction of the 2^32 hash space it owns (HashRing.shares): its expected share of keys. */
  hashShare: number;
  /** Rows of the demo database (Tom, Jack, Sam and every generated row) it owns: exact. */
  rows: number;
  /** `rows` over all the rows. */
  rowShare: number;
}

/** A stretch of the hash space owned by one node: [from, to) as fractions of 2^32. */
export interface RingArc {
  /** Index into `nodes`. */
  node: number;
  from: number;
  to: number;
}

/** Where a key hashes, for the page to mark on the ring. */
export interface RingMarker {
  key: string;
  /** crc32(key) / 2^32. */
  at: number;
  /** Index into `nodes` of its owner. */
  owner: number;
}

/** The ring of a peer list: what each node owns, and the arcs to draw it. */
export interface RingLayout {
  replicas: number;
  hash: "crc32";
  nodes: RingNode[];
  /** Every stretch between two points, clockwise from 0; neighbours of one owner merged. */
  arcs: RingArc[];
  /** The classic keys (Tom, Jack, Sam) and where they land. */
  markers: RingMarker[];
  /** Rows counted for `rows` (the whole demo database). */
  totalRows: number;
}

/**
 * The ring the demo's pools build from `peers`, laid out for drawing. Shares of the hash
 * space come from HashRing itself; the arcs are rebuilt from its documented layout (point
 * `i` of node `N` is `crc32(String(i) + N)`, and a point owns the keys hashing into
 * (previous point, point], the first one wrapping around past the last); rows are
 * counted by asking the ring the owner of every key of the database (about 200,000
 * lookups, a few ms), so they are what the cluster really routes, not an estimate.
 */
export function ringLayout(peers: readonly string[]): RingLayout {
  const ring = new HashRing({ replicas: RING_REPLICAS }).set(peers);
  const urls = [...ring.nodes];
  const index = new Map(urls.map((u, i) => [u, i]));
  const rows = new Array<number>(urls.length).fill(0);
  const count = (key: string) => {
    const owner = ring.get(key);
    if (owner !== undefined)
      rows[index.get(owner) as number] = (rows[index.get(owner) as number] ?? 0) + 1;
  };
  for (const key of Object.keys(CLASSIC_SCORES)) count(key);
  for (let i = 1; i <= GENERATED_ROWS; i++) count(generatedKey(i));
  const totalRows = Object.keys(CLASSIC_SCORES).length + GENERATED_ROWS;
  const shares = ring.shares();

  const points: { at: number; node: number }[] = [];
  urls.forEach((url, node) => {
    for (let i = 0; i < RING_REPLICAS; i++) points.push({ at: crc32(String(i) + url), node });
  });
  points.sort((a, b) => a.at - b.at || a.node - b.node);
  const arcs: RingArc[] = [];
  const push = (node: number, from: number, to: number) => {
    if (to <= from) return;
    const last = arcs[arcs.length - 1];
    if (last !== undefined && last.node === node && last.to === from) last.to = to;
    else arcs.push({ node, from, to });
  };
  if (points.length > 0) {
    // Keys above the last point wrap around to the first point's owner.
    const first = points[0] as { at: number; node: number };
    let prev = 0;
    for (const p of points) {
      push(p.node, prev / SPACE, (p.at + 1) / SPACE);
      prev = p.at + 1;
    }
    push(first.node, prev / SPACE, 1);
  }

  return {
    replicas: RING_REPLICAS,
    hash: "crc32",
    nodes: urls.map((url, i) => ({
      url,
      hashShare: shares.get(url) ?? 0,
      rows: rows[i] as number,
      rowShare: totalRows === 0 ? 0 : (rows[i] as number) / totalRows,
    })),
    arcs,
    markers: Object.keys(CLASSIC_SCORES).map((key) => ({
      key,
      at: crc32(key) / SPACE,
      owner: index.get(ring.get(key) as string) ?? -1,
    })),
    totalRows,
  };
}

/** {@link ringLayout}, remembered for the last peer list (it only changes with membership). */
export function cachedRingLayout(): (peers: readonly string[]) => RingLayout | undefined {
  let key = "";
  let layout: RingLayout | undefined;
  return (peers) => {
    if (peers.length === 0) return undefined;
    const k = peers.join("\n");
    if (layout === undefined || k !== key) {
      layout = ringLayout(peers);
      key = k;
    }
    return layout;
  };
}
