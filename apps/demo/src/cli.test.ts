import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { freePort, runNode, type Spawned, spawnNode } from "@tinycache/testkit";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";

// The built entry points (`pnpm test` builds first), run as a user runs them.
const NODE = fileURLToPath(new URL("../dist/node.js", import.meta.url));
const LAUNCH = fileURLToPath(new URL("../dist/launch.js", import.meta.url));
const BURST = fileURLToPath(new URL("../dist/burst.js", import.meta.url));

const spawned: Spawned[] = [];
afterEach(async () => {
  await Promise.all(spawned.splice(0).map((p) => p.kill()));
});

function run(args: string[]): Spawned {
  const p = spawnNode(args, { env: { LOG_PRETTY: "0" } });
  spawned.push(p);
  return p;
}

/** Runs a command to its end: exit code and output. */
function outcome(args: string[]) {
  return runNode(args, { env: { LOG_PRETTY: "0" } });
}

describe("command lines", () => {
  it("--help documents the flags and exits 0", async () => {
    const node = await outcome([NODE, "--help"]);
    expect(node.code).toBe(0);
    for (const flag of ["--port", "--api", "--api-port", "--transport", "--peers", "--data-dir"]) {
      expect(node.out).toContain(flag);
    }
    expect(node.out).toContain('curl "http://localhost:9999/api?key=Tom"');
    const launch = await outcome([LAUNCH, "-h"]);
    expect(launch.code).toBe(0);
    expect(launch.out).toContain("--ports");
    // `pnpm demo -- --help` passes a leading "--" on to the script.
    const viaPnpm = await outcome([LAUNCH, "--", "--help"]);
    expect(viaPnpm.code).toBe(0);
    expect(viaPnpm.out).toContain("--ports");
    const burst = await outcome([BURST, "--help"]);
    expect(burst.code).toBe(0);
    expect(burst.out).toContain("--requests");
  });

  it.each([
    [[NODE, "--bogus"], /Unknown option '--bogus'/],
    [[NODE, "--port", "abc"], /--port must be a port number 1\.\.65535, got "abc"/],
    [[NODE, "--port", "70000"], /--port must be a port number/],
    [[NODE, "--port"], /--port/],
    [[NODE, "--transport", "grpc"], /--transport must be one of http, connect, got "grpc"/],
    [[NODE, "--log-level", "loud"], /--log-level must be one of/],
    [[NODE, "--db-latency-ms=-5"], /--db-latency-ms must be an integer/],
    [[NODE, "--hot-cache", "maybe"], /--hot-cache must be one of on, off/],
    [[NODE, "--peer-batch", "maybe"], /--peer-batch must be one of on, off/],
    [[NODE, "--api-lane", "maybe"], /--api-lane must be one of on, off/],
    [[NODE, "--port", "8005"], /this node \(http:\/\/127\.0\.0\.1:8005\) is not in --peers/],
    [[NODE, "--peers", "127.0.0.1:8001"], /--peers: "127\.0\.0\.1:8001"/],
    [[NODE, "--peers", "http://127.0.0.1:8001/x"], /must look like http:\/\/host:port/],
    [[NODE, "--api", "--api-port", "8001"], /--api-port must differ from --port/],
    [
      [NODE, "--peers", "dns:cache.test"],
      /--peers: "dns:cache\.test" must look like dns:NAME:PORT/,
    ],
    [[NODE, "--peers", "dns:cache.test:99999"], /--peers must be a port number/],
    [[NODE, "--peers", "k8s::8001"], /must look like k8s:NAME:PORT/],
    [[NODE, "--peers", "file:"], /"file:" needs a path/],
    [[NODE, "--dns-server", "127.0.0.1:53"], /--dns-server only goes with --peers dns:/],
    [
      [NODE, "--peers", "dns:c.test:8001", "--dns-server", "dns.local:53"],
      /--dns-server must look like IP:PORT/,
    ],
    [
      [NODE, "--peers", "dns:c.test:8001", "--dns-poll-ms", "5"],
      /--dns-poll-ms must be at least 10/,
    ],
    [[NODE, "stray"], /unexpected argument "stray"/],
    [[LAUNCH, "--ports", "8001,8001"], /--ports lists a port twice/],
    [[LAUNCH, "--ports", "8001,,8002"], /--ports must be comma-separated ports/],
    [[LAUNCH, "--api-port", "8002"], /--api-port 8002 is also in --ports/],
    [[LAUNCH, "--restart", "sometimes"], /--restart must be one of on, off/],
    [[BURST, "--requests", "0"], /--requests must be at least 1/],
    [[BURST, "--start", "later"], /--start must be one of auto, always, never/],
  ])("%j -> a clear message and exit code 2", { concurrent: true }, async (args, message) => {
    const { code, out } = await outcome(args);
    expect(code).toBe(2);
    expect(out).toMatch(message);
    expect(out).toMatch(/Try 'tinycache-\w+ --help'/);
  });
});

