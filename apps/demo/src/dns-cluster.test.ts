/**
 * Demo nodes that follow their membership from DNS, as pods behind a headless Service
 * do: each node on its own loopback address (127.0.0.2, .3, ...: all of 127/8 is loopback
 * on Linux) with the same port, all pointed at one name served by a real DNS server
 * (dnsmasq) whose records the test edits. A bounded request loop runs through the whole
 * of each scenario; no request may fail.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { HashRing } from "@tinycache/consistenthash";
import {
  type Dnsmasq,
  dnsmasqSkipReason,
  findDnsmasq,
  freePort,
  type Spawned,
  spawnNode,
  startDnsmasq,
} from "@tinycache/testkit";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { generatedKey, generatedScore } from "./keys.js";

const NODE = fileURLToPath(new URL("../dist/node.js", import.meta.url));
const NAME = "cache.test";
/** Shortest DNS poll of the nodes; dnsmasq answers with TTL 0, so this is the interval. */
const POLL_MS = 300;
/** followPeers' default batching window. */
const BATCH_MS = 500;

interface Node {
  ip: string;
  url: string;
  api: string;
  proc: Spawned;
}

let dns: Dnsmasq;
let port: number;
let apiPort: number;
let dataDir: string;
const nodes = new Map<string, Node>();

const IPS = ["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5", "127.0.0.6", "127.0.0.7"];

async function startNode(ip: string): Promise<Node> {
  const proc = spawnNode(
    [
      NODE,
      "--host",
      ip,
      "--port",
      String(port),
      "--api",
      "--api-port",
      String(apiPort),
      "--peers",
      `dns:${NAME}:${port}`,
      "--dns-server",
      dns.server,
      "--dns-poll-ms",
      String(POLL_MS),
      "--data-dir",
      dataDir,
      "--log-level",
      "warn",
    ],
    { env: { LOG_PRETTY: "0" } },
  );
  await proc.waitForLine(/"event":"ready"/, 30_000);
  const node = { ip, url: `http://${ip}:${port}`, api: `http://${ip}:${apiPort}`, proc };
  nodes.set(ip, node);
  return node;
}

async function stopNode(ip: string): Promise<void> {
  const n = nodes.get(ip);
  nodes.delete(ip);
  if (n === undefined) return;
  await n.proc.kill("SIGTERM");
}

async function stats(n: Node): Promise<{
  peers: string[];
  lastChangeAt: string | null;
  stats?: Record<string, number>;
  problem: string | null;
}> {
  const res = await fetch(`${n.url}/stats`);
  return ((await res.json()) as { membership: never }).membership;
}

/** Each node's output length: what it logs after this mark is news. */
function marks(): Map<string, number> {
  return new Map([...nodes].map(([ip, n]) => [ip, n.proc.lines.length]));
}

/**
 * Resolves, with how long it took, once every node in `ips` has `ips` as its peer list:
 * it says so in a "peers changed" line logged after `since` (or already had that list).
 */
async function agree(
  ips: readonly string[],
  since: Map<string, number>,
  limitMs = 20_000,
): Promise<number> {
  const want = JSON.stringify(ips.map((ip) => `http://${ip}:${port}`).sort());
  // A pino line: {..., "peers": [...], "joined": [...], "left": [...], "msg": "...peers changed"}.
  const changed = new RegExp(`"peers":${escapeRe(want)},.*"msg":"tinycache: peers changed"`);
  const t0 = Date.now();
  await Promise.all(
    ips.map(async (ip) => {
      const n = nodes.get(ip) as Node;
      const from = since.get(ip) ?? 0;
      if (JSON.stringify((await stats(n)).peers) === want) return;
      await n.proc.waitForLine(changed, limitMs, from);
    }),
  );
  return Date.now() - t0;
}

async function publish(ips: readonly string[]): Promise<void> {
  await dns.setHosts(ips.length === 0 ? {} : { [NAME]: ips });
}

