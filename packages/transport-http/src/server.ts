import type { IncomingMessage, ServerResponse } from "node:http";
import { type GroupLookup, type Logger, makeSecretCheck, type ServedGroup } from "@tinycache/core";
import { unescapeSegment, whyUndecodable } from "./escape.js";
import { decodeSetRequest, encodeGetResponse } from "./wire.js";

/** A Node request listener: pass it to `http.createServer` or `https.createServer`. */
export type RequestHandler = (req: IncomingMessage, res: ServerResponse) => void;

/** What the server side of the pool needs. */
export interface HandlerConfig {
  registry: GroupLookup;
  basePath: string;
  auth: { secret: string; header: string } | undefined;
  maxKeyBytes: number;
  maxBodyBytes: number;
  logger: Logger | undefined;
}

// Precomputed header names/values: writeHead with a flat array skips Node's header map.
const PROTOBUF = "application/x-protobuf";
const TEXT = "text/plain; charset=utf-8";
const ALLOW = "GET, PUT, DELETE";
const EMPTY = Buffer.alloc(0);

/** Why the client went away: the abort reason handed to the group's load. */
class ClientGone extends Error {
  override name = "AbortError";
  constructor() {
    super("the peer closed the connection");
  }
}

/** Status for an error a group threw, by its `code` (no runtime dependency on core). */
function statusOf(err: unknown): number {
  const code = (err as { code?: unknown } | null)?.code;
  if (code === "not_found" || code === "peer_not_found") return 404;
  if (code === "invalid_argument" || code === "peer_invalid_argument") return 400;
  return 500;
}

function messageOf(err: unknown): string {
  if (err instanceof Error) return err.message;
  try {
    return String(err);
  } catch {
    return "internal error";
  }
}

/** Writes a Go-style `http.Error` answer, unless an answer has already started. */
function replyText(res: ServerResponse, status: number, message: string, close = false): void {
  if (res.headersSent || res.destroyed) return;
  const body = Buffer.from(`${message}\n`, "utf8");
  const headers = [
    "Content-Type",
    TEXT,
    "X-Content-Type-Options",
    "nosniff",
    "Content-Length",
    String(body.length),
  ];
  if (status === 405) headers.push("Allow", ALLOW);
  if (close) headers.push("Connection", "close");
  res.writeHead(status, headers);
  res.end(body);
}

function replyEmpty(res: ServerResponse): void {
  if (res.headersSent || res.destroyed) return;
  res.writeHead(200, ["Content-Length", "0"]);
  res.end(EMPTY);
}

/** Strips `scheme://authority` from an absolute-form request target. */
function originForm(url: string): string | undefined {
  const i = url.indexOf("://");
  if (i === -1) return undefined;
  const j = url.indexOf("/", i + 3);
  return j === -1 ? "/" : url.slice(j);
}

/**
 * Builds the peer server: golang/groupcache's `HTTPPool.ServeHTTP` plus mailgun's PUT
 * and DELETE. Paths are `{basePath}{group}/{key}`, percent-decoded with `+` kept literal.
 * Every failure is a text/plain answer ending in a newline; nothing thrown by a group or
 * by a bad request escapes the handler.
 */
