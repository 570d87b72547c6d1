import { type DestinationStream, type Logger, pino } from "pino";
import { prettyFactory } from "pino-pretty";
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
  /** Colours in pretty lines. Default: when stdout is a terminal. */
  colorize?: boolean;
  /** Where the lines go. Default: stdout, written synchronously. */
  destination?: DestinationStream;
}

/** pino's level number of "error": lines at or above it keep their error's stack. */
const ERROR_LEVEL = 50;

interface ErrorLike {
  message: string;
  cause?: unknown;
}

const isErrorLike = (v: unknown): v is ErrorLike =>
  typeof v === "object" && v !== null && typeof (v as ErrorLike).message === "string";

/**
 * An error's message with the messages of its causes, each only if the text so far does
 * not already hold it. pino's standard serializer appends every cause's message, but
 * tinycache's errors already end with their cause's text (`peer X: connect ECONNREFUSED
 * ...`), which then read twice.
 */
export function messageOnce(err: ErrorLike): string {
  let text = err.message;
  const seen = new Set<unknown>([err]);
  let cause = err.cause;
  while (isErrorLike(cause) && !seen.has(cause) && seen.size < 10) {
    seen.add(cause);
    if (cause.message !== "" && !text.includes(cause.message)) {
      text = text === "" ? cause.message : `${text}: ${cause.message}`;
    }
    cause = cause.cause;
  }
  return text;
}

/** pino's `err` serializer (type, stack with causes, own fields), the message said once. */
function serializeErr(err: unknown): unknown {
  const out = pino.stdSerializers.err(err as Error);
  if (isErrorLike(err) && typeof out === "object" && out !== null) {
    (out as { message: string }).message = messageOnce(err);
  }
  return out;
}

export interface PrettifierOptions {
  colorize: boolean;
  /** Comma-separated fields left out of the line (pino-pretty's `ignore`). */
  ignore: string;
}

/**
 * Turns one log object (a parsed JSON line) into one line for a person. Below level error,
 * an `err` is shown as its message after the line's own (`peer fetch failed, loading
 * locally: peer http://...: connect ECONNREFUSED ...`), not as pino-pretty's multi-line
 * block with a stack: a peer failure is an expected event the cache handles, and a
 * stack per failed fetch buried the log. Errors (level error and up) keep the block.
 */
export function createPrettifier({
  colorize,
  ignore,
}: PrettifierOptions): (obj: Record<string, unknown>) => string {
  const prettify = prettyFactory({
    colorize,
    translateTime: "HH:MM:ss.l",
    ignore,
    singleLine: true,
  });
  return (obj) => {
    const { err, ...rest } = obj;
    if (!isErrorLike(err) || (typeof obj.level === "number" && obj.level >= ERROR_LEVEL)) {
      return prettify(obj);
    }
    const text = messageOnce(err);
    const msg = typeof rest.msg === "string" && rest.msg !== "" ? `${rest.msg}: ${text}` : text;
    return prettify({ ...rest, msg });
  };
}

/**
 * One line per event. Writes are synchronous: a line is never lost when the process exits
 * right after logging (shutdown, crash), and the demo logs events, not requests, so the
 * cost does not show on the hot path.
 */
export function createLogger({
  level,
  base = {},
  pretty = wantPretty(),
  colorize = Boolean(process.stdout.isTTY),
  destination = pino.destination({ dest: 1, sync: true }),
}: LoggerOptions): Logger {
  let stream = destination;
  if (pretty) {
    // The same prettifier as the launcher's for its nodes' lines, so a node run by hand
    // and one run by `pnpm demo` print alike.
    const prettify = createPrettifier({ colorize, ignore: "pid,hostname,event" });
    stream = { write: (line: string) => destination.write(prettify(JSON.parse(line))) };
  }
  return pino(
    { level, base: { pid: process.pid, ...base }, serializers: { err: serializeErr } },
    stream,
  );
}
