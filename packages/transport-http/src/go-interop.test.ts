import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { HashRing } from "@tinycache/consistenthash";
import {
  buildGoProgram,
  freePort,
  loadLine,
  type Spawned,
  spawnNode,
  whyNoGoGroupcache,
} from "@tinycache/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const goPeerDir = fileURLToPath(new URL("../test/go/peer", import.meta.url));
const nodeEntry = fileURLToPath(new URL("../test/cluster-node.ts", import.meta.url));

const skip = whyNoGoGroupcache();
const title = skip
  ? `mixed Go + Node cluster (SKIPPED: ${skip})`
  : "mixed Go + Node cluster (golang/groupcache HTTPPool + HttpPool)";

interface Peer {
  kind: "go" | "node";
  url: string;
  clientPort: number;
  proc: Spawned;
}

const loadsOf = (p: Peer): string[] =>
  p.proc.lines.flatMap((l) => {
    try {
      const ev = JSON.parse(l) as { event?: string; key?: string };
      return ev.event === "load" && typeof ev.key === "string" ? [ev.key] : [];
    } catch {
      return [];
    }
  });

async function getVia(p: Peer, key: string): Promise<{ status: number; body: string }> {
  const res = await fetch(`http://127.0.0.1:${p.clientPort}/get?key=${encodeURIComponent(key)}`, {
    signal: AbortSignal.timeout(10_000),
  });
  return { status: res.status, body: await res.text() };
}