describe("one node by hand (one terminal per node)", () => {
  let dataDir = "";
  beforeAll(() => {
    dataDir = mkdtempSync(join(tmpdir(), "tinycache-demo-cli-"));
  });
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

  it("serves the API, /healthz, /metrics and /stats, then stops on SIGINT with exit 0", async () => {
    const port = await freePort();
    const apiPort = await freePort();
    const self = `http://127.0.0.1:${port}`;
    const node = run([
      NODE,
      "--port",
      String(port),
      "--api",
      "--api-port",
      String(apiPort),
      "--peers",
      self,
      "--data-dir",
      dataDir,
    ]);
    const ready = JSON.parse(await node.waitForLine(/"event":"ready"/));
    expect(ready).toMatchObject({
      port,
      api: `http://127.0.0.1:${apiPort}`,
      transport: "http",
      peers: [self],
    });
    const api = `http://127.0.0.1:${apiPort}`;
    const tom = await fetch(`${api}/api?key=Tom`);
    expect(tom.status).toBe(200);
    expect(tom.headers.get("content-type")).toBe("text/plain; charset=utf-8");
    expect(await tom.text()).toBe("630");
    const missing = await fetch(`${api}/api?key=${encodeURIComponent("nö body")}`);
    expect(missing.status).toBe(404);
    expect(await missing.text()).toBe("nö body not exist");
    expect((await fetch(`${api}/api`)).status).toBe(400);
    expect((await fetch(`${api}/api?key=`)).status).toBe(400);
    expect((await fetch(`${api}/api?key=Tom`, { method: "POST" })).status).toBe(405);
    expect((await fetch(`${api}/nowhere`)).status).toBe(404);
    const health = await fetch(`${api}/healthz`);
    expect([health.status, await health.text()]).toEqual([200, "ok\n"]);

    for (const base of [self, api]) {
      const metrics = await fetch(`${base}/metrics`);
      expect(metrics.status).toBe(200);
      expect(metrics.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
      const text = await metrics.text();
      expect(text).toMatch(/^tinycache_group_gets_total\{group="scores"\} 2$/m);
      expect(text).toMatch(/^tinycache_group_local_loads_total\{group="scores"\} 2$/m);
      expect(text).toMatch(/^tinycache_group_not_founds_total\{group="scores"\} 1$/m);
      expect(text).toMatch(/^tinycache_cache_items\{group="scores",cache="main"\} \d+$/m);
      expect(text).toMatch(/^tinycache_cache_bytes\{group="scores",cache="hot"\} 0$/m);
      // Latency histograms (@tinycache/prometheus): one database read each for Tom and the
      // missing key; a node alone calls no peer.
      expect(text).toMatch(/^# TYPE tinycache_load_duration_seconds histogram$/m);
      expect(text).toMatch(
        /^tinycache_load_duration_seconds_count\{group="scores",outcome="ok"\} 1$/m,
      );
      expect(text).toMatch(
        /^tinycache_load_duration_seconds_count\{group="scores",outcome="not_found"\} 1$/m,
      );
      expect(text).toMatch(/^# TYPE tinycache_peer_call_duration_seconds histogram$/m);
      expect(text).not.toMatch(/^tinycache_peer_call_duration_seconds_count/m);
      expect(text).toMatch(/^tinycache_group_loads_active\{group="scores"\} 0$/m);
      expect(text).toMatch(/^tinycache_demo_db_reads_total 2$/m);
      expect(text).toMatch(/^tinycache_demo_api_responses_total\{status="200"\} 1$/m);
      expect(text).toMatch(/^process_cpu_user_seconds_total /m);
      const stats = await (await fetch(`${base}/stats`)).json();
      expect(stats).toMatchObject({
        node: { port, self, transport: "http" },
        group: { name: "scores", stats: { gets: 2, localLoads: 2, notFounds: 1 } },
        db: { reads: 2 },
        api: { responses: { 200: 1, 404: 1, 400: 2, 405: 1 } },
      });
    }
    // The peer port still serves the transport beside /metrics and /stats.
    const peer = await fetch(`${self}/_groupcache/scores/Jack`);
    expect(peer.status).toBe(200);

    const slow = node.lines.filter((l) => l.includes("[SlowDB]")).map((l) => JSON.parse(l).msg);
    expect(slow).toEqual([
      "[SlowDB] search key Tom",
      "[SlowDB] search key nö body",
      "[SlowDB] search key Jack",
    ]);

    const closed = once(node.child, "close");
    node.child.kill("SIGINT");
    expect(await node.exited).toEqual({ code: 0, signal: null });
    await closed;
    expect(node.lines.some((l) => l.includes('"event":"stopped"'))).toBe(true);
  });

  it("a load slower than --api-timeout-ms answers 504; the node stays up", async () => {
    const port = await freePort();
    const apiPort = await freePort();
    const node = run([
      NODE,
      "--port",
      String(port),
      "--api",
      "--api-port",
      String(apiPort),
      "--peers",
      `http://127.0.0.1:${port}`,
      "--data-dir",
      dataDir,
      "--db-latency-ms",
      "60000",
      "--api-timeout-ms",
      "200",
    ]);
    await node.waitForLine(/"event":"ready"/);
    const api = `http://127.0.0.1:${apiPort}`;
    const slow = await fetch(`${api}/api?key=Tom`);
    expect([slow.status, await slow.text()]).toEqual([504, "timed out loading Tom\n"]);
    const health = await fetch(`${api}/healthz`);
    expect(health.status).toBe(200);
    const stats = (await (await fetch(`${api}/stats`)).json()) as { api: { responses: object } };
    expect(stats.api.responses).toEqual({ 504: 1 });
  });

  it("a busy port: a clear message and a non-zero exit", async () => {
    const blocker = createServer();
    const port = await freePort();
    await new Promise<void>((resolve) => blocker.listen(port, "127.0.0.1", resolve));
    try {
      const { code, out } = await outcome([
        NODE,
        "--port",
        String(port),
        "--peers",
        `http://127.0.0.1:${port}`,
        "--data-dir",
        dataDir,
      ]);
      expect(code).toBe(3);
      expect(out).toMatch(/failed to start: .*EADDRINUSE/);
    } finally {
      await new Promise((resolve) => blocker.close(resolve));
    }
  });
});

describe("keyOf", () => {
  it("reads the key as URLSearchParams does, fast path or not", async () => {
    const { keyOf } = await import("./api.js");
    const urls = [
      "/api?key=Tom",
      "/api?key=",
      "/api",
      "/api?",
      "/api?other=1",
      "/api?other=1&key=Jack",
      "/api?key=a%20b",
      "/api?key=a+b",
      "/api?key=%E2%9C%93",
      "/api?key=x&key=y",
      "/api?key=Tom#frag",
      "/api?key=é",
      "/api?k%65y=x",
      "/api?&&key=a&",
      "/api?key",
    ];
    for (const url of urls) {
      const q = url.indexOf("?");
      const expected = q < 0 ? null : new URLSearchParams(url.slice(q + 1)).get("key");
      expect({ url, key: keyOf(url) }).toEqual({ url, key: expected });
    }
  });

  it("refuses what URLSearchParams would turn into U+FFFD (distinct keys that alias)", async () => {
    const { keyOf, BadQueryError } = await import("./api.js");
    for (const url of [
      "/api?key=%FF",
      "/api?key=%EF%BF%BD%FF",
      "/api?key=%zz",
      "/api?key=a%2",
      "/api?key=%ED%A0%80", // a lone surrogate, encoded
      "/api?k%FFy=1&key=x",
    ]) {
      expect(() => keyOf(url), url).toThrow(BadQueryError);
    }
    // The real U+FFFD, encoded, is a key like any other.
    expect(keyOf("/api?key=%EF%BF%BD")).toBe("\uFFFD");
  });
});
