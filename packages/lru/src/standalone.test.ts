import { fileURLToPath } from "node:url";
import { packAndRun } from "@tinycache/testkit";
import { expect, it } from "vitest";

const packageDir = fileURLToPath(new URL("..", import.meta.url));

// Packs the built package (dist/ must exist: turbo runs `build` before `test`), installs the
// tarball with npm outside the workspace and uses it from plain Node ESM, as a user would.
it("installs from its tarball and works from plain Node ESM", async () => {
  const script = `
import { LRUCache } from "@tinycache/lru";
const evicted = [];
const cache = new LRUCache({ maxBytes: 10, onEvicted: (k, v, reason) => evicted.push([k, reason]) });
cache.set("a", new Uint8Array(4));
cache.set("b", "1234");
cache.get("a");
cache.set("c", "12");
console.log(JSON.stringify({
  keys: [...cache.keys()],
  size: cache.size,
  bytes: cache.bytes,
  evicted,
  tooBig: cache.set("big", "01234567890"),
}));
`;
  const stdout = await packAndRun([packageDir], script);
  expect(JSON.parse(stdout.trim())).toEqual({
    keys: ["c", "a"],
    size: 2,
    bytes: 8,
    evicted: [["b", "evict"]],
    tooBig: false,
  });
}, 60_000);
