#!/usr/bin/env node
// @ts-check
/**
 * `pnpm demo`'s build step: builds @tinycache/demo and the workspace packages it uses
 * with turbo, and says what it is doing. The first run on a fresh clone compiles a dozen
 * packages (about half a minute) and used to be silent; now a line says what is built
 * and why it takes a while, then one line per package as it finishes. A run with nothing
 * to build (turbo's cache) prints nothing. A failed build prints the failing package's
 * output in full, as turbo gave it, and turbo's summary, and exits with turbo's code.
 *
 * Plain JavaScript, not TypeScript: it runs before anything is built.
 *
 * How: turbo runs with `--output-logs=new-only --log-order=grouped`, so each package's
 * output arrives as one block when that package has finished (prefixed
 * `<package>:build: `), and only for packages it had to build (a cached one is a single
 * "cache hit" line). Each block becomes one progress line, or is printed in full if it
 * holds a failure.
 *
 * Test seam: TINYCACHE_DEMO_BUILD_TURBO names another script to run instead of turbo.
 */
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const TARGET = "@tinycache/demo";
const TASK = "build";
/** Present once the demo was built at least once: its absence means a first, long build. */
const BUILT_MARK = fileURLToPath(new URL("../apps/demo/dist/launch.js", import.meta.url));
const TURBO =
  // biome-ignore lint/suspicious/noUndeclaredEnvVars: read by this script (a test seam), not by a turbo task
  process.env.TINYCACHE_DEMO_BUILD_TURBO ??
  fileURLToPath(new URL("../node_modules/turbo/bin/turbo", import.meta.url));
/**
 * turbo writes a finished package's block at once; this long a pause after a line ends the
 * block, so its progress line shows when the package is done, not when the next one is.
 */
const BLOCK_QUIET_MS = 50;
/** Lines of a block that say the package's build failed (pnpm's and turbo's words). */
const FAILURE = /ELIFECYCLE|ERR_PNPM|ERROR|error TS\d+/;
const PREFIX = new RegExp(`^(\\S+):${TASK}: ?(.*)$`);

const started = performance.now();
const seconds = () => `${((performance.now() - started) / 1000).toFixed(1)} s`;
/** @param {string} line */
const say = (line) => process.stderr.write(`${line}\n`);

let announced = false;
/** @param {string} why */
function announce(why) {
  if (announced) return;
  announced = true;
  say(why);
}
if (!existsSync(BUILT_MARK)) {
  announce(
    `Building ${TARGET} and the workspace packages it uses (first run only: about half a minute; later runs reuse the build)...`,
  );
}

const child = spawn(
  process.execPath,
  [TURBO, "run", TASK, `--filter=${TARGET}...`, "--output-logs=new-only", "--log-order=grouped"],
  {
    cwd: ROOT,
    env: { ...process.env, TURBO_TELEMETRY_DISABLED: "1" },
    stdio: ["ignore", "pipe", "pipe"],
  },
);

/** @type {{ pkg: string; lines: string[] } | undefined} */
let block;
/** @type {NodeJS.Timeout | undefined} */
let quiet;
let built = 0;
/** Packages whose failure was printed in full. */
const failed = new Set();
/** Every block of a package turbo had to build, for a failure none of them showed. */
const blocks = [];
/** turbo's lines before the first package's block: its header (scope, cache), noise. */
const header = [];
/** Lines outside any package's block after that (turbo's summary), and turbo's stderr. */
const other = [];
let sawBlock = false;

function closeBlock() {
  clearTimeout(quiet);
  quiet = undefined;
  const b = block;
  block = undefined;
  if (b === undefined) return;
  const first = b.lines[0] ?? "";
  const hit = b.lines.length === 1 && first.includes(`${b.pkg}:${TASK}: cache hit`);
  if (hit) return;
  blocks.push(b.lines);
  if (b.lines.some((l) => FAILURE.test(l))) {
    failed.add(b.pkg);
    say(`\n${TARGET} build: ${b.pkg} failed:`);
    for (const l of b.lines) say(l);
    return;
  }
  announce(`Rebuilding the packages of ${TARGET} that changed...`);
  built++;
  say(`  built ${b.pkg} (${seconds()})`);
}

/** @param {string} line */
function onStdout(line) {
  const m = PREFIX.exec(line);
  if (m === null) {
    closeBlock();
    (sawBlock ? other : header).push(line);
    return;
  }
  sawBlock = true;
  const pkg = /** @type {string} */ (m[1]);
  if (block !== undefined && block.pkg !== pkg) closeBlock();
  block ??= { pkg, lines: [] };
  block.lines.push(line);
  clearTimeout(quiet);
  quiet = setTimeout(closeBlock, BLOCK_QUIET_MS);
}

if (child.stdout) createInterface({ input: child.stdout }).on("line", onStdout);
if (child.stderr) createInterface({ input: child.stderr }).on("line", (l) => other.push(l));

// A Ctrl-C reaches turbo too (same process group); a SIGTERM to pnpm reaches only us.
// Either way turbo stops its tasks, and its exit ends this script.
let interrupted = false;
for (const signal of /** @type {const} */ (["SIGINT", "SIGTERM"])) {
  process.on(signal, () => {
    interrupted = true;
    child.kill(signal);
  });
}

child.on("error", (err) => {
  say(`${TARGET} build: cannot run turbo (${TURBO}): ${err.message}`);
  process.exit(1);
});

// "close", not "exit": every output line has been read by then.
child.on("close", (code, signal) => {
  closeBlock();
  const status = code ?? 128 + (signal === "SIGTERM" ? 15 : 2);
  if (status === 0) {
    if (built > 0) say(`Built ${built} package${built === 1 ? "" : "s"} in ${seconds()}.`);
    return;
  }
  if (interrupted) {
    say(`${TARGET} build: interrupted`);
  } else {
    // Whatever turbo said outside the packages' blocks: its summary ("Failed: ..."),
    // its own errors (a bad flag, a broken turbo.json). Never hide a failure's words.
    // Before any package ran, the header may hold the reason (e.g. an unknown package).
    if (!sawBlock) for (const l of header) say(l);
    if (failed.size === 0) {
      // No block looked failed, yet turbo failed: show everything built, to be sure.
      say(`\n${TARGET} build failed:`);
      for (const l of blocks.flat()) say(l);
    }
    for (const l of other) say(l);
  }
  process.exitCode = status;
});
