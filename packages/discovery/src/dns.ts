import { promises as dnsp, type RecordWithTtl, type SrvRecord } from "node:dns";
import { isIPv6 } from "node:net";
import type { PeerSource } from "@tinycache/core";
import { safeSink } from "./private/safe-sink.js";
import { parseServer } from "./private/server.js";

/** Options of {@link dnsSource}. */
export interface DnsSourceOptions {
  /** The name to look up, e.g. a Kubernetes headless Service `cache.default.svc.cluster.local`. */
  name: string;
  /** The peers' port, in every URL. Required without `srv` (SRV records carry their own). */
  port?: number;
  /** @default "http" */
  scheme?: "http" | "https";
  /**
   * The DNS server to ask (`"127.0.0.1:5353"`, `"[::1]:53"`, `"10.0.0.10"`); default: the
   * system's (`/etc/resolv.conf`).
   */
  server?: string;
  /** Look up SRV records of `name`, then the addresses of each target, on the record's port. */
  srv?: boolean;
  /** Which addresses: 4 (A), 6 (AAAA) or `"any"` (both). @default 4 */
  family?: 4 | 6 | "any";
  /** The shortest wait between lookups (also the wait after a failure). @default 5000 */
  minIntervalMs?: number;
  /** The longest wait between lookups. @default 60000, or minIntervalMs when larger */
  maxIntervalMs?: number;
  /** Each wait is shortened by a random fraction up to this, in [0, 1]. @default 0.1 */
  jitter?: number;
  /** Time per query attempt (the resolver's `timeout`). @default 2000 */
  timeoutMs?: number;
  /** Attempts per query (the resolver's `tries`). @default 2 */
  tries?: number;
}

/** The part of `dns.promises.Resolver` a DNS source uses. */
export interface ResolverLike {
  setServers(servers: string[]): void;
  resolve4(name: string, options: { ttl: true }): Promise<RecordWithTtl[]>;
  resolve6(name: string, options: { ttl: true }): Promise<RecordWithTtl[]>;
  resolveSrv(name: string): Promise<SrvRecord[]>;
  cancel(): void;
}

/** @internal Test seams of {@link dnsSource}. */
export interface DnsSourceHooks {
  /** In [0, 1). Default `Math.random`. */
  random?: () => number;
  /** Runs `fn` after `ms`; returns a cancel function. Default: an unref'ed setTimeout. */
  setTimer?: (fn: () => void, ms: number) => () => void;
  /** Makes the resolver of one subscription. Default `new dns.promises.Resolver(options)`. */
  createResolver?: (options: { timeout: number; tries: number }) => ResolverLike;
}

/** What one lookup found: sorted unique URLs, and the smallest record TTL (s), if any. */
interface Answer {
  urls: string[];
  ttl: number | undefined;
}

/** Answers that mean "no such records" (NXDOMAIN, NOERROR without data), not a failure. */
const NO_RECORDS = new Set(["ENODATA", "ENOTFOUND"]);

function isNoRecords(err: unknown): boolean {
  return NO_RECORDS.has((err as NodeJS.ErrnoException)?.code ?? "");
}

/**
 * Peers from DNS, as a {@link PeerSource}: polls A and/or AAAA records of `name` (each
 * address becomes `scheme://ip:port`, IPv6 in brackets) or, with `srv`, its SRV records
 * (each target's addresses, on the record's port). Every lookup reports the whole sorted
 * list; the next one follows after the smallest record TTL, clamped to
 * [`minIntervalMs`, `maxIntervalMs`] and shortened by a random fraction up to `jitter`
 * (so a fleet does not ask in step). A name with no records reports an empty list (the
 * membership refuses it and keeps the last good list); any other error (SERVFAIL, a
 * timeout, a refused connection) is reported as a failure and retried after
 * `minIntervalMs`.
 *
 * Named `dns:<name>:<port>`, or `dns+srv:<name>`. Its timer does not keep the process
 * alive; aborting cancels the lookup in flight.
 * @throws TypeError/RangeError for bad options.
 */
export function dnsSource(options: DnsSourceOptions): PeerSource {
  return dnsSourceWith(options, {});
}

function fail(Err: typeof TypeError | typeof RangeError, what: string, got: unknown): never {
  throw new Err(
    `dnsSource: ${what}, got ${typeof got === "string" ? JSON.stringify(got) : String(got)}`,
  );
}

function positive(value: unknown, what: string): number {
  if (typeof value !== "number" || !Number.isFinite(value) || !(value > 0)) {
    fail(RangeError, `${what} must be a finite number > 0`, value);
  }
  return value;
}

