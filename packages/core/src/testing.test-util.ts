/** Helpers shared by the tests (excluded from the build). */

import { expect } from "vitest";
import { PeerError } from "./errors.js";

export { type Deferred, deferred } from "@tinycache/testkit";

/** The PeerError `p` rejects with (fails the test if it resolves or rejects otherwise). */
export async function peerError(p: Promise<unknown>): Promise<PeerError> {
  const err = await p.then(
    () => new Error("expected a PeerError"),
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(PeerError);
  return err as PeerError;
}

/** A manual clock for TTL tests: no sleeping. */
export function fakeClock(start = 1_700_000_000_000): {
  now: () => number;
  advance: (ms: number) => void;
} {
  let t = start;
  return {
    now: () => t,
    advance: (ms) => {
      t += ms;
    },
  };
}

/** Lets every queued promise job run. */
export async function flush(times = 10): Promise<void> {
  for (let i = 0; i < times; i++) await new Promise<void>((r) => setImmediate(r));
}

export interface LogLine {
  level: string;
  obj: object;
  msg: string | undefined;
}

export function memoryLogger(): { lines: LogLine[]; logger: import("./peers.js").Logger } {
  const lines: LogLine[] = [];
  const at =
    (level: string) =>
    (obj: object, msg?: string): void => {
      lines.push({ level, obj, msg });
    };
  return {
    lines,
    logger: { debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error") },
  };
}
