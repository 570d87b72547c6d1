/**
 * Child process of transport-http.bench.ts: one HTTP server, either
 * - `--mode pool`: HttpPool's handler over a core group whose keys this node owns and has
 *   cached (the peer path a remote owner answers), or
 * - `--mode bare`: a bare node:http server writing the same bytes with the same headers.
 * Prints {"event":"ready","port":N}.
 */
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { parseArgs } from "node:util";
import { GroupRegistry } from "@tinycache/core";
import { freePort } from "@tinycache/testkit";
import { HttpPool } from "../dist/index.js";

const { values } = parseArgs({ options: { mode: { type: "string" }, keys: { type: "string" } } });
const keys = Number(values.keys ?? 100);
const valueFor = (i: number) => `value-${i}-${"x".repeat(24)}`;

let server: http.Server;
if (values.mode === "bare") {
  // The exact bytes HttpPool sends for valueFor(i): GetResponse{value}, field 1.
  const bodies = new Map<string, Buffer>();
  for (let i = 0; i < keys; i++) {
    const v = Buffer.from(valueFor(i));
    bodies.set(`/_groupcache/scores/k${i}`, Buffer.concat([Buffer.from([0x0a, v.length]), v]));
  }
  server = http.createServer((req, res) => {
    const body = bodies.get(req.url ?? "") as Buffer;
    res.writeHead(200, [
      "Content-Type",
      "application/x-protobuf",
      "Content-Length",
      String(body.length),
      "tinycache-batch",
      "1",
    ]);
    res.end(body);
  });
} else {
  const registry = new GroupRegistry();
  const group = registry.newGroup({
    name: "scores",
    cacheBytes: 64 << 20,
    getter: async (key) => valueFor(Number(key.slice(1))),
  });
  const port = await freePort();
  const self = `http://127.0.0.1:${port}`;
  const pool = new HttpPool({ self, registry });
  pool.setPeers(self); // this node owns every key: the peer path of an owner
  registry.registerPeers(pool);
  server = http.createServer(pool.handler);
  await new Promise<void>((r) => server.listen(port, "127.0.0.1", r));
  for (let i = 0; i < keys; i++) await group.get(`k${i}`); // warm: answers come from the cache
}
if (!server.listening) await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
process.stdout.write(
  `${JSON.stringify({ event: "ready", port: (server.address() as AddressInfo).port })}\n`,
);
