import { isIP } from "node:net";

/**
 * Checks a DNS server address and returns it in the form `Resolver#setServers` takes:
 * `"127.0.0.1"`, `"127.0.0.1:5353"`, `"::1"`, `"[::1]"` or `"[::1]:53"`. Host names are
 * refused: the resolver needs an address to ask.
 * @throws TypeError naming `who` when `spec` is none of these.
 */
export function parseServer(spec: unknown, who: string): string {
  const bad = (why: string) =>
    new TypeError(
      `${who}: server must be an IP address with an optional port ("127.0.0.1:5353", "[::1]:53", "10.0.0.10"): ${why}, got ${JSON.stringify(spec)}`,
    );
  if (typeof spec !== "string" || spec === "") throw bad("not a non-empty string");
  let host: string;
  let port: string | undefined;
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(spec);
  if (bracketed) {
    host = bracketed[1] as string;
    port = bracketed[2];
    if (isIP(host) !== 6) throw bad("only an IPv6 address goes in brackets");
  } else if (isIP(spec) === 6) {
    host = spec;
  } else {
    const m = /^([^:]+)(?::(\d+))?$/.exec(spec);
    if (!m) throw bad("unreadable");
    host = m[1] as string;
    port = m[2];
    if (isIP(host) !== 4) throw bad("not an IP address");
  }
  if (port !== undefined) {
    const n = Number(port);
    if (!Number.isInteger(n) || n < 1 || n > 65535) throw bad("port out of range 1-65535");
  }
  const h = isIP(host) === 6 ? `[${host}]` : host;
  return port === undefined ? host : `${h}:${port}`;
}
