// Which packages are published, read from the workspace itself (every packages/* without
// "private": true), so a new package is packed, tested and documented without a list to edit.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** The repository root. */
export const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");

/**
 * @typedef {object} Published
 * @property {string} name     the scoped name, as its package.json spells it
 * @property {string} dir      absolute folder
 * @property {string} version
 * @property {string} stem     the tarball's name without version, e.g. "tinycache-core"
 * @property {string} tarball  file name `pnpm pack` gives it, e.g. "tinycache-core-0.1.0.tgz"
 * @property {string[]} deps   names of the tinycache packages it depends on at run time
 * @property {{ [key: string]: any }} manifest  its package.json
 */

/** @returns {Published[]} sorted by folder name */
export function publishedPackages() {
  const base = join(root, "packages");
  return readdirSync(base)
    .filter((d) => existsSync(join(base, d, "package.json")))
    .sort()
    .map((d) => {
      const dir = join(base, d);
      const manifest = JSON.parse(readFileSync(join(dir, "package.json"), "utf8"));
      return { dir, manifest };
    })
    .filter(({ manifest }) => manifest.private !== true)
    .map(({ dir, manifest }) => {
      const stem = manifest.name.replace(/^@/, "").replace("/", "-");
      return {
        name: manifest.name,
        dir,
        version: manifest.version,
        stem,
        tarball: `${stem}-${manifest.version}.tgz`,
        deps: Object.keys(manifest.dependencies ?? {}).filter((n) => n.startsWith("@tinycache/")),
        manifest,
      };
    });
}

/**
 * The package and every tinycache package it needs at run time, directly or not: the
 * tarballs to install together while none is on a registry.
 * @param {Published[]} all
 * @param {string} name
 * @returns {Published[]} the package first, then the rest in the order they were found
 */
export function withDependencies(all, name) {
  const byName = new Map(all.map((p) => [p.name, p]));
  /** @type {Published[]} */
  const out = [];
  const visit = (/** @type {string} */ n) => {
    const p = byName.get(n);
    if (!p) throw new Error(`${n} is not a published workspace package`);
    if (out.includes(p)) return;
    out.push(p);
    for (const d of p.deps) visit(d);
  };
  visit(name);
  return out;
}
