/**
 * What an operator (or an attacker) probing a node's ports finds: authentication and a
 * safe default for non-loopback addresses, connection limits, bodies refused unread,
 * strict key decoding, h2c on the Connect port, and no process left behind when the
 * parent of `pnpm demo` is told to stop. Real processes, free ports, loopback only.
 */
import { execFileSync } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { GroupRegistry } from "@tinycache/core";
import {
  fileDescriptorLimit,
  freePort,
  isAlive,
  openIdleConnections,
  portIsFree,
  runNode,
  type Spawned,
  sendLargeBody,
  spawnCommand,
  spawnNode,
} from "@tinycache/testkit";
import { ConnectPool } from "@tinycache/transport-connect";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { isLoopbackHost, parseSecret } from "./cli.js";

const NODE = fileURLToPath(new URL("../dist/node.js", import.meta.url));
const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const SECRET = "hardening-test-secret";

const spawned: Spawned[] = [];
afterEach(async () => {
  await Promise.all(spawned.splice(0).map((p) => p.kill()));
});

let dataDir = "";
beforeAll(() => {
  dataDir = mkdtempSync(join(tmpdir(), "tinycache-demo-hardening-"));
});
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

/** One node with the API, its own only peer, on free loopback ports. */
async function startNode(extra: string[] = [], env: NodeJS.ProcessEnv = {}) {
  const port = await freePort();
  const apiPort = await freePort();
  const self = `http://127.0.0.1:${port}`;
  const node = spawnNode(
    [
      NODE,
      ...["--port", String(port), "--api", "--api-port", String(apiPort)],
      ...["--peers", self, "--data-dir", dataDir],
      ...extra,
    ],
    { env: { LOG_PRETTY: "0", ...env } },
  );
  spawned.push(node);
  await node.waitForLine(/"event":"ready"/);
  return { node, port, apiPort, self, api: `http://127.0.0.1:${apiPort}` };
}

/** Runs a node command line to its end (no secret from our own environment): exit code and output. */
function outcome(args: string[], env: NodeJS.ProcessEnv = {}) {
  return runNode(args, { env: { LOG_PRETTY: "0", TINYCACHE_SECRET: undefined, ...env } });
}

describe("authentication and safe defaults", () => {
  it("isLoopbackHost and parseSecret", () => {
    for (const h of ["127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost"]) {
      expect(isLoopbackHost(h), h).toBe(true);
    }
    for (const h of ["0.0.0.0", "::", "10.0.0.1", "192.168.1.2", "example.com"]) {
      expect(isLoopbackHost(h), h).toBe(false);
    }
    expect(parseSecret("secret", undefined, {})).toBeUndefined();
    expect(parseSecret("secret", undefined, { TINYCACHE_SECRET: "e" })).toBe("e");
    expect(parseSecret("secret", "f", { TINYCACHE_SECRET: "e" })).toBe("f");
    expect(() => parseSecret("secret", "has space", {})).toThrow(/printable ASCII/);
    expect(() => parseSecret("secret", undefined, { TINYCACHE_SECRET: "" })).toThrow(
      /TINYCACHE_SECRET is empty/,
    );
  });

  it.each(["0.0.0.0", "::"])(
    "a node on %s without a secret or --insecure refuses to start, saying why (exit 2)",
    async (host) => {
      // Refused while reading the flags: nothing is ever bound.
      const port = await freePort();
      const { code, out } = await outcome([
        NODE,
        ...["--host", host, "--port", String(port), "--self", `http://127.0.0.1:${port}`],
        ...["--peers", `http://127.0.0.1:${port}`, "--data-dir", dataDir],
      ]);
      expect(code).toBe(2);
      expect(out).toContain(`--host ${host} is not a loopback address, and no peer secret is set`);
      expect(out).toMatch(/TINYCACHE_SECRET \(or --secret\).*or pass --insecure/);
      expect(out).toMatch(/Try 'tinycache-node --help'/);
    },
  );

  it("--help documents the secret, --insecure and the limits", async () => {
    const { code, out } = await outcome([NODE, "--help"]);
    expect(code).toBe(0);
    for (const flag of [
      "--secret",
      "--insecure",
      "--max-connections",
      "--headers-timeout-ms",
      "--request-timeout-ms",
      "--keep-alive-timeout-ms",
      "TINYCACHE_SECRET",
    ]) {
      expect(out).toContain(flag);
    }
  });

  it("bad limits are usage errors", async () => {
    for (const [args, message] of [
      [["--max-connections", "0"], /--max-connections must be at least 1/],
      [["--headers-timeout-ms", "x"], /--headers-timeout-ms must be an integer/],
      [
        ["--headers-timeout-ms", "5000", "--request-timeout-ms", "1000"],
        /--headers-timeout-ms \(5000\) must not exceed --request-timeout-ms \(1000\)/,
      ],
    ] as const) {
      const { code, out } = await outcome([NODE, ...args]);
      expect(code).toBe(2);
      expect(out).toMatch(message);
    }
  });

  it("with TINYCACHE_SECRET: the API works, /stats wants the secret, peers without it get 401", async () => {
    const { api, self } = await startNode([], { TINYCACHE_SECRET: SECRET });
    expect(await (await fetch(`${api}/api?key=Tom`)).text()).toBe("630");
    for (const base of [self, api]) {
      expect((await fetch(`${base}/stats`)).status).toBe(401);
      const ok = await fetch(`${base}/stats`, { headers: { "x-tinycache-auth": SECRET } });
      expect(ok.status).toBe(200);
      expect(((await ok.json()) as { node: { self: string } }).node.self).toBe(self);
      expect((await fetch(`${base}/metrics`)).status).toBe(200);
    }
    expect((await fetch(`${self}/_groupcache/scores/Tom`)).status).toBe(401);
    const authed = await fetch(`${self}/_groupcache/scores/Tom`, {
      headers: { "x-tinycache-auth": SECRET },
    });
    expect(authed.status).toBe(200);
  });
});

