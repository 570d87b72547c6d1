import { randomUUID } from "node:crypto";
import { mkdirSync, renameSync, rmSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import Database from "better-sqlite3";
import { CLASSIC_SCORES, GENERATED_ROWS, generatedKey, generatedScore } from "./keys.js";
import type { Logger } from "./log.js";

export { CLASSIC_SCORES, GENERATED_ROWS, generatedKey, generatedScore };

/** File name of the demo database inside the data folder. */
export const DB_FILE = "scores.sqlite";
/** Bumped when the schema or seed changes, so an old file is re-seeded. */
const SCHEMA_VERSION = "2"; // 2: 200,000 generated rows (was 100,000)
function isSeeded(file: string): boolean {
  try {
    const db = new Database(file, { readonly: true, fileMustExist: true });
    try {
      const row = db.prepare("SELECT v FROM meta WHERE k = 'schema'").get() as
        | { v: string }
        | undefined;
      return row?.v === SCHEMA_VERSION;
    } finally {
      db.close();
    }
  } catch {
    return false; // missing, unreadable or foreign file: (re-)seed it
  }
}

/**
 * Creates the database in `dataDir` unless a current one is there. Safe when several
 * processes start at once: each seeds into its own temporary file and renames it into
 * place, which is atomic on one file system, so a reader never sees a half-written file
 * (and a reader that opened an older copy keeps reading that copy's identical rows).
 * `onCreate` is called just before a new database is written (about half a second of
 * synchronous work), so a caller can say what the wait is for.
 * @returns the database file and whether this call created it.
 */
export function seedDatabase(
  dataDir: string,
  opts: { onCreate?: (file: string) => void } = {},
): { file: string; created: boolean } {
  mkdirSync(dataDir, { recursive: true });
  const file = join(dataDir, DB_FILE);
  if (isSeeded(file)) return { file, created: false };
  opts.onCreate?.(file);
  const tmp = `${file}.${process.pid}.${randomUUID()}.tmp`;
  try {
    const db = new Database(tmp);
    try {
      db.exec(`
        CREATE TABLE scores (name TEXT PRIMARY KEY, score TEXT NOT NULL) WITHOUT ROWID;
        CREATE TABLE meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
      `);
      const insert = db.prepare("INSERT INTO scores (name, score) VALUES (?, ?)");
      db.transaction(() => {
        for (const [name, score] of Object.entries(CLASSIC_SCORES)) insert.run(name, score);
        for (let i = 1; i <= GENERATED_ROWS; i++) insert.run(generatedKey(i), generatedScore(i));
        db.prepare("INSERT INTO meta (k, v) VALUES ('schema', ?)").run(SCHEMA_VERSION);
      })();
    } finally {
      db.close();
    }
    renameSync(tmp, file);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
  return { file, created: true };
}

export interface ScoreDbOptions {
  dataDir: string;
  logger: Logger;
  /** Extra latency per read, in ms, to make the source slow on purpose. Default 0. */
  latencyMs?: number;
}

/**
 * The demo's source of truth: the original's "slow DB", backed by SQLite. Opened read-only
 * so that three node processes can share one file safely.
 */
export class ScoreDb {
  readonly file: string;
  readonly #db: Database.Database;
  readonly #find: Database.Statement<[string], { score: string }>;
  readonly #logger: Logger;
  readonly #latencyMs: number;
  #reads = 0;

  constructor({ dataDir, logger, latencyMs = 0 }: ScoreDbOptions) {
    this.file = seedDatabase(dataDir).file;
    this.#db = new Database(this.file, { readonly: true, fileMustExist: true });
    this.#find = this.#db.prepare("SELECT score FROM scores WHERE name = ?");
    this.#logger = logger;
    this.#latencyMs = latencyMs;
  }

  /** Reads started since the process began (each one logged as `[SlowDB] search key <key>`). */
  get reads(): number {
    return this.#reads;
  }

  /**
   * The score of `key`, or undefined when there is no such row. Waits `latencyMs` first;
   * an aborted `signal` ends the wait at once (rejects with the signal's reason).
   */
  async find(key: string, opts: { signal?: AbortSignal } = {}): Promise<string | undefined> {
    this.#reads++;
    this.#logger.info({ event: "db_read", key }, `[SlowDB] search key ${key}`);
    const { signal } = opts;
    if (this.#latencyMs > 0) {
      try {
        await delay(this.#latencyMs, undefined, { signal });
      } catch (err) {
        // Reject with the caller's own reason (as core does), not the timer's AbortError.
        if (signal?.aborted) throw signal.reason;
        throw err;
      }
    }
    signal?.throwIfAborted();
    return this.#find.get(key)?.score;
  }

  close(): void {
    this.#db.close();
  }
}
