import { isIP } from "node:net";

/** One address of an endpoint: canonical IP text and its family. */
export interface AddressView {
  /** `10.0.0.1`, or IPv6 in its canonical (compressed, lower-case) form without brackets. */
  ip: string;
  family: 4 | 6;
}

/** What the source keeps of one endpoint of a slice. */
export interface EndpointView {
  addresses: readonly AddressView[];
  /** `conditions.serving`, or when that is absent `conditions.ready !== false`. */
  serving: boolean;
  /** `conditions.terminating === true`. */
  terminating: boolean;
}

/** What the source keeps of one EndpointSlice: only what a peer list needs. */
export interface SliceView {
  /** The slice's ports by name (`""` for an unnamed port). */
  ports: ReadonlyMap<string, number>;
  endpoints: readonly EndpointView[];
}

/** How a peer list is made of slices. */
export interface PeerListRules {
  /** A port number, used as is; or the name of a port in each slice's `ports`. */
  port: number | string;
  scheme: "http" | "https";
  /** Which addresses: 4 or 6; undefined = IPv4 when any slice has IPv4 addresses, else IPv6. */
  family: 4 | 6 | undefined;
  /** This process's address (canonical, as {@link canonicalIp} gives it), if known. */
  selfAddress: string | undefined;
}

/** A peer list made of slices. */
export interface PeerList {
  /** Every serving, non-terminating endpoint address as `scheme://ip:port`; sorted, unique. */
  urls: string[];
  /** `urls` without this process's own. */
  others: string[];
  /** This process's own endpoint is in a slice with `conditions.terminating === true`. */
  selfTerminating: boolean;
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/**
 * The canonical text of an IP address (IPv6 compressed and lower-cased, no brackets), and
 * its family; undefined for anything that is not an IP address.
 */
export function canonicalIp(text: unknown): AddressView | undefined {
  if (typeof text !== "string") return undefined;
  const bracketed = text.startsWith("[") && text.endsWith("]");
  const bare = bracketed ? text.slice(1, -1) : text;
  const family = isIP(bare);
  if (family === 4 && !bracketed) return { ip: bare, family };
  if (family === 6) {
    // WHATWG URL parsing gives the one canonical form (RFC 5952) of an IPv6 address.
    const host = new URL(`http://[${bare}]/`).hostname;
    return { ip: host.slice(1, -1), family };
  }
  return undefined;
}

/** The slice's `metadata.name`, or undefined when it has none (it cannot be kept then). */
export function sliceName(obj: unknown): string | undefined {
  if (!isObject(obj) || !isObject(obj.metadata)) return undefined;
  const name = obj.metadata.name;
  return typeof name === "string" && name !== "" ? name : undefined;
}

/** The object's `metadata.resourceVersion`, when it is a non-empty string. */
export function resourceVersionOf(obj: unknown): string | undefined {
  if (!isObject(obj) || !isObject(obj.metadata)) return undefined;
  const rv = obj.metadata.resourceVersion;
  return typeof rv === "string" && rv !== "" ? rv : undefined;
}

/**
 * Reads an EndpointSlice (as the API server's JSON, or as client-node's typed model) into
 * a {@link SliceView}, defensively: whatever is missing or of the wrong type is skipped
 * (an endpoint without addresses, an address that is not an IP, a port out of range, an
 * `FQDN` slice), never thrown over.
 */
export function readSlice(obj: unknown): SliceView {
  const empty: SliceView = { ports: new Map(), endpoints: [] };
  if (!isObject(obj)) return empty;
  const type = obj.addressType;
  // FQDN slices (deprecated) name hosts, not pods; kube-proxy ignores them too.
  const family = type === "IPv4" ? 4 : type === "IPv6" ? 6 : type == null ? undefined : null;
  if (family === null) return empty;

  const ports = new Map<string, number>();
  if (Array.isArray(obj.ports)) {
    for (const p of obj.ports) {
      if (!isObject(p)) continue;
      const n = p.port;
      if (typeof n !== "number" || !Number.isInteger(n) || n < 1 || n > 65535) continue;
      const name = typeof p.name === "string" ? p.name : "";
      if (!ports.has(name)) ports.set(name, n);
    }
  }

  const endpoints: EndpointView[] = [];
  if (Array.isArray(obj.endpoints)) {
    for (const e of obj.endpoints) {
      if (!isObject(e) || !Array.isArray(e.addresses)) continue;
      const addresses: AddressView[] = [];
      for (const a of e.addresses) {
        const addr = canonicalIp(a);
        // An address of the other family in a typed slice is garbage: skipped.
        if (addr !== undefined && (family === undefined || addr.family === family)) {
          addresses.push(addr);
        }
      }
      if (addresses.length === 0) continue;
      const c = isObject(e.conditions) ? e.conditions : {};
      // Kubernetes: a nil `serving` (older API servers) means what `ready` says, and a nil
      // `ready` means ready; a nil `terminating` means not terminating.
      const serving = typeof c.serving === "boolean" ? c.serving : c.ready !== false;
      endpoints.push({ addresses, serving, terminating: c.terminating === true });
    }
  }
  return { ports, endpoints };
}

/**
 * The peer list of a set of slices: each address of each endpoint that is serving and not
 * terminating, as `scheme://ip:port` (IPv6 in brackets), sorted; on the `port` number, or
 * on the slice's port of that name (a slice without it adds nobody).
 *
 * A terminating endpoint is left out even while it still serves: the process behind it
 * leaves its own ring at the same moment (see `PeerSink.leave`), so every ring drops it
 * together. This is also what the endpoint's `ready` condition means.
 */
export function peerList(slices: Iterable<SliceView>, rules: PeerListRules): PeerList {
  const all = [...slices];
  const family =
    rules.family ??
    (all.some((s) => s.endpoints.some((e) => e.addresses.some((a) => a.family === 4))) ? 4 : 6);
  const urls = new Set<string>();
  const others = new Set<string>();
  let selfTerminating = false;
  for (const slice of all) {
    const port = typeof rules.port === "number" ? rules.port : slice.ports.get(rules.port);
    for (const e of slice.endpoints) {
      for (const a of e.addresses) {
        if (a.family !== family) continue;
        const self = a.ip === rules.selfAddress;
        if (self && e.terminating) selfTerminating = true;
        if (port === undefined || !e.serving || e.terminating) continue;
        const url = `${rules.scheme}://${family === 6 ? `[${a.ip}]` : a.ip}:${port}`;
        urls.add(url);
        if (!self) others.add(url);
      }
    }
  }
  return { urls: [...urls].sort(), others: [...others].sort(), selfTerminating };
}
