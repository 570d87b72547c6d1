/**
 * Go programs built against Debian's golang/groupcache (golang-go +
 * golang-github-golang-groupcache-dev, GOPATH mode): the interop tests' peers and the
 * cluster benchmark's contender, built the same way.
 */
import { execFile, execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { promisify } from "node:util";

/** Where the groupcache sources are looked for: Debian puts them in /usr/share/gocode. */
export const GOPATH = process.env.TINYCACHE_GOPATH ?? process.env.GOPATH ?? "/usr/share/gocode";

/** Why a groupcache Go program cannot be built here (what to install), or undefined. */
export function whyNoGoGroupcache(): string | undefined {
  try {
    execFileSync("go", ["version"], { stdio: "ignore" });
  } catch {
    return "go is not installed (apt-get install -y golang-go golang-github-golang-groupcache-dev)";
  }
  const found = GOPATH.split(delimiter).some((p) =>
    existsSync(join(p, "src/github.com/golang/groupcache/http.go")),
  );
  if (!found) {
    return `github.com/golang/groupcache not found in GOPATH ${GOPATH} (apt-get install -y golang-github-golang-groupcache-dev)`;
  }
  return undefined;
}

/** Builds the Go program in `srcDir` (GOPATH mode, no modules) into the binary `bin`. */
export async function buildGoProgram(srcDir: string, bin: string): Promise<string> {
  await promisify(execFile)("go", ["build", "-o", bin, "."], {
    cwd: srcDir,
    env: {
      ...process.env,
      GO111MODULE: "off",
      GOPATH,
      GOFLAGS: "",
      GOCACHE: process.env.GOCACHE ?? join(tmpdir(), "tinycache-go-cache"),
    },
  });
  return bin;
}
