/**
 * `pnpm demo`'s build step (tools/demo-build.mjs): progress while it builds, silence when
 * nothing needs building, a failure's words in full. The real turbo for the quiet case;
 * a stand-in that plays turbo's grouped output for the others (a real first build takes
 * half a minute and rewrites every dist/ the other tests run).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { runNode, spawnNode } from "@tinycache/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const BUILD = fileURLToPath(new URL("../../../tools/demo-build.mjs", import.meta.url));

/** One step of the stand-in: lines to stdout/stderr, or hang until killed, or exit. */
type Step = { out: string[] } | { err: string[] } | { hang: true } | { exit: number };

/** turbo's block for a package it built, as `--output-logs=new-only --log-order=grouped` prints it. */
function builtBlock(pkg: string, ...extra: string[]): string[] {
  return [
    `${pkg}:build: cache miss, executing 0123456789abcdef`,
    `${pkg}:build: `,
    `${pkg}:build: > ${pkg}@0.1.0 build /repo/${pkg}`,
    `${pkg}:build: > tsc -p tsconfig.build.json`,
    `${pkg}:build: `,
    ...extra.map((l) => `${pkg}:build: ${l}`),
  ];
}
const HEADER = ["", "   • turbo 2.11.11", "   • Running build in 12 packages", ""];
const hit = (pkg: string) => `${pkg}:build: cache hit, suppressing logs 0123456789abcdef`;

let dir = "";
let fake = "";
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "tinycache-demo-build-"));
  fake = join(dir, "fake-turbo.mjs");
  // Plays FAKE_STEPS; records its arguments in FAKE_ARGS.
  writeFileSync(
    fake,
    `import { writeFileSync } from "node:fs";
writeFileSync(process.env.FAKE_ARGS, JSON.stringify(process.argv.slice(2)));
for (const step of JSON.parse(process.env.FAKE_STEPS)) {
  if (step.out) process.stdout.write(step.out.map((l) => l + "\\n").join(""));
  if (step.err) process.stderr.write(step.err.map((l) => l + "\\n").join(""));
  if (step.hang) await new Promise(() => setInterval(() => {}, 60_000));
  if (step.exit !== undefined) process.exit(step.exit);
}
`,
  );
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function env(steps: Step[]) {
  return {
    TINYCACHE_DEMO_BUILD_TURBO: fake,
    FAKE_STEPS: JSON.stringify(steps),
    FAKE_ARGS: join(dir, "args.json"),
  };
}

describe("pnpm demo's build step", () => {
  it("run again with nothing to build (turbo's cache), prints nothing and exits 0", async () => {
    // The real turbo. Under `pnpm test` the demo is built already; run by hand after an
    // edit, the first run rebuilds what changed (no other test file runs meanwhile).
    expect((await runNode([BUILD])).code).toBe(0);
    const started = performance.now();
    const { code, out } = await runNode([BUILD]);
    expect({ code, out }).toEqual({ code: 0, out: "" });
    expect(performance.now() - started).toBeLessThan(10_000);
  });

  it("asks turbo for the demo's packages, each one's output as one block when it finishes", async () => {
    const { code } = await runNode([BUILD], { env: env([{ out: HEADER }, { exit: 0 }]) });
    expect(code).toBe(0);
    expect(JSON.parse(readFileSync(join(dir, "args.json"), "utf8"))).toEqual([
      "run",
      "build",
      "--filter=@tinycache/demo...",
      "--output-logs=new-only",
      "--log-order=grouped",
    ]);
  });

  it("prints one line per package built, none per cached one, then the total", async () => {
    const { code, out } = await runNode([BUILD], {
      env: env([
        { out: [...HEADER, hit("@tinycache/lru")] },
        { out: builtBlock("@tinycache/core") },
        { out: builtBlock("@tinycache/demo") },
        { out: ["", " Tasks:    3 successful, 3 total", "Cached:    1 cached, 3 total"] },
        { exit: 0 },
      ]),
    });
    expect(code).toBe(0);
    const lines = out.split("\n");
    // dist/ exists here (the demo is built), so this is a rebuild, not a first build.
    expect(lines[0]).toBe("Rebuilding the packages of @tinycache/demo that changed...");
    expect(lines.slice(1, 3).map((l) => l.replace(/\(\d+\.\d s\)/, "(T)"))).toEqual([
      "  built @tinycache/core (T)",
      "  built @tinycache/demo (T)",
    ]);
    expect(lines[3]).toMatch(/^Built 2 packages in \d+\.\d s\.$/);
    expect(lines).toHaveLength(4); // no turbo header, no tsc command lines, no summary
  });

  it("says so as each package finishes, not at the end", async () => {
    // turbo has finished one package and is still building the next.
    const p = spawnNode([BUILD], {
      env: env([{ out: [...HEADER, ...builtBlock("@tinycache/lru")] }, { hang: true }]),
    });
    try {
      await p.waitForLine(/^ {2}built @tinycache\/lru \(\d+\.\d s\)$/);
      expect(p.child.exitCode).toBeNull();
      // Ctrl-C: turbo stops (here: the stand-in is killed), the step says so, not zero.
      p.child.kill("SIGINT");
      const { code } = await p.exited;
      expect(code).toBe(130);
      expect(p.lines).toContain("@tinycache/demo build: interrupted");
    } finally {
      await p.kill();
    }
  });

  it("a failed build shows the failing package's output in full and turbo's summary, with turbo's exit code", async () => {
    const failing = builtBlock(
      "@tinycache/core",
      "src/group.ts(3,14): error TS2322: Type 'string' is not assignable to type 'number'.",
      " ELIFECYCLE  Command failed with exit code 2.",
    );
    const { code, out } = await runNode([BUILD], {
      env: env([
        { out: [...HEADER, ...builtBlock("@tinycache/lru")] },
        { out: failing },
        { out: ["", " Tasks:    1 successful, 2 total", "Failed:    @tinycache/core#build"] },
        { err: [" ERROR  run failed: command  exited (2)"] },
        { exit: 2 },
      ]),
    });
    expect(code).toBe(2);
    expect(out).toContain("@tinycache/demo build: @tinycache/core failed:");
    for (const line of failing) expect(out.split("\n")).toContain(line);
    expect(out).toContain("Failed:    @tinycache/core#build");
    expect(out).toContain(" ERROR  run failed: command  exited (2)");
    expect(out).not.toMatch(/built @tinycache\/core/);
    expect(out).not.toContain("turbo 2.11.11"); // the header says nothing about the failure
  });

  it("a failure it cannot place (no package's block says so) still shows everything turbo said", async () => {
    const { code, out } = await runNode([BUILD], {
      env: env([
        { out: [...HEADER, ...builtBlock("@tinycache/lru", "something odd")] },
        { err: ["x Could not write the cache"] },
        { exit: 1 },
      ]),
    });
    expect(code).toBe(1);
    expect(out).toContain("@tinycache/demo build failed:");
    expect(out).toContain("@tinycache/lru:build: something odd");
    expect(out).toContain("x Could not write the cache");
  });

  it("turbo failing before any package (e.g. a bad filter) shows its header and error", async () => {
    const { code, out } = await runNode([BUILD], {
      env: env([
        { out: ["", "   • turbo 2.11.11"] },
        { err: [" ERROR  No package found with name '@tinycache/demo' in workspace"] },
        { exit: 1 },
      ]),
    });
    expect(code).toBe(1);
    expect(out).toContain("No package found with name '@tinycache/demo' in workspace");
  });
});
