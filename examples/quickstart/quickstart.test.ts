import { once } from "node:events";
import { readFileSync } from "node:fs";
import { GroupRegistry } from "@tinycache/core";
import { freePort, httpRequest, type Spawned, spawnNode } from "@tinycache/testkit";
import { HttpPool } from "@tinycache/transport-http";
import { afterEach, describe, expect, it } from "vitest";

const here = new URL(".", import.meta.url);
const read = (path: string) => readFileSync(new URL(path, here), "utf8");
const file = read("node.ts");
const SECRET = "quickstart-test-secret";

const procs: Spawned[] = [];
afterEach(async () => {
  await Promise.all(procs.splice(0).map((p) => p.kill()));
});

/** The fenced ```ts blocks of a markdown file. */
const tsBlocks = (md: string) => [...md.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]);

describe("the root README's library example (examples/quickstart/node.ts)", () => {
  it("is quoted verbatim in the root README", () => {
    const quoted = tsBlocks(read("../../README.md")).find((b) =>
      b?.startsWith("// examples/quickstart/node.ts"),
    );
    expect(quoted, "a ```ts block starting with // examples/quickstart/node.ts").toBeDefined();
    expect(quoted).toBe(file);
  });

  it("is wired as transport-http's README wires a pool", () => {
    const readme = read("../../packages/transport-http/README.md");
    for (const line of [
      "const pool = new HttpPool({ self, registry, auth: { secret } });",
      "pool.setPeers(...peers);",
      "registry.registerPeers(pool);",
    ]) {
      expect(file).toContain(line);
      expect(readme).toContain(line);
    }
  });

  it("two processes: a key asked at one node is read once, by its owner, and answered on both", async () => {
    // Run as is with tsx, as the README says: the file is the README's text, not a build
    // of it. Ports are picked before the nodes start, since each must know every URL.
    const [portA, portB] = [await freePort(), await freePort()];
    const urls = [`http://127.0.0.1:${portA}`, `http://127.0.0.1:${portB}`];
    const start = (self: string): Spawned => {
      const p = spawnNode(["--import", "tsx", "node.ts"], {
        cwd: here.pathname,
        env: { SELF: self, PEERS: urls.join(","), TINYCACHE_SECRET: SECRET },
      });
      procs.push(p);
      return p;
    };
    const nodes = urls.map(start);
    await Promise.all(nodes.map((n) => n.waitForLine(/^listening on /, 20_000)));

    // Whose is Tom: the same ring as the nodes' (same URLs, same defaults).
    const ring = new HttpPool({ self: urls[0] as string, registry: new GroupRegistry() });
    ring.setPeers(...urls);
    const ownerIndex = ring.pickPeer("Tom") === undefined ? 0 : 1;
    await ring.close();
    const askerIndex = 1 - ownerIndex;
    const [askerPort, ownerPort] = [
      ownerIndex === 0 ? portB : portA,
      ownerIndex === 0 ? portA : portB,
    ];

    const ask = async (port: number, key: string) => {
      const r = await httpRequest(port, "GET", `/?key=${key}`);
      return [r.status, r.body.toString()];
    };
    expect(await ask(askerPort, "Tom")).toEqual([200, "630"]);
    expect(await ask(ownerPort, "Tom")).toEqual([200, "630"]);
    expect(await ask(askerPort, "Tom")).toEqual([200, "630"]);
    expect((await ask(askerPort, "nobody"))[0]).toBe(404);

    // The peer endpoint wants the secret.
    const peerCall = await httpRequest(askerPort, "GET", "/_groupcache/scores/Tom");
    expect(peerCall.status).toBe(401);

    // Count the source reads once each process has ended: its output is then complete.
    // ("close" comes after the last line was read; "exit", which kill awaits, may not.)
    const closed = nodes.map((n) => once(n.child, "close"));
    await Promise.all(nodes.map((n) => n.kill("SIGTERM")));
    await Promise.all(closed);
    const reads = (n: Spawned, key: string) =>
      n.lines.filter((l) => /^source read #\d+: /.test(l) && l.endsWith(`: ${key}`)).length;
    const [asker, owner] = [nodes[askerIndex] as Spawned, nodes[ownerIndex] as Spawned];
    expect(reads(owner, "Tom")).toBe(1);
    expect(reads(asker, "Tom")).toBe(0);
  });
});
