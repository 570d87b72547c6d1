import type { RequestListener, ServerResponse } from "node:http";
import { type Group, InvalidArgumentError, NotFoundError } from "@tinycache/core";
import type { Logger } from "./log.js";
import { pathOf, type Route, sendText } from "./routes.js";

/** How often waiting API requests are checked against their deadline. */
const SWEEP_MS = 250;

interface Waiting {
  res: ServerResponse;
  key: string;
  deadline: number;
  /** Answered (by the load or by the sweeper); the other one must not answer again. */
  done: boolean;
}

/** `/api?key=` followed by a plain key: the common case, read without a full parse. */
const PLAIN_PREFIX = "/api?key=";
const NEEDS_DECODING = /[%+&#]/;

/** The `key` query parameter of an /api URL (form-decoded), or null when absent. */
export function keyOf(url: string): string | null {
  if (url.startsWith(PLAIN_PREFIX)) {
    const rest = url.slice(PLAIN_PREFIX.length);
    if (!NEEDS_DECODING.test(rest)) return rest;
  }
  const q = url.indexOf("?");
  return q < 0 ? null : new URLSearchParams(url.slice(q + 1)).get("key");
}

export interface ApiOptions {
  group: Group;
  logger: Logger;
  /** Extra routes tried before the 404 (here: /metrics and /stats). */
  routes: Route;
  /** Responses by status, for /stats and /metrics. */
  responses: Map<number, number>;
  /** A request still waiting after this long (give or take 250 ms) gets a 504. */
  timeoutMs: number;
}

/**
 * The user-facing API, as the original's port 9999:
 * - `GET /api?key=K` -> 200 and the value as text; 404 `<key> not exist`; 400 without a key.
 * - `GET /healthz` -> 200 `ok`.
 * - `/metrics` and `/stats` through `routes`.
 */
export function createApiHandler({
  group,
  logger,
  routes,
  responses,
  timeoutMs,
}: ApiOptions): RequestListener {
  const count = (status: number) => responses.set(status, (responses.get(status) ?? 0) + 1);
  const reply = (res: ServerResponse, status: number, body: string) => {
    count(status);
    sendText(res, status, body);
  };

  // Requests waiting for a load, swept every SWEEP_MS for the timeout (see serveKey).
  const pending = new Set<Waiting>();
  // A coarse clock for deadlines, refreshed by the sweeper: no Date.now() per request.
  let now = Date.now();
  const sweeper = setInterval(() => {
    now = Date.now();
    for (const w of pending) {
      if (w.deadline > now) continue;
      pending.delete(w);
      w.done = true;
      if (!w.res.destroyed) reply(w.res, 504, `timed out loading ${w.key}\n`);
    }
  }, SWEEP_MS);
  sweeper.unref();

  const serveKey = (res: ServerResponse, url: string) => {
    const key = keyOf(url);
    if (key === null || key === "") {
      reply(res, 400, "missing query parameter: key (e.g. /api?key=Tom)\n");
      return;
    }
    // No AbortSignal per request: core's hit path is allocation-free only without one, and
    // a signal + timer per request cost ~40% of the API's throughput (bench). Instead a
    // sweeper answers 504 to requests still waiting after `timeoutMs`, and an answer for
    // a client that went away is dropped. The load itself is bounded by the peer timeout
    // and the database, and shared with every other caller of the key (singleflight).
    const waiting: Waiting = { res, key, deadline: now + timeoutMs, done: false };
    pending.add(waiting);
    group.get(key).then(
      (view) => {
        pending.delete(waiting);
        if (waiting.done) return;
        waiting.done = true;
        count(200);
        if (res.destroyed) return;
        const body = view.toString();
        res.writeHead(200, {
          "content-type": "text/plain; charset=utf-8",
          "content-length": Buffer.byteLength(body),
        });
        res.end(body);
      },
      (err: unknown) => {
        pending.delete(waiting);
        if (waiting.done) return;
        waiting.done = true;
        if (err instanceof NotFoundError) {
          reply(res, 404, `${key} not exist`);
        } else if (err instanceof InvalidArgumentError) {
          reply(res, 400, `${err.message}\n`);
        } else {
          logger.error({ err, key }, "api: load failed");
          reply(res, 502, `failed to load ${key}: ${err instanceof Error ? err.message : err}\n`);
        }
      },
    );
  };

  return (req, res) => {
    const url = req.url ?? "/";
    const path = pathOf(url);
    if (path === "/api") {
      if (req.method !== "GET" && req.method !== "HEAD") {
        res.setHeader("allow", "GET, HEAD");
        reply(res, 405, `method ${req.method} not allowed on /api\n`);
        return;
      }
      serveKey(res, url);
      return;
    }
    if (path === "/healthz") {
      sendText(res, 200, "ok\n");
      return;
    }
    if (routes(req, res)) return;
    sendText(res, 404, `no route ${path}; try /api?key=Tom, /healthz, /metrics, /stats\n`);
  };
}