describe("the API decodes keys strictly and reads no body", () => {
  it("%FF, %zz and encoded surrogates are 400 with a message; U+FFFD itself is a key", async () => {
    const { api } = await startNode();
    for (const q of ["%FF", "Tom%FF", "%zz", "%ED%A0%80"]) {
      const res = await fetch(`${api}/api?key=${q}`);
      expect(res.status, q).toBe(400);
      expect(await res.text()).toMatch(/^bad request: the key is not valid percent-encoded UTF-8/);
    }
    const replacement = await fetch(`${api}/api?key=%EF%BF%BD`);
    expect([replacement.status, await replacement.text()]).toEqual([404, "\uFFFD not exist"]);
  });

  it.each([
    ["declared by Content-Length", true],
    ["chunked", false],
  ])("a 100 MB POST (%s) is refused without being read", async (_, contentLength) => {
    const { apiPort, api } = await startNode();
    const total = 100 * 1024 * 1024;
    const out = await sendLargeBody(apiPort, {
      path: "/api?key=Tom",
      totalBytes: total,
      contentLength,
    });
    expect(out.cutOff).toBe(true);
    expect(out.sentBytes).toBeLessThan(total / 4);
    if (out.status !== undefined) expect(out.status).toBe(405);
    expect(await (await fetch(`${api}/api?key=Tom`)).text()).toBe("630");
  });
});

const needed = 2 * 1000 + 200;
const fds = await fileDescriptorLimit();
const enough = fds === undefined || fds >= needed;

describe("connection limits", () => {
  it.skipIf(!enough)(
    `1,000 silent connections to the API are closed after --headers-timeout-ms; the API answers meanwhile${enough ? "" : ` (skipped: ulimit -n is ${fds}, below ${needed})`}`,
    async () => {
      const { apiPort, api, port } = await startNode(["--headers-timeout-ms", "500"]);
      for (const p of [apiPort, port]) {
        const idle = await openIdleConnections(p, 1000);
        try {
          expect(await (await fetch(`${api}/api?key=Tom`)).text()).toBe("630");
          await idle.allClosed;
        } finally {
          idle.destroy();
        }
      }
    },
  );
});

