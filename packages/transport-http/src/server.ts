import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from "node:http";
import {
  batchSizeError,
  errorMessage,
  type GroupLookup,
  type LaneHandlers,
  type LaneReply,
  type LaneRequest,
  type Logger,
  type MountableHandler,
  mountable,
  type RequestCheck,
  requestPath,
  type ServedGroup,
  type StatusCode,
  serveBatch,
  serveCachedGet,
  statusOf,
} from "@tinycache/core/transport";
import { decodeGetManyRequest, encodeGetManyResponse } from "@tinycache/protocol";
import { unescapeSegment, whyUndecodable } from "./escape.js";
import { decodeSetRequest, encodeGetResponse } from "./wire.js";

/**
 * A Node request listener: pass it to `http.createServer` or `https.createServer`; or
 * call it with a third argument, `next`, which gets every request outside `basePath`
 * untouched (see core's `MountableHandler`); `handles(req)` says whether a request is
 * under `basePath`.
 */
export type RequestHandler = MountableHandler<IncomingMessage, ServerResponse>;

/** What the server side of the pool needs. */
export interface HandlerConfig {
  registry: GroupLookup;
  basePath: string;
  /** Auth, body cap, key limit (from the group), connection signal: core's shared checks. */
  check: RequestCheck;
  logger: Logger;
  /** Most keys answered in one batch (413 beyond). */
  maxBatchKeys: number;
  /** The batch deadline when the asker sends none: the pool's timeoutMs. */
  timeoutMs: number;
}

// Precomputed header names/values: writeHead with a flat array skips Node's header map.
const PROTOBUF = "application/x-protobuf";
const TEXT = "text/plain; charset=utf-8";
const ALLOW = "GET, PUT, DELETE";

/**
 * Header every answer of a tinycache server carries: it tells a tinycache asker that this
 * peer speaks batches (`POST {basePath}_batch/{group}`). Go groupcache peers never send
 * it, so they keep getting one request per key.
 */
export const BATCH_HEADER = "tinycache-batch";
/** Its value. */
export const BATCH_HEADER_VALUE = "1";
/** The path segment (after basePath) of the batch endpoint: `{basePath}_batch/{group}`. */
export const BATCH_SEGMENT = "_batch/";
const EMPTY = Buffer.alloc(0);

/**
 * Header of a 404 that means "the owner's source has no such key". Only a tinycache
 * server sends it: a 404 without it (a proxy, a server that is not a peer, golang/
 * groupcache's unknown group) is no verdict, so the asker loads the key itself, as Go's
 * groupcache does after any non-200. The name is the Connect transport's marker's.
 */
export const VERDICT_HEADER = "tinycache-verdict";
/** Its value on a "not found" answer. */
export const VERDICT_NOT_FOUND = "not_found";

/**
 * The HTTP status of each of core's statuses (the codec's half of the mapping). Go's
 * groupcache answers 500 to any error; "not found" and "bad request" get their own so a
 * tinycache asker can pass them on. A request that ended on its own side (canceled, past
 * its deadline) is 503: the asker then loads the key itself instead of reporting a
 * getter failure.
 */
const HTTP_STATUS: Record<StatusCode, number> = {
  not_found: 404,
  invalid_argument: 400,
  failed_precondition: 404,
  unauthenticated: 401,
  resource_exhausted: 413,
  canceled: 503,
  deadline_exceeded: 503,
  unavailable: 503,
  internal: 500,
};

/**
 * Writes a Go-style `http.Error` answer, unless an answer has already started. `close`
 * asks for `Connection: close`; `verdict` adds the not-found marker.
 */
function replyText(
  res: ServerResponse,
  status: number,
  message: string,
  close = false,
  verdict = false,
): void {
  if (res.headersSent || res.destroyed) return;
  const body = Buffer.from(`${message}\n`, "utf8");
  const headers = [
    "Content-Type",
    TEXT,
    "X-Content-Type-Options",
    "nosniff",
    "Content-Length",
    String(body.length),
    BATCH_HEADER,
    BATCH_HEADER_VALUE,
  ];
  if (status === 405) headers.push("Allow", ALLOW);
  if (close) headers.push("Connection", "close");
  if (verdict) headers.push(VERDICT_HEADER, VERDICT_NOT_FOUND);
  res.writeHead(status, headers);
  res.end(body);
}

