import { type Logger, pino } from "pino";
import { PinoPretty } from "pino-pretty";
import type { LogLevel } from "./cli.js";

export type { Logger } from "pino";

/**
 * Pretty output for people, JSON lines for programs: pretty when stdout is a terminal or
 * LOG_PRETTY=1, JSON when LOG_PRETTY=0 or stdout is a pipe (tests and the launcher parse
 * the lines).
 */
export function wantPretty(env: NodeJS.ProcessEnv = process.env): boolean {
  const v = env.LOG_PRETTY;
  if (v === "1" || v === "true") return true;
  if (v === "0" || v === "false") return false;
  return Boolean(process.stdout.isTTY);
}

export interface LoggerOptions {
  level: LogLevel;
  /** Fields on every line, e.g. `{ node: 8001 }`. */
  base?: Record<string, unknown>;
  pretty?: boolean;
}

/**
 * One line per event. Writes are synchronous: a line is never lost when the process exits
 * right after logging (shutdown, crash), and the demo logs events, not requests, so the
 * cost does not show on the hot path.
 */
export function createLogger({ level, base = {}, pretty = wantPretty() }: LoggerOptions): Logger {
  const stream = pretty
    ? PinoPretty({
        sync: true,
        colorize: Boolean(process.stdout.isTTY),
        translateTime: "HH:MM:ss.l",
        ignore: "pid,hostname,event",
        singleLine: true,
      })
    : pino.destination({ dest: 1, sync: true });
  return pino({ level, base: { pid: process.pid, ...base } }, stream);
}