/**
 * A bounded request loop over the APIs of the nodes in `front` (a client-side balancer,
 * as a Service is: a node leaves it before it stops). Counts failures until stopped.
 */
function requestLoop(front: () => readonly Node[], concurrency = 8) {
  let stop = false;
  let sent = 0;
  const failures: string[] = [];
  const worker = async (w: number): Promise<void> => {
    for (let i = w; !stop && sent < 200_000; i += concurrency) {
      const k = (i % 5000) + 1;
      const targets = front().filter((t) => t !== undefined);
      const n = targets[i % targets.length];
      if (n === undefined) break; // the test ended and stopped the nodes
      sent++;
      try {
        const res = await fetch(`${n.api}/api?key=${generatedKey(k)}`);
        const body = await res.text();
        if (res.status !== 200 || body !== generatedScore(k))
          failures.push(`${n.ip} ${res.status} ${body}`);
      } catch (err) {
        failures.push(`${n.ip} ${String(err)}`);
      }
    }
  };
  const done = Promise.all(Array.from({ length: concurrency }, (_, w) => worker(w)));
  const loop = {
    failures,
    get sent() {
      return sent;
    },
    async end() {
      stop = true;
      await done;
    },
  };
  loops.push(loop);
  return loop;
}

/** Every running loop, ended after each test even when it failed. */
const loops: { end(): Promise<void> }[] = [];

function escapeRe(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
}

/** Share of `keys` whose owner differs between two rings. */
function moved(before: readonly string[], after: readonly string[], keys: number): number {
  const a = new HashRing();
  a.set(before);
  const b = new HashRing();
  b.set(after);
  let n = 0;
  for (let i = 1; i <= keys; i++) if (a.get(generatedKey(i)) !== b.get(generatedKey(i))) n++;
  return n / keys;
}

const dnsmasq = findDnsmasq();