function replyEmpty(res: ServerResponse): void {
  if (res.headersSent || res.destroyed) return;
  res.writeHead(200, ["Content-Length", "0", BATCH_HEADER, BATCH_HEADER_VALUE]);
  res.end(EMPTY);
}

/** An answer, whichever front end writes it: a protobuf body, an empty 200, or a refusal. */
type Outcome =
  | { ok: true; body: Uint8Array | undefined }
  | { ok: false; status: number; message: string; verdict: boolean };

const EMPTY_OK: Outcome = { ok: true, body: undefined };

function refusal(status: number, message: string): Outcome & { ok: false } {
  return { ok: false, status, message, verdict: false };
}

/** The refusal for a group's error (logged when it is a 500). */
function errorOutcome(err: unknown, logger: Logger, signal?: AbortSignal): Outcome & { ok: false } {
  const code = statusOf(err, signal);
  const status = HTTP_STATUS[code];
  if (status === 500) logger.debug({ err }, "tinycache http: group failed");
  return { ok: false, status, message: errorMessage(err), verdict: code === "not_found" };
}

/** What a request under basePath asks for, read from its method, path and headers. */
type Target =
  | { kind: "refuse"; status: number; message: string }
  | { kind: "batch"; group: ServedGroup; name: string }
  | { kind: "key"; group: ServedGroup; key: string; method: "GET" | "PUT" | "DELETE" };

/**
 * The peer protocol for both front ends (node:http and the lean lane): which request it
 * is, and the answers of each, as {@link Outcome}s (never a rejection).
 */
