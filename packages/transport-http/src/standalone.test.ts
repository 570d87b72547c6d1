import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { freePort, packAndRun } from "@tinycache/testkit";
import { expect, it } from "vitest";

const pkg = (name: string) => fileURLToPath(new URL(`../../${name}`, import.meta.url));

// Packs the built packages (dist/ must exist: turbo runs `build` before `test`), installs
// the tarballs with npm outside the workspace and runs the README's two-node example as
// plain Node ESM, as a user would (on free ports instead of 8001/8002).
it("the README's two-node example runs from the published tarballs", async () => {
  const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8");
  const example = /```js\n([\s\S]*?)```/.exec(readme)?.[1];
  expect(example).toContain("new HttpPool");
  const [a, b] = [await freePort(), await freePort()];
  const script = (example as string).replaceAll("8001", String(a)).replaceAll("8002", String(b));
  const stdout = await packAndRun(
    ["byteview", "lru", "singleflight", "consistenthash", "core", "protocol", "transport-http"].map(
      pkg,
    ),
    script,
  );
  const lines = stdout.trim().split("\n");
  expect(lines.filter((l) => l.includes("load Tom"))).toHaveLength(1);
  expect(lines).toContain("Tom 630 630");
  expect(lines).toContain("Jack 589 589");
  expect(lines).toContain("Sam 567 567");
  expect(lines.at(-1)).toBe("NotFoundError");
}, 120_000);
