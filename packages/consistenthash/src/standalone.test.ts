import { fileURLToPath } from "node:url";
import { packAndRun } from "@tinycache/testkit";
import { expect, it } from "vitest";

const packageDir = fileURLToPath(new URL("..", import.meta.url));

// Packs the built package (dist/ must exist: turbo runs `build` before `test`), installs the
// tarball with npm outside the workspace and uses it from plain Node ESM, as a user would.
it("installs from its tarball and works from plain Node ESM", async () => {
  const script = `
import { HashRing, crc32, crc32Bytes, balancedHash } from "@tinycache/consistenthash";
const ring = new HashRing();
ring.add("http://127.0.0.1:8001", "http://127.0.0.1:8002", "http://127.0.0.1:8003");
const balanced = new HashRing({ replicas: 100, hash: balancedHash }).add("a", "b", "c");
let err = "";
try { ring.add(""); } catch (e) { err = e.constructor.name; }
console.log(JSON.stringify({
  owner: ring.get("alpha"),
  fallbacks: ring.getN("delta", 3),
  nodes: ring.nodes,
  size: ring.size,
  crc: crc32("123456789"),
  crcBytes: crc32Bytes(new TextEncoder().encode("123456789")),
  balancedSize: balanced.size,
  empty: new HashRing().get("x") ?? null,
  err,
}));
`;
  const stdout = await packAndRun([packageDir], script);
  const out = JSON.parse(stdout.trim());
  expect(out).toMatchObject({
    owner: "http://127.0.0.1:8002", // pinned golden owner (hash-ring.test.ts)
    size: 3,
    crc: 0xcbf43926,
    crcBytes: 0xcbf43926,
    balancedSize: 3,
    empty: null,
    err: "TypeError",
  });
  expect(out.fallbacks[0]).toBe("http://127.0.0.1:8003");
  expect(new Set(out.fallbacks).size).toBe(3);
  expect(out.nodes).toEqual([
    "http://127.0.0.1:8001",
    "http://127.0.0.1:8002",
    "http://127.0.0.1:8003",
  ]);
}, 60_000);
