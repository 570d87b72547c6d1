/**
 * The demo's log lines, recorded instead of written: a peer failure (core's warning, with
 * the transport's PeerError) reads as one line that says the error once, as JSON for
 * programs and pretty for people; real errors keep their stack.
 */
import { GroupRegistry, PeerError } from "@tinycache/core";
import { freePort } from "@tinycache/testkit";
import { HttpPool } from "@tinycache/transport-http";
import { describe, expect, it } from "vitest";
import { createLogger, createPrettifier, type Logger, messageOnce } from "./log.js";

/** A logger whose lines land in `lines` (one entry per write: pino writes a line at once). */
function recordingLogger(pretty: boolean): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  const logger = createLogger({
    level: "info",
    base: { node: 8003 },
    pretty,
    colorize: false,
    destination: { write: (s: string) => void lines.push(s) },
  });
  return { logger, lines };
}

/** How often `needle` occurs in `text`. */
const count = (text: string, needle: string) => text.split(needle).length - 1;

/** The error the HTTP transport makes when a peer refuses the connection. */
function refused(peer: string): PeerError {
  const cause = Object.assign(new Error(`connect ECONNREFUSED ${new URL(peer).host}`), {
    code: "ECONNREFUSED",
  });
  return new PeerError("unavailable", peer, cause.message, { cause });
}

/**
 * A real peer failure: a group whose ring has a second peer nobody listens on, asked for
 * a key that peer owns. Core warns and loads the key locally.
 */
async function peerFailureLine(pretty: boolean): Promise<{ lines: string[]; dead: string }> {
  const rec = recordingLogger(pretty);
  const self = `http://127.0.0.1:${await freePort()}`;
  const dead = `http://127.0.0.1:${await freePort()}`;
  const registry = new GroupRegistry();
  const group = registry.newGroup({
    name: "scores",
    cacheBytes: 1 << 20,
    getter: async (key) => `local:${key}`,
    logger: rec.logger.child({ component: "core" }),
  });
  const pool = new HttpPool({ self, registry, timeoutMs: 5_000 });
  try {
    pool.setPeers(self, dead);
    registry.registerPeers(pool);
    let i = 0;
    while (pool.pickPeer(`k${i}`) === undefined) i++;
    expect((await group.get(`k${i}`)).toString()).toBe(`local:k${i}`);
  } finally {
    await pool.close();
  }
  return { lines: rec.lines.filter((l) => l.includes("peer fetch failed")), dead };
}

describe("a peer failure in the log", () => {
  it("as JSON: one line, the error's text once (the stack keeps the cause)", async () => {
    const { lines, dead } = await peerFailureLine(false);
    expect(lines).toHaveLength(1);
    const line = lines[0]!;
    expect(count(line, "\n")).toBe(1); // the line's own end only
    const obj = JSON.parse(line);
    const host = new URL(dead).host;
    expect(obj).toMatchObject({
      level: 40,
      node: 8003,
      component: "core",
      peer: dead,
      group: "scores",
      msg: "tinycache: peer fetch failed, loading locally",
      err: { type: "PeerError", code: "peer_unavailable", kind: "unavailable", peer: dead },
    });
    // Was "peer X: connect ECONNREFUSED H: connect ECONNREFUSED H".
    expect(obj.err.message).toBe(`peer ${dead}: connect ECONNREFUSED ${host}`);
    expect(obj.err.stack).toContain(`caused by: Error: connect ECONNREFUSED ${host}`);
  });

  it("pretty: one line, the error's text once after the message, no stack", async () => {
    const { lines, dead } = await peerFailureLine(true);
    expect(lines).toHaveLength(1);
    const line = lines[0]!;
    const host = new URL(dead).host;
    expect(line.endsWith("\n")).toBe(true);
    expect(count(line, "\n")).toBe(1);
    expect(line).toMatch(
      /^\[\d\d:\d\d:\d\d\.\d{3}\] WARN: tinycache: peer fetch failed, loading locally: peer \S+: connect ECONNREFUSED \S+ \{/,
    );
    expect(count(line, `connect ECONNREFUSED ${host}`)).toBe(1);
    expect(line).not.toMatch(/\bat \S+ \(/); // no stack frame
    expect(line).toContain(`"peer":"${dead}"`);
    expect(line).toContain('"group":"scores"');
  });

  it("pretty, as the launcher prints its nodes' JSON lines: the same one line", () => {
    const dead = "http://127.0.0.1:8001";
    const json = recordingLogger(false);
    json.logger.warn(
      { err: refused(dead), peer: dead, key: "Tom" },
      "tinycache: peer fetch failed, loading locally",
    );
    const prettify = createPrettifier({ colorize: false, ignore: "pid,hostname,node,event" });
    const text = prettify(JSON.parse(json.lines[0]!));
    expect(text.trimEnd()).toMatch(
      /^\[[\d:.]+\] WARN: tinycache: peer fetch failed, loading locally: peer http:\/\/127\.0\.0\.1:8001: connect ECONNREFUSED 127\.0\.0\.1:8001 \{"peer":"http:\/\/127\.0\.0\.1:8001","key":"Tom"\}$/,
    );
  });
});

describe("other errors", () => {
  it("keep a cause's text that the message does not already hold", () => {
    const err = new Error("load failed", { cause: new Error("disk full") });
    expect(messageOnce(err)).toBe("load failed: disk full");
    const rec = recordingLogger(false);
    rec.logger.warn({ err }, "api: load failed");
    expect(JSON.parse(rec.lines[0]!).err.message).toBe("load failed: disk full");
    // A chain: each text once, in order; a cycle does not loop.
    const inner = new Error("ECONNRESET");
    const mid = new Error("socket hang up: ECONNRESET", { cause: inner });
    const top = new Error("peer p: socket hang up: ECONNRESET", { cause: mid });
    expect(messageOnce(top)).toBe("peer p: socket hang up: ECONNRESET");
    const a = new Error("a");
    const b = new Error("b", { cause: a });
    (a as { cause?: unknown }).cause = b;
    expect(messageOnce(a)).toBe("a: b");
  });

  it("at level error, pretty output keeps the full error with its stack", () => {
    const rec = recordingLogger(true);
    rec.logger.error({ err: refused("http://127.0.0.1:8001") }, "the cluster did not start");
    const text = rec.lines.join("");
    expect(text).toMatch(/^\[[\d:.]+\] ERROR: the cluster did not start/);
    expect(text).toMatch(/\n\s+at /); // stack frames, on their own lines
    expect(text).toContain('"message": "peer http://127.0.0.1:8001: connect ECONNREFUSED');
    expect(count(text, '"message"')).toBe(1);
  });

  it("a line without an error is unchanged", () => {
    const rec = recordingLogger(true);
    rec.logger.info({ key: "Tom" }, "[SlowDB] search key Tom");
    expect(rec.lines).toHaveLength(1);
    expect(rec.lines[0]).toMatch(
      /^\[[\d:.]+\] INFO: \[SlowDB\] search key Tom \{"node":8003,"key":"Tom"\}\n$/,
    );
  });
});
