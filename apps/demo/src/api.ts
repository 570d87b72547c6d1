import type { RequestListener } from "node:http";
import { type Group, InvalidArgumentError, NotFoundError } from "@tinycache/core";
import type { LaneReply } from "./lean-http.js";
import type { Logger } from "./log.js";
import { closeUnreadBody, pathOf, ResponseReply, type Route, sendText } from "./routes.js";

/** How often waiting API requests are checked against their deadline. */
const SWEEP_MS = 250;

interface Waiting {
  answer: LaneReply;
  key: string;
  deadline: number;
  /** Answered (by the load or by the sweeper); the other one must not answer again. */
  done: boolean;
  /** Neighbours in the list of waiting requests (oldest first, so soonest deadline first). */
  prev: Waiting | undefined;
  next: Waiting | undefined;
}

/**
 * The requests waiting for a load, oldest first: an intrusive list rather than a Set, as
 * every request joins and leaves it. (Measured on core's peer wrapper: a Set with that
 * churn made its records outlive young-generation GCs, the GC's share tripled.) Every
 * request has the same timeout, so the list is in deadline order: a sweep stops at the
 * first one still in time.
 */
class WaitingList {
  first: Waiting | undefined;
  last: Waiting | undefined;

  add(w: Waiting): void {
    w.prev = this.last;
    if (this.last === undefined) this.first = w;
    else this.last.next = w;
    this.last = w;
  }

  /** Takes `w` out (once: it must be in the list). */
  delete(w: Waiting): void {
    const { prev, next } = w;
    if (prev === undefined) this.first = next;
    else prev.next = next;
    if (next === undefined) this.last = prev;
    else next.prev = prev;
    w.prev = w.next = undefined;
  }
}

/** `/api?key=` followed by a plain key: the common case, read without a full parse. */
const PLAIN_PREFIX = "/api?key=";
const NEEDS_DECODING = /[%+&#]/;

/** A query that cannot be decoded: the API answers 400 with its message. */
export class BadQueryError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "BadQueryError";
  }
}

/**
 * One form-encoded query component, strictly: `+` is a space, and every `%XX` must be a
 * valid escape of well-formed UTF-8. URLSearchParams would turn `%FF` (or `%zz` kept
 * as is) into U+FFFD, so that distinct requests read the same key.
 */
function decodeComponent(raw: string, what: string): string {
  const s = raw.includes("+") ? raw.replaceAll("+", " ") : raw;
  if (!s.includes("%")) return s;
  try {
    return decodeURIComponent(s);
  } catch {
    throw new BadQueryError(
      `bad request: the ${what} is not valid percent-encoded UTF-8 (e.g. %FF or %zz): ${raw.slice(0, 200)}`,
    );
  }
}

/**
 * The first `key` query parameter of an /api URL (form-decoded, as URLSearchParams
 * would), or null when absent.
 * @throws BadQueryError when a parameter is not valid percent-encoded UTF-8.
 */
export function keyOf(url: string): string | null {
  if (url.startsWith(PLAIN_PREFIX)) {
    const rest = url.slice(PLAIN_PREFIX.length);
    if (!NEEDS_DECODING.test(rest)) return rest;
  }
  const q = url.indexOf("?");
  if (q < 0) return null;
  for (const pair of url.slice(q + 1).split("&")) {
    if (pair === "") continue;
    const eq = pair.indexOf("=");
    const name = decodeComponent(eq < 0 ? pair : pair.slice(0, eq), "parameter name");
    if (name === "key") return eq < 0 ? "" : decodeComponent(pair.slice(eq + 1), "key");
  }
  return null;
}

export interface ApiOptions {
  group: Group;
  logger: Logger;
  /** Extra routes tried before the 404 (here: the status page, /metrics and /stats). */
  routes: Route;
  /** Responses by status, for /stats and /metrics. */
  responses: Map<number, number>;
  /** A request still waiting after this long (give or take 250 ms) gets a 504. */
  timeoutMs: number;
}