/** @internal {@link dnsSource} with test seams. */
export function dnsSourceWith(options: DnsSourceOptions, hooks: DnsSourceHooks): PeerSource {
  if (options === null || typeof options !== "object") {
    fail(TypeError, "options must be an object", options);
  }
  const { name, port, scheme = "http", srv = false, family = 4 } = options;
  if (typeof name !== "string" || name.trim() === "") {
    fail(TypeError, "name must be a non-empty DNS name", name);
  }
  if (typeof srv !== "boolean") fail(TypeError, "srv must be a boolean", srv);
  if (port !== undefined || !srv) {
    if (port === undefined) fail(TypeError, "port is required (unless srv: true)", port);
    if (typeof port !== "number" || !Number.isInteger(port) || port < 1 || port > 65535) {
      fail(RangeError, "port must be an integer in 1-65535", port);
    }
  }
  if (scheme !== "http" && scheme !== "https") {
    fail(TypeError, 'scheme must be "http" or "https"', scheme);
  }
  if (family !== 4 && family !== 6 && family !== "any") {
    fail(TypeError, 'family must be 4, 6 or "any"', family);
  }
  const minIntervalMs = positive(options.minIntervalMs ?? 5000, "minIntervalMs");
  const maxIntervalMs = positive(
    options.maxIntervalMs ?? Math.max(60_000, minIntervalMs),
    "maxIntervalMs",
  );
  if (maxIntervalMs < minIntervalMs) {
    fail(RangeError, `maxIntervalMs must be >= minIntervalMs (${minIntervalMs})`, maxIntervalMs);
  }
  const jitter = options.jitter ?? 0.1;
  if (typeof jitter !== "number" || !(jitter >= 0 && jitter <= 1)) {
    fail(RangeError, "jitter must be a number in [0, 1]", jitter);
  }
  const timeoutMs = Math.ceil(positive(options.timeoutMs ?? 2000, "timeoutMs"));
  const tries = options.tries ?? 2;
  if (typeof tries !== "number" || !Number.isInteger(tries) || tries < 1) {
    fail(RangeError, "tries must be an integer >= 1", tries);
  }
  const server =
    options.server === undefined ? undefined : parseServer(options.server, "dnsSource");

  const random = hooks.random ?? Math.random;
  const setTimer =
    hooks.setTimer ??
    ((fn: () => void, ms: number) => {
      const t = setTimeout(fn, ms);
      t.unref();
      return () => clearTimeout(t);
    });
  const createResolver =
    hooks.createResolver ?? ((o: { timeout: number; tries: number }) => new dnsp.Resolver(o));
  const families: readonly (4 | 6)[] = family === "any" ? [4, 6] : [family];

  /** The addresses of `host` (every family asked, A first), no records = none. */
  const addresses = async (r: ResolverLike, host: string): Promise<RecordWithTtl[]> => {
    const answers = await Promise.all(
      families.map((f) =>
        (f === 4 ? r.resolve4(host, { ttl: true }) : r.resolve6(host, { ttl: true })).catch(
          (err: unknown) => {
            if (isNoRecords(err)) return [];
            throw err;
          },
        ),
      ),
    );
    return answers.flat();
  };

  const url = (address: string, p: number) =>
    `${scheme}://${isIPv6(address) ? `[${address}]` : address}:${p}`;

  const lookup = async (r: ResolverLike): Promise<Answer> => {
    const urls = new Set<string>();
    let ttl: number | undefined;
    const add = (records: RecordWithTtl[], p: number) => {
      for (const rec of records) {
        urls.add(url(rec.address, p));
        ttl = ttl === undefined ? rec.ttl : Math.min(ttl, rec.ttl);
      }
    };
    if (!srv) {
      add(await addresses(r, name), port as number);
    } else {
      let records: SrvRecord[];
      try {
        records = await r.resolveSrv(name);
      } catch (err) {
        if (isNoRecords(err)) return { urls: [], ttl: undefined };
        throw err;
      }
      // "." (or empty) as target: "no such service here" (RFC 2782).
      const targets = [...new Set(records.map((s) => s.name))].filter((t) => t !== "" && t !== ".");
      const found = new Map(
        await Promise.all(targets.map(async (t) => [t, await addresses(r, t)] as const)),
      );
      for (const s of records) add(found.get(s.name) ?? [], s.port);
    }
    return { urls: [...urls].sort(), ttl };
  };

  return {
    name: srv ? `dns+srv:${name}` : `dns:${name}:${port}`,
    subscribe(rawSink, signal) {
      if (signal.aborted) return;
      const sink = safeSink(rawSink, signal);
      const resolver = createResolver({ timeout: timeoutMs, tries });
      if (server !== undefined) resolver.setServers([server]);
      let cancelTimer: (() => void) | undefined;

      const next = (baseMs: number): void => {
        if (signal.aborted) return;
        cancelTimer = setTimer(run, baseMs * (1 - jitter * random()));
      };

      const poll = async (): Promise<void> => {
        let answer: Answer;
        try {
          answer = await lookup(resolver);
        } catch (err) {
          if (signal.aborted) return;
          sink.fail(err);
          next(minIntervalMs);
          return;
        }
        if (signal.aborted) return;
        sink.update(answer.urls);
        const ttlMs = answer.ttl === undefined ? minIntervalMs : answer.ttl * 1000;
        next(Math.min(maxIntervalMs, Math.max(minIntervalMs, ttlMs)));
      };

      function run(): void {
        cancelTimer = undefined;
        if (signal.aborted) return;
        poll().catch(() => {
          // poll reports everything itself; this only keeps a surprise off the process.
        });
      }

      signal.addEventListener(
        "abort",
        () => {
          cancelTimer?.();
          cancelTimer = undefined;
          resolver.cancel();
        },
        { once: true },
      );
      run();
    },
  };
}
