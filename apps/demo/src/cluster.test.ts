/**
 * End to end, as a user runs it: the launcher (`pnpm demo`'s dist/launch.js) with free
 * ports, three real node processes, requests through the API. Per transport.
 */
import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { HashRing } from "@tinycache/consistenthash";
import { freePort, isAlive, portIsFree, type Spawned, spawnNode } from "@tinycache/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CLASSIC_SCORES, generatedKey, generatedScore } from "./keys.js";

const LAUNCH = fileURLToPath(new URL("../dist/launch.js", import.meta.url));
const BURST = fileURLToPath(new URL("../dist/burst.js", import.meta.url));
/** Slow enough that 1,000 requests all arrive while the key loads; fast enough for tests. */
const DB_LATENCY_MS = 100;
/** The peer secret the launcher hands its nodes (given here; else it makes one). */
const SECRET = "cluster-test-secret";
const AUTH = { "x-tinycache-auth": SECRET };

interface Stats {
  node: { port: number; pid: number; self: string };
  group: { stats: Record<string, number> };
  db: { reads: number };
  /** Each remote peer's health as the node judges it. */
  peerHealth: { url: string; state: "healthy" | "unhealthy" }[];
}

interface Launched {
  proc: Spawned;
  ports: number[];
  apiPort: number;
  api: string;
  peers: string[];
  /** Owner of a key, computed as the transports do (consistenthash, groupcache defaults). */
  ownerOf: (key: string) => string;
  /** Every node pid seen (first starts and restarts). */
  pids: Set<number>;
}

async function distinctFreePorts(n: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < n) ports.add(await freePort());
  return [...ports];
}

function events(proc: Spawned): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (const l of proc.lines) {
    if (!l.startsWith("{")) continue;
    try {
      out.push(JSON.parse(l));
    } catch {
      // a partial or foreign line
    }
  }
  return out;
}

/** `[SlowDB]` lines for `key`, as `{ node: port }`. */
function slowDbReads(proc: Spawned, key: string): number[] {
  return events(proc)
    .filter((e) => e.msg === `[SlowDB] search key ${key}`)
    .map((e) => e.node as number);
}

/** A regex for a JSON log line having all these `"field":value` pairs, in any order. */
function lineWith(fields: Record<string, string | number>): RegExp {
  const parts = Object.entries(fields).map(([k, v]) => {
    const value = typeof v === "string" ? `"${v}"` : String(v);
    return `(?=.*"${k}":${value.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}[,}])`;
  });
  return new RegExp(`^${parts.join("")}`);
}

async function getText(url: string): Promise<{ status: number; body: string }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
  return { status: res.status, body: await res.text() };
}

async function stats(port: number): Promise<Stats> {
  const res = await fetch(`http://127.0.0.1:${port}/stats`, {
    headers: AUTH,
    signal: AbortSignal.timeout(5_000),
  });
  expect(res.status).toBe(200);
  return (await res.json()) as Stats;
}

async function dbReads(c: Launched): Promise<Map<string, number>> {
  const all = await Promise.all(c.ports.map((p) => stats(p)));
  return new Map(all.map((s) => [s.node.self, s.db.reads]));
}

