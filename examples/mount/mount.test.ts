import { GroupRegistry, PeerError } from "@tinycache/core";
import { freePort, httpRequest, type Spawned, spawnNode } from "@tinycache/testkit";
import { HttpPool } from "@tinycache/transport-http";
import { afterEach, describe, expect, it } from "vitest";

const here = new URL(".", import.meta.url).pathname;
const SECRET = "mount-test-secret";
const HOST = "127.0.0.1";

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

/**
 * Runs an example file as is, with tsx, on a free port of 127.0.0.1. Not port 0: the
 * node's URL is its pool's `self`, which the pool needs before the server listens, so
 * the port is chosen first (testkit's freePort, below the ephemeral range), as every
 * peer's is.
 */
async function run(file: string): Promise<{ port: number; url: string; proc: Spawned }> {
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const proc = spawnNode(["--import", "tsx", file], {
      cwd: here,
      env: { HOST, PORT: String(port), TINYCACHE_SECRET: SECRET, PEERS: "" },
    });
    cleanups.push(() => proc.kill());
    try {
      await proc.waitForLine(/listening on /, 20_000);
      return { port, url: `http://${HOST}:${port}`, proc };
    } catch (err) {
      // Another test process took the port between the probe and listen.
      if (!proc.lines.some((l) => l.includes("EADDRINUSE")) || attempt >= 5) throw err;
    }
  }
}

/** A peer of the example's node: a client-only pool whose only peer is `url`. */
function peerOf(url: string, secret: string | undefined) {
  const pool = new HttpPool({
    self: `http://${HOST}:1`,
    registry: new GroupRegistry(),
    ...(secret === undefined ? {} : { auth: { secret } }),
  });
  cleanups.push(() => pool.close());
  pool.setPeers(url);
  const peer = pool.peers()[0];
  if (peer === undefined) throw new Error("no client");
  return peer;
}

describe.each([
  ["node-http.ts", false],
  ["express.ts", true],
  ["fastify.ts", true],
])("examples/mount/%s", (file, hasPut) => {
  it("serves the app's routes and the peers on one port", async () => {
    const { port, url } = await run(file);

    // An app route, reading through the cache.
    const tom = await httpRequest(port, "GET", "/scores/Tom");
    expect([tom.status, tom.body.toString()]).toEqual([200, "630"]);
    expect((await httpRequest(port, "GET", "/scores/nobody")).status).toBe(404);

    // A peer call, as another node sends it: answered by the pool, not the app.
    const peer = peerOf(url, SECRET);
    const jack = await peer.get({ group: "scores", key: "Jack" });
    expect(Buffer.from(jack.value).toString()).toBe("589");
    // A peer set carries a protobuf body: it reaches the pool whole, whatever parsers
    // the app has.
    await peer.set({ group: "scores", key: "Zed", value: Buffer.from("111") });
    const zed = await httpRequest(port, "GET", "/scores/Zed");
    expect([zed.status, zed.body.toString()]).toEqual([200, "111"]);

    // The peer paths need the secret, and never fall through to the app.
    const stranger = peerOf(url, undefined);
    const err = await stranger.get({ group: "scores", key: "Tom" }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PeerError);
    expect((err as PeerError).kind).toBe("unavailable");
    const raw = await httpRequest(port, "GET", "/_groupcache/scores/Tom");
    expect([raw.status, raw.body.toString()]).toEqual([401, "unauthorized\n"]);

    if (hasPut) {
      // The app's own body parser gets its request's body: the pool did not read it.
      const put = await httpRequest(port, "PUT", "/scores/Ann", {
        headers: { "content-type": "application/json" },
        body: Buffer.from(JSON.stringify({ score: 700 })),
      });
      expect(put.status).toBe(204);
      const ann = await httpRequest(port, "GET", "/scores/Ann");
      expect([ann.status, ann.body.toString()]).toEqual([200, "700"]);
    }
  });
});
