/**
 * The published packages as a user gets them: `pack:all` into a temp folder, then fresh
 * projects outside the workspace that install the tarballs with npm and run with node, from
 * ES modules, from CommonJS, and from TypeScript compiled to each. Needs the npm registry
 * for third-party dependencies (@bufbuild/protobuf, ...), so it skips, saying so, without it.
 */
import { execFile } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { HashRing } from "@tinycache/consistenthash";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Published, publishedPackages, root, withDependencies } from "../workspace.mjs";

const run = promisify(execFile);
const tsc = join(root, "node_modules", "typescript", "bin", "tsc");
const published = publishedPackages();

/** Why the registry cannot be used, or undefined when it answers. */
async function registryUnreachable(): Promise<string | undefined> {
  try {
    await run("npm", ["ping", "--fetch-timeout=10000", "--fetch-retries=0"], {
      cwd: tmpdir(),
      timeout: 30_000,
    });
    return undefined;
  } catch (err) {
    const text = String((err as { stderr?: string }).stderr || (err as Error).message);
    const line = text.split("\n").find((l) => /err/i.test(l)) ?? text.split("\n")[0];
    return `npm registry unreachable: ${line?.trim()}`;
  }
}
const offline = await registryUnreachable();
const titled = (title: string) => (offline ? `${title} (skipped: ${offline})` : title);

/** Runs a command; on failure the error carries its output, which vitest then shows. */
async function sh(cmd: string, args: string[], cwd: string): Promise<string> {
  try {
    const { stdout } = await run(cmd, args, { cwd, timeout: 240_000, maxBuffer: 64 << 20 });
    return stdout;
  } catch (err) {
    const e = err as Error & { stdout?: string; stderr?: string };
    throw new Error(`${cmd} ${args.join(" ")} (in ${cwd}) failed: ${e.message}\n${e.stdout}`);
  }
}

let work = "";
let packs = "";
const tarballs = (names: string[]): string[] => {
  const set = new Set<Published>();
  for (const n of names) for (const p of withDependencies(published, n)) set.add(p);
  return [...set].map((p) => join(packs, p.tarball));
};

/** A fresh project outside the workspace with these tarballs installed by npm. */
async function project(name: string, manifest: object, install: string[]): Promise<string> {
  const dir = join(work, name);
  await mkdir(dir, { recursive: true });
  await writeFile(
    join(dir, "package.json"),
    JSON.stringify({ name, version: "1.0.0", private: true, ...manifest }),
  );
  await sh(
    "npm",
    ["install", "--prefer-offline", "--no-audit", "--no-fund", "--loglevel=error", ...install],
    dir,
  );
  return dir;
}

