/**
 * A real DNS server for tests: Debian's dnsmasq (package dnsmasq-base) on 127.0.0.1 and a
 * free port, answering from a hosts file the test rewrites and reloads with SIGHUP, the
 * way a Kubernetes headless Service's records come and go. Tests that need it skip with
 * the reason in their title when {@link findDnsmasq} finds nothing.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { freePort } from "./proc.ts";

const CANDIDATES = ["/usr/sbin/dnsmasq", "/usr/bin/dnsmasq", "/sbin/dnsmasq"];

/** The dnsmasq binary, or undefined when it is not installed. */
export function findDnsmasq(): string | undefined {
  return CANDIDATES.find((p) => existsSync(p));
}

/** Why DNS tests skip, for their titles; empty when dnsmasq is there. */
export function dnsmasqSkipReason(): string {
  return findDnsmasq() === undefined
    ? " (skipped: dnsmasq not installed; apt-get install dnsmasq-base)"
    : "";
}

export interface Dnsmasq {
  /** `127.0.0.1:<port>`, for a resolver's `setServers` or a `--dns-server` flag. */
  server: string;
  port: number;
  /**
   * Rewrites the hosts file (`{ name: [addresses] }`) and makes dnsmasq re-read it;
   * resolves once dnsmasq says it has.
   */
  setHosts(hosts: Record<string, readonly string[]>): Promise<void>;
  /** Stops dnsmasq (answers stop: lookups then time out). Safe to call twice. */
  stop(): Promise<void>;
}

export interface DnsmasqOptions {
  /** The records to start with. */
  hosts?: Record<string, readonly string[]>;
  /** TTL of the answers, in seconds (dnsmasq's --local-ttl). Default 0. */
  ttl?: number;
  /** Port to serve on (e.g. the port of a server this one replaces). Default: a free one. */
  port?: number;
  /** More dnsmasq flags (e.g. `--srv-host=...`, `--server=/zone/127.0.0.1#5300`). */
  args?: readonly string[];
}

function hostsText(hosts: Record<string, readonly string[]>): string {
  const lines: string[] = [];
  for (const [name, addrs] of Object.entries(hosts))
    for (const a of addrs) lines.push(`${a} ${name}`);
  return `${lines.join("\n")}\n`;
}

/**
 * Starts dnsmasq serving only the given records (no upstream, no /etc/hosts; names under
 * `.test` that it does not know get NXDOMAIN). Resolves once it answers.
 * @throws when dnsmasq is not installed or does not start.
 */
export async function startDnsmasq(opts: DnsmasqOptions = {}): Promise<Dnsmasq> {
  const bin = findDnsmasq();
  if (bin === undefined) throw new Error("dnsmasq is not installed (apt-get install dnsmasq-base)");
  const dir = mkdtempSync(join(tmpdir(), "tinycache-dns-"));
  const hostsFile = join(dir, "hosts");
  writeFileSync(hostsFile, hostsText(opts.hosts ?? {}), { mode: 0o644 });
  const port = opts.port ?? (await freePort());
  const child: ChildProcess = spawn(
    bin,
    [
      "--keep-in-foreground",
      "--log-facility=-",
      "--conf-file=/dev/null",
      "--no-resolv",
      "--no-hosts",
      "--no-poll",
      `--addn-hosts=${hostsFile}`,
      "--local=/test/",
      "--domain-needed",
      `--local-ttl=${opts.ttl ?? 0}`,
      "--listen-address=127.0.0.1",
      "--bind-interfaces",
      `--port=${port}`,
      // dnsmasq drops to user nobody by default; our files are world-readable anyway,
      // and as root in CI it may keep root.
      "--user=root",
      "--pid-file=",
      ...(opts.args ?? []),
    ],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  const lines: string[] = [];
  const waiters: { re: RegExp; resolve: () => void }[] = [];
  createInterface({ input: child.stderr as NodeJS.ReadableStream }).on("line", (line) => {
    lines.push(line);
    for (let i = waiters.length - 1; i >= 0; i--) {
      if (waiters[i]?.re.test(line)) waiters.splice(i, 1)[0]?.resolve();
    }
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const waitFor = (re: RegExp, after: number): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      if (lines.slice(after).some((l) => re.test(l))) return resolve();
      const timer = setTimeout(
        () => reject(new Error(`dnsmasq: no ${re} within 10 s:\n${lines.join("\n")}`)),
        10_000,
      );
      waiters.push({
        re,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      });
      void exited.then(() => {
        clearTimeout(timer);
        reject(new Error(`dnsmasq exited:\n${lines.join("\n")}`));
      });
    });
  // "read <file> - N names" is logged at start and after each SIGHUP: the file is loaded.
  const readHosts = new RegExp(`read ${hostsFile.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}`);
  try {
    await waitFor(readHosts, 0);
  } catch (err) {
    child.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  let stopped = false;
  return {
    server: `127.0.0.1:${port}`,
    port,
    async setHosts(hosts) {
      writeFileSync(hostsFile, hostsText(hosts), { mode: 0o644 });
      const mark = lines.length;
      child.kill("SIGHUP");
      await waitFor(readHosts, mark);
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
