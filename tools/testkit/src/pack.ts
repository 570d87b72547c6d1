import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

/**
 * Packs workspace packages with `pnpm pack` (so workspace: ranges are rewritten as a
 * publish would), installs the tarballs with npm into a fresh folder outside the
 * workspace, and runs `script` there as plain Node ESM. Returns the script's stdout.
 */
export async function packAndRun(packageDirs: string[], script: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "tinycache-pack-"));
  try {
    const tarballs: string[] = [];
    for (const pkg of packageDirs) {
      // No prepack: turbo built dist/ before the tests, and the prepack's turbo build (a
      // cache hit) rewrites dist/ files that other tests of the run are reading.
      const { stdout } = await run(
        "pnpm",
        ["pack", "--pack-destination", dir, "--config.ignore-scripts=true"],
        { cwd: pkg },
      );
      const line = stdout
        .trim()
        .split("\n")
        .filter((l) => l.endsWith(".tgz"))
        .pop();
      if (!line) throw new Error(`pnpm pack printed no tarball: ${stdout}`);
      tarballs.push(line.startsWith("/") ? line : join(dir, line));
    }
    const app = join(dir, "app");
    await run("mkdir", ["-p", app]);
    await writeFile(
      join(app, "package.json"),
      JSON.stringify({ name: "standalone-check", private: true, type: "module" }),
    );
    await run(
      "npm",
      ["install", "--no-audit", "--no-fund", "--prefer-offline", "--loglevel=error", ...tarballs],
      { cwd: app },
    );
    await writeFile(join(app, "main.mjs"), script);
    const { stdout } = await run(process.execPath, ["main.mjs"], { cwd: app });
    return stdout;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
