#!/usr/bin/env node
// Run by `pnpm version-packages` after `changeset version`: the READMEs' "before
// publication" install lines name tarballs with their version (tinycache-core-0.1.0.tgz);
// this rewrites each to the version the package now has, so the lines stay copy-pasteable.
// The packaging test fails on a stale one.
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { publishedPackages, root } from "./workspace.mjs";

const versions = new Map(publishedPackages().map((p) => [p.stem, p.version]));
const readmes = [
  join(root, "README.md"),
  ...readdirSync(join(root, "packages")).map((d) => join(root, "packages", d, "README.md")),
];
for (const file of readmes) {
  let text;
  try {
    text = readFileSync(file, "utf8");
  } catch {
    continue;
  }
  const next = text.replace(
    /(tinycache-[a-z0-9-]+?)-(\d+\.\d+\.\d+(?:-[0-9A-Za-z.]+)?)\.tgz/g,
    (m, stem) => (versions.has(stem) ? `${stem}-${versions.get(stem)}.tgz` : m),
  );
  if (next !== text) {
    writeFileSync(file, next);
    console.log(`updated tarball versions in ${file}`);
  }
}
