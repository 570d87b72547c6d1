#!/usr/bin/env node
// `pnpm pack:all`: every published package as a tarball in one folder (./packs by
// default), from which `npm install ./packs/*.tgz` works while no @tinycache package is on
// a registry: `pnpm pack` rewrites the workspace: ranges to real versions, and npm takes
// the @tinycache ones from the tarballs given beside them (third-party deps from npm).
//
//   node tools/packaging/pack-all.mjs [--out DIR] [--no-build]
//
// Each `pnpm pack` runs the package's `prepack` (turbo build of it and its dependencies,
// a cache hit when nothing changed). --no-build skips those scripts: for tests, which run
// after turbo has built everything and beside other code reading dist/, which a cache hit
// rewrites.
import { execFileSync } from "node:child_process";
import { mkdirSync, readdirSync, rmSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import { parseArgs } from "node:util";
import { publishedPackages, root } from "./workspace.mjs";

const { values } = parseArgs({
  options: {
    out: { type: "string", default: join(root, "packs") },
    "no-build": { type: "boolean", default: false },
  },
});
const out = resolve(values.out);
mkdirSync(out, { recursive: true });
// A tarball of an older version beside the new one would make `npm install ./packs/*.tgz`
// see two copies of one package.
for (const f of readdirSync(out)) {
  if (/^tinycache-.*\.tgz$/.test(f)) rmSync(join(out, f));
}

const packages = publishedPackages();
for (const p of packages) {
  const args = ["pack", "--pack-destination", out];
  if (values["no-build"]) args.push("--config.ignore-scripts=true");
  execFileSync("pnpm", args, { cwd: p.dir, stdio: ["ignore", "ignore", "inherit"] });
}
const made = readdirSync(out).filter((f) => f.endsWith(".tgz"));
const missing = packages.filter((p) => !made.includes(p.tarball));
if (missing.length > 0) {
  throw new Error(`pnpm pack made no ${missing.map((p) => p.tarball).join(", ")} in ${out}`);
}
const rel = relative(process.cwd(), out);
const shown = rel === "" ? "." : rel.startsWith("..") ? out : `./${rel}`;
console.log(`packed ${packages.length} packages into ${shown}:`);
for (const p of packages) console.log(`  ${p.tarball}`);
console.log(`install them with: npm install ${join(out, "*.tgz")} (or only those a package needs:`);
console.log("see its README's Install section)");
