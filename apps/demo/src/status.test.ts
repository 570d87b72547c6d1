/**
 * The status page's data over plain HTTP, from real node processes: a ring of four where
 * two nodes run (A serves the API and the page; B listens on 0.0.0.0, so its page is off
 * by default), one port refuses connections and one accepts them and never answers.
 */
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { HashRing } from "@tinycache/consistenthash";
import { freePort, type Spawned, spawnNode } from "@tinycache/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generatedKey } from "./keys.js";
import type { NodeStatus, StatusData } from "./status.js";

const NODE = fileURLToPath(new URL("../dist/node.js", import.meta.url));
const SECRET = "status-test-secret";

let dataDir = "";
let hung: Server;
const hungSockets = new Set<Socket>();
const procs: Spawned[] = [];
let peers: string[] = [];
let [urlA, urlB, urlRefused, urlHung] = ["", "", "", ""];
let apiA = "";
let apiB = "";

async function get(url: string, init: RequestInit = {}) {
  const res = await fetch(url, {
    redirect: "manual",
    ...init,
    signal: AbortSignal.timeout(10_000),
  });
  return { status: res.status, headers: res.headers, body: await res.text() };
}

async function data(query = ""): Promise<StatusData> {
  const res = await get(`${apiA}/status/data${query}`);
  expect(res.status, res.body).toBe(200);
  return JSON.parse(res.body) as StatusData;
}

const node = (d: StatusData, url: string) => d.nodes.find((n) => n.url === url) as NodeStatus;
type UpNode = Extract<NodeStatus, { up: true }>;

/** Reads /status/data until `ok` holds (answers are reused for 250 ms), within 10 s. */
async function until(ok: (d: StatusData) => boolean, what: string): Promise<StatusData> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const d = await data();
    if (ok(d)) return d;
    if (Date.now() > deadline) throw new Error(`never: ${what}\n${JSON.stringify(d, null, 1)}`);
    await new Promise((r) => setImmediate(r));
  }
}

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), "tinycache-status-"));
  const [a, b, refused, hungPort, pa, pb] = await Promise.all(
    Array.from({ length: 6 }, () => freePort()),
  );
  // Accepts connections and never answers: a hung node.
  hung = createServer((s) => {
    hungSockets.add(s);
    s.on("close", () => hungSockets.delete(s));
  });
  await new Promise<void>((r) => hung.listen(hungPort, "127.0.0.1", r));
  [urlA, urlB, urlRefused, urlHung] = [a, b, refused, hungPort].map(
    (p) => `http://127.0.0.1:${p}`,
  ) as [string, string, string, string];
  peers = [urlA, urlB, urlRefused, urlHung];
  apiA = `http://127.0.0.1:${pa}`;
  apiB = `http://127.0.0.1:${pb}`;
  const common = ["--peers", peers.join(","), "--data-dir", dataDir, "--log-level", "warn"];
  const env = { TINYCACHE_SECRET: SECRET, LOG_PRETTY: "0" };
  const nodeA = spawnNode(
    [NODE, "--port", String(a), "--api", "--api-port", String(pa), ...common],
    {
      env,
    },
  );
  procs.push(nodeA);
  await nodeA.waitForLine(/"event":"ready"/, 30_000); // seeds the database first
  const nodeB = spawnNode(
    [NODE, "--host", "0.0.0.0", "--port", String(b), "--api", "--api-port", String(pb), ...common],
    { env },
  );
  procs.push(nodeB);
  await nodeB.waitForLine(/"event":"ready"/, 30_000);
}, 60_000);

