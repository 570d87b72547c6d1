import type { IncomingMessage, ServerResponse } from "node:http";
import {
  batchSizeError,
  errorMessage,
  type GroupLookup,
  type Logger,
  type MountableHandler,
  mountable,
  type RequestCheck,
  requestPath,
  type ServedGroup,
  type StatusCode,
  serveBatch,
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

/**
 * Builds the peer server: golang/groupcache's `HTTPPool.ServeHTTP` plus mailgun's PUT
 * and DELETE. Paths are `{basePath}{group}/{key}`, percent-decoded with `+` kept literal.
 * Every failure is a text/plain answer ending in a newline; nothing thrown by a group or
 * by a bad request escapes the handler. Given `next`, a request outside `basePath` is
 * not answered (no 404) but handed to `next`, its body unread.
 */
export function createHandler(cfg: HandlerConfig): RequestHandler {
  const { registry, basePath, check, logger, maxBatchKeys, timeoutMs } = cfg;
  const maxBodyBytes = check.maxBodyBytes;
  const baseLen = basePath.length;
  const outside = `path outside ${basePath}`;

  const replyError = (res: ServerResponse, err: unknown, signal?: AbortSignal): void => {
    if (res.headersSent || res.destroyed) return;
    const code = statusOf(err, signal);
    const status = HTTP_STATUS[code];
    if (status === 500) logger.debug({ err }, "tinycache http: group failed");
    replyText(res, status, errorMessage(err), false, code === "not_found");
  };

  const sendValue = (
    res: ServerResponse,
    v: { value: Parameters<typeof encodeGetResponse>[0]; expiresAt?: number },
  ): void => {
    if (res.headersSent || res.destroyed) return;
    const body = encodeGetResponse(v.value, v.expiresAt);
    res.writeHead(200, [
      "Content-Type",
      PROTOBUF,
      "Content-Length",
      String(body.length),
      BATCH_HEADER,
      BATCH_HEADER_VALUE,
    ]);
    res.end(body);
  };

  /**
   * A batch: `POST {basePath}_batch/{group}` with a GetManyRequest body, answered with a
   * GetManyResponse (one result per key, in order; see core's serveBatch). Refused as a
   * whole: unknown group 404 (no verdict: the asker loads its keys itself), body over
   * maxBodyBytes or more than maxBatchKeys keys 413, malformed 400.
   */
  const batch = (name: string, req: IncomingMessage, res: ServerResponse) => {
    const group = registry.getGroup(name);
    if (group === undefined) {
      refuse(req, res, 404, `no such group: ${name}`);
      return;
    }
    check.readBody(
      req,
      (body) => {
        let msg: ReturnType<typeof decodeGetManyRequest>;
        try {
          msg = decodeGetManyRequest(body);
        } catch {
          replyText(res, 400, "bad request: malformed GetManyRequest");
          return;
        }
        if (msg.group !== "" && msg.group !== name) {
          replyText(res, 400, "bad request: GetManyRequest group differs from the path");
          return;
        }
        const tooMany = batchSizeError(msg.keys.length, maxBatchKeys);
        if (tooMany !== undefined) {
          replyText(res, 413, tooMany);
          return;
        }
        const signal = check.connectionSignal(req);
        const maxAnswerBytes =
          msg.maxAnswerBytes > 0 ? Math.min(msg.maxAnswerBytes, maxBodyBytes) : maxBodyBytes;
        serveBatch(group, msg.keys, {
          signal,
          keyError: check.keyError.bind(check),
          maxAnswerBytes,
          timeoutMs: msg.timeoutMs > 0 ? msg.timeoutMs : timeoutMs,
        })
          .then((answers) => {
            if (res.headersSent || res.destroyed) return;
            const out = encodeGetManyResponse(answers);
            res.writeHead(200, [
              "Content-Type",
              PROTOBUF,
              "Content-Length",
              String(out.length),
              BATCH_HEADER,
              BATCH_HEADER_VALUE,
            ]);
            res.end(out);
          })
          .catch((err: unknown) => replyError(res, err));
      },
      () => {
        check.closeAfterAnswer(req, res);
        replyText(res, 413, check.tooLargeMessage(), true);
      },
    );
  };

  const get = (group: ServedGroup, key: string, req: IncomingMessage, res: ServerResponse) => {
    const signal = check.connectionSignal(req);
    let p: Promise<{ value: Parameters<typeof encodeGetResponse>[0]; expiresAt?: number }>;
    try {
      p = group.serveGet(key, { signal });
    } catch (err) {
      replyError(res, err, signal);
      return;
    }
    p.then(
      (v) => {
        try {
          sendValue(res, v);
        } catch (err) {
          replyError(res, err); // e.g. a value object without copyTo
        }
      },
      (err: unknown) => replyError(res, err, signal),
    );
  };

  const put = (group: ServedGroup, key: string, req: IncomingMessage, res: ServerResponse) => {
    check.readBody(
      req,
      (body) => {
        try {
          let msg: ReturnType<typeof decodeSetRequest>;
          try {
            msg = decodeSetRequest(body);
          } catch {
            replyText(res, 400, "bad request: malformed SetRequest");
            return;
          }
          if (
            (msg.group !== "" && msg.group !== group.name) ||
            (msg.key !== "" && msg.key !== key)
          ) {
            replyText(res, 400, "bad request: SetRequest group/key differ from the path");
            return;
          }
          group.serveSet(key, msg.value, msg.expiresAt);
          replyEmpty(res);
        } catch (err) {
          replyError(res, err);
        }
      },
      () => {
        check.closeAfterAnswer(req, res);
        replyText(res, 413, check.tooLargeMessage(), true);
      },
    );
  };

  /** A refusal before the body is read: the body (if any) is never read. */
  const refuse = (req: IncomingMessage, res: ServerResponse, status: number, message: string) => {
    check.closeAfterAnswer(req, res);
    replyText(res, status, message);
  };

  const route = (req: IncomingMessage, res: ServerResponse): void => {
    const url = requestPath(req.url);
    if (url === undefined) {
      refuse(req, res, 400, "bad request: bad request target");
      return;
    }
    if (!url.startsWith(basePath)) {
      refuse(req, res, 404, outside);
      return;
    }
    if (!check.authorized(req.headers)) {
      refuse(req, res, 401, "unauthorized");
      return;
    }
    const method = req.method;
    if (method === "POST" && url.startsWith(BATCH_SEGMENT, baseLen)) {
      const rawName = url.slice(baseLen + BATCH_SEGMENT.length);
      const name = unescapeSegment(rawName);
      if (name === undefined || rawName.includes("/")) {
        refuse(req, res, 400, "bad request: batch path is {basePath}_batch/{group}");
        return;
      }
      batch(name, req, res);
      return;
    }
    if (method !== "GET" && method !== "PUT" && method !== "DELETE") {
      refuse(req, res, 405, "method not allowed");
      return;
    }
    const slash = url.indexOf("/", baseLen);
    if (slash === -1) {
      refuse(req, res, 400, "bad request"); // Go's exact answer for a missing key part
      return;
    }
    const rawName = url.slice(baseLen, slash);
    const rawKey = url.slice(slash + 1);
    const name = unescapeSegment(rawName);
    const key = unescapeSegment(rawKey);
    if (name === undefined || key === undefined) {
      refuse(req, res, 400, whyUndecodable(name === undefined ? rawName : rawKey));
      return;
    }
    const group = registry.getGroup(name);
    if (group === undefined) {
      refuse(req, res, 404, `no such group: ${name}`);
      return;
    }
    const bad = check.keyError(group, key);
    if (bad !== undefined) {
      refuse(req, res, 400, bad.message);
      return;
    }
    if (method === "GET") get(group, key, req, res);
    else if (method === "PUT") put(group, key, req, res);
    else {
      group.serveRemove(key);
      replyEmpty(res);
    }
  };

  return mountable<IncomingMessage, ServerResponse>(
    (req, res) => {
      try {
        route(req, res);
      } catch (err) {
        replyError(res, err);
      }
    },
    // The same test as route's: a peer path is one under basePath.
    (req) => requestPath(req.url)?.startsWith(basePath) === true,
  );
}
