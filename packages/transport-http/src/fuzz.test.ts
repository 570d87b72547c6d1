import * as http from "node:http";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { ByteView, InvalidArgumentError, NotFoundError } from "@tinycache/core";
import { groupcachepb } from "@tinycache/protocol";
import { prng } from "@tinycache/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type Answer,
  echoGroup,
  fakeGroup,
  keyLimitedLookup,
  request,
  type Served,
  serve,
} from "./fixtures.test-util.js";
import { HttpPool } from "./http-pool.js";

const rand = prng(20240605);
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)] as T;
const int = (n: number) => Math.floor(rand() * n);

/** A group that answers every way a group can: values, typed errors, throws, junk. */
const chaotic = fakeGroup("chaos", (key) => {
  switch (key.length % 6) {
    case 0:
      return Promise.resolve({ value: ByteView.from(key), expiresAt: int(3) ? undefined : 1e12 });
    case 1:
      return Promise.reject(new NotFoundError(key));
    case 2:
      return Promise.reject(new InvalidArgumentError(`bad ${key}`));
    case 3:
      return Promise.reject("not even an Error");
    case 4:
      throw new Error("synchronous throw");
    default:
      return Promise.resolve({ value: { junk: true } as unknown as ByteView });
  }
});
chaotic.serveSet = (key) => {
  if (key.length % 2) throw new InvalidArgumentError("nope");
};

const ASCII = Array.from({ length: 0x7e - 0x21 + 1 }, (_, i) => String.fromCharCode(0x21 + i));
const PIECES = [
  "%",
  "%2",
  "%zz",
  "%2F",
  "%20",
  "%FF",
  "%C3%A9",
  "%E4%B8",
  "+",
  "/",
  "?",
  "#",
  "//",
  "..",
];
const METHODS = [
  "GET",
  "GET",
  "GET",
  "PUT",
  "PUT",
  "DELETE",
  "POST",
  "HEAD",
  "OPTIONS",
  "PATCH",
  "TRACE",
  "PROPFIND",
];
const PREFIXES = [
  "/_groupcache/",
  "/_groupcache/",
  "/_groupcache",
  "/",
  "/other/",
  "/_groupcache/%",
];
const GROUPS = ["scores", "chaos", "chaos", "", "nope", "sc%6Fres", "%"];

function randomSegment(): string {
  let s = "";
  const n = int(12);
  for (let i = 0; i < n; i++) s += int(4) ? pick(ASCII) : pick(PIECES);
  return s;
}

function randomPath(): string {
  let p = pick(PREFIXES);
  if (int(10)) p += pick(GROUPS);
  if (int(8)) p += `/${randomSegment()}`;
  if (!int(30)) p += "k".repeat(300); // over maxKeyBytes
  return p;
}

function randomBody(method: string): Buffer | undefined {
  const r = int(4);
  if (method !== "PUT" && r !== 0) return undefined;
  if (r === 1) {
    const value = new Uint8Array(int(3000));
    return Buffer.from(
      toBinary(
        groupcachepb.SetRequestSchema,
        create(groupcachepb.SetRequestSchema, { group: pick(GROUPS), key: randomSegment(), value }),
      ),
    );
  }
  const b = Buffer.alloc(int(r === 2 ? 2500 : 40));
  for (let i = 0; i < b.length; i++) b[i] = int(256);
  return b;
}

let srv: Served;
let pool: HttpPool;
const unhandled: unknown[] = [];
const onUnhandled = (e: unknown) => unhandled.push(e);

beforeAll(async () => {
  process.on("unhandledRejection", onUnhandled);
  pool = new HttpPool({
    self: "http://127.0.0.1:1",
    registry: keyLimitedLookup(200, echoGroup("scores"), chaotic),
    maxBodyBytes: 2048,
  });
  srv = await serve(pool.handler);
});
afterAll(async () => {
  process.off("unhandledRejection", onUnhandled);
  await srv.close();
  await pool.close();
});

function check(method: string, path: string, a: Answer): void {
  const where = `${method} ${path} -> ${a.status} ${JSON.stringify(a.body.toString())}`;
  expect(a.status, where).toBeGreaterThanOrEqual(200);
  expect(a.status, where).toBeLessThan(600);
  if (a.status === 200) {
    if (method === "GET") {
      expect(a.headers["content-type"], where).toBe("application/x-protobuf");
      fromBinary(groupcachepb.GetResponseSchema, a.body);
    } else expect(a.body.length, where).toBe(0);
    return;
  }
  expect(a.headers["content-type"], where).toBe("text/plain; charset=utf-8");
  if (method !== "HEAD") {
    expect(a.body.length, where).toBeGreaterThan(1);
    expect(a.body.at(-1), where).toBe(0x0a);
  }
}

describe("fuzz: random methods, paths and bodies", () => {
  it("answers every one of 3000 requests with a 2xx/4xx/5xx and text, and stays up", async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
    const statuses = new Map<number, number>();
    try {
      for (let batch = 0; batch < 100; batch++) {
        await Promise.all(
          Array.from({ length: 30 }, async () => {
            const method = pick(METHODS);
            const path = randomPath();
            const body = randomBody(method);
            const a = await request(srv.port, method, path, { body, agent }).catch((e: unknown) => {
              throw new Error(`${method} ${path} body ${body?.length}: ${String(e)}`);
            });
            statuses.set(a.status, (statuses.get(a.status) ?? 0) + 1);
            check(method, path, a);
          }),
        );
      }
    } finally {
      agent.destroy();
    }
    // The mix reached every kind of answer.
    for (const s of [200, 400, 404, 405, 413, 500])
      expect(statuses.get(s), `status ${s}`).toBeGreaterThan(0);
    expect(unhandled).toEqual([]);
    const ok = await request(srv.port, "GET", "/_groupcache/scores/still-up");
    expect(ok.status).toBe(200);
  });

  it("survives clients that hang up mid-request", async () => {
    const { connect } = await import("node:net");
    for (let i = 0; i < 200; i++) {
      const sock = connect(srv.port, "127.0.0.1");
      await new Promise<void>((r) => sock.once("connect", () => r()));
      const head =
        i % 2
          ? `PUT /_groupcache/chaos/k${i} HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n\x0a\x01`
          : `GET /_groupcache/chaos/${"x".repeat(i % 6)} HTTP/1.1\r\nHost: x\r\n\r\n`;
      sock.write(head.slice(0, int(head.length) + 1));
      sock.destroy();
    }
    expect((await request(srv.port, "GET", "/_groupcache/scores/k")).status).toBe(200);
    expect(unhandled).toEqual([]);
  });
});
