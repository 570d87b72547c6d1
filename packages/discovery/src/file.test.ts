import { mkdirSync, mkdtempSync, renameSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { followPeers } from "@tinycache/core";
import { fakePool, isFail, isUpdate, peerRecorder as recorder } from "@tinycache/testkit";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { fileSource, fileSourceWith } from "./file.js";
import { parsePeerList } from "./private/parse.js";

const A = "http://10.0.0.1:8001";
const B = "http://10.0.0.2:8001";
const C = "http://10.0.0.3:8001";

describe("parsePeerList", () => {
  it("reads one URL per line, trimmed, without blank lines and # comments", () => {
    const text = `# the cache fleet\n\n  ${A}  \r\n${B} # rack 2\n\t# ${C}\n${C}\n`;
    expect(parsePeerList(text)).toEqual([A, B, C]);
  });

  it("keeps a # inside a word, and garbage lines as they are", () => {
    expect(parsePeerList(`${A}/#x\nnot a url\n::::\n`)).toEqual([`${A}/#x`, "not a url", "::::"]);
  });

  it("reads a JSON array or { peers: [...] }, with a BOM or leading whitespace", () => {
    expect(parsePeerList(JSON.stringify([A, B]))).toEqual([A, B]);
    expect(parsePeerList(`\uFEFF \n${JSON.stringify({ peers: [` ${C} `] })}`)).toEqual([C]);
    expect(parsePeerList("[]")).toEqual([]);
    expect(parsePeerList("")).toEqual([]);
  });

  it("throws on bad JSON and on JSON of the wrong shape", () => {
    expect(() => parsePeerList(`["${A}",`)).toThrow(SyntaxError);
    expect(() => parsePeerList(`{"nodes": ["${A}"]}`)).toThrow(/peers/);
    expect(() => parsePeerList(`["${A}", 7]`)).toThrow(/at index 1/);
    expect(() => parsePeerList("{}")).toThrow(TypeError);
  });
});

describe("fileSource", () => {
  let dir: string;
  let n = 0;
  const controllers: AbortController[] = [];
  /** A fresh file path per test, so no test sees another's events. */
  const freshPath = () => join(dir, `peers-${++n}.txt`);
  const start = (source: ReturnType<typeof fileSource>) => {
    const rec = recorder();
    const ac = new AbortController();
    controllers.push(ac);
    source.subscribe(rec.sink, ac.signal);
    return { rec, ac };
  };

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "tinycache-file-"));
  });
  afterEach(() => {
    for (const ac of controllers.splice(0)) ac.abort();
  });
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it("reads the file on subscribe and is named after its path", async () => {
    const path = freshPath();
    writeFileSync(path, `${B}\n${A}\n`);
    const source = fileSource(path, { pollMs: 60_000 });
    expect(source.name).toBe(`file:${path}`);
    const { rec } = start(source);
    expect(await rec.next()).toEqual({ kind: "update", urls: [B, A] });
  });

  it("reads it again when it is rewritten in place (fs.watch, no poll)", async () => {
    const path = freshPath();
    writeFileSync(path, `${A}\n`);
    const { rec } = start(fileSource(path, { pollMs: 60_000 }));
    await rec.next(isUpdate([A]));
    writeFileSync(path, `${A}\n${B}\n`);
    await rec.next(isUpdate([A, B]));
  });

  it("reads it again when an editor replaces it by rename", async () => {
    const path = freshPath();
    writeFileSync(path, JSON.stringify([A]));
    const { rec } = start(fileSource(path, { pollMs: 60_000 }));
    await rec.next(isUpdate([A]));
    writeFileSync(`${path}.tmp`, JSON.stringify({ peers: [A, C] }));
    renameSync(`${path}.tmp`, path);
    await rec.next(isUpdate([A, C]));
  });

  it("falls back to the stat poll where there is no watch", async () => {
    const path = freshPath();
    writeFileSync(path, `${A}\n`);
    const { rec } = start(fileSourceWith(path, { pollMs: 10 }, { watch: false }));
    await rec.next(isUpdate([A]));
    writeFileSync(path, `${B}\n`);
    await rec.next(isUpdate([B]));
  });

  it("reports bad JSON as a failure, and the list once it is fixed", async () => {
    const path = freshPath();
    writeFileSync(path, `["${A}", `);
    const { rec } = start(fileSource(path, { pollMs: 60_000 }));
    const failed = await rec.next();
    expect(failed.kind).toBe("fail");
    expect(String((failed as { reason: unknown }).reason)).toMatch(/bad JSON/);
    writeFileSync(path, `["${A}", "${B}"]`);
    await rec.next(isUpdate([A, B]));
  });

  it("reports a missing file as a failure (once), and reads it once it appears", async () => {
    const path = freshPath();
    const { rec } = start(fileSource(path, { pollMs: 10 }));
    const failed = await rec.next();
    expect((failed as { reason: NodeJS.ErrnoException }).reason.code).toBe("ENOENT");
    writeFileSync(path, `${C}\n`);
    await rec.next(isUpdate([C]));
    // The stat poll ran many times while the file was missing: one failure was reported.
    expect(rec.failures()).toHaveLength(1);
  });

  it("reports a deleted file as a failure", async () => {
    const path = freshPath();
    writeFileSync(path, `${A}\n`);
    const { rec } = start(fileSource(path, { pollMs: 60_000 }));
    await rec.next(isUpdate([A]));
    unlinkSync(path);
    await rec.next(isFail);
  });

  it("watches a directory that appears later", async () => {
    const sub = join(dir, `later-${++n}`);
    const path = join(sub, "peers");
    const { rec } = start(fileSource(path, { pollMs: 10 }));
    await rec.next(isFail);
    mkdirSync(sub);
    writeFileSync(path, `${B}\n`);
    await rec.next(isUpdate([B]));
  });

  it("passes garbage lines on; followPeers keeps the good URLs and counts the rest", async () => {
    const path = freshPath();
    writeFileSync(path, `${A}\nnot a url\n${B}\nftp://10.0.0.9:21\n\u0000\u0001\n${A}?x=1\n`);
    const rec = recorder();
    const pool = fakePool(A);
    const m = followPeers(pool, rec.tee(fileSource(path, { pollMs: 60_000 })), { batchMs: 0 });
    try {
      await rec.next();
      expect(pool.calls).toEqual([[A, B]]);
      expect(m.stats.invalidUrls).toBe(4);
      // A change that is all garbage except self: applied, garbage counted again.
      writeFileSync(path, `${A}\n%%%\n`);
      await rec.next(isUpdate([A, "%%%"]));
      expect(pool.calls).toEqual([[A, B], [A]]);
      expect(m.stats.invalidUrls).toBe(5);
    } finally {
      m.close();
    }
  });

  it("through followPeers: bad JSON and an emptied file keep the last good list", async () => {
    const path = freshPath();
    writeFileSync(path, `${A}\n${B}\n`);
    const rec = recorder();
    const pool = fakePool(A);
    const m = followPeers(pool, rec.tee(fileSource(path, { pollMs: 60_000 })), { batchMs: 0 });
    try {
      await rec.next(isUpdate([A, B]));
      writeFileSync(path, "[oops");
      await rec.next(isFail);
      writeFileSync(path, "# nobody\n");
      await rec.next(isUpdate([]));
      expect(m.peers).toEqual([A, B]);
      expect(m.stats).toMatchObject({ changes: 1, failures: 1, refusedEmpty: 1 });
    } finally {
      m.close();
    }
  });

  it("stops watching and polling when the signal aborts", async () => {
    const path = freshPath();
    writeFileSync(path, `${A}\n`);
    const stopped = start(fileSource(path, { pollMs: 10 }));
    await stopped.rec.next(isUpdate([A]));
    stopped.ac.abort();
    // A second source on the same file witnesses the change; the stopped one saw nothing.
    const witness = start(fileSource(path, { pollMs: 10 }));
    await witness.rec.next(isUpdate([A]));
    writeFileSync(path, `${B}\n`);
    await witness.rec.next(isUpdate([B]));
    expect(stopped.rec.events).toEqual([{ kind: "update", urls: [A] }]);
  });

  it("refuses bad options", () => {
    expect(() => fileSource("")).toThrow(/fileSource: path must be a non-empty string/);
    expect(() => fileSource(42 as never)).toThrow(TypeError);
    expect(() => fileSource("/x", { pollMs: 0 })).toThrow(/fileSource: pollMs must be/);
    expect(() => fileSource("/x", { pollMs: Number.NaN })).toThrow(RangeError);
  });
});
