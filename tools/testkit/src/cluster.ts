/**
 * The 3-process cluster suite that every peer transport must pass (issue 5, section 4).
 *
 * A transport provides a *node entry*: a TypeScript file run as
 * `node --import tsx <entry> --port <peerPort> --peers <url1,url2,url3> --self <url>
 * --client-port <port>` that
 * - creates a GroupRegistry with a group "scores" whose getter answers from a fixed map
 *   (Tom -> 630, Jack -> 589, Sam -> 567, `k<N>` -> `v<N>` for any decimal N; any other
 *   key -> NotFoundError), printing one JSON line `{"event":"load","key":<key>}` to
 *   stdout per getter call;
 * - builds the transport's pool with `self` = --self and the ring = exactly the --peers
 *   URLs (strings as given, in that order; default ring options), registers it as the
 *   registry's peers, and serves the peer protocol on 127.0.0.1:--port;
 * - serves a control HTTP/1.1 server on 127.0.0.1:--client-port:
 *   `GET /get?key=K` -> group.get: 200 with the value (UTF-8) | 404 (NotFoundError) | 500;
 *   `POST /set?key=K&value=V` -> group.set(K, V): 200 | 500;
 *   `POST /remove?key=K` -> group.remove(K): 200 with the RemoveResult as JSON | 500;
 *   `GET /stats` -> 200 JSON of group.stats;
 * - prints `{"event":"ready"}` once both servers listen.
 *
 * The suite starts 3 such processes on free ports and checks owner routing (each key
 * loaded exactly once cluster-wide, on its owner), not-found passing, set + remove
 * broadcast, a SIGKILLed peer (its keys load locally, no failed gets) and the same peer
 * restarted on its port (its keys route to it again). Every process is killed in afterAll.
 */
import { dirname } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort, type Spawned, spawnNode } from "./proc.ts";

/** Options of {@link clusterSuite}. */
export interface ClusterSuiteOptions {
  /**
   * The owner of `key` on a ring of `urls` with the transport's default ring options,
   * e.g. `(key, urls) => new HashRing().add(...urls).get(key)` (@tinycache/consistenthash).
   * Passed in because testkit depends on no package of ours.
   */
  ownerOf: (key: string, urls: readonly string[]) => string | undefined;
  /** Working directory of the node processes. Default: the entry's directory. */
  cwd?: string;
  /** Extra environment for the node processes. */
  env?: NodeJS.ProcessEnv;
  /** How long a node may take to print ready, in ms. Default 20_000. */
  startTimeoutMs?: number;
}

/** One node of the cluster as the suite drives it. */
interface Node {
  index: number;
  port: number;
  clientPort: number;
  url: string;
  proc: Spawned;
}

interface Answer {
  status: number;
  body: string;
}

/** One control request (fetch: a fresh connection each time is fine here). */
async function control(node: Node, method: string, path: string): Promise<Answer> {
  const res = await fetch(`http://127.0.0.1:${node.clientPort}${path}`, {
    method,
    signal: AbortSignal.timeout(10_000),
  });
  return { status: res.status, body: await res.text() };
}

const getKey = (n: Node, key: string) => control(n, "GET", `/get?key=${encodeURIComponent(key)}`);

/** Keys this process loaded, from its `{"event":"load"}` lines. */
function loadsOf(proc: Spawned): string[] {
  const out: string[] = [];
  for (const line of proc.lines) {
    if (!line.startsWith("{")) continue;
    try {
      const ev = JSON.parse(line) as { event?: unknown; key?: unknown };
      if (ev.event === "load" && typeof ev.key === "string") out.push(ev.key);
    } catch {
      // not one of ours
    }
  }
  return out;
}

/** Matches the `{"event":"load","key":...}` line of `key` (JSON.stringify spelling, which Go's encoder shares for keys without &<> or U+2028/9). */
export const loadLine = (key: string): RegExp =>
  new RegExp(`"event":"load","key":${JSON.stringify(key).replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}}`);