describe.skipIf(skip !== undefined)(title, () => {
  const peers: Peer[] = [];
  let urls: string[] = [];
  let binDir = "";

  beforeAll(async () => {
    binDir = mkdtempSync(join(tmpdir(), "tinycache-go-peer-"));
    const bin = await buildGoProgram(goPeerDir, join(binDir, "peer"));
    const kinds = ["go", "node", "go", "node"] as const;
    const ports: number[] = [];
    for (let i = 0; i < kinds.length * 2; i++) ports.push(await freePort());
    urls = kinds.map((_, i) => `http://127.0.0.1:${ports[i]}`);
    const started = await Promise.all(
      kinds.map(async (kind, i) => {
        const args = [
          "--port",
          String(ports[i]),
          "--peers",
          urls.join(","),
          "--self",
          urls[i] as string,
          "--client-port",
          String(ports[i + kinds.length]),
        ];
        // The Go binary is not a Node script: spawnNode runs process.execPath, so run the
        // binary through a one-line Node wrapper that execs it with inherited stdio.
        const proc =
          kind === "node"
            ? spawnNode(["--import", "tsx", nodeEntry, ...args], { cwd: goPeerDir })
            : spawnNode(
                [
                  "-e",
                  "require('node:child_process').spawn(process.argv[1], process.argv.slice(2), {stdio: 'inherit'}).on('exit', (c) => process.exit(c ?? 1)); process.on('SIGTERM', () => process.exit(0));",
                  bin,
                  ...args,
                ],
                {},
              );
        await proc.waitForLine(/"event":"ready"/, 20_000);
        return {
          kind,
          url: urls[i] as string,
          clientPort: ports[i + kinds.length] as number,
          proc,
        };
      }),
    );
    peers.push(...started);
  }, 90_000);

  afterAll(async () => {
    await Promise.all(peers.map((p) => p.proc.kill()));
    if (binDir) rmSync(binDir, { recursive: true, force: true });
  });

  const ring = () => new HashRing().add(...urls);
  const ownerOf = (key: string) => peers.find((p) => p.url === ring().get(key)) as Peer;
  const keysOwnedBy = (kind: "go" | "node", from: number, count: number) => {
    const out: string[] = [];
    for (let n = from; out.length < count; n++)
      if (ownerOf(`k${n}`).kind === kind) out.push(`k${n}`);
    return out;
  };
  /** A child's stdout can trail its HTTP answer: wait for the owner's load line first. */
  const loadedBy = (p: Peer, key: string) => p.proc.waitForLine(loadLine(key), 5_000);
  const loaders = (key: string) => peers.filter((p) => loadsOf(p).includes(key)).map((p) => p.url);
  const loadCount = (key: string) =>
    peers.reduce((n, p) => n + loadsOf(p).filter((k) => k === key).length, 0);

  it("Node fetches keys owned by Go peers: each read once, by the Go owner", async () => {
    const keys = keysOwnedBy("go", 0, 6);
    for (const key of keys) {
      for (const p of peers.filter((x) => x.kind === "node")) {
        expect(await getVia(p, key), `${key} via ${p.url}`).toEqual({
          status: 200,
          body: `v${key.slice(1)}`,
        });
      }
      await loadedBy(ownerOf(key), key);
      expect(loaders(key), key).toEqual([ownerOf(key).url]);
      expect(loadCount(key), key).toBe(1);
    }
  }, 30_000);

  it("Go fetches keys owned by Node peers: each read once, by the Node owner", async () => {
    const keys = keysOwnedBy("node", 100, 6);
    for (const key of keys) {
      for (const p of peers.filter((x) => x.kind === "go")) {
        expect(await getVia(p, key), `${key} via ${p.url}`).toEqual({
          status: 200,
          body: `v${key.slice(1)}`,
        });
      }
      await loadedBy(ownerOf(key), key);
      expect(loaders(key), key).toEqual([ownerOf(key).url]);
      expect(loadCount(key), key).toBe(1);
    }
  }, 30_000);

  it("concurrent fetches at a Node peer (batched between Node peers, one GET per key to Go): each key read once, by its owner", async () => {
    const via = peers.find((p) => p.kind === "node") as Peer;
    const keys = [...keysOwnedBy("go", 300, 12), ...keysOwnedBy("node", 400, 24)].filter(
      (k) => ownerOf(k) !== via,
    );
    const got = await Promise.all(keys.map((key) => getVia(via, key)));
    expect(got).toEqual(keys.map((key) => ({ status: 200, body: `v${key.slice(1)}` })));
    for (const key of keys) {
      await loadedBy(ownerOf(key), key);
      expect(loaders(key), key).toEqual([ownerOf(key).url]);
      expect(loadCount(key), key).toBe(1);
    }
  }, 30_000);

  it("keys with / + ? # % and non-ASCII reach a Go owner intact from Node", async () => {
    let found = 0;
    for (let i = 0; found < 3; i++) {
      const key = `x ${i}/+?#%é中`;
      const owner = ownerOf(key);
      if (owner.kind !== "go") continue;
      found++;
      const via = peers.find((p) => p.kind === "node") as Peer;
      // Go's getter says "not exist" -> 500 -> getter_failed, passed on (no local load).
      const a = await getVia(via, key);
      expect(a.status, key).toBe(500);
      expect(a.body).toContain("not exist");
      await loadedBy(owner, key);
      expect(loaders(key), key).toEqual([owner.url]);
    }
  }, 30_000);

  it("keys sent by Go's client (url.QueryEscape) reach a Node owner as Go's server would decode them", async () => {
    let found = 0;
    for (let i = 0; found < 3; i++) {
      // No space: Go's client turns a space into "+", which every groupcache server keeps.
      const key = `y${i}/+?#%é中`;
      const owner = ownerOf(key);
      if (owner.kind !== "node") continue;
      found++;
      const via = peers.find((p) => p.kind === "go") as Peer;
      await getVia(via, key); // the Node owner answers 404; Go then loads locally too
      await loadedBy(owner, key);
    }
    // golang/groupcache#25: Go sends "a b" as "a+b", and every server loads "a+b".
    for (let i = 0; ; i++) {
      const key = `z ${i}`;
      const owner = ownerOf(key);
      if (owner.kind !== "node") continue;
      await getVia(peers.find((p) => p.kind === "go") as Peer, key);
      await loadedBy(owner, key.replace(" ", "+"));
      break;
    }
  }, 30_000);
});
