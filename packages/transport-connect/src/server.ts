import type { IncomingMessage, ServerResponse } from "node:http";
import type { Http2ServerRequest, Http2ServerResponse } from "node:http2";
import { create, fromBinary } from "@bufbuild/protobuf";
import { Code, ConnectError, type ConnectRouter, type HandlerContext } from "@connectrpc/connect";
import {
  codeToHttpStatus,
  errorToJsonBytes,
  parseTimeout,
} from "@connectrpc/connect/protocol-connect";
import { compressionGzip, connectNodeAdapter } from "@connectrpc/connect-node";
import {
  type BatchAnswer,
  batchSizeError,
  type LaneHandlers,
  type LaneReply,
  type LaneRequest,
  type MountableHandler,
  mountable,
  RequestCheck,
  requestPath,
  type ServedGroup,
  serveBatch,
  serveCachedGet,
} from "@tinycache/core/transport";
import {
  type DecodedGet,
  type DecodedGetMany,
  decodeGetManyRequest,
  decodeGetRequest,
  encodeGetManyResponse,
  tinycachev1 as pb,
} from "@tinycache/protocol";
import { serverError } from "./codes.js";
import type { ResolvedOptions } from "./options.js";
import { decodeMessage, encodeGetResponse } from "./private/wire.js";

/** A request listener for HTTP/1.1 and HTTP/2 (compat API) servers alike. */
export type RequestListener = (
  req: IncomingMessage | Http2ServerRequest,
  res: ServerResponse | Http2ServerResponse,
) => void;

/**
 * A request handler for `http.createServer`, `http2.createServer` and their TLS twins; or
 * call it with a third argument, `next`, which gets every request outside
 * `/tinycache.v1.CacheService/` untouched (see core's `MountableHandler`);
 * `handles(req)` says whether a request is a peer call.
 */
export type PeerHandler = MountableHandler<
  IncomingMessage | Http2ServerRequest,
  ServerResponse | Http2ServerResponse
>;

/** What the server needs of the pool's options. */
export type ServerOptions = Pick<
  ResolvedOptions,
  "registry" | "auth" | "maxBodyBytes" | "maxBatchKeys" | "logger" | "timeoutMs"
>;

const SERVICE_PATH = `/${pb.CacheService.typeName}/`;
/** setTimeout's ceiling: the longest Connect-Timeout-Ms any path accepts. */
const MAX_TIMEOUT_MS = 2_147_483_647;
type DirectMethod = "Get" | "Set" | "Remove" | "GetMany";
const DIRECT_METHODS: ReadonlySet<string> = new Set<DirectMethod>([
  "Get",
  "Set",
  "Remove",
  "GetMany",
]);
const PROTO_HEADERS = "Content-Type: application/proto\r\n";
/** A header value the lane may write as is (visible ASCII, spaces, tabs). */
const PLAIN_VALUE = /^[\t\x20-\x7e]*$/;
/** A header name (RFC 9110's token). */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

const EMPTY = new Uint8Array(0);

/**
 * The server side of the pool: answers CacheService calls from the groups of a registry.
 *
 * Every protocol (Connect, gRPC, gRPC-Web; binary or JSON) is served by connect-node's
 * adapter. The one call that carries a cluster's traffic -- a Connect-protocol unary
 * POST with a binary body and no compression -- takes a direct path over Node's
 * request/response objects instead: same bytes on the wire, same error JSON, but without
 * the adapter's per-call stream machinery, which costs more than the cache lookup itself
 * (see the README's benchmark).
 */
export class CacheServer {
  readonly #o: ServerOptions;
  /** Auth, body cap, key limit (from the group) and deadline: core's shared checks. */
  readonly #check: RequestCheck;
  readonly handler: PeerHandler;
  /**
   * The direct path's calls (Connect protocol, unary, binary, uncompressed, HTTP/1.1) for
   * core's lean lane, which reads them whole over node:net in front of the node:http
   * server: the same answers as {@link handler}'s, without node:http's request and
   * response objects. Everything else (HTTP/2, gRPC, JSON, compression, ...) is handed to
   * node:http and the adapter.
   */
  readonly lane: LaneHandlers;