function peerProtocol(cfg: HandlerConfig) {
  const { registry, basePath, check, logger, maxBatchKeys, timeoutMs } = cfg;
  const maxBodyBytes = check.maxBodyBytes;
  const baseLen = basePath.length;
  const outside = `path outside ${basePath}`;
  const keyError = check.keyError.bind(check);
  const fail = (err: unknown, signal?: AbortSignal) => errorOutcome(err, logger, signal);

  /** `url` is the request's path (see requestPath), undefined when it has none. */
  const target = (
    method: string | undefined,
    url: string | undefined,
    headers: IncomingHttpHeaders,
  ): Target => {
    if (url === undefined) return refuseWith(400, "bad request: bad request target");
    if (!url.startsWith(basePath)) return refuseWith(404, outside);
    if (!check.authorized(headers)) return refuseWith(401, "unauthorized");
    if (method === "POST" && url.startsWith(BATCH_SEGMENT, baseLen)) {
      const rawName = url.slice(baseLen + BATCH_SEGMENT.length);
      const name = unescapeSegment(rawName);
      if (name === undefined || rawName.includes("/")) {
        return refuseWith(400, "bad request: batch path is {basePath}_batch/{group}");
      }
      const group = registry.getGroup(name);
      if (group === undefined) return refuseWith(404, `no such group: ${name}`);
      return { kind: "batch", group, name };
    }
    if (method !== "GET" && method !== "PUT" && method !== "DELETE") {
      return refuseWith(405, "method not allowed");
    }
    const slash = url.indexOf("/", baseLen);
    // Go's exact answer for a missing key part.
    if (slash === -1) return refuseWith(400, "bad request");
    const rawName = url.slice(baseLen, slash);
    const rawKey = url.slice(slash + 1);
    const name = unescapeSegment(rawName);
    const key = unescapeSegment(rawKey);
    if (name === undefined || key === undefined) {
      return refuseWith(400, whyUndecodable(name === undefined ? rawName : rawKey));
    }
    const group = registry.getGroup(name);
    if (group === undefined) return refuseWith(404, `no such group: ${name}`);
    const bad = keyError(group, key);
    if (bad !== undefined) return refuseWith(400, bad.message);
    return { kind: "key", group, key, method };
  };

  /**
   * A batch: `POST {basePath}_batch/{group}` with a GetManyRequest body, answered with a
   * GetManyResponse (one result per key, in order; see core's serveBatch). Refused as a
   * whole: unknown group 404 (no verdict: the asker loads its keys itself), body over
   * maxBodyBytes or more than maxBatchKeys keys 413, malformed 400.
   */
  const batch = (
    group: ServedGroup,
    name: string,
    body: Buffer,
    signal: AbortSignal,
  ): Outcome | Promise<Outcome> => {
    let msg: ReturnType<typeof decodeGetManyRequest>;
    try {
      msg = decodeGetManyRequest(body);
    } catch {
      return refusal(400, "bad request: malformed GetManyRequest");
    }
    if (msg.group !== "" && msg.group !== name) {
      return refusal(400, "bad request: GetManyRequest group differs from the path");
    }
    const tooMany = batchSizeError(msg.keys.length, maxBatchKeys);
    if (tooMany !== undefined) return refusal(413, tooMany);
    const maxAnswerBytes =
      msg.maxAnswerBytes > 0 ? Math.min(msg.maxAnswerBytes, maxBodyBytes) : maxBodyBytes;
    return serveBatch(group, msg.keys, {
      signal,
      keyError,
      maxAnswerBytes,
      timeoutMs: msg.timeoutMs > 0 ? msg.timeoutMs : timeoutMs,
    }).then(
      (answers): Outcome => ({ ok: true, body: encodeGetManyResponse(answers) }),
      (err: unknown) => fail(err),
    );
  };

  const get = (
    group: ServedGroup,
    key: string,
    signal: AbortSignal,
  ): Outcome | Promise<Outcome> => {
    // A cached key (an owner's usual case) is answered at once: no promise, no turn.
    if (!signal.aborted) {
      let cached: ReturnType<typeof serveCachedGet>;
      try {
        cached = serveCachedGet(group, key);
      } catch (err) {
        return fail(err, signal);
      }
      if (cached !== undefined) {
        try {
          return { ok: true, body: encodeGetResponse(cached.value, cached.expiresAt) };
        } catch (err) {
          return fail(err);
        }
      }
    }
    let p: ReturnType<ServedGroup["serveGet"]>;
    try {
      p = group.serveGet(key, { signal });
    } catch (err) {
      return fail(err, signal);
    }
    return p.then(
      (v): Outcome => {
        try {
          return { ok: true, body: encodeGetResponse(v.value, v.expiresAt) };
        } catch (err) {
          return fail(err); // e.g. a value object without copyTo
        }
      },
      (err: unknown) => fail(err, signal),
    );
  };

  const set = (group: ServedGroup, key: string, body: Buffer): Outcome => {
    try {
      let msg: ReturnType<typeof decodeSetRequest>;
      try {
        msg = decodeSetRequest(body);
      } catch {
        return refusal(400, "bad request: malformed SetRequest");
      }
      if ((msg.group !== "" && msg.group !== group.name) || (msg.key !== "" && msg.key !== key)) {
        return refusal(400, "bad request: SetRequest group/key differ from the path");
      }
      group.serveSet(key, msg.value, msg.expiresAt);
      return EMPTY_OK;
    } catch (err) {
      return fail(err);
    }
  };

  const remove = (group: ServedGroup, key: string): Outcome => {
    try {
      group.serveRemove(key);
      return EMPTY_OK;
    } catch (err) {
      return fail(err);
    }
  };

  return { target, batch, get, set, remove, fail };
}

function refuseWith(status: number, message: string): Target {
  return { kind: "refuse", status, message };
}

/** Writes an {@link Outcome} through node:http, unless an answer has already started. */
function writeOutcome(res: ServerResponse, out: Outcome): void {
  if (res.headersSent || res.destroyed) return;
  if (!out.ok) replyText(res, out.status, out.message, false, out.verdict);
  else if (out.body === undefined) replyEmpty(res);
  else {
    res.writeHead(200, [
      "Content-Type",
      PROTOBUF,
      "Content-Length",
      String(out.body.length),
      BATCH_HEADER,
      BATCH_HEADER_VALUE,
    ]);
    res.end(out.body);
  }
}

/** Runs `then` with an outcome now or when it settles. */
function settle(out: Outcome | Promise<Outcome>, then: (o: Outcome) => void): void {
  if (out instanceof Promise) out.then(then);
  else then(out);
}

/**
 * Builds the peer server: golang/groupcache's `HTTPPool.ServeHTTP` plus mailgun's PUT
 * and DELETE. Paths are `{basePath}{group}/{key}`, percent-decoded with `+` kept literal.
 * Every failure is a text/plain answer ending in a newline; nothing thrown by a group or
 * by a bad request escapes the handler. Given `next`, a request outside `basePath` is
 * not answered (no 404) but handed to `next`, its body unread.
 */
