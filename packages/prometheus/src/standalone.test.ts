import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { packAndRun } from "@tinycache/testkit";
import { expect, it } from "vitest";

const pkg = (name: string) => fileURLToPath(new URL(`../../${name}`, import.meta.url));

// Packs the built packages (dist/ must exist: turbo runs `build` before `test`), installs
// the tarballs with npm outside the workspace (npm adds prom-client, the peer dependency)
// and runs the README's example as plain Node ESM, as a user would.
it("the README's example runs from the published tarballs", async () => {
  const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8");
  const example = /```js\n([\s\S]*?)```/.exec(readme)?.[1];
  expect(example).toContain("createTinycacheMetrics");
  const printed = /prints[^\n]*\n\n```\n([\s\S]*?)```/.exec(readme)?.[1];
  const stdout = await packAndRun(
    ["byteview", "lru", "singleflight", "consistenthash", "core", "prometheus"].map(pkg),
    example as string,
  );
  expect(stdout).toBe(printed);
}, 120_000);
