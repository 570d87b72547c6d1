import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  CLASSIC_SCORES,
  DB_FILE,
  GENERATED_ROWS,
  generatedKey,
  generatedScore,
  ScoreDb,
  seedDatabase,
} from "./db.js";
import { createLogger, type Logger } from "./log.js";

const dirs: string[] = [];
const open: ScoreDb[] = [];
afterEach(() => {
  for (const db of open.splice(0)) db.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), "tinycache-demo-db-"));
  dirs.push(d);
  return d;
}

/** A logger that records what it was given instead of writing anywhere. */
function recordingLogger(): { logger: Logger; lines: { obj: object; msg?: string }[] } {
  const lines: { obj: object; msg?: string }[] = [];
  const logger = createLogger({ level: "info", pretty: false });
  const rec = (obj: object, msg?: string) => {
    lines.push(msg === undefined ? { obj } : { obj, msg });
  };
  return {
    lines,
    logger: Object.assign(Object.create(logger) as Logger, { info: rec, warn: rec, error: rec }),
  };
}

function openDb(dataDir: string, latencyMs = 0) {
  const rec = recordingLogger();
  const db = new ScoreDb({ dataDir, logger: rec.logger, latencyMs });
  open.push(db);
  return { db, lines: rec.lines };
}

describe("seedDatabase", () => {
  it("creates the database once, then reuses it", () => {
    const dir = join(tempDir(), "nested", "data");
    // onCreate says a wait is coming (the launcher logs it), only when there is one.
    const announced: string[] = [];
    const onCreate = (file: string) => announced.push(file);
    expect(seedDatabase(dir, { onCreate })).toEqual({ file: join(dir, DB_FILE), created: true });
    expect(announced).toEqual([join(dir, DB_FILE)]);
    expect(seedDatabase(dir, { onCreate })).toEqual({ file: join(dir, DB_FILE), created: false });
    expect(announced).toHaveLength(1);
    // No temporary files are left behind.
    expect(readdirSync(dir)).toEqual([DB_FILE]);
  });

  it("re-seeds a file that is not a current demo database", async () => {
    const dir = tempDir();
    const { writeFileSync } = await import("node:fs");
    writeFileSync(join(dir, DB_FILE), "not a database");
    expect(seedDatabase(dir).created).toBe(true);
    const { db } = openDb(dir);
    expect(await db.find("Tom")).toBe("630");
  });

  it("survives concurrent first starts (each seeds a temp file and renames it)", async () => {
    const dir = tempDir();
    // Real processes racing, as three nodes started at once would.
    const { spawnNode } = await import("@tinycache/testkit");
    // The built module (`pnpm test` builds first): no TypeScript loader in the children.
    const script = `import { seedDatabase } from ${JSON.stringify(new URL("../dist/db.js", import.meta.url).href)};
      const r = seedDatabase(${JSON.stringify(dir)}); console.log(JSON.stringify(r));`;
    const procs = Array.from({ length: 3 }, () => spawnNode(["--input-type=module", "-e", script]));
    try {
      const exits = await Promise.all(procs.map((p) => p.exited));
      expect(exits.map((e) => e.code)).toEqual([0, 0, 0]);
    } finally {
      await Promise.all(procs.map((p) => p.kill()));
    }
    expect(readdirSync(dir)).toEqual([DB_FILE]);
    const { db } = openDb(dir);
    expect(await db.find("Sam")).toBe("567");
    expect(await db.find(generatedKey(GENERATED_ROWS))).toBe(generatedScore(GENERATED_ROWS));
  });
});

describe("ScoreDb", () => {
  // One seeded folder for the read-only tests (seeding 200k rows is the slow part).
  let shared = "";
  beforeAll(() => {
    shared = mkdtempSync(join(tmpdir(), "tinycache-demo-db-"));
    seedDatabase(shared);
  });
  afterAll(() => rmSync(shared, { recursive: true, force: true }));

  it("holds the original's three rows and 200k generated ones", async () => {
    const { db } = openDb(shared);
    for (const [name, score] of Object.entries(CLASSIC_SCORES)) {
      expect(await db.find(name)).toBe(score);
    }
    expect(await db.find(generatedKey(1))).toBe(generatedScore(1));
    expect(await db.find("user000001")).toBe(generatedScore(1));
    expect(await db.find("user200000")).toBe(generatedScore(200_000));
    expect(await db.find("user200001")).toBeUndefined();
    expect(await db.find("user000000")).toBeUndefined();
  });

  it("answers undefined for missing, empty, unicode and SQL-looking keys", async () => {
    const { db } = openDb(shared);
    expect(await db.find("nobody")).toBeUndefined();
    expect(await db.find("")).toBeUndefined();
    expect(await db.find("Tömß 🚀")).toBeUndefined();
    expect(await db.find("Tom' OR '1'='1")).toBeUndefined();
    expect(await db.find("tom")).toBeUndefined(); // keys are case-sensitive
  });

  it("logs [SlowDB] search key <key> and counts every read", async () => {
    const { db, lines } = openDb(shared);
    await db.find("Tom");
    await db.find("nobody");
    expect(db.reads).toBe(2);
    expect(lines.map((l) => l.msg)).toEqual([
      "[SlowDB] search key Tom",
      "[SlowDB] search key nobody",
    ]);
    expect(lines[0]?.obj).toMatchObject({ event: "db_read", key: "Tom" });
  });

  it("waits --db-latency-ms, and an aborted signal ends the wait at once", async () => {
    const { db } = openDb(shared, 60_000);
    const ac = new AbortController();
    const pending = db.find("Tom", { signal: ac.signal });
    const reason = new Error("caller gave up");
    ac.abort(reason);
    await expect(pending).rejects.toBe(reason);
    await expect(db.find("Tom", { signal: AbortSignal.abort(reason) })).rejects.toBe(reason);
  });

  it("with a short latency still answers", async () => {
    const { db } = openDb(shared, 5);
    expect(await db.find("Jack")).toBe("589");
  });
});
