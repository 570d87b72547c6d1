import { isIP } from "node:net";

/**
 * Small helpers shared by the demo's entry points (node, launch, burst): flag values
 * that need checking beyond what `parseArgs` does, and one way to report a usage error.
 */

/** A bad command line. Entry points print its message (and a hint) and exit with code 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** A TCP port in 1..65535 (0 only when `allowZero`). */
export function parsePort(flag: string, raw: string, allowZero = false): number {
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || !Number.isInteger(n) || n > 65_535 || (n === 0 && !allowZero)) {
    throw new UsageError(`--${flag} must be a port number 1..65535, got "${raw}"`);
  }
  return n;
}

/** A non-negative integer (e.g. milliseconds). */
export function parseCount(flag: string, raw: string, max = Number.MAX_SAFE_INTEGER): number {
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || !Number.isSafeInteger(n) || n > max) {
    throw new UsageError(`--${flag} must be an integer 0..${max}, got "${raw}"`);
  }
  return n;
}

/** One of a fixed set of words. */
export function parseChoice<T extends string>(flag: string, raw: string, choices: readonly T[]): T {
  if (!(choices as readonly string[]).includes(raw)) {
    throw new UsageError(`--${flag} must be one of ${choices.join(", ")}, got "${raw}"`);
  }
  return raw as T;
}

/** Comma-separated ports, e.g. `8001,8002,8003`: distinct, at least one. */
export function parsePortList(flag: string, raw: string): number[] {
  const parts = raw.split(",").map((s) => s.trim());
  if (parts.length === 0 || parts.some((p) => p === "")) {
    throw new UsageError(`--${flag} must be comma-separated ports, e.g. 8001,8002,8003`);
  }
  const ports = parts.map((p) => parsePort(flag, p));
  if (new Set(ports).size !== ports.length) {
    throw new UsageError(`--${flag} lists a port twice: ${raw}`);
  }
  return ports;
}

/**
 * Comma-separated peer base URLs, each `http://host:port` with no path, so that every node
 * builds the same hash ring from the same strings (a trailing slash would change owners).
 */
export function parsePeerList(flag: string, raw: string): string[] {
  const parts = raw.split(",").map((s) => s.trim());
  const peers: string[] = [];
  for (const p of parts) {
    let url: URL;
    try {
      url = new URL(p);
    } catch {
      throw new UsageError(`--${flag}: "${p}" is not a URL (want e.g. http://127.0.0.1:8001)`);
    }
    if (url.protocol !== "http:" || url.pathname !== "/" || url.search || url.hash || !url.port) {
      throw new UsageError(
        `--${flag}: "${p}" must look like http://host:port (no path, explicit port)`,
      );
    }
    peers.push(`http://${url.host}`);
  }
  if (new Set(peers).size !== peers.length) {
    throw new UsageError(`--${flag} lists a peer twice: ${raw}`);
  }
  return peers;
}

/** The log levels pino knows, plus "silent". */
export const LOG_LEVELS = ["trace", "debug", "info", "warn", "error", "fatal", "silent"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** The peer transports the demo can use. */
export const TRANSPORTS = ["http", "connect"] as const;
export type TransportName = (typeof TRANSPORTS)[number];

/**
 * Runs `main`, turning a UsageError (or parseArgs' own TypeError with an ERR_PARSE_ARGS_*
 * code) into a message on stderr and exit code 2, as command-line tools do.
 */
export function reportUsageError(err: unknown, program: string): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  const isParseError = typeof code === "string" && code.startsWith("ERR_PARSE_ARGS_");
  if (err instanceof UsageError || isParseError) {
    process.stderr.write(`${program}: ${(err as Error).message}\nTry '${program} --help'.\n`);
    process.exitCode = 2;
    return true;
  }
  return false;
}

/** Where a node's peer list comes from (`--peers`). */
export type PeerSpec =
  | { kind: "list"; urls: string[] }
  | { kind: "dns"; name: string; port: number }
  | { kind: "file"; path: string }
  | { kind: "k8s"; namespace: string | undefined; service: string; port: number };

/** The `--peers` forms, for help texts and messages. */
export const PEER_SPEC_FORMS =
  "a comma-separated URL list, dns:NAME:PORT, file:PATH or k8s:[NAMESPACE/]SERVICE:PORT";

/**
 * `--peers`: a fixed list of base URLs, or a source that follows the cluster:
 * `dns:NAME:PORT` (A/AAAA records of NAME, each address on PORT), `file:PATH` (one URL
 * per line or a JSON array, reloaded on change), `k8s:[NAMESPACE/]SERVICE:PORT` (the
 * serving endpoints of a Kubernetes Service).
 */
export function parsePeerSpec(flag: string, raw: string): PeerSpec {
  if (raw.startsWith("dns:") || raw.startsWith("k8s:")) {
    const body = raw.slice(4);
    const colon = body.lastIndexOf(":");
    const name = colon > 0 ? body.slice(0, colon) : "";
    const portRaw = colon > 0 ? body.slice(colon + 1) : "";
    if (name === "" || !/^[A-Za-z0-9._/-]+$/.test(name)) {
      throw new UsageError(`--${flag}: "${raw}" must look like ${raw.slice(0, 4)}NAME:PORT`);
    }
    const port = parsePort(flag, portRaw);
    if (raw.startsWith("dns:")) return { kind: "dns", name, port };
    const slash = name.indexOf("/");
    return slash < 0
      ? { kind: "k8s", namespace: undefined, service: name, port }
      : { kind: "k8s", namespace: name.slice(0, slash), service: name.slice(slash + 1), port };
  }
  if (raw.startsWith("file:")) {
    const path = raw.slice(5);
    if (path === "") throw new UsageError(`--${flag}: "file:" needs a path, e.g. file:/etc/peers`);
    return { kind: "file", path };
  }
  return { kind: "list", urls: parsePeerList(flag, raw) };
}

/** `IP:PORT` of a DNS server (`[::1]:53` for IPv6): resolvers take addresses, not names. */
export function parseHostPort(flag: string, raw: string): string {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([0-9.]+)):(\d+)$/.exec(raw);
  const ip = m?.[1] ?? m?.[2];
  if (m === null || ip === undefined || isIP(ip) === 0) {
    throw new UsageError(
      `--${flag} must look like IP:PORT (e.g. 127.0.0.1:5353 or [::1]:53), got "${raw}"`,
    );
  }
  parsePort(flag, m[3] as string);
  return raw;
}

/** The environment variable a node and the launcher read the shared peer secret from. */
export const SECRET_ENV = "TINYCACHE_SECRET";

/**
 * The shared peer secret: `--secret` if given, else `$TINYCACHE_SECRET` (the better place:
 * a command line is visible to every user of the machine in `ps`), else undefined. It
 * travels as a header value, so it must be printable ASCII.
 */
export function parseSecret(
  flag: string,
  raw: string | undefined,
  env: NodeJS.ProcessEnv,
): string | undefined {
  const secret = raw ?? env[SECRET_ENV];
  if (secret === undefined) return undefined;
  const from = raw === undefined ? `$${SECRET_ENV}` : `--${flag}`;
  if (secret === "") throw new UsageError(`${from} is empty`);
  if (!/^[\x21-\x7e]+$/.test(secret)) {
    throw new UsageError(`${from} must be printable ASCII without spaces`);
  }
  return secret;
}

/** Whether `host` (a --host value) only accepts connections from this machine. */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[(.*)\]$/, "$1").toLowerCase();
  return h === "localhost" || h === "::1" || /^127(?:\.\d{1,3}){3}$/.test(h);
}