describe.each(["http", "connect"] as const)("the demo cluster over %s", (transport) => {
  let dataDir = "";
  let c: Launched;

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), `tinycache-demo-${transport}-`));
    const [p1, p2, p3, apiPort] = await distinctFreePorts(4);
    const ports = [p1!, p2!, p3!];
    const proc = spawnNode(
      [
        LAUNCH,
        "--ports",
        ports.join(","),
        "--api-port",
        String(apiPort),
        "--transport",
        transport,
        "--data-dir",
        dataDir,
        "--db-latency-ms",
        String(DB_LATENCY_MS),
      ],
      { env: { LOG_PRETTY: "0", TINYCACHE_SECRET: SECRET } },
    );
    const pids = new Set<number>();
    c = {
      proc,
      ports,
      apiPort: apiPort!,
      api: `http://127.0.0.1:${apiPort}`,
      peers: ports.map((p) => `http://127.0.0.1:${p}`),
      ownerOf: () => "",
      pids,
    };
    const ring = new HashRing().add(...c.peers);
    c.ownerOf = (key) => ring.get(key)!;
    const ready = JSON.parse(await proc.waitForLine(/"event":"cluster_ready"/, 30_000));
    for (const n of ready.nodes as { pid: number }[]) pids.add(n.pid);
    expect(ready).toMatchObject({ transport, api: `http://localhost:${apiPort}` });
    expect((ready.nodes as { port: number }[]).map((n) => n.port)).toEqual(ports);
  });

  afterAll(async () => {
    // Whatever happened, leave nothing running: the launcher, then any node it left.
    await c?.proc.kill("SIGKILL");
    for (const pid of c?.pids ?? []) {
      if (isAlive(pid)) process.kill(pid, "SIGKILL");
    }
    rmSync(dataDir, { recursive: true, force: true });
  });

  it("answers Tom/Jack/Sam 630/589/567; unknown 404; no key 400; /healthz", async () => {
    for (const [name, score] of Object.entries(CLASSIC_SCORES)) {
      expect(await getText(`${c.api}/api?key=${name}`)).toEqual({ status: 200, body: score });
    }
    expect(await getText(`${c.api}/api?key=nobody`)).toEqual({
      status: 404,
      body: "nobody not exist",
    });
    // Cached negatively: asked again, the database is not read again.
    expect((await getText(`${c.api}/api?key=nobody`)).status).toBe(404);
    await c.proc.waitForLine(/\[SlowDB\] search key nobody"/);
    expect(slowDbReads(c.proc, "nobody")).toHaveLength(1);
    expect((await getText(`${c.api}/api`)).status).toBe(400);
    expect(await getText(`${c.api}/healthz`)).toEqual({ status: 200, body: "ok\n" });
  });

  it("reads every key from the database exactly once cluster-wide, on its owner", async () => {
    const keys = [
      "Tom",
      "Jack",
      "Sam",
      ...Array.from({ length: 30 }, (_, i) => generatedKey(10_001 + i)),
    ];
    const expected = (key: string) => CLASSIC_SCORES[key] ?? generatedScore(Number(key.slice(4)));
    // Tom/Jack/Sam were read by the previous test: count from here on.
    const before = await dbReads(c);
    // Three rounds, each concurrent: the first loads, the others hit the caches.
    for (let round = 0; round < 3; round++) {
      const answers = await Promise.all(keys.map((k) => getText(`${c.api}/api?key=${k}`)));
      expect(answers).toEqual(keys.map((k) => ({ status: 200, body: expected(k) })));
    }
    const after = await dbReads(c);
    const fresh = keys.slice(3);
    for (const peer of c.peers) {
      const owned = fresh.filter((k) => c.ownerOf(k) === peer).length;
      expect({ peer, reads: after.get(peer)! - before.get(peer)! }).toEqual({
        peer,
        reads: owned,
      });
    }
    // Every owner holds some of them (the ring spreads 30 keys over 3 nodes).
    expect(new Set(fresh.map(c.ownerOf)).size).toBe(3);
    // And the [SlowDB] lines say the same, key by key (the classic keys included).
    for (const key of keys) {
      await c.proc.waitForLine(new RegExp(`\\[SlowDB\\] search key ${key}"`));
      const port = Number(new URL(c.ownerOf(key)).port);
      expect({ key, readOn: slowDbReads(c.proc, key) }).toEqual({ key, readOn: [port] });
    }
  });

  it("1,000 concurrent requests for one cold key read the database once", async () => {
    const key = generatedKey(77_777);
    // The burst script, pointed at this cluster: 1,000 requests in flight at once.
    const burst = spawnNode(
      [
        BURST,
        "--start",
        "never",
        "--json",
        "--key",
        key,
        "--requests",
        "1000",
        "--api-port",
        String(c.apiPort),
        "--ports",
        c.ports.join(","),
      ],
      // The cluster's peer secret, for its /stats.
      { env: { LOG_PRETTY: "0", TINYCACHE_SECRET: SECRET } },
    );
    try {
      const summary = JSON.parse(await burst.waitForLine(/"event":"burst"/, 30_000));
      expect(summary).toMatchObject({
        key,
        requests: 1000,
        ok: 1000,
        answers: { [`200 "${generatedScore(77_777)}"`]: 1000 },
        dbReads: 1,
      });
      const owner = Number(new URL(c.ownerOf(key)).port);
      expect(summary.perNode).toContainEqual({ port: owner, reads: 1 });
      expect((await burst.exited).code).toBe(0);
    } finally {
      await burst.kill();
    }
    await c.proc.waitForLine(new RegExp(`\\[SlowDB\\] search key ${key}"`));
    expect(slowDbReads(c.proc, key)).toHaveLength(1);
    // The API node saw 1,000 gets and collapsed them into (at most) one load.
    const api = await stats(c.ports[2]!);
    expect(api.group.stats.gets).toBeGreaterThanOrEqual(1000);
  });

  it("peers authenticate: without the secret, peer calls and /stats get 401; /metrics stays open", async () => {
    expect(await getText(`${c.api}/api?key=Tom`)).toEqual({ status: 200, body: "630" });
    for (const port of c.ports) {
      const base = `http://127.0.0.1:${port}`;
      expect((await getText(`${base}/stats`)).status).toBe(401);
      const wrong = await fetch(`${base}/stats`, { headers: { "x-tinycache-auth": "guess" } });
      expect(wrong.status).toBe(401);
      expect((await getText(`${base}/metrics`)).status).toBe(200);
      expect((await getText(`${base}/healthz`)).status).toBe(200);
    }
    expect((await getText(`${c.api}/stats`)).status).toBe(401);
    const ok = await fetch(`${c.api}/stats`, { headers: AUTH });
    expect(ok.status).toBe(200);
    // The transports refuse an unauthenticated peer: nothing is set, nothing removed.
    const peer = c.peers[0]!;
    if (transport === "http") {
      const put = await fetch(`${peer}/_groupcache/scores/Tom`, { method: "PUT", body: "x" });
      expect(put.status).toBe(401);
      const del = await fetch(`${peer}/_groupcache/scores/Tom`, { method: "DELETE" });
      expect(del.status).toBe(401);
    } else {
      for (const method of ["Set", "Remove"]) {
        const res = await fetch(`${peer}/tinycache.v1.CacheService/${method}`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ group: "scores", key: "Tom", value: "eA==" }),
        });
        expect(res.status).toBe(401);
        expect(await res.json()).toMatchObject({ code: "unauthenticated" });
      }
    }
    expect(await getText(`${c.api}/api?key=Tom`)).toEqual({ status: 200, body: "630" });
  });

  it("every node serves /metrics (Prometheus) and /stats (JSON)", async () => {
    for (const port of c.ports) {
      const { status, body } = await getText(`http://127.0.0.1:${port}/metrics`);
      expect(status).toBe(200);
      expect(body).toMatch(/^tinycache_group_gets_total\{group="scores"\} \d+$/m);
      expect(body).toMatch(/^tinycache_group_server_requests_total\{group="scores"\} \d+$/m);
      expect(body).toMatch(/^tinycache_cache_bytes\{group="scores",cache="main"\} \d+$/m);
      expect(body).toMatch(/^tinycache_cache_evictions_total\{group="scores",cache="hot"\} 0$/m);
      expect(body).toMatch(/^tinycache_demo_db_reads_total [1-9]\d*$/m);
      expect(body).toMatch(/^nodejs_heap_size_used_bytes /m);
      expect(body).toMatch(/^# TYPE tinycache_peer_call_duration_seconds histogram$/m);
      const s = await stats(port);
      expect(s.node.port).toBe(port);
      // Owners answer the API node's peer requests (the API node itself is asked by nobody).
      if (port !== c.ports[2]) {
        expect(s.group.stats.serverRequests).toBeGreaterThan(0);
        // ... reading their database for it, each read timed.
        expect(body).toMatch(
          /^tinycache_load_duration_seconds_count\{group="scores",outcome="ok"\} [1-9]\d*$/m,
        );
      } else {
        // The API node timed its calls to each owner, labelled by the owner's URL.
        for (const owner of c.ports.slice(0, 2)) {
          const peer = `http://127.0.0.1:${owner}`.replaceAll(".", "\\.");
          expect(body).toMatch(
            new RegExp(
              `^tinycache_peer_call_duration_seconds_count\\{group="scores",peer="${peer}",outcome="ok"\\} [1-9]\\d*$`,
              "m",
            ),
          );
        }
      }
    }
    expect((await getText(`${c.api}/metrics`)).status).toBe(200);
  });

  it("a node SIGKILLed under load: zero failed requests; restarted, it owns its keys again", async () => {
    const victim = c.ports[0]!; // not the API node (the last one)
    const victimUrl = `http://127.0.0.1:${victim}`;
    const oldPid = (await stats(victim)).node.pid;
    // A steady, bounded loop of fresh (cold) keys: a third of them owned by the victim,
    // so the API node keeps asking it, before, during and after its death.
    let next = 50_000;
    let done = 0;
    let stop = false;
    const failures: string[] = [];
    const waiters: { at: number; resolve: () => void }[] = [];
    const completed = (n: number) =>
      new Promise<void>((resolve) => {
        const at = done + n;
        waiters.push({ at, resolve });
      });
    const worker = async () => {
      while (!stop) {
        const i = next++;
        try {
          const r = await getText(`${c.api}/api?key=${generatedKey(i)}`);
          if (r.status !== 200 || r.body !== generatedScore(i)) {
            failures.push(`${generatedKey(i)}: ${r.status} ${r.body}`);
          }
        } catch (err) {
          failures.push(`${generatedKey(i)}: ${String(err)}`);
        }
        done++;
        for (const w of waiters.filter((w) => done >= w.at)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve();
        }
      }
    };
    const workers = Array.from({ length: 4 }, worker);
    try {
      await completed(12);
      process.kill(oldPid, "SIGKILL");
      await c.proc.waitForLine(lineWith({ event: "node_exited", port: victim }), 10_000);
      const back = JSON.parse(
        await c.proc.waitForLine(lineWith({ event: "node_ready", port: victim, start: 2 }), 20_000),
      );
      c.pids.add(back.childPid);
      expect(back.childPid).not.toBe(oldPid);
      await completed(24);
    } finally {
      stop = true;
      await Promise.all(workers);
    }
    expect(failures).toEqual([]);
    expect(done).toBeGreaterThanOrEqual(36);
    // The survivors loaded the victim's keys themselves while it was down.
    const apiStats = await stats(c.ports[2]!);
    expect(apiStats.group.stats.peerErrors).toBeGreaterThan(0);

    // Back: once the API node judges the victim healthy again (its probe rides on a
    // request for one of the victim's keys, so ask some until then), a fresh key the
    // victim owns is read from the database on the victim only.
    let k = 90_000;
    const victimKey = (): string => {
      while (c.ownerOf(generatedKey(k)) !== victimUrl) k++;
      return generatedKey(k++);
    };
    const healthy = async () =>
      (await stats(c.ports[2]!)).peerHealth.find((p) => p.url === victimUrl)?.state === "healthy";
    const deadline = Date.now() + 15_000;
    while (!(await healthy())) {
      if (Date.now() > deadline) throw new Error(`${victimUrl} never judged healthy again`);
      expect((await getText(`${c.api}/api?key=${victimKey()}`)).status).toBe(200);
    }
    while (c.ownerOf(generatedKey(k)) !== victimUrl) k++;
    const before = await dbReads(c);
    expect(await getText(`${c.api}/api?key=${generatedKey(k)}`)).toEqual({
      status: 200,
      body: generatedScore(k),
    });
    const after = await dbReads(c);
    for (const peer of c.peers) {
      expect({ peer, reads: after.get(peer)! - before.get(peer)! }).toEqual({
        peer,
        reads: peer === victimUrl ? 1 : 0,
      });
    }
    const revived = await stats(victim);
    expect(revived.node.pid).toBe(latestPid(c, victim));
    expect(revived.group.stats.serverRequests).toBeGreaterThan(0);
  });

  it("SIGTERM to the launcher stops every process within seconds, ports freed", async () => {
    const closed = once(c.proc.child, "close");
    c.proc.child.kill("SIGTERM");
    const { code, signal } = await c.proc.exited;
    expect({ code, signal }).toEqual({ code: 0, signal: null });
    await closed;
    expect(c.proc.lines.some((l) => l.includes('"event":"stopped"'))).toBe(true);
    // The launcher waits for its children before it exits: none may be left.
    expect([...c.pids].filter(isAlive)).toEqual([]);
    for (const port of [...c.ports, c.apiPort]) expect(await portIsFree(port)).toBe(true);
  }, 15_000);
});

/** The pid of the latest start of the node on `port`, from the launcher's log. */
function latestPid(c: Launched, port: number): number {
  const starts = events(c.proc).filter((e) => e.event === "node_ready" && e.port === port);
  return starts[starts.length - 1]!.childPid as number;
}