export function createHandler(cfg: HandlerConfig): RequestHandler {
  const { basePath, check } = cfg;
  const peer = peerProtocol(cfg);

  /** Reads the body (up to the cap: 413 beyond, and the connection closes), then `then`. */
  const withBody = (req: IncomingMessage, res: ServerResponse, then: (body: Buffer) => void) => {
    check.readBody(req, then, () => {
      check.closeAfterAnswer(req, res);
      replyText(res, 413, check.tooLargeMessage(), true);
    });
  };

  const route = (req: IncomingMessage, res: ServerResponse): void => {
    const t = peer.target(req.method, requestPath(req.url), req.headers);
    const write = (out: Outcome) => writeOutcome(res, out);
    switch (t.kind) {
      case "refuse":
        // A refusal before the body is read: the body (if any) is never read.
        check.closeAfterAnswer(req, res);
        replyText(res, t.status, t.message);
        return;
      case "batch":
        withBody(req, res, (body) =>
          settle(peer.batch(t.group, t.name, body, check.connectionSignal(req)), write),
        );
        return;
      case "key":
        if (t.method === "GET")
          settle(peer.get(t.group, t.key, check.connectionSignal(req)), write);
        else if (t.method === "PUT")
          withBody(req, res, (body) => write(peer.set(t.group, t.key, body)));
        else write(peer.remove(t.group, t.key));
    }
  };

  return mountable<IncomingMessage, ServerResponse>(
    (req, res) => {
      try {
        route(req, res);
      } catch (err) {
        writeOutcome(res, peer.fail(err));
      }
    },
    // The same test as route's: a peer path is one under basePath.
    (req) => requestPath(req.url)?.startsWith(basePath) === true,
  );
}

const LANE_PROTOBUF = `Content-Type: ${PROTOBUF}\r\n${BATCH_HEADER}: ${BATCH_HEADER_VALUE}\r\n`;
const LANE_EMPTY = `${BATCH_HEADER}: ${BATCH_HEADER_VALUE}\r\n`;
const LANE_TEXT = `Content-Type: ${TEXT}\r\nX-Content-Type-Options: nosniff\r\n${BATCH_HEADER}: ${BATCH_HEADER_VALUE}\r\n`;
const LANE_NOT_FOUND = `${LANE_TEXT}${VERDICT_HEADER}: ${VERDICT_NOT_FOUND}\r\n`;
const LANE_405 = `${LANE_TEXT}Allow: ${ALLOW}\r\n`;

/**
 * The peer server's lean lane (core's LeanServer): every request under basePath that the
 * lane reads whole (single gets, batches, sets, removes: what peers send by the thousand),
 * answered as the node:http handler answers it, but for header order. Anything else goes
 * to node:http.
 */
export function createLane(cfg: HandlerConfig): LaneHandlers {
  const { basePath, check } = cfg;
  const peer = peerProtocol(cfg);
  const auth = check.authHeader;
  return {
    accepts: (_method, target) => target.startsWith(basePath),
    captureHeaders: auth === undefined ? [] : [auth],
    maxBodyBytes: check.maxBodyBytes,
    handle: (req: LaneRequest, reply: LaneReply) => {
      const write = (out: Outcome): void => {
        if (out.ok) {
          if (out.body === undefined) reply.send(200, EMPTY, LANE_EMPTY);
          else reply.send(200, out.body, LANE_PROTOBUF);
          return;
        }
        const headers = out.status === 405 ? LANE_405 : out.verdict ? LANE_NOT_FOUND : LANE_TEXT;
        reply.send(out.status, `${out.message}\n`, headers);
      };
      try {
        const t = peer.target(req.method, requestPath(req.target), req.headers);
        if (t.kind === "refuse") write(refusal(t.status, t.message));
        else if (t.kind === "batch") {
          settle(peer.batch(t.group, t.name, req.body, check.socketSignal(req.socket)), write);
        } else if (t.method === "GET") {
          settle(peer.get(t.group, t.key, check.socketSignal(req.socket)), write);
        } else if (t.method === "PUT") write(peer.set(t.group, t.key, req.body));
        else write(peer.remove(t.group, t.key));
      } catch (err) {
        write(peer.fail(err));
      }
    },
  };
}