describe.skipIf(dnsmasq === undefined)(
  `membership from DNS (dnsmasq)${dnsmasqSkipReason()}`,
  () => {
    beforeAll(async () => {
      dns = await startDnsmasq();
      port = await freePort(IPS);
      apiPort = await freePort(IPS);
      dataDir = mkdtempSync(join(tmpdir(), "tinycache-dns-cluster-"));
    }, 30_000);
    afterEach(async () => {
      await Promise.all([...nodes.keys()].map(stopNode));
    });
    afterAll(async () => {
      await dns?.stop();
      if (dataDir) rmSync(dataDir, { recursive: true, force: true });
    });

    /** Publishes `ips` in DNS and resolves once the nodes in `agreeing` agree on it. */
    async function change(
      ips: readonly string[],
      agreeing: readonly string[] = ips,
    ): Promise<number> {
      const since = marks();
      await publish(ips);
      return agree(agreeing, since);
    }

    async function startCluster(ips: readonly string[]): Promise<void> {
      await publish(ips);
      const since = new Map<string, number>();
      for (const ip of ips) await startNode(ip);
      await agree(ips, since);
    }

    it("scales 3 -> 5 -> 2 under load: nothing fails, nodes agree within 2 polls, keys move as little as they must", async () => {
      const three = IPS.slice(0, 3);
      await startCluster(three);
      const loop = requestLoop(() => [nodes.get(IPS[0] as string) as Node]);
      // Two poll intervals, the batching window, and a margin for process start-up lag.
      const bound = 2 * POLL_MS + BATCH_MS + 1000;
      const urls = (ips: readonly string[]) => ips.map((ip) => `http://${ip}:${port}`);

      // 3 -> 5: the new nodes start (and are ready) before DNS lists them, as pods do.
      const five = IPS.slice(0, 5);
      for (const ip of five.slice(3)) await startNode(ip);
      const t35 = await change(five);
      expect(t35, "3 -> 5: ms until every node agrees").toBeLessThan(bound);
      const m35 = moved(urls(three), urls(five), 10_000);
      expect(m35, "share of keys that changed owner, 3 -> 5").toBeLessThanOrEqual(
        1.5 * (1 - 3 / 5),
      );

      // 5 -> 2: DNS drops three nodes; they stop once the remaining ones agree.
      const two = IPS.slice(0, 2);
      const t52 = await change(two);
      expect(t52, "5 -> 2: ms until every node agrees").toBeLessThan(bound);
      const m52 = moved(urls(five), urls(two), 10_000);
      expect(m52, "share of keys that changed owner, 5 -> 2").toBeLessThanOrEqual(
        1.5 * (1 - 2 / 5),
      );
      for (const ip of five.slice(2)) await stopNode(ip);

      await loop.end();
      // The figures, for the record (CI log): agreement times, moved shares against ideal.
      console.log(
        `dns scale: agree 3->5 ${t35} ms, 5->2 ${t52} ms (bound ${bound}); moved 3->5 ${m35.toFixed(3)} (ideal 0.400), 5->2 ${m52.toFixed(3)} (ideal 0.600); ${loop.sent} requests, ${loop.failures.length} failed`,
      );
      expect(loop.sent).toBeGreaterThan(100);
      expect(loop.failures).toEqual([]);
      const s = await stats(nodes.get(IPS[0] as string) as Node);
      expect(s.stats?.changes).toBeGreaterThanOrEqual(3);
      expect(s.lastChangeAt).not.toBeNull();
    }, 120_000);

    it("an empty answer, a dead DNS server or a list without self: the old list stays, counted, warned once", async () => {
      const three = IPS.slice(0, 3);
      await startCluster(three);
      const n0 = nodes.get(IPS[0] as string) as Node;
      const n2 = nodes.get(IPS[2] as string) as Node;
      const loop = requestLoop(() => [n0]);
      const list = three.map((ip) => `http://${ip}:${port}`).sort();

      // The name answers nothing.
      let since = marks();
      await publish([]);
      await n0.proc.waitForLine(/empty peer list/, 20_000, since.get(n0.ip));
      expect((await stats(n0)).peers).toEqual(list);
      // The DNS server dies: lookups fail.
      since = marks();
      await dns.stop();
      await n0.proc.waitForLine(/peer lookup failed/, 20_000, since.get(n0.ip));
      const s0 = await stats(n0);
      expect(s0.peers).toEqual(list);
      expect(s0.stats?.refusedEmpty).toBeGreaterThan(0);
      expect(s0.stats?.failures).toBeGreaterThan(0);
      dns = await startDnsmasq({ port: dns.port });
      // A list without node 2: node 2 keeps its list, the others follow.
      since = marks();
      await publish(IPS.slice(0, 2));
      await n2.proc.waitForLine(/does not contain this process/, 20_000, since.get(n2.ip));
      await agree(IPS.slice(0, 2), since);
      expect((await stats(n2)).peers).toEqual(list);
      // Each episode was warned once, however many polls it lasted.
      expect(n0.proc.lines.filter((l) => l.includes("empty peer list"))).toHaveLength(1);
      await change(three);
      await loop.end();
      expect(loop.failures).toEqual([]);
    }, 120_000);

    it("a rolling restart of every node, one after another, under load: no request fails", async () => {
      const three = IPS.slice(0, 3);
      await startCluster(three);
      const serving = new Set(three);
      const loop = requestLoop(() => [...serving].map((ip) => nodes.get(ip) as Node));
      for (const ip of three) {
        // Drain: out of the client's rotation and out of DNS; stop once the others agree.
        serving.delete(ip);
        const others = three.filter((x) => x !== ip);
        await change(others);
        await stopNode(ip);
        // Back: start (ready first), into DNS, everyone agrees, back into rotation.
        await startNode(ip);
        await change(three);
        serving.add(ip);
      }
      await loop.end();
      expect(loop.sent).toBeGreaterThan(100);
      expect(loop.failures).toEqual([]);
    }, 180_000);
  },
);