describe("the API port's lean lane in a real node", () => {
  it("answers pipelined /api requests in order, and hands a head dripped in pieces to node:http, which closes it after --headers-timeout-ms", async () => {
    const { apiPort, api } = await startNode(["--headers-timeout-ms", "500"]);
    const piped = connect(apiPort, "127.0.0.1");
    let text = "";
    piped.on("data", (d: Buffer) => {
      text += d.toString();
    });
    piped.write(
      ["Tom", "nobody", "Jack"]
        .map((k) => `GET /api?key=${k} HTTP/1.1\r\nHost: x\r\n\r\n`)
        .join(""),
    );
    while (!text.endsWith("589")) await once(piped, "data");
    expect(text.match(/HTTP\/1\.1 \d+/g)).toEqual(["HTTP/1.1 200", "HTTP/1.1 404", "HTTP/1.1 200"]);
    expect(text).toMatch(/\r\n\r\n630HTTP[\s\S]*nobody not existHTTP[\s\S]*\r\n\r\n589$/);
    piped.destroy();

    // Half a head: node:http gets it, and its header clock closes the connection.
    const drip = connect(apiPort, "127.0.0.1");
    drip.on("error", () => {});
    drip.write("GET /api?key=Tom HTTP/1.1\r\nHo");
    const closed = once(drip, "close");
    let dripped = "";
    drip.on("data", (d: Buffer) => {
      dripped += d.toString();
    });
    expect(await (await fetch(`${api}/api?key=Jack`)).text()).toBe("589");
    await closed;
    expect(dripped).toMatch(/^HTTP\/1\.1 408 /);
  });
});

describe("the Connect port speaks HTTP/1.1 and h2c", () => {
  it.each([
    ["gRPC", { protocol: "grpc" }],
    ["Connect over HTTP/2", { protocol: "connect", httpVersion: "2" }],
    ["Connect over HTTP/1.1", { protocol: "connect", httpVersion: "1.1" }],
  ] as const)("a %s client gets Tom from a demo node", async (_, v) => {
    const { self, api } = await startNode(["--transport", "connect"], {
      TINYCACHE_SECRET: SECRET,
    });
    const client = new ConnectPool({
      self: "http://127.0.0.1:1",
      registry: new GroupRegistry(),
      auth: { secret: SECRET },
      timeoutMs: 10_000,
      ...v,
    });
    try {
      client.setPeers(self);
      const got = await client.peers()[0]!.get({ group: "scores", key: "Tom" });
      expect(Buffer.from(got.value).toString()).toBe("630");
    } finally {
      await client.close();
    }
    // /stats and the API still work beside it.
    const stats = await fetch(`${self}/stats`, { headers: { "x-tinycache-auth": SECRET } });
    expect(stats.status).toBe(200);
    expect(await (await fetch(`${api}/api?key=Jack`)).text()).toBe("589");
  });
});

let pnpmVersion: string | undefined;
try {
  pnpmVersion = execFileSync("pnpm", ["--version"], { encoding: "utf8" }).trim();
} catch {
  pnpmVersion = undefined;
}
const noPnpm = pnpmVersion === undefined ? "no pnpm on PATH" : undefined;
const skipped = noPnpm === undefined ? "" : ` (skipped: ${noPnpm})`;

interface PnpmDemo {
  proc: Spawned;
  /** Three peer ports, then the API port. */
  ports: number[];
  /** Every output line has been read (pnpm and the launcher closed their ends). */
  closed: Promise<unknown>;
}

/**
 * `pnpm demo` itself, as a user runs it (pnpm, its script shell, the launcher, the nodes),
 * on free ports, leading a process group of its own as a terminal's foreground job does:
 * `process.kill(-pid, "SIGINT")` is a Ctrl-C.
 */
async function startPnpmDemo(demoDir: string): Promise<PnpmDemo> {
  const ports: number[] = [];
  while (ports.length < 4) {
    const p = await freePort();
    if (!ports.includes(p)) ports.push(p);
  }
  const [p1, p2, p3, apiPort] = ports as [number, number, number, number];
  const proc = spawnCommand(
    "pnpm",
    [
      "demo",
      "--",
      ...["--ports", `${p1},${p2},${p3}`, "--api-port", String(apiPort)],
      ...["--data-dir", demoDir],
    ],
    { cwd: ROOT, env: { LOG_PRETTY: "0" }, detached: true },
  );
  return { proc, ports, closed: once(proc.child, "close") };
}