const expected = (key: string): string => {
  const fixed: Record<string, string> = { Tom: "630", Jack: "589", Sam: "567" };
  return fixed[key] ?? `v${key.slice(1)}`;
};

/**
 * Declares the shared cluster tests for one transport (call it at the top level of a
 * `*.test.ts` file). See the file comment for the node entry's contract.
 */
export function clusterSuite(
  transportName: string,
  nodeEntry: string,
  options: ClusterSuiteOptions,
): void {
  const { ownerOf, env, startTimeoutMs = 20_000 } = options;
  const cwd = options.cwd ?? dirname(nodeEntry);
  const nodes: Node[] = [];
  let urls: string[] = [];
  /** Every process ever spawned, so afterAll kills restarted ones too. */
  const spawned: Spawned[] = [];

  const start = async (n: Omit<Node, "proc">): Promise<Node> => {
    const proc = spawnNode(
      [
        "--import",
        "tsx",
        nodeEntry,
        "--port",
        String(n.port),
        "--peers",
        urls.join(","),
        "--self",
        n.url,
        "--client-port",
        String(n.clientPort),
      ],
      { cwd, env: env ?? {} },
    );
    spawned.push(proc);
    await proc.waitForLine(/"event":"ready"/, startTimeoutMs);
    return { ...n, proc };
  };

  /** Fresh `k<N>` keys (never asked before) owned by `owner`. */
  let nextK = 10_000;
  const freshKeysOwnedBy = (owner: string, count: number): string[] => {
    const out: string[] = [];
    while (out.length < count) {
      const key = `k${nextK++}`;
      if (ownerOf(key, urls) === owner) out.push(key);
    }
    return out;
  };

  /** Which nodes loaded `key`, as indexes (0-2), counted once per load. */
  const loaders = (key: string): number[] =>
    nodes.flatMap((n) =>
      loadsOf(n.proc)
        .filter((k) => k === key)
        .map(() => n.index),
    );

  /**
   * Asserts that exactly the nodes `who` (indexes, with repeats for repeated loads) loaded
   * `key`. A child's stdout can trail its HTTP answer, so first wait for each expected line.
   */
  const expectLoads = async (key: string, who: number[], what: string): Promise<void> => {
    for (const i of new Set(who)) await (nodes[i] as Node).proc.waitForLine(loadLine(key), 5_000);
    expect(loaders(key).sort(), what).toEqual([...who].sort());
  };

  describe(`cluster of 3 processes (${transportName})`, () => {
    beforeAll(async () => {
      const ports: number[] = [];
      for (let i = 0; i < 6; i++) ports.push(await freePort());
      urls = [0, 1, 2].map((i) => `http://127.0.0.1:${ports[i]}`);
      const started = await Promise.all(
        [0, 1, 2].map((i) =>
          start({
            index: i,
            port: ports[i] as number,
            clientPort: ports[i + 3] as number,
            url: urls[i] as string,
          }),
        ),
      );
      nodes.push(...started);
    }, startTimeoutMs + 10_000);

    afterAll(async () => {
      await Promise.all(spawned.map((p) => p.kill()));
    });

    it("routes every key to its owner: each loaded once cluster-wide, on the owner", async () => {
      const keys = ["Tom", "Jack", "Sam", ...Array.from({ length: 30 }, (_, i) => `k${i}`)];
      for (const key of keys) {
        for (const n of nodes) {
          const a = await getKey(n, key);
          expect(a, `${key} via node ${n.index}`).toEqual({ status: 200, body: expected(key) });
        }
      }
      const owners = new Set<string>();
      for (const key of keys) {
        const owner = ownerOf(key, urls) as string;
        owners.add(owner);
        await expectLoads(key, [urls.indexOf(owner)], `loads of ${key} (owner ${owner})`);
      }
      expect(owners.size, "the keys spread over all three nodes").toBe(3);
    }, 30_000);

    it("passes the owner's not-found on, without loading elsewhere", async () => {
      const key = "nobody";
      const owner = urls.indexOf(ownerOf(key, urls) as string);
      for (const n of nodes) expect((await getKey(n, key)).status, `via ${n.index}`).toBe(404);
      expect(
        loaders(key).every((i) => i === owner),
        `loads ${loaders(key)}`,
      ).toBe(true);
    }, 30_000);

    it("set then remove: afterwards no node serves the removed value", async () => {
      // A key owned by node 1, set through node 0 (a hot copy there), removed through
      // node 2: node 0's copy can only go by the broadcast.
      const [key] = freshKeysOwnedBy(urls[1] as string, 1) as [string];
      const [n0, n1, n2] = nodes as [Node, Node, Node];
      expect((await control(n0, "POST", `/set?key=${key}&value=stale`)).status).toBe(200);
      for (const n of [n0, n1, n2]) {
        expect(await getKey(n, key), `after set, via ${n.index}`).toEqual({
          status: 200,
          body: "stale",
        });
      }
      const rm = await control(n2, "POST", `/remove?key=${key}`);
      expect(rm.status, rm.body).toBe(200);
      for (const n of [n0, n1, n2]) {
        expect(await getKey(n, key), `after remove, via ${n.index}`).toEqual({
          status: 200,
          body: expected(key),
        });
      }
      await expectLoads(key, [1], "reloaded once, on the owner");
    }, 30_000);

    it("a peer killed with SIGKILL: its keys load locally, no get fails", async () => {
      const dead = nodes[2] as Node;
      const cachedKeys = ["Tom", "Jack", "Sam", ...Array.from({ length: 30 }, (_, i) => `k${i}`)];
      const fresh = freshKeysOwnedBy(dead.url, 8);
      await dead.proc.kill("SIGKILL");
      const survivors = nodes.slice(0, 2);
      for (const key of [...fresh, ...cachedKeys.filter((k) => ownerOf(k, urls) === dead.url)]) {
        for (const n of survivors) {
          const a = await getKey(n, key);
          expect(a, `${key} via node ${n.index} with node 2 dead`).toEqual({
            status: 200,
            body: expected(key),
          });
        }
      }
      for (const key of fresh) {
        // Each survivor loaded it itself (its peer fetch failed); nobody asked twice.
        await expectLoads(key, [0, 1], `loads of ${key}`);
      }
    }, 30_000);

    it("the peer restarted on the same port is used again", async () => {
      const old = nodes[2] as Node;
      const back = await start({
        index: 2,
        port: old.port,
        clientPort: old.clientPort,
        url: old.url,
      });
      nodes[2] = back;
      // The survivors judged the dead peer unhealthy and load its keys themselves until a
      // background probe finds it answering (peer health, a few hundred ms at most here):
      // ask each for a missing key of the owner (never cached) until the owner sees it.
      for (const n of nodes.slice(0, 2)) {
        let key = `missing-${nextK++}`;
        while (ownerOf(key, urls) !== back.url) key = `missing-${nextK++}`;
        const deadline = Date.now() + 15_000;
        while (!back.proc.lines.some((l) => loadLine(key).test(l))) {
          expect(Date.now(), `node ${n.index} never routed to the restarted owner`).toBeLessThan(
            deadline,
          );
          expect((await getKey(n, key)).status).toBe(404);
        }
      }
      const keys = freshKeysOwnedBy(back.url, 6);
      for (const key of keys) {
        for (const n of nodes.slice(0, 2)) {
          expect(await getKey(n, key), `${key} via node ${n.index}`).toEqual({
            status: 200,
            body: expected(key),
          });
        }
        await expectLoads(key, [2], `${key} loaded by the restarted owner only`);
      }
      const stats = await control(back, "GET", "/stats");
      expect(stats.status).toBe(200);
      expect(JSON.parse(stats.body)).toMatchObject({ serverRequests: expect.any(Number) });
    }, 30_000);
  });
}