// One scenario, written once, run as .mjs, .cjs and TypeScript of both kinds: an LRU, a
// ring, and a group whose key is owned by a second node reached over real HTTP (both pools
// on 127.0.0.1 port 0, closed at the end). Plain JS that also type-checks as strict TS.
const scenario = `
async function main() {
  const cache = new LRUCache({ maxBytes: 10 });
  cache.set("a", "1234");
  cache.set("b", "1234");
  cache.get("a");
  cache.set("c", "1234");
  const ring = new HashRing();
  ring.add("http://127.0.0.1:8001", "http://127.0.0.1:8002", "http://127.0.0.1:8003");

  let ownerLoads = 0;
  let askerLoads = 0;
  const ownerRegistry = new GroupRegistry();
  ownerRegistry.newGroup({
    name: "scores",
    cacheBytes: 1 << 20,
    getter: async (key) => {
      ownerLoads++;
      if (key === "nobody") throw new NotFoundError(key);
      return "v:" + key;
    },
  });
  // No peers: this node owns every key and serves it from its getter.
  const owner = new HttpPool({ self: "http://owner.invalid", registry: ownerRegistry });
  const address = await owner.listen(0, "127.0.0.1");

  const askerRegistry = new GroupRegistry();
  const scores = askerRegistry.newGroup({
    name: "scores",
    cacheBytes: 1 << 20,
    getter: async () => {
      askerLoads++;
      return "loaded by the asker";
    },
  });
  // Its only peer is the owner, so every key is fetched from it.
  const asker = new HttpPool({ self: "http://asker.invalid", registry: askerRegistry });
  asker.setPeers("http://127.0.0.1:" + address.port);
  askerRegistry.registerPeers(asker);
  try {
    const tom = (await scores.get("Tom")).toString();
    const again = (await scores.get("Tom")).toString();
    const missing = await scores.get("nobody").then(
      () => "found",
      (err) => (err instanceof NotFoundError ? err.code : String(err)),
    );
    return {
      lru: [...cache.keys()],
      owner: ring.get("Tom"),
      tom,
      again,
      missing,
      ownerLoads,
      askerLoads,
      listened: address.port > 0,
    };
  } finally {
    await Promise.all([asker.close(), owner.close()]);
  }
}
main().then(
  (result) => console.log(JSON.stringify(result)),
  (err) => {
    console.error(err);
    process.exitCode = 1;
  },
);
`;
const esmImports = `import { LRUCache } from "@tinycache/lru";
import { HashRing } from "@tinycache/consistenthash";
import { GroupRegistry, NotFoundError } from "@tinycache/core";
import { HttpPool } from "@tinycache/transport-http";
`;
const cjsRequires = `const { LRUCache } = require("@tinycache/lru");
const { HashRing } = require("@tinycache/consistenthash");
const { GroupRegistry, NotFoundError } = require("@tinycache/core");
const { HttpPool } = require("@tinycache/transport-http");
`;
const scenarioPackages = [
  "@tinycache/lru",
  "@tinycache/consistenthash",
  "@tinycache/core",
  "@tinycache/transport-http",
];
const expected = () => {
  const ring = new HashRing();
  ring.add("http://127.0.0.1:8001", "http://127.0.0.1:8002", "http://127.0.0.1:8003");
  return {
    lru: ["c", "a"],
    owner: ring.get("Tom"),
    tom: "v:Tom",
    again: "v:Tom",
    missing: "not_found",
    ownerLoads: 2, // Tom once (the second get is a cache hit somewhere), nobody once
    askerLoads: 0,
    listened: true,
  };
};
const lastJson = (stdout: string): unknown => JSON.parse(stdout.trim().split("\n").at(-1) ?? "");

/** A TypeScript project: strict, module nodenext, the repo's own TypeScript and @types/node. */
function tsconfig(extra: object = {}) {
  return JSON.stringify({
    compilerOptions: {
      target: "ES2022",
      module: "NodeNext",
      moduleResolution: "NodeNext",
      strict: true,
      skipLibCheck: false,
      rootDir: "src",
      outDir: "dist",
      types: ["node"],
      typeRoots: [join(root, "node_modules", "@types")],
      ...extra,
    },
    include: ["src"],
  });
}