  constructor(o: ServerOptions) {
    this.#o = o;
    this.#check = new RequestCheck({ auth: o.auth, maxBodyBytes: o.maxBodyBytes });
    const adapter = connectNodeAdapter({
      routes: (router: ConnectRouter) => this.#routes(router),
      readMaxBytes: o.maxBodyBytes,
      writeMaxBytes: o.maxBodyBytes,
      // gzip only (what gRPC and Connect clients send when they compress): anything else,
      // brotli included, is `unimplemented` with the list of what is accepted, as the
      // protocols say, instead of a failed decompression. Our own clients never compress.
      acceptCompression: [compressionGzip],
      // setTimeout's ceiling, as the direct path and the lane refuse longer timeouts: a
      // longer one would overflow Node's timer (fired after 1 ms: deadline_exceeded).
      maxTimeoutMs: MAX_TIMEOUT_MS,
    });
    const serve = (
      req: IncomingMessage | Http2ServerRequest,
      res: ServerResponse | Http2ServerResponse,
    ): void => {
      const h = req.headers;
      if (
        req.method === "POST" &&
        h["content-type"] === "application/proto" &&
        h["content-encoding"] === undefined &&
        (h["connect-protocol-version"] === undefined || h["connect-protocol-version"] === "1") &&
        req.url?.startsWith(SERVICE_PATH)
      ) {
        const method = (req.url as string).slice(SERVICE_PATH.length);
        if (method === "Get" || method === "Set" || method === "Remove" || method === "GetMany") {
          this.#direct(method, req, res);
          return;
        }
      }
      adapter(req as IncomingMessage, res as ServerResponse);
    };
    // The service's whole namespace is the pool's: a call of a method it lacks gets
    // Connect's 404 rather than reaching the app, which has no route there either.
    this.handler = mountable(
      serve,
      (req) => requestPath(req.url)?.startsWith(SERVICE_PATH) === true,
    );
    this.lane = this.#lane();
  }