/** pnpm's exit after a stop: code 0, no "ELIFECYCLE Command failed", every port free. */
async function expectCleanExit(demo: PnpmDemo, pids: readonly number[]): Promise<void> {
  const [{ code, signal }] = await Promise.all([demo.proc.exited, demo.closed]);
  const out = demo.proc.lines.join("\n");
  expect({ code, signal }, out).toEqual({ code: 0, signal: null });
  expect(out).not.toContain("ELIFECYCLE");
  for (const port of demo.ports) expect(await portIsFree(port), `port ${port}`).toBe(true);
  for (const pid of pids) expect(isAlive(pid), `process ${pid}`).toBe(false);
}

/** The launcher's and the nodes' pids, from its ready line. */
function pidsOf(readyLine: string): number[] {
  const ready = JSON.parse(readyLine) as { launcherPid: number; nodes: { pid: number }[] };
  return [ready.launcherPid, ...ready.nodes.map((n) => n.pid)];
}

describe("pnpm demo stops cleanly", () => {
  const demoDirs: string[] = [];
  const demoDir = () => {
    const d = mkdtempSync(join(tmpdir(), "tinycache-pnpm-demo-"));
    demoDirs.push(d);
    return d;
  };
  afterAll(() => {
    for (const d of demoDirs) rmSync(d, { recursive: true, force: true });
  });

  it.skipIf(noPnpm)(
    `SIGTERM to the pnpm process alone frees every port within 5 s, exit 0${skipped}`,
    async () => {
      const demo = await startPnpmDemo(demoDir());
      try {
        const pids = pidsOf(await demo.proc.waitForLine(/"event":"cluster_ready"/, 60_000));
        const apiPort = demo.ports[3]!;
        expect(await (await fetch(`http://127.0.0.1:${apiPort}/api?key=Tom`)).text()).toBe("630");

        const started = performance.now();
        demo.proc.child.kill("SIGTERM");
        await demo.proc.waitForLine(/"event":"stopped","msg":"all nodes stopped"/, 5_000);
        for (const port of demo.ports) expect(await portIsFree(port), `port ${port}`).toBe(true);
        expect(performance.now() - started).toBeLessThan(5_000);
        await expectCleanExit(demo, pids);
      } finally {
        await demo.proc.kill("SIGKILL");
      }
    },
    90_000,
  );

  // A terminal's Ctrl-C signals its whole foreground group: pnpm, the launcher and the
  // nodes alike, and pnpm forwards its SIGINT to the launcher once more. One Ctrl-C must
  // still be one graceful stop (no "second Ctrl-C" SIGKILL of the nodes).
  it.skipIf(noPnpm).each(["SIGINT", "SIGTERM"] as const)(
    `%s to pnpm's whole process group: every node stops gracefully, exit 0, no ELIFECYCLE${skipped}`,
    async (signal) => {
      const demo = await startPnpmDemo(demoDir());
      try {
        const pids = pidsOf(await demo.proc.waitForLine(/"event":"cluster_ready"/, 60_000));
        process.kill(-demo.proc.child.pid!, signal);
        await expectCleanExit(demo, pids);
        const lines = demo.proc.lines;
        for (const port of demo.ports.slice(0, 3)) {
          expect(
            lines.some((l) => l.includes(`"node":${port},"event":"stopped"`)),
            `node ${port} stopped itself`,
          ).toBe(true);
        }
        expect(lines.filter((l) => l.includes('"event":"forced_stop"'))).toEqual([]);
        expect(lines.some((l) => l.includes('"msg":"all nodes stopped"'))).toBe(true);
      } finally {
        await demo.proc.kill("SIGKILL");
      }
    },
    90_000,
  );

  it.skipIf(noPnpm)(
    `Ctrl-C while the launcher is still creating the database: exit 0, no ELIFECYCLE${skipped}`,
    async () => {
      // A fresh data folder: the launcher seeds 200,000 rows (about half a second, in
      // synchronous code) before any node starts. Its signal handlers must already be set.
      const demo = await startPnpmDemo(demoDir());
      try {
        await demo.proc.waitForLine(/"event":"db_seeding"/, 60_000);
        process.kill(-demo.proc.child.pid!, "SIGINT");
        await expectCleanExit(demo, []);
        expect(demo.proc.lines.some((l) => l.includes('"event":"cluster_ready"'))).toBe(false);
      } finally {
        await demo.proc.kill("SIGKILL");
      }
    },
    90_000,
  );
});