describe.concurrent(titled("the packed packages, installed by npm in fresh projects"), () => {
  beforeAll(async () => {
    if (offline) return;
    work = await mkdtemp(join(tmpdir(), "tinycache-packaging-"));
    packs = join(work, "packs");
    // --no-build: turbo built every package before this test (dependsOn ^build); the
    // packages' prepack would only rebuild them under other tests that read dist/.
    await sh(
      process.execPath,
      [join(root, "tools/packaging/pack-all.mjs"), "--out", packs, "--no-build"],
      root,
    );
  }, 240_000);
  afterAll(async () => {
    if (work) await rm(work, { recursive: true, force: true });
  });

  it.skipIf(offline)(
    titled("pack:all makes one tarball per published package, both builds in, no tests"),
    async ({ expect }) => {
      for (const p of published) {
        const files = (await sh("tar", ["tzf", join(packs, p.tarball)], work)).split("\n");
        expect(files, p.name).toContain("package/dist/index.js");
        expect(files, p.name).toContain("package/dist/cjs/index.js");
        expect(files, p.name).toContain("package/dist/cjs/package.json");
        expect(files, p.name).toContain("package/README.md");
        expect(
          files.filter((f) => /\.test[.-]|\/src\//.test(f)),
          p.name,
        ).toEqual([]);
        const manifest = await sh(
          "tar",
          ["xzf", join(packs, p.tarball), "-O", "package/package.json"],
          work,
        );
        expect(manifest, `${p.name}: pnpm pack rewrites workspace: ranges`).not.toContain(
          "workspace:",
        );
      }
    },
    120_000,
  );

  it.skipIf(offline)(
    titled(
      "(a) .mjs imports and (b) .cjs requires: every entry point of every package, and the scenario",
    ),
    async ({ expect }) => {
      const dir = await project("js-user", {}, tarballs(published.map((p) => p.name)));
      await writeFile(join(dir, "scenario.mjs"), esmImports + scenario);
      await writeFile(join(dir, "scenario.cjs"), cjsRequires + scenario);
      expect(lastJson(await sh(process.execPath, ["scenario.mjs"], dir))).toEqual(expected());
      expect(lastJson(await sh(process.execPath, ["scenario.cjs"], dir))).toEqual(expected());

      // Every subpath of every package: require gets the CommonJS build, import the ES
      // module one, and both offer the same names.
      const entries = published.flatMap((p) =>
        Object.keys(p.manifest.exports)
          .filter((k) => k !== "./package.json")
          .map((k) => p.name + k.slice(1)),
      );
      await writeFile(
        join(dir, "load-all.mjs"),
        `import { createRequire } from "node:module";
const require = createRequire(import.meta.url);
const out = {};
for (const spec of JSON.parse(process.argv[2])) {
  const esm = await import(spec);
  const cjs = require(spec);
  out[spec] = {
    esm: import.meta.resolve(spec).replace(/^.*\\/node_modules\\//, ""),
    cjs: require.resolve(spec).replace(/^.*\\/node_modules\\//, ""),
    same: JSON.stringify(Object.keys(esm).sort()) === JSON.stringify(Object.keys(cjs).sort()),
    names: Object.keys(esm).length,
  };
}
// The dual-package hazard, on purpose: two copies of core with distinct classes, yet an
// error of one is an instance of the other's class (core brands its errors).
const esmCore = await import("@tinycache/core");
const cjsCore = require("@tinycache/core");
const err = new cjsCore.NotFoundError("k");
out.hazard = {
  distinctClasses: esmCore.NotFoundError !== cjsCore.NotFoundError,
  instanceofAcross: err instanceof esmCore.NotFoundError,
  peerErrorAcross: new esmCore.PeerError("unavailable", "p", "x") instanceof cjsCore.PeerError,
  code: err.code,
};
console.log(JSON.stringify(out));
`,
      );
      const loaded = lastJson(
        await sh(process.execPath, ["load-all.mjs", JSON.stringify(entries)], dir),
      ) as Record<string, { esm: string; cjs: string; same: boolean; names: number }>;
      for (const spec of entries) {
        const pkgDir = `${spec.split("/").slice(0, 2).join("/")}/`;
        expect(loaded[spec]?.esm, spec).toMatch(new RegExp(`^${pkgDir}dist/(?!cjs/).*\\.js$`));
        expect(loaded[spec]?.cjs, spec).toMatch(new RegExp(`^${pkgDir}dist/cjs/.*\\.js$`));
        expect(loaded[spec]?.same, `${spec}: same names from import and require`).toBe(true);
        expect(loaded[spec]?.names, spec).toBeGreaterThan(0);
      }
      expect(loaded.hazard).toEqual({
        distinctClasses: true,
        instanceofAcross: true,
        peerErrorAcross: true,
        code: "not_found",
      });
    },
    300_000,
  );

  it.skipIf(offline)(
    titled(
      "(c) a TypeScript CommonJS project (module nodenext, no type: module) compiles and runs",
    ),
    async ({ expect }) => {
      const dir = await project("ts-cjs-user", {}, tarballs(scenarioPackages));
      await mkdir(join(dir, "src"));
      await writeFile(join(dir, "tsconfig.json"), tsconfig());
      await writeFile(join(dir, "src", "main.ts"), esmImports + scenario);
      await sh(process.execPath, [tsc, "-p", "."], dir);
      const js = await readFile(join(dir, "dist", "main.js"), "utf8");
      expect(js).toContain('require("@tinycache/core")');
      expect(lastJson(await sh(process.execPath, ["dist/main.js"], dir))).toEqual(expected());
      // TypeScript before 5.8 (and module node16 still) refuses a require of an ES module;
      // our require condition has its own CommonJS types, so this passes there too.
      await sh(
        process.execPath,
        [tsc, "-p", ".", "--noEmit", "--module", "node16", "--moduleResolution", "node16"],
        dir,
      );
    },
    300_000,
  );

  it.skipIf(offline)(
    titled("(d) a TypeScript ES module project (module nodenext, type: module) compiles and runs"),
    async ({ expect }) => {
      const dir = await project("ts-esm-user", { type: "module" }, tarballs(scenarioPackages));
      await mkdir(join(dir, "src"));
      await writeFile(join(dir, "tsconfig.json"), tsconfig());
      await writeFile(join(dir, "src", "main.ts"), esmImports + scenario);
      await sh(process.execPath, [tsc, "-p", "."], dir);
      const js = await readFile(join(dir, "dist", "main.js"), "utf8");
      expect(js).toContain('from "@tinycache/core"');
      expect(lastJson(await sh(process.execPath, ["dist/main.js"], dir))).toEqual(expected());
    },
    300_000,
  );
});

describe("what a published package promises", () => {
  it.each(published.map((p) => [p.name, p] as const))(
    "%s: dual exports, prepack, and a README that says how to install it",
    async (_name, p) => {
      const m = p.manifest;
      expect(m.scripts.prepack, "pnpm pack on a fresh clone builds first").toMatch(
        /turbo run build/,
      );
      expect(m.scripts.build).toContain("tsc -p tsconfig.cjs.json");
      expect(m.scripts.build).toContain("tools/packaging/mark-cjs.mjs");
      expect(m.main).toBe("./dist/cjs/index.js");
      expect(m.types).toBe("./dist/cjs/index.d.ts");
      for (const [sub, target] of Object.entries(m.exports)) {
        if (sub === "./package.json") continue;
        const t = target as Record<string, Record<string, string>>;
        expect(Object.keys(t), sub).toEqual(["import", "require"]);
        expect(Object.keys(t.import ?? {}), `${sub}: types first`).toEqual(["types", "default"]);
        expect(t.require?.types, sub).toBe(t.import?.types?.replace("./dist/", "./dist/cjs/"));
        expect(t.require?.default, sub).toBe(t.import?.default?.replace("./dist/", "./dist/cjs/"));
        if (sub !== ".")
          expect(m.typesVersions?.["*"]?.[sub.slice(2)], sub).toEqual([t.require?.types]);
      }
      expect(m.files).toContain("!dist/**/*.test.*");

      const readme = await readFile(join(p.dir, "README.md"), "utf8");
      const install = /## Install\n([\s\S]*?)(?:\n## |$)/.exec(readme)?.[1] ?? "";
      const fromNpm = install.match(/^npm install ([@a-z0-9/.-]+ ?)+$/m)?.[0] ?? "";
      expect(fromNpm.split(" "), "an Install section: npm install, once published").toContain(
        p.name,
      );
      expect(install, "require works too").toMatch(/require\("@tinycache\//);
      // Before publication: the tarballs of the package and of every @tinycache package it
      // needs, with the versions they have now (`pnpm version-packages` keeps them so).
      const named = new Set(
        [...install.matchAll(/tinycache-[a-z0-9-]+?-\d+\.\d+\.\d+\S*?\.tgz/g)].map((x) => x[0]),
      );
      for (const need of withDependencies(published, p.name))
        expect(named, "tarballs").toContain(need.tarball);
      const known = new Set(published.map((q) => q.tarball));
      for (const t of named) expect(known, "a tarball pack:all makes").toContain(t);
    },
  );
});
