import { type FSWatcher, promises as fsp, watch } from "node:fs";
import { basename, dirname, resolve } from "node:path";
import type { PeerSource } from "@tinycache/core";
import { parsePeerList } from "./private/parse.js";
import { safeSink } from "./private/safe-sink.js";

/** Options of {@link fileSource}. */
export interface FileSourceOptions {
  /**
   * How often the file is stat'ed, as a fallback to `fs.watch` (which some file systems,
   * e.g. network mounts, do not support). A changed file is read again at once either way.
   * @default 2000
   */
  pollMs?: number;
}

/** @internal Test seams of {@link fileSource}. */
export interface FileSourceHooks {
  /** Use `fs.watch` on the directory. Default true; false leaves only the stat poll. */
  watch?: boolean;
}

/** How long a burst of fs events (a write, a truncate + write, a rename) is let settle. */
const SETTLE_MS = 20;

/**
 * A file of peer URLs, as a {@link PeerSource}: one URL per line (blank lines and `#`
 * comments skipped) or a JSON array of strings (or `{ "peers": [...] }`). It is read on
 * subscribe and again whenever it changes: the directory is watched (`fs.watch`, which
 * sees editors and `mv` replacing the file), and the file is stat'ed every `pollMs` in
 * case the watch misses something. Each read reports the whole list; a missing or
 * unreadable file and bad JSON are reported as failures (the membership keeps the last
 * good list). Lines are passed on as they are: the membership drops and counts URLs that
 * do not parse.
 *
 * Named `file:<path>`. Its timers and watcher do not keep the process alive.
 * @throws TypeError for a bad `path`, RangeError for a bad `pollMs`.
 */
export function fileSource(path: string, options: FileSourceOptions = {}): PeerSource {
  return fileSourceWith(path, options, {});
}

/** @internal {@link fileSource} with test seams. */
export function fileSourceWith(
  path: string,
  options: FileSourceOptions,
  hooks: FileSourceHooks,
): PeerSource {
  if (typeof path !== "string" || path === "") {
    throw new TypeError(`fileSource: path must be a non-empty string, got ${String(path)}`);
  }
  const pollMs = options?.pollMs ?? 2000;
  if (typeof pollMs !== "number" || !Number.isFinite(pollMs) || !(pollMs > 0)) {
    throw new RangeError(`fileSource: pollMs must be a finite number > 0, got ${String(pollMs)}`);
  }
  const useWatch = hooks.watch ?? true;
  const file = resolve(path);
  const dir = dirname(file);
  const base = basename(file);

  return {
    name: `file:${path}`,
    subscribe(rawSink, signal) {
      if (signal.aborted) return;
      const sink = safeSink(rawSink, signal);
      let watcher: FSWatcher | undefined;
      let settleTimer: NodeJS.Timeout | undefined;
      let loading = false;
      let again = false;
      /** What the file looked like at the last read ("" before the first). */
      let seen = "";

      const signature = async (): Promise<string> => {
        try {
          const st = await fsp.stat(file, { bigint: true });
          return `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
        } catch (err) {
          return `error:${(err as NodeJS.ErrnoException).code ?? String(err)}`;
        }
      };

      const load = async (): Promise<void> => {
        if (loading) {
          again = true;
          return;
        }
        loading = true;
        try {
          do {
            again = false;
            seen = await signature();
            let text: string;
            try {
              text = await fsp.readFile(file, "utf8");
            } catch (err) {
              sink.fail(err);
              continue;
            }
            if (signal.aborted) return;
            try {
              sink.update(parsePeerList(text));
            } catch (err) {
              const why = err instanceof SyntaxError ? "bad JSON" : "bad peer list";
              sink.fail(
                new Error(`fileSource: ${path}: ${why}: ${(err as Error).message}`, { cause: err }),
              );
            }
          } while (again && !signal.aborted);
        } finally {
          loading = false;
        }
      };

      const reload = (): void => {
        if (signal.aborted || settleTimer !== undefined) return;
        settleTimer = setTimeout(() => {
          settleTimer = undefined;
          void load();
        }, SETTLE_MS);
        settleTimer.unref();
      };

      const startWatch = (): void => {
        if (!useWatch || watcher !== undefined || signal.aborted) return;
        try {
          const w = watch(dir, { persistent: false }, (_event, name) => {
            if (name === null || name === base) reload();
          });
          w.on("error", () => {
            // The directory went away (or the watch broke): the poll takes over and
            // watches again once it can.
            w.close();
            if (watcher === w) watcher = undefined;
          });
          watcher = w;
        } catch {
          // No such directory yet, or fs.watch unsupported here: the poll covers it.
        }
      };

      const poll = setInterval(() => {
        startWatch();
        if (loading || settleTimer !== undefined) return;
        void signature().then((sig) => {
          if (sig !== seen) reload();
        });
      }, pollMs);
      poll.unref();

      signal.addEventListener(
        "abort",
        () => {
          clearInterval(poll);
          if (settleTimer !== undefined) clearTimeout(settleTimer);
          settleTimer = undefined;
          watcher?.close();
          watcher = undefined;
        },
        { once: true },
      );
      startWatch();
      void load();
    },
  };
}
