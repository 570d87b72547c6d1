import type { IncomingMessage, ServerResponse } from "node:http";
import type { Http2ServerRequest, Http2ServerResponse } from "node:http2";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError, type ConnectRouter, type HandlerContext } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { type GroupLookup, type Logger, makeSecretCheck, type ServedGroup } from "@tinycache/core";
import { tinycachev1 as pb } from "@tinycache/protocol";
import { codeName, httpStatusOf, serverError } from "./codes.js";
import { decodeMessage, encodeGetResponse } from "./private/wire.js";

/** A request handler for `http.createServer`, `http2.createServer` and their TLS twins. */
export type PeerHandler = (
  req: IncomingMessage | Http2ServerRequest,
  res: ServerResponse | Http2ServerResponse,
) => void;

export interface ServerOptions {
  registry: GroupLookup;
  auth: { secret: string; header: string } | undefined;
  maxKeyBytes: number;
  maxMessageBytes: number;
  maxBatchKeys: number;
  logger: Logger | undefined;
}

const SERVICE_PATH = `/${pb.CacheService.typeName}/`;
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
  readonly #checkSecret: ((got: string | string[] | null | undefined) => boolean) | undefined;
  readonly #authHeader: string;
  readonly handler: PeerHandler;

  constructor(o: ServerOptions) {
    this.#o = o;
    this.#checkSecret = o.auth ? makeSecretCheck(o.auth.secret) : undefined;
    this.#authHeader = o.auth?.header ?? "";
    const adapter = connectNodeAdapter({
      routes: (router: ConnectRouter) => this.#routes(router),
      readMaxBytes: o.maxMessageBytes,
      writeMaxBytes: o.maxMessageBytes,
    });
    this.handler = (req, res) => {
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

  #checkKey(key: string): void {
    const max = this.#o.maxKeyBytes;
    // A UTF-16 unit is at most 3 UTF-8 bytes: short keys skip the byte count.
    if (key.length * 3 > max && Buffer.byteLength(key, "utf8") > max) {
      throw new ConnectError(`key is longer than ${max} bytes`, Code.InvalidArgument);
    }
  }

  async #get(req: pb.GetRequest, signal: AbortSignal): Promise<Buffer> {
    const g = this.#group(req.group);
    this.#checkKey(req.key);
    try {
      const { value, expiresAt } = await g.serveGet(req.key, { signal });
      return encodeGetResponse(value, expiresAt);
    } catch (err) {
      throw serverError(err, signal);
    }
  }

  async #getMany(req: pb.GetManyRequest, signal: AbortSignal): Promise<pb.GetManyResponse> {
    const g = this.#group(req.group);
    if (req.keys.length > this.#o.maxBatchKeys) {
      throw new ConnectError(
        `${req.keys.length} keys in one GetMany, more than ${this.#o.maxBatchKeys}`,
        Code.InvalidArgument,
      );
    }
    // Each key settles on its own: one failing key does not fail the batch.
    const results = await Promise.all(
      req.keys.map(async (key): Promise<pb.GetManyResult> => {
        try {
          this.#checkKey(key);
          const { value, expiresAt } = await g.serveGet(key, { signal });
          return create(pb.GetManyResultSchema, {
            key,
            result: {
              case: "value",
              value: create(pb.GetResponseSchema, {
                value: value.byteSlice(),
                expiresAtMs: expiryOut(expiresAt),
              }),
            },
          });
        } catch (err) {
          const ce = serverError(err, signal);
          return create(pb.GetManyResultSchema, {
            key,
            result: {
              case: "error",
              value: create(pb.KeyErrorSchema, { code: codeName(ce.code), message: ce.rawMessage }),
            },
          });
        }
      }),
    );
    return create(pb.GetManyResponseSchema, { results });
  }

  #set(req: pb.SetRequest): void {
    const g = this.#group(req.group);
    this.#checkKey(req.key);
    try {
      g.serveSet(req.key, req.value, expiryIn(req.expiresAtMs));
    } catch (err) {
      throw serverError(err);
    }
  }

  #remove(req: pb.RemoveRequest): void {
    const g = this.#group(req.group);
    this.#checkKey(req.key);
    try {
      g.serveRemove(req.key);
    } catch (err) {
      throw serverError(err);
    }
  }

  // ---- connect-node routes (every protocol) ----

  #auth(ctx: HandlerContext): void {
    if (this.#checkSecret && !this.#checkSecret(ctx.requestHeader.get(this.#authHeader))) {
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
    if (this.#checkSecret && !this.#checkSecret(req.headers[this.#authHeader])) {
      req.resume(); // drain, so an HTTP/1.1 connection stays usable
      sendError(res, new ConnectError("missing or wrong peer secret", Code.Unauthenticated));
      return;
    }
    const max = this.#o.maxMessageBytes;
    const declared = Number(req.headers["content-length"] ?? 0);
    if (declared > max) {
      req.resume();
      sendError(res, tooLarge(max));
      return;
    }
    // Aborted when the client goes away or the deadline it sent passes, so the group
    // stops waiting for it (other waiters of the same key keep waiting).
    const ac = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    const timeout = parseTimeout(req.headers["connect-timeout-ms"]);
    if (timeout !== undefined) {
      timer = setTimeout(
        () => ac.abort(new DOMException("deadline exceeded", "TimeoutError")),
        timeout,
      );
    }
    const onClose = () => {
      if (timer !== undefined) clearTimeout(timer);
      if (!res.writableEnded) ac.abort(new DOMException("client went away", "AbortError"));
    };
    res.once("close", onClose);

    const chunks: Buffer[] = [];
    let size = 0;
    let failed = false;
    req.on("data", (chunk: Buffer) => {
      if (failed) return;
      size += chunk.length;
      if (size > max) {
        failed = true;
        sendError(res, tooLarge(max));
        return;
      }
      chunks.push(chunk);
    });
    req.once("end", () => {
      if (failed) return;
      const body = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size);
      this.#answer(method, body, ac.signal).then(
        (out) => {
          if (timer !== undefined) clearTimeout(timer);
          if (res.writableEnded || res.destroyed) return;
          res.writeHead(200, {
            "content-type": "application/proto",
            "content-length": out.length,
          });
          res.end(out);
        },
        (err: unknown) => {
          if (timer !== undefined) clearTimeout(timer);
          const ce = ConnectError.from(err);
          if (ce.code === Code.Internal) {
            this.#o.logger?.debug({ err: ce.rawMessage, method }, "tinycache peer call failed");
          }
          sendError(res, ce);
        },
      );
    });
    req.once("error", () => {
      failed = true;
    });
  }

  async #answer(
    method: "Get" | "Set" | "Remove" | "GetMany",
    body: Uint8Array,
    signal: AbortSignal,
  ): Promise<Uint8Array> {
    switch (method) {
      case "Get":
        return this.#get(decodeMessage(pb.GetRequestSchema, body, "request"), signal);
      case "GetMany":
        return toBinary(
          pb.GetManyResponseSchema,
          await this.#getMany(decodeMessage(pb.GetManyRequestSchema, body, "request"), signal),
        );
      case "Set":
        this.#set(decodeMessage(pb.SetRequestSchema, body, "request"));
        return EMPTY;
      case "Remove":
        this.#remove(decodeMessage(pb.RemoveRequestSchema, body, "request"));
        return EMPTY;
    }
  }
}

function tooLarge(max: number): ConnectError {
  return new ConnectError(`message larger than ${max} bytes`, Code.ResourceExhausted);
}

/** Connect-Timeout-Ms: 1 to 10 digits (the protocol's limit); anything else is ignored. */
function parseTimeout(v: string | string[] | undefined): number | undefined {
  if (typeof v !== "string" || !/^\d{1,10}$/.test(v)) return undefined;
  const ms = Number(v);
  return ms > 0 ? Math.min(ms, 2_147_483_647) : undefined;
}

function sendError(res: ServerResponse | Http2ServerResponse, err: ConnectError): void {
  if (res.headersSent || res.writableEnded || res.destroyed) return;
  const body = JSON.stringify({ code: codeName(err.code), message: err.rawMessage });
  const headers: Record<string, string | number> = {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(body),
  };
  // Error metadata travels as response headers in the Connect protocol.
  err.metadata.forEach((value, key) => {
    headers[key] = value;
  });
  res.writeHead(httpStatusOf(err.code), headers);
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