afterAll(async () => {
  await Promise.all(procs.map((p) => p.kill()));
  for (const s of hungSockets) s.destroy();
  await new Promise<void>((r) => (hung ? hung.close(() => r()) : r()));
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

describe("GET /status/data", () => {
  it("gives the API node's ring, each node's figures, and shows a refusing and a hung node as down within the timeout", async () => {
    const started = Date.now();
    const d = await data();
    // The hung node costs one node timeout (1 s), not an error and not a hang.
    expect(Date.now() - started).toBeLessThan(4_000);
    expect(d).toMatchObject({ self: urlA, timeoutMs: 1000 });
    expect(Number.isNaN(Date.parse(d.now))).toBe(false);

    const ring = d.ring as NonNullable<StatusData["ring"]>;
    expect(ring.nodes.map((n) => n.url)).toEqual(peers);
    expect(ring.nodes.reduce((s, n) => s + n.rows, 0)).toBe(ring.totalRows);
    expect(ring.nodes.reduce((s, n) => s + n.hashShare, 0)).toBeCloseTo(1, 9);
    expect(ring).toMatchObject({ replicas: 50, hash: "crc32" });

    expect(d.nodes.map((n) => n.url)).toEqual(peers);
    expect(node(d, urlA)).toMatchObject({
      up: true,
      self: true,
      sameRing: true,
      transport: "http",
    });
    expect(node(d, urlB)).toMatchObject({ up: true, self: false, sameRing: true });
    expect(node(d, urlRefused)).toMatchObject({ up: false, error: "connection refused" });
    expect(node(d, urlHung)).toMatchObject({ up: false, error: "no answer within 1000 ms" });

    const kinds = d.events.map((e) => `${e.kind} ${e.node}`);
    expect(kinds).toEqual(
      expect.arrayContaining([
        `membership ${urlA}`,
        `membership ${urlB}`,
        `down ${urlRefused}`,
        `down ${urlHung}`,
      ]),
    );
    const start = d.events.find((e) => e.kind === "membership" && e.node === urlA);
    expect(start?.text).toBe(
      `peer list of 4 (static): ${peers.map((u) => u.slice("http://".length)).join(", ")}`,
    );
  }, 20_000);

  it("follows API requests: gets and loads rise, and the keys asked show as hot keys, newest first", async () => {
    const ring = new HashRing().add(...peers);
    const ofB: string[] = [];
    for (let i = 1; ofB.length < 3; i++)
      if (ring.get(generatedKey(i)) === urlB) ofB.push(generatedKey(i));
    // B's newest keys but "nobody", which B holds too when the ring (ports vary) makes it its owner.
    const asked = (n: UpNode) => n.recentKeys.main.filter((e) => e.key !== "nobody").slice(0, 3);
    const before = node(await data(), urlA) as UpNode;
    for (const k of ofB) expect((await get(`${apiA}/api?key=${k}`)).status).toBe(200);
    expect((await get(`${apiA}/api?key=nobody`)).status).toBe(404);

    const d = await until((x) => {
      const b = node(x, urlB);
      return (
        b.up &&
        asked(b)
          .map((e) => e.key)
          .join() === [...ofB].reverse().join() &&
        (node(x, urlA) as UpNode).gets >= before.gets + 4
      );
    }, "A counted the gets and B holds the keys, newest first");
    const a = node(d, urlA) as UpNode;
    const b = node(d, urlB) as UpNode;
    expect(a.peerLoads - before.peerLoads).toBe(3);
    expect(b.serverRequests).toBeGreaterThanOrEqual(3);
    expect(b.dbReads).toBeGreaterThanOrEqual(3);
    expect(b.hitRatio).not.toBeNull();
    expect(asked(b)).toEqual([...ofB].reverse().map((key) => ({ key, notFound: false })));
    const owner = node(d, ring.get("nobody") as string);
    const nobody = owner.up ? owner.recentKeys.main : (node(d, urlA) as UpNode).recentKeys.main; // a down owner: A loaded it itself
    expect(nobody).toContainEqual({ key: "nobody", notFound: true });

    const two = node(await data("?keys=2"), urlB) as UpNode;
    expect(two.recentKeys.main).toHaveLength(2);
    expect((node(await data("?keys=0"), urlB) as UpNode).recentKeys.main).toEqual([]);
  }, 30_000);

  it("refuses bad input with a 4xx and a message", async () => {
    expect(await get(`${apiA}/status/data?keys=21`)).toMatchObject({
      status: 400,
      body: 'keys must be an integer from 0 to 20, got "21"\n',
    });
    expect(await get(`${apiA}/status/data?nodes=all`)).toMatchObject({
      status: 400,
      body: 'unknown parameter "nodes": /status/data takes only keys=0..20\n',
    });
    const post = await get(`${apiA}/status/data`, { method: "POST", body: "x" });
    expect(post.status).toBe(405);
    expect(post.headers.get("allow")).toBe("GET, HEAD");
    expect((await get(`${apiA}/status/nope`)).status).toBe(404);
  });
});

describe("GET /status and /", () => {
  it("/ redirects to /status, a static page whose CSP lets it run only its own inline script and fetch only its origin", async () => {
    const root = await get(`${apiA}/`);
    expect(root.status).toBe(302);
    expect(root.headers.get("location")).toBe("/status");

    const page = await get(`${apiA}/status`);
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toBe("text/html; charset=utf-8");
    const csp = page.headers.get("content-security-policy") ?? "";
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("connect-src 'self'");
    // Nothing is loaded from anywhere: no src/href attribute, no remote URL.
    expect(page.body).not.toMatch(/\s(src|href)=/i);
    expect(page.body).not.toMatch(/https:\/\//);
    const script = /<script>([\s\S]*)<\/script>/.exec(page.body)?.[1] ?? "";
    const style = /<style>([\s\S]*)<\/style>/.exec(page.body)?.[1] ?? "";
    const hash = (t: string) => `'sha256-${createHash("sha256").update(t).digest("base64")}'`;
    expect(csp).toContain(`script-src ${hash(script)}`);
    expect(csp).toContain(`style-src ${hash(style)}`);
    expect(script).toContain('fetch("/status/data"');

    const head = await get(`${apiA}/status`, { method: "HEAD" });
    expect(head).toMatchObject({ status: 200, body: "" });
  });

  it("is off on a node listening on 0.0.0.0 unless asked for (--status auto)", async () => {
    expect(await get(`${apiB}/status`)).toMatchObject({
      status: 404,
      body: "the status page is off on this node (--status off)\n",
    });
    expect((await get(`${apiB}/status/data`)).status).toBe(404);
    expect((await get(`${apiB}/`)).status).toBe(404);
    expect((await get(`${apiB}/api?key=Tom`)).body).toBe("630");
  });

  it("/stats still needs the secret; with it, it carries the recent keys, the peer-list history and each peer's batch counters (in /metrics too)", async () => {
    expect((await get(`${urlA}/stats`)).status).toBe(401);
    const res = await get(`${urlA}/stats`, { headers: { "x-tinycache-auth": SECRET } });
    const stats = JSON.parse(res.body);
    expect(stats.recentKeys).toEqual({ main: expect.any(Array), hot: expect.any(Array) });
    expect(stats.membership.history).toEqual([
      { at: expect.any(String), peers, joined: peers, left: [] },
    ]);
    // Every remote peer, in list order, reachable or not (whether gets were batched
    // depends on timing here; the pools' tests pin the counts).
    const remote = peers.filter((u) => u !== urlA);
    const batches: Array<{ url: string; batches: number; batchedKeys: number }> = stats.peerBatches;
    expect(batches).toEqual(
      remote.map((url) => ({
        url,
        batches: expect.any(Number),
        batchedKeys: expect.any(Number),
      })),
    );
    // A batch carries two keys at least (a lone key goes as a plain get, uncounted).
    for (const b of batches) expect(b.batchedKeys).toBeGreaterThanOrEqual(2 * b.batches);

    // /metrics has the same counters per peer (no peer call in between).
    const metrics = await get(`${urlA}/metrics`);
    expect(metrics.status).toBe(200);
    const sample = (name: string, url: string) =>
      metrics.body
        .split("\n")
        .find((l) => l.startsWith(`${name}{peer="${url}"} `))
        ?.split(" ")[1];
    for (const b of batches) {
      expect(sample("tinycache_demo_peer_batches_total", b.url)).toBe(String(b.batches));
      expect(sample("tinycache_demo_peer_batched_keys_total", b.url)).toBe(String(b.batchedKeys));
    }
  });
});