  #lane(): LaneHandlers {
    const check = this.#check;
    const auth = check.authHeader;
    const capture = [
      "content-type",
      "content-encoding",
      "connect-protocol-version",
      "connect-timeout-ms",
    ];
    if (auth !== undefined) capture.push(auth);
    return {
      accepts: (method, target) =>
        method === "POST" &&
        target.startsWith(SERVICE_PATH) &&
        DIRECT_METHODS.has(target.slice(SERVICE_PATH.length)),
      captureHeaders: capture,
      acceptsHeaders: (h) =>
        h["content-type"] === "application/proto" &&
        h["content-encoding"] === undefined &&
        (h["connect-protocol-version"] === undefined || h["connect-protocol-version"] === "1"),
      maxBodyBytes: check.maxBodyBytes,
      handle: (req: LaneRequest, reply: LaneReply) => {
        const method = req.target.slice(SERVICE_PATH.length) as DirectMethod;
        if (!check.authorized(req.headers)) {
          laneError(reply, new ConnectError("missing or wrong peer secret", Code.Unauthenticated));
          return;
        }
        const timeout = parseTimeout(req.headers["connect-timeout-ms"] ?? null, MAX_TIMEOUT_MS);
        if (timeout.error !== undefined) {
          laneError(reply, timeout.error);
          return;
        }
        let get: DecodedGet | undefined;
        if (method === "Get") {
          // A cached key is answered at once: no controller, timer or promise.
          let out: Buffer | undefined;
          try {
            get = decodeGet(req.body);
            out = this.#cachedGet(get);
          } catch (err) {
            laneError(reply, ConnectError.from(err));
            return;
          }
          if (out !== undefined) {
            reply.send(200, out, PROTO_HEADERS);
            return;
          }
        }
        // As on the direct path: a GetMany needs only the connection's signal; a single
        // call also stops at its Connect-Timeout-Ms.
        const gone = check.socketSignal(req.socket);
        let signal = gone;
        let done = noop;
        if (method !== "GetMany" && timeout.timeoutMs !== undefined) {
          const ac = new AbortController();
          const onGone = () => ac.abort(gone.reason);
          const timer = setTimeout(
            () => ac.abort(new DOMException("deadline exceeded", "TimeoutError")),
            timeout.timeoutMs,
          );
          gone.addEventListener("abort", onGone, { once: true });
          signal = ac.signal;
          done = () => {
            clearTimeout(timer);
            gone.removeEventListener("abort", onGone);
          };
        }
        const answer =
          get === undefined
            ? this.#answer(method, req.body, signal, timeout.timeoutMs)
            : this.#get(get, signal);
        answer.then(
          (out) => {
            done();
            reply.send(200, out, PROTO_HEADERS);
          },
          (err: unknown) => {
            done();
            const ce = ConnectError.from(err);
            if (ce.code === Code.Internal) {
              this.#o.logger.debug({ err: ce.rawMessage, method }, "tinycache peer call failed");
            }
            laneError(reply, ce);
          },
        );
      },
    };
  }

  // ---- the calls, shared by both paths; they throw ConnectErrors ----

  #group(name: string): ServedGroup {
    if (typeof name !== "string" || name.length === 0) {
      throw new ConnectError("group name is empty", Code.InvalidArgument);
    }
    const g = this.#o.registry.getGroup(name);
    // failed_precondition, not not_found: "not found" is an answer about a key, which the
    // asker would pass on; a peer without the group is simply no owner, so the asker
    // maps this to "unavailable" and loads the key itself.
    if (g === undefined) throw new ConnectError(`no such group: ${name}`, Code.FailedPrecondition);
    return g;
  }

  #checkKey(group: ServedGroup, key: string): void {
    const bad = this.#check.keyError(group, key);
    if (bad !== undefined) throw new ConnectError(bad.message, Code.InvalidArgument);
  }

  /**
   * The answer to a Get of a key the group has cached, encoded; undefined when the key
   * must be loaded (then {@link CacheServer.#get} runs). Throws what #get would: the same
   * checks, and not_found for a cached "not found".
   */
  #cachedGet(req: DecodedGet): Buffer | undefined {
    const g = this.#group(req.group);
    this.#checkKey(g, req.key);
    let cached: ReturnType<typeof serveCachedGet>;
    try {
      cached = serveCachedGet(g, req.key);
    } catch (err) {
      throw serverError(err);
    }
    return cached === undefined ? undefined : encodeGetResponse(cached.value, cached.expiresAt);
  }

  async #get(req: DecodedGet, signal: AbortSignal): Promise<Buffer> {
    const g = this.#group(req.group);
    this.#checkKey(g, req.key);
    try {
      const { value, expiresAt } = await g.serveGet(req.key, { signal });
      return encodeGetResponse(value, expiresAt);
    } catch (err) {
      throw serverError(err, signal);
    }
  }

  async #getMany(req: pb.GetManyRequest, signal: AbortSignal): Promise<pb.GetManyResponse> {
    const max = req.maxAnswerBytes;
    const answers = await this.#batch(
      {
        group: req.group,
        keys: req.keys,
        // As the hand decoder reads it: beyond 2^53 means no cap of the asker's.
        maxAnswerBytes: max > BigInt(Number.MAX_SAFE_INTEGER) ? 0 : Number(max),
        timeoutMs: req.timeoutMs,
      },
      signal,
    );
    const results = answers.map((a) =>
      create(pb.GetManyResultSchema, {
        key: a.key,
        result: a.ok
          ? {
              case: "value",
              value: create(pb.GetResponseSchema, {
                value: a.value.byteSlice(),
                expiresAtMs: expiryOut(a.expiresAt),
              }),
            }
          : {
              case: "error",
              value: create(pb.KeyErrorSchema, { code: a.code, message: a.message }),
            },
      }),
    );
    return create(pb.GetManyResponseSchema, { results });
  }

  /** A GetMany's answers, key by key (see core's serveBatch). */
  /**
   * `headerTimeoutMs`: the call's Connect-Timeout-Ms, if any: the batch answers by the
   * sooner of it and the request's own timeoutMs (else the pool's).
   */
  #batch(
    req: DecodedGetMany,
    signal: AbortSignal,
    headerTimeoutMs?: number,
  ): Promise<BatchAnswer[]> {
    // Not async: a batch of cached keys is answered at once (serveBatch), and each async
    // layer would add a promise and a turn to every batch call. What throws here (no such
    // group, too many keys) is the caller's to turn into a rejection (#answer).
    const g = this.#group(req.group);
    const tooMany = batchSizeError(req.keys.length, this.#o.maxBatchKeys);
    if (tooMany !== undefined) throw new ConnectError(tooMany, Code.ResourceExhausted);
    const max = this.#o.maxBodyBytes;
    const asked = req.maxAnswerBytes;
    // Each key settles on its own (core's serveBatch): one failing key does not fail the
    // batch, and the answer stays within the asker's cap and ours.
    return serveBatch(g, req.keys, {
      signal,
      keyError: (group, key) => this.#check.keyError(group, key),
      maxAnswerBytes: asked > 0 && asked < max ? asked : max,
      timeoutMs: Math.min(
        req.timeoutMs > 0 ? req.timeoutMs : this.#o.timeoutMs,
        headerTimeoutMs ?? Number.POSITIVE_INFINITY,
      ),
    });
  }

  #set(req: pb.SetRequest): void {
    const g = this.#group(req.group);
    this.#checkKey(g, req.key);
    try {
      g.serveSet(req.key, req.value, expiryIn(req.expiresAtMs));
    } catch (err) {
      throw serverError(err);
    }
  }

  #remove(req: pb.RemoveRequest): void {
    const g = this.#group(req.group);
    this.#checkKey(g, req.key);
    try {
      g.serveRemove(req.key);
    } catch (err) {
      throw serverError(err);
    }
  }

  // ---- connect-node routes (every protocol) ----

  #auth(ctx: HandlerContext): void {
    if (!this.#check.authorized(Object.fromEntries(ctx.requestHeader))) {
      throw new ConnectError("missing or wrong peer secret", Code.Unauthenticated);
    }
  }

  #routes(router: ConnectRouter): void {
    router.service(pb.CacheService, {
      get: async (req, ctx) => {
        this.#auth(ctx);
        return fromBinary(pb.GetResponseSchema, await this.#get(req, ctx.signal));
      },
      getMany: (req, ctx) => {
        this.#auth(ctx);
        return this.#getMany(req, ctx.signal);
      },
      set: (req, ctx) => {
        this.#auth(ctx);
        this.#set(req);
        return create(pb.SetResponseSchema);
      },
      remove: (req, ctx) => {
        this.#auth(ctx);
        this.#remove(req);
        return create(pb.RemoveResponseSchema);
      },
    });
  }

  // ---- the direct path: Connect protocol, unary, binary, uncompressed ----

  #direct(
    method: "Get" | "Set" | "Remove" | "GetMany",
    req: IncomingMessage | Http2ServerRequest,
    res: ServerResponse | Http2ServerResponse,
  ): void {
    const check = this.#check;
    if (!check.authorized(req.headers)) {
      // The body of a refused call is not read (it may be of any size): the exchange ends
      // with the answer.
      check.closeAfterAnswer(req, res);
      sendError(res, new ConnectError("missing or wrong peer secret", Code.Unauthenticated));
      return;
    }
    // The deadline the client sent (Connect-Timeout-Ms), as connect-node reads it.
    const header = req.headers["connect-timeout-ms"];
    const timeout = parseTimeout(typeof header === "string" ? header : null, MAX_TIMEOUT_MS);
    if (timeout.error !== undefined) {
      check.closeAfterAnswer(req, res);
      sendError(res, timeout.error);
      return;
    }
    // Aborted when the client goes away or its deadline passes, so the group stops
    // waiting for it (other waiters of the same key keep waiting). A GetMany over
    // HTTP/1.1 needs no controller and timer of its own (they were a batch's largest
    // fixed cost here): serveBatch answers by its deadline with what is ready, and the
    // connection's one signal covers a client that goes away, as on the HTTP transport.
    const batchOnH1 = method === "GetMany" && req.httpVersionMajor === 1;
    const { signal, done } = batchOnH1
      ? { signal: check.connectionSignal(req), done: noop }
      : check.deadline(res, timeout.timeoutMs);
    check.readBody(
      req,
      (body) => {
        this.#answer(method, body, signal, timeout.timeoutMs).then(
          (out) => {
            done();
            if (res.writableEnded || res.destroyed) return;
            res.writeHead(200, {
              "content-type": "application/proto",
              "content-length": out.length,
            });
            res.end(out);
          },
          (err: unknown) => {
            done();
            const ce = ConnectError.from(err);
            if (ce.code === Code.Internal) {
              this.#o.logger.debug({ err: ce.rawMessage, method }, "tinycache peer call failed");
            }
            sendError(res, ce);
          },
        );
      },
      () => {
        // Past the cap nothing more is read: answer, then end the exchange.
        done();
        check.closeAfterAnswer(req, res);
        sendError(res, tooLarge(check.maxBodyBytes));
      },
    );
  }

  #answer(
    method: "Get" | "Set" | "Remove" | "GetMany",
    body: Uint8Array,
    signal: AbortSignal,
    headerTimeoutMs: number | undefined,
  ): Promise<Uint8Array> {
    // A promise chain rather than an async function: one hop fewer per call. Whatever
    // throws (a malformed body, an unknown group) rejects, as from an async function.
    try {
      switch (method) {
        case "Get":
          return this.#get(decodeGet(body), signal);
        case "GetMany":
          // Written by hand straight from the values (the same bytes toBinary writes).
          return this.#batch(decodeBatchRequest(body), signal, headerTimeoutMs).then(
            encodeGetManyResponse,
          );
        case "Set":
          this.#set(decodeMessage(pb.SetRequestSchema, body, "request"));
          return Promise.resolve(EMPTY);
        case "Remove":
          this.#remove(decodeMessage(pb.RemoveRequestSchema, body, "request"));
          return Promise.resolve(EMPTY);
        default:
          // Unreachable: both paths take only the four methods (DIRECT_METHODS).
          throw new ConnectError(`no method ${String(method)}`, Code.Unimplemented);
      }
    } catch (err) {
      return Promise.reject(err);
    }
  }
}

