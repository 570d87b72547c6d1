/**
 * Memory is bounded by the budget, end to end, on real node processes (started with
 * --expose-gc so that /stats?gc=1 shows live memory):
 * - 300,000 distinct missing keys and every present key (the demo's database has 200,003)
 *   through the API at a 16 MiB budget: the live
 *   memory (heapUsed + arrayBuffers) grows by less than twice the budget.
 * - An owner answering 15 MB values (a fake groupcache peer), with a Content-Length or
 *   streamed, to 32 concurrent requests for distinct keys: the asking node's peak RSS
 *   stays under twice its budget, because the value limit (cacheBytes / 8) cuts the
 *   answers off before they are buffered.
 * The figures are printed.
 */
import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import * as net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { HashRing } from "@tinycache/consistenthash";
import { deferred, freePort, type Spawned, spawnNode } from "@tinycache/testkit";
import { afterEach, describe, expect, it } from "vitest";
import { GENERATED_ROWS, generatedKey } from "./keys.js";

const NODE = fileURLToPath(new URL("../dist/node.js", import.meta.url));
const MiB = 1024 * 1024;

interface Memory {
  cacheBytes: number;
  maxValueBytes: number;
  heapUsed: number;
  arrayBuffers: number;
  rss: number;
  maxRss: number;
}

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

async function distinctFreePorts(n: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < n) ports.add(await freePort());
  return [...ports];
}

/** One node with the API, started with --expose-gc; killed after the test. */
async function startNode(o: {
  peers?: (self: string) => string[];
  cacheBytes: number;
  args?: string[];
}) {
  const dataDir = mkdtempSync(join(tmpdir(), "tinycache-memory-"));
  cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }));
  const [port, apiPort] = await distinctFreePorts(2);
  const self = `http://127.0.0.1:${port}`;
  const proc: Spawned = spawnNode(
    [
      "--expose-gc",
      NODE,
      "--port",
      String(port),
      "--api",
      "--api-port",
      String(apiPort),
      "--peers",
      (o.peers?.(self) ?? [self]).join(","),
      "--data-dir",
      dataDir,
      "--cache-bytes",
      String(o.cacheBytes),
      "--log-level",
      "error",
      ...(o.args ?? []),
    ],
    { env: { LOG_PRETTY: "0" } },
  );
  cleanups.push(() => proc.kill("SIGKILL"));
  await proc.waitForLine(/"event":"ready"/, 30_000);
  return { self, api: `http://127.0.0.1:${apiPort}` };
}

/** GET `url`; resolves with the status once the body was read. */
function get(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { timeout: 30_000 }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode ?? 0));
      res.on("error", reject);
    });
    req.on("timeout", () => req.destroy(new Error(`timed out: ${url}`)));
    req.on("error", reject);
  });
}

/**
 * Asks the API for every key over `sockets` keep-alive connections, each with up to
 * `depth` requests in flight (HTTP/1.1 pipelining, which Node's server answers in
 * order): `sockets * depth` requests in flight at most. Counts answers by status. A
 * raw client, because node:http's costs more per request than the node under test.
 */
async function drive(
  api: string,
  keys: Iterable<string>,
  sockets = 8,
  depth = 8,
): Promise<Map<number, number>> {
  const { port } = new URL(api);
  const statuses = new Map<number, number>();
  const it = keys[Symbol.iterator]();
  const one = (): Promise<void> =>
    new Promise((resolve, reject) => {
      const socket = net.connect(Number(port), "127.0.0.1");
      socket.setNoDelay(true);
      let inFlight = 0;
      let exhausted = false;
      let buf: Buffer = Buffer.alloc(0);
      const fill = () => {
        let out = "";
        while (!exhausted && inFlight < depth) {
          const next = it.next();
          if (next.done) {
            exhausted = true;
            break;
          }
          out += `GET /api?key=${encodeURIComponent(next.value)} HTTP/1.1\r\nHost: x\r\n\r\n`;
          inFlight++;
        }
        if (out !== "") socket.write(out);
        if (exhausted && inFlight === 0) {
          socket.end();
          resolve();
        }
      };
      socket.on("data", (chunk: Buffer) => {
        buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
        for (;;) {
          const end = buf.indexOf("\r\n\r\n");
          if (end < 0) break;
          const head = buf.toString("latin1", 0, end);
          const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0);
          if (buf.length < end + 4 + length) break;
          const status = Number(head.slice(9, 12));
          statuses.set(status, (statuses.get(status) ?? 0) + 1);
          buf = buf.subarray(end + 4 + length);
          inFlight--;
        }
        fill();
      });
      socket.on("error", reject);
      socket.on("close", () => {
        if (!exhausted || inFlight > 0) reject(new Error("connection closed early"));
      });
      socket.on("connect", fill);
    });
  await Promise.all(Array.from({ length: sockets }, one));
  return statuses;
}

