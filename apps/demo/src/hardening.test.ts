/**
 * What an operator (or an attacker) probing a node's ports finds: authentication and a
 * safe default for non-loopback addresses, connection limits, bodies refused unread,
 * strict key decoding, h2c on the Connect port, and no process left behind when the
 * parent of `pnpm demo` is told to stop. Real processes, free ports, loopback only.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
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

describe("pnpm demo and SIGTERM", () => {
  it.skipIf(pnpmVersion === undefined)(
    `SIGTERM to the pnpm process frees every port within 5 s${pnpmVersion === undefined ? " (skipped: no pnpm on PATH)" : ""}`,
    async () => {
      const ports: number[] = [];
      while (ports.length < 4) {
        const p = await freePort();
        if (!ports.includes(p)) ports.push(p);
      }
      const [p1, p2, p3, apiPort] = ports as [number, number, number, number];
      const demoDir = mkdtempSync(join(tmpdir(), "tinycache-pnpm-demo-"));
      // `pnpm demo` itself, as a user runs it: pnpm, its script shell, the launcher, nodes.
      const pnpm: ChildProcess = spawn(
        "pnpm",
        [
          "demo",
          "--",
          ...["--ports", `${p1},${p2},${p3}`, "--api-port", String(apiPort)],
          ...["--data-dir", demoDir],
        ],
        { cwd: ROOT, env: { ...process.env, LOG_PRETTY: "0" }, stdio: ["ignore", "pipe", "pipe"] },
      );
      const lines: string[] = [];
      const waiters: { re: RegExp; resolve: (l: string) => void }[] = [];
      const onLine = (l: string) => {
        lines.push(l);
        for (const w of waiters.splice(0)) {
          if (w.re.test(l)) w.resolve(l);
          else waiters.push(w);
        }
      };
      // The launcher keeps writing to these pipes after pnpm itself has exited.
      if (pnpm.stdout) createInterface({ input: pnpm.stdout }).on("line", onLine);
      if (pnpm.stderr) createInterface({ input: pnpm.stderr }).on("line", onLine);
      const line = (re: RegExp, timeoutMs: number) =>
        new Promise<string>((resolve, reject) => {
          const seen = lines.find((l) => re.test(l));
          if (seen !== undefined) return resolve(seen);
          const timer = setTimeout(
            () => reject(new Error(`no ${re} within ${timeoutMs} ms:\n${lines.join("\n")}`)),
            timeoutMs,
          );
          waiters.push({
            re,
            resolve: (l) => {
              clearTimeout(timer);
              resolve(l);
            },
          });
        });
      const pids: number[] = [];
      try {
        const ready = JSON.parse(await line(/"event":"cluster_ready"/, 60_000));
        pids.push(ready.launcherPid, ...ready.nodes.map((n: { pid: number }) => n.pid));
        expect(await (await fetch(`http://127.0.0.1:${apiPort}/api?key=Tom`)).text()).toBe("630");

        const started = performance.now();
        pnpm.kill("SIGTERM");
        await line(/"event":"stopped","msg":"all nodes stopped"|all nodes stopped/, 5_000);
        for (const port of ports) expect(await portIsFree(port), `port ${port}`).toBe(true);
        const ms = performance.now() - started;
        expect(ms).toBeLessThan(5_000);
        // The launcher exits right after its last line; every node already has.
        for (const pid of pids.slice(1)) expect(isAlive(pid), `node ${pid}`).toBe(false);
      } finally {
        if (pnpm.exitCode === null && pnpm.signalCode === null) pnpm.kill("SIGKILL");
        for (const pid of pids) if (isAlive(pid)) process.kill(pid, "SIGKILL");
        rmSync(demoDir, { recursive: true, force: true });
      }
    },
    90_000,
  );
});