function noop(): void {}

/** {@link sendError} through the lane: the same status, JSON body and metadata headers. */
function laneError(reply: LaneReply, err: ConnectError): void {
  let headers = "Content-Type: application/json\r\n";
  err.metadata.forEach((value, key) => {
    if (TOKEN.test(key) && PLAIN_VALUE.test(value)) headers += `${key}: ${value}\r\n`;
  });
  reply.send(codeToHttpStatus(err.code), errorToJsonBytes(err, undefined), headers);
}

function tooLarge(max: number): ConnectError {
  return new ConnectError(`message larger than ${max} bytes`, Code.ResourceExhausted);
}

function sendError(res: ServerResponse | Http2ServerResponse, err: ConnectError): void {
  if (res.headersSent || res.writableEnded || res.destroyed) return;
  const body = errorToJsonBytes(err, undefined);
  const headers: Record<string, string | number> = {
    "content-type": "application/json",
    "content-length": body.length,
  };
  // Error metadata travels as response headers in the Connect protocol.
  err.metadata.forEach((value, key) => {
    headers[key] = value;
  });
  res.writeHead(codeToHttpStatus(err.code), headers);
  res.end(body);
}

/** int64 ms (0 = none) from the wire to core's optional number. */
export function expiryIn(ms: bigint): number | undefined {
  return ms > 0n ? Number(ms) : undefined;
}

/** core's optional expiry to the wire's int64 ms (0 = none). */
export function expiryOut(expiresAt: number | undefined): bigint {
  return expiresAt !== undefined && Number.isFinite(expiresAt) && expiresAt > 0
    ? BigInt(Math.floor(expiresAt))
    : 0n;
}

/** A GetRequest body, decoded by hand; malformed bytes are invalid_argument. */
function decodeGet(body: Uint8Array): DecodedGet {
  try {
    return decodeGetRequest(body);
  } catch (err) {
    throw new ConnectError(`malformed request: ${(err as Error).message}`, Code.InvalidArgument);
  }
}

/**
 * A GetManyRequest body, decoded by hand (@tinycache/protocol; the reflective fromBinary
 * cost more than the rest of a batch on the owner); malformed bytes are invalid_argument,
 * as decodeMessage answers for the other methods.
 */
function decodeBatchRequest(body: Uint8Array): DecodedGetMany {
  try {
    return decodeGetManyRequest(body);
  } catch (err) {
    throw new ConnectError(`malformed request: ${(err as Error).message}`, Code.InvalidArgument);
  }
}