async function memory(api: string): Promise<Memory> {
  const res = await fetch(`${api}/stats?gc=1`, { signal: AbortSignal.timeout(10_000) });
  expect(res.status).toBe(200);
  return ((await res.json()) as { memory: Memory }).memory;
}

const mib = (n: number) => `${(n / MiB).toFixed(1)} MiB`;

function* missingKeys(n: number) {
  for (let i = 0; i < n; i++) yield `missing-${i}`;
}

function* presentKeys(rounds: number) {
  for (let r = 0; r < rounds; r++) {
    for (const k of ["Tom", "Jack", "Sam"]) yield k;
    for (let i = 1; i <= GENERATED_ROWS; i++) yield generatedKey(i);
  }
}

describe("memory is bounded by --cache-bytes", () => {
  it("300k missing + 200k present keys at a 16 MiB budget: live memory grows < 2x the budget", async () => {
    const budget = 16 * MiB;
    const node = await startNode({ cacheBytes: budget });
    // Warm up (JIT, sockets, pools) before the baseline.
    await drive(node.api, ["Tom", ...missingKeys(2_000)]);
    const before = await memory(node.api);
    const started = performance.now();
    const missing = await drive(node.api, missingKeys(300_000));
    const afterMissing = await memory(node.api);
    const present = await drive(node.api, presentKeys(1));
    const after = await memory(node.api);
    const seconds = (performance.now() - started) / 1000;
    expect(missing).toEqual(new Map([[404, 300_000]]));
    expect(present).toEqual(new Map([[200, GENERATED_ROWS + 3]]));
    const live = (m: Memory) => m.heapUsed + m.arrayBuffers;
    console.log(
      [
        `budget ${mib(budget)}, ${300_000 + GENERATED_ROWS + 3} requests in ${seconds.toFixed(1)} s`,
        `before:        heapUsed ${mib(before.heapUsed)}, arrayBuffers ${mib(before.arrayBuffers)}, rss ${mib(before.rss)}`,
        `after missing: heapUsed ${mib(afterMissing.heapUsed)}, arrayBuffers ${mib(afterMissing.arrayBuffers)}, growth ${mib(live(afterMissing) - live(before))}`,
        `after present: heapUsed ${mib(after.heapUsed)}, arrayBuffers ${mib(after.arrayBuffers)}, growth ${mib(live(after) - live(before))}, rss ${mib(after.rss)}, peak rss ${mib(after.maxRss)}`,
      ].join("\n"),
    );
    expect(live(afterMissing) - live(before)).toBeLessThan(2 * budget);
    expect(live(after) - live(before)).toBeLessThan(2 * budget);
  }, 180_000);
});

/**
 * A fake groupcache peer that owns every key it is asked for and answers each with a
 * GetResponse holding a `valueBytes` value, streamed in 64 KiB chunks as fast as the
 * reader takes them (with or without a Content-Length). It reports how many bytes it
 * managed to write in all, and how many answers were cut off.
 */
