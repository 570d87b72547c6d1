#!/usr/bin/env node
// Run by each published package's `build`, from the package's folder, after the CommonJS
// compile into dist/cjs. The package says "type": "module", so without this marker Node
// would read dist/cjs/*.js as ES modules; TypeScript reads the same marker to know that
// dist/cjs/*.d.ts describe CommonJS (which is what lets a `require` of ours type-check in a
// CommonJS project on TypeScript before 5.8).
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const dir = join(process.cwd(), process.argv[2] ?? "dist/cjs");
mkdirSync(dir, { recursive: true });
writeFileSync(join(dir, "package.json"), `${JSON.stringify({ type: "commonjs" })}\n`);