export function createHandler(cfg: HandlerConfig): RequestHandler {
  const { registry, basePath, maxKeyBytes, maxBodyBytes, logger } = cfg;
  const baseLen = basePath.length;
  const authHeader = cfg.auth?.header;
  const authOk = cfg.auth ? makeSecretCheck(cfg.auth.secret) : undefined;
  const outside = `path outside ${basePath}`;

  const replyError = (res: ServerResponse, err: unknown): void => {
    if (res.headersSent || res.destroyed) return;
    const status = statusOf(err);
    if (status === 500) logger?.debug({ err }, "tinycache http: group failed");
    replyText(res, status, messageOf(err));
  };

  const sendValue = (
    res: ServerResponse,
    v: { value: Parameters<typeof encodeGetResponse>[0]; expiresAt?: number },
  ): void => {
    if (res.headersSent || res.destroyed) return;
    const body = encodeGetResponse(v.value, v.expiresAt);
    res.writeHead(200, ["Content-Type", PROTOBUF, "Content-Length", String(body.length)]);
    res.end(body);
  };

  /**
   * One AbortController per connection, aborted when the socket closes. An HTTP/1.1
   * client can only abandon a request by closing its connection, so this is as precise
   * as a per-request signal, and it saves an AbortSignal per request: creating one
   * costs more than the rest of a cached answer (signals are EventTargets, GC-heavy).
   */
  const connections = new WeakMap<object, AbortController>();
  const connectionSignal = (req: IncomingMessage): AbortSignal => {
    const socket = req.socket;
    let ac = connections.get(socket);
    if (ac === undefined) {
      const ctl = new AbortController();
      connections.set(socket, ctl);
      socket.once("close", () => ctl.abort(new ClientGone()));
      ac = ctl;
    }
    return ac.signal;
  };

  const get = (group: ServedGroup, key: string, req: IncomingMessage, res: ServerResponse) => {
    let p: Promise<{ value: Parameters<typeof encodeGetResponse>[0]; expiresAt?: number }>;
    try {
      p = group.serveGet(key, { signal: connectionSignal(req) });
    } catch (err) {
      replyError(res, err);
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
      (err: unknown) => replyError(res, err),
    );
  };

  const put = (group: ServedGroup, key: string, req: IncomingMessage, res: ServerResponse) => {
    const declared = req.headers["content-length"];
    if (declared !== undefined && Number(declared) > maxBodyBytes) {
      replyText(res, 413, `request body too large (max ${maxBodyBytes} bytes)`, true);
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    req.on("data", (chunk: Buffer) => {
      if (over) return;
      size += chunk.length;
      if (size > maxBodyBytes) {
        over = true;
        chunks.length = 0;
        replyText(res, 413, `request body too large (max ${maxBodyBytes} bytes)`, true);
        return;
      }
      chunks.push(chunk);
    });
    req.on("error", () => {}); // a client abort; nothing left to answer
    req.on("end", () => {
      if (over) return;
      try {
        const body = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size);
        let msg: ReturnType<typeof decodeSetRequest>;
        try {
          msg = decodeSetRequest(body);
        } catch {
          replyText(res, 400, "bad request: malformed SetRequest");
          return;
        }
        if ((msg.group !== "" && msg.group !== group.name) || (msg.key !== "" && msg.key !== key)) {
          replyText(res, 400, "bad request: SetRequest group/key differ from the path");
          return;
        }
        group.serveSet(key, msg.value, msg.expiresAt);
        replyEmpty(res);
      } catch (err) {
        replyError(res, err);
      }
    });
  };

  const route = (req: IncomingMessage, res: ServerResponse): void => {
    let url = req.url ?? "";
    if (url.charCodeAt(0) !== 47 /* "/" */) {
      const path = originForm(url);
      if (path === undefined) {
        replyText(res, 400, "bad request: bad request target");
        return;
      }
      url = path;
    }
    const q = url.indexOf("?");
    if (q !== -1) url = url.slice(0, q);
    if (!url.startsWith(basePath)) {
      replyText(res, 404, outside);
      return;
    }
    if (authOk !== undefined && !authOk(req.headers[authHeader as string])) {
      replyText(res, 401, "unauthorized");
      return;
    }
    const method = req.method;
    if (method !== "GET" && method !== "PUT" && method !== "DELETE") {
      replyText(res, 405, "method not allowed");
      return;
    }
    const slash = url.indexOf("/", baseLen);
    if (slash === -1) {
      replyText(res, 400, "bad request"); // Go's exact answer for a missing key part
      return;
    }
    const rawName = url.slice(baseLen, slash);
    const rawKey = url.slice(slash + 1);
    const name = unescapeSegment(rawName);
    const key = unescapeSegment(rawKey);
    if (name === undefined || key === undefined) {
      replyText(res, 400, whyUndecodable(name === undefined ? rawName : rawKey));
      return;
    }
    // UTF-8 takes at least one byte per UTF-16 unit and at most three, so the exact byte
    // count is needed only in between.
    if (
      key.length > maxKeyBytes ||
      (key.length * 3 > maxKeyBytes && Buffer.byteLength(key, "utf8") > maxKeyBytes)
    ) {
      replyText(res, 400, `key too long (max ${maxKeyBytes} bytes)`);
      return;
    }
    const group = registry.getGroup(name);
    if (group === undefined) {
      replyText(res, 404, `no such group: ${name}`);
      return;
    }
    if (method === "GET") get(group, key, req, res);
    else if (method === "PUT") put(group, key, req, res);
    else {
      group.serveRemove(key);
      replyEmpty(res);
    }
  };

  return (req, res) => {
    try {
      route(req, res);
    } catch (err) {
      replyError(res, err);
    }
  };
}