async function bigValuePeer(valueBytes: number, withLength: boolean) {
  const header = Buffer.from([0x0a, ...varint(valueBytes)]);
  const total = header.length + valueBytes;
  const chunk = Buffer.alloc(64 * 1024, 0x61);
  const stats = { requests: 0, written: 0, cutOff: 0 };
  /** One per answer: settles once the answer ended (whole, or cut off by the reader). */
  const answers: Promise<void>[] = [];
  const srv = http.createServer(async (req, res) => {
    if (!req.url?.startsWith("/_groupcache/scores/")) {
      // Anything else (a peer-health ping asks for a group no node serves): as a real peer.
      res.writeHead(404, { "content-type": "text/plain" }).end("no such group\n");
      return;
    }
    stats.requests++;
    const ended = deferred<void>();
    answers.push(ended.promise);
    res.writeHead(200, {
      "content-type": "application/x-protobuf",
      ...(withLength ? { "content-length": total } : {}),
    });
    let closed = false;
    res.on("close", () => {
      closed = true;
    });
    res.write(header);
    let sent = header.length;
    while (!closed && sent < total) {
      const part = chunk.subarray(0, Math.min(chunk.length, total - sent));
      sent += part.length;
      stats.written += part.length;
      if (!res.write(part)) await Promise.race([once(res, "drain"), once(res, "close")]);
    }
    if (closed || sent < total) stats.cutOff++;
    res.end();
    ended.resolve();
  });
  srv.listen(0, "127.0.0.1");
  await once(srv, "listening");
  cleanups.push(async () => {
    const closed = once(srv, "close");
    srv.close();
    srv.closeAllConnections();
    await closed;
  });
  return {
    url: `http://127.0.0.1:${(srv.address() as AddressInfo).port}`,
    stats,
    /** Resolves once every answer so far has ended. */
    ended: () => Promise.all(answers),
  };
}

function varint(n: number): number[] {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return out;
}

describe("a peer answering 15 MB values", () => {
  // With a Content-Length, the answers are refused before a byte of body is read.
  // Streamed (chunked, as Go's groupcache sends large values), the GetResponse's first
  // bytes announce the value's length, and the answer is cut off there. Either way the
  // budget of answers in flight (the default 64 MiB) is not even needed.
  it.each([
    ["with a Content-Length", true, 64],
    ["streamed, without a Content-Length", false, 64],
  ])(
    "%s: 32 concurrent gets keep the asking node's RSS under 2x its budget",
    async (_, withLength, inflightMiB) => {
      const budget = 64 * MiB; // the default; values may be up to budget / 8 = 8 MiB
      const peer = await bigValuePeer(15_000_000, withLength);
      const node = await startNode({
        cacheBytes: budget,
        peers: (self) => [self, peer.url],
        args: ["--peer-inflight-bytes", String(inflightMiB * MiB)],
      });
      // 32 distinct keys that the fake peer owns on the node's ring.
      const ring = new HashRing().add(node.self, peer.url);
      const keys: string[] = [];
      for (let i = 0; keys.length < 32; i++) {
        if (ring.get(`big-${i}`) === peer.url) keys.push(`big-${i}`);
      }
      const before = await memory(node.api);
      const statuses = await Promise.all(keys.map((k) => get(`${node.api}/api?key=${k}`)));
      const after = await memory(node.api);
      // Each answer was refused or cut off: the node loaded the key itself (not in its
      // database: 404), and nothing of 15 MB was kept.
      expect(statuses).toEqual(Array(32).fill(404));
      expect(after.maxValueBytes).toBe(budget / 8);
      expect(peer.stats.requests).toBe(32);
      await peer.ended();
      expect(peer.stats.cutOff).toBe(32);
      console.log(
        [
          `15 MB values ${withLength ? "with" : "without"} Content-Length, budget ${mib(budget)}, maxValueBytes ${mib(after.maxValueBytes)}, peer-inflight ${inflightMiB} MiB`,
          `peer wrote ${mib(peer.stats.written)} of ${mib(32 * 15_000_000)} asked for`,
          `node rss before ${mib(before.rss)}, after ${mib(after.rss)}, peak ${mib(after.maxRss)} (limit ${mib(2 * budget)})`,
        ].join("\n"),
      );
      expect(after.maxRss).toBeLessThan(2 * budget);
    },
    60_000,
  );
});