/** The API: its node:http handler, and the same /api answers for the lean lane. */
export interface Api {
  /** Serves every route (node:http). */
  handler: RequestListener;
  /** Answers `GET /api?...` (`url` as sent) through `reply`: what the lean lane calls. */
  serveKey(url: string, reply: LaneReply): void;
}

/**
 * The user-facing API, as the original's port 9999:
 * - `GET /api?key=K` -> 200 and the value as text; 404 `<key> not exist`; 400 without a key.
 * - `GET /healthz` -> 200 `ok`.
 * - `/metrics`, `/stats` and the status page through `routes`.
 */
export function createApi({ group, logger, routes, responses, timeoutMs }: ApiOptions): Api {
  const count = (status: number) => responses.set(status, (responses.get(status) ?? 0) + 1);
  const reply = (answer: LaneReply, status: number, body: string) => {
    count(status);
    answer.send(status, body);
  };

  // Requests waiting for a load, swept every SWEEP_MS for the timeout (see serveKey).
  const pending = new WaitingList();
  // A coarse monotonic clock for deadlines, refreshed by the sweeper: no clock read per
  // request.
  let now = performance.now();
  const sweeper = setInterval(() => {
    now = performance.now();
    for (let w = pending.first; w !== undefined && w.deadline <= now; w = pending.first) {
      pending.delete(w);
      w.done = true;
      if (!w.answer.gone) reply(w.answer, 504, `timed out loading ${w.key}\n`);
    }
  }, SWEEP_MS);
  sweeper.unref();

  const serveKey = (url: string, answer: LaneReply) => {
    let key: string | null;
    try {
      key = keyOf(url);
    } catch (err) {
      if (!(err instanceof BadQueryError)) throw err;
      reply(answer, 400, `${err.message}\n`);
      return;
    }
    if (key === null || key === "") {
      reply(answer, 400, "missing query parameter: key (e.g. /api?key=Tom)\n");
      return;
    }
    // No AbortSignal per request: core's hit path is allocation-free only without one, and
    // a signal + timer per request cost ~40% of the API's throughput (bench). Instead a
    // sweeper answers 504 to requests still waiting after `timeoutMs`, and an answer for
    // a client that went away is dropped. The load itself is bounded by the peer timeout
    // and the database, and shared with every other caller of the key (singleflight).
    const waiting: Waiting = {
      answer,
      key,
      deadline: now + timeoutMs,
      done: false,
      prev: undefined,
      next: undefined,
    };
    pending.add(waiting);
    group.get(key).then(
      (view) => {
        if (waiting.done) return;
        pending.delete(waiting);
        waiting.done = true;
        count(200);
        if (answer.gone) return;
        answer.send(200, view.toString());
      },
      (err: unknown) => {
        if (waiting.done) return;
        pending.delete(waiting);
        waiting.done = true;
        if (err instanceof NotFoundError) {
          reply(answer, 404, `${key} not exist`);
        } else if (err instanceof InvalidArgumentError) {
          reply(answer, 400, `${err.message}\n`);
        } else {
          logger.error({ err, key }, "api: load failed");
          reply(
            answer,
            502,
            `failed to load ${key}: ${err instanceof Error ? err.message : err}\n`,
          );
        }
      },
    );
  };

  const handler: RequestListener = (req, res) => {
    const url = req.url ?? "/";
    const path = pathOf(url);
    // No route reads a body: one that comes (a 100 MB POST) is left unread, and the
    // connection closes after the answer (a 405 for a POST, before any byte of it).
    closeUnreadBody(req, res);
    if (path === "/api") {
      if (req.method !== "GET" && req.method !== "HEAD") {
        res.setHeader("allow", "GET, HEAD");
        count(405);
        sendText(res, 405, `method ${req.method} not allowed on /api\n`);
        return;
      }
      serveKey(url, new ResponseReply(res));
      return;
    }
    if (path === "/healthz") {
      sendText(res, 200, "ok\n");
      return;
    }
    if (routes(req, res)) return;
    sendText(res, 404, `no route ${path}; try /api?key=Tom, /healthz, /metrics, /stats, /status\n`);
  };
  return { handler, serveKey };
}
