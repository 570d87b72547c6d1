/**
 * The cluster benchmark's Redis contender must give the demo API's answers, or its speed
 * means nothing: a smoke test against a real redis-server (Debian's; the suite skips,
 * saying so in its title, where there is none).
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { freePort } from "@tinycache/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { seedDatabase } from "../src/db.js";
import { generatedScore } from "../src/keys.js";
import { getText, waitHttp } from "./cluster-procs.js";

const haveRedis = spawnSync("redis-server", ["--version"], { stdio: "ignore" }).error === undefined;
const title = haveRedis
  ? "Redis + ioredis cache-aside API (bench contender)"
  : "Redis + ioredis cache-aside API (SKIPPED: redis-server is not installed; apt-get install -y redis-server)";
const REDIS_API = fileURLToPath(new URL("./redis-api.ts", import.meta.url));
const DEMO_DIR = fileURLToPath(new URL("..", import.meta.url));

describe.skipIf(!haveRedis)(title, () => {
  const children: ChildProcess[] = [];
  let dir = "";
  let api = "";

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "tinycache-redis-api-"));
    seedDatabase(dir);
    const redisPort = await freePort();
    const apiPort = await freePort();
    const redisArgs = ["--port", String(redisPort), "--bind", "127.0.0.1", "--save", ""];
    children.push(spawn("redis-server", [...redisArgs, "--appendonly", "no"], { stdio: "ignore" }));
    // A stdin pipe: the API exits when it closes (it follows the benchmark's life).
    const apiArgs = ["--import", "tsx", REDIS_API, "--port", String(apiPort)];
    apiArgs.push("--redis-port", String(redisPort), "--data-dir", dir);
    const child = spawn(process.execPath, apiArgs, {
      cwd: DEMO_DIR,
      stdio: ["pipe", "ignore", "inherit"],
    });
    children.push(child);
    api = `http://127.0.0.1:${apiPort}`;
    await waitHttp(`${api}/healthz`, child);
  });

  afterAll(async () => {
    await Promise.all(
      children.map(async (c) => {
        if (c.exitCode !== null || c.signalCode !== null) return;
        const exited = once(c, "exit");
        c.kill("SIGKILL");
        await exited;
      }),
    );
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("answers as the demo API: a score, twice (the second from Redis)", async () => {
    expect(await getText(`${api}/api?key=Tom`)).toBe("630");
    expect(await getText(`${api}/api?key=Tom`)).toBe("630");
    expect(await getText(`${api}/api?key=user000001`)).toBe(generatedScore(1));
  });

  it("answers 404 for an unknown key and 400 without one", async () => {
    const missing = await fetch(`${api}/api?key=nobody`);
    expect([missing.status, await missing.text()]).toEqual([404, "nobody not exist"]);
    const bare = await fetch(`${api}/api`);
    expect(bare.status).toBe(400);
    expect(await bare.text()).toMatch(/missing query parameter: key/);
    const bad = await fetch(`${api}/api?key=%FF`);
    expect(bad.status).toBe(400);
  });

  it("exits when its stdin closes (the benchmark is gone)", async () => {
    const child = children[1] as ChildProcess;
    const exited = once(child, "exit");
    child.stdin?.end();
    const [code] = (await exited) as [number | null];
    expect(code).toBe(0);
  });
});
