import * as http from "node:http";
import * as https from "node:https";
import type { CallOptions, KeyRequest, PeerGetter, PeerValue, SetRequest } from "@tinycache/core";
import { PeerError } from "@tinycache/core";
import { escapeSegment } from "./escape.js";
import { decodeGetResponse, encodeSetRequest } from "./wire.js";

/** How one {@link HttpPeer} talks to its peer. */
export interface HttpPeerConfig {
  /** The peer's base URL as configured (its id on the ring). */
  url: string;
  basePath: string;
  timeoutMs: number;
  maxBodyBytes: number;
  agent: http.Agent;
  auth: { secret: string; header: string } | undefined;
}

const PROTOBUF = "application/x-protobuf";
/** Bytes of an error body kept for the error message. */
const ERROR_TEXT_BYTES = 1024;

type Sender = typeof http.request;

/**
 * 404 bodies that do not mean "the owner's source has no such key": the group is unknown
 * to that peer (golang/groupcache), the path is not a groupcache path (our server, Go's
 * default mux). The owner cannot answer, so the caller should load the key itself.
 */
function notAnOwnerAnswer(text: string): boolean {
  return (
    text.startsWith("no such group:") ||
    text.startsWith("path outside ") ||
    text === "404 page not found"
  );
}

/** Maps a non-200 answer to a PeerError (see core's PeerErrorKind). */
function statusError(peer: string, status: number, body: Buffer): PeerError {
  const text = body.toString("utf8", 0, Math.min(body.length, ERROR_TEXT_BYTES)).trimEnd();
  const what = `HTTP ${status}${text ? `: ${text}` : ""}`;
  switch (status) {
    case 404:
      return new PeerError(notAnOwnerAnswer(text) ? "unavailable" : "not_found", peer, what);
    case 400:
    case 413:
      return new PeerError("invalid_argument", peer, what);
    case 500:
      return new PeerError("getter_failed", peer, what);
    default:
      return new PeerError("unavailable", peer, what); // 401, 405, 502, 503, ...
  }
}

/**
 * The client side of one peer: GET, PUT and DELETE on `{peer}{basePath}{group}/{key}`
 * over one keep-alive agent, each call bounded by the timeout and the caller's signal.
 * Failures are PeerErrors: `unavailable` (core loads locally), `not_found`,
 * `getter_failed`, `invalid_argument` (passed on), `aborted` (the caller's signal).
 */
export class HttpPeer implements PeerGetter {
  readonly id: string;
  readonly #send: Sender;
  readonly #agent: http.Agent;
  readonly #hostname: string;
  readonly #port: number;
  /** URL path up to and including basePath. */
  readonly #prefix: string;
  readonly #timeoutMs: number;
  readonly #maxBodyBytes: number;
  /** Headers of a GET or DELETE (the auth header, if any). */
  readonly #headers: Record<string, string> | undefined;
  readonly #authHeader: string | undefined;
  readonly #secret: string | undefined;
  #inflight = 0;
  #retired = false;

  constructor(cfg: HttpPeerConfig) {
    const u = new URL(cfg.url);
    this.id = cfg.url;
    this.#send = u.protocol === "https:" ? https.request : http.request;
    this.#agent = cfg.agent;
    // URL keeps IPv6 literals in brackets; the socket layer wants them bare.
    this.#hostname = u.hostname.replace(/^\[(.*)\]$/, "$1");
    this.#port = u.port ? Number(u.port) : u.protocol === "https:" ? 443 : 80;
    const base = u.pathname === "/" ? "" : u.pathname.replace(/\/$/, "");
    this.#prefix = base + cfg.basePath;
    this.#timeoutMs = cfg.timeoutMs;
    this.#maxBodyBytes = cfg.maxBodyBytes;
    this.#authHeader = cfg.auth?.header;
    this.#secret = cfg.auth?.secret;
    this.#headers = cfg.auth ? { [cfg.auth.header]: cfg.auth.secret } : undefined;
  }

  /** Fetches a value from the peer (the key's owner). */
  get(req: KeyRequest, opts?: CallOptions): Promise<PeerValue> {
    const path = this.#path(req);
    if (typeof path !== "string") return Promise.reject(path);
    return this.#call("GET", path, this.#headers, undefined, opts?.signal).then((body) => {
      try {
        return decodeGetResponse(body);
      } catch (err) {
        throw new PeerError("unavailable", this.id, "malformed GetResponse", { cause: err });
      }
    });
  }

  /** Stores a value at the peer (mailgun's PUT with a SetRequest body). */
  set(req: SetRequest, opts?: CallOptions): Promise<void> {
    const path = this.#path(req);
    if (typeof path !== "string") return Promise.reject(path);
    let body: Uint8Array;
    try {
      body = encodeSetRequest(req.group, req.key, req.value, req.expiresAt);
    } catch (err) {
      return Promise.reject(
        new PeerError("invalid_argument", this.id, "cannot encode SetRequest", { cause: err }),
      );
    }
    const headers: Record<string, string> = {
      "content-type": PROTOBUF,
      "content-length": String(body.length),
    };
    if (this.#authHeader !== undefined) headers[this.#authHeader] = this.#secret as string;
    return this.#call("PUT", path, headers, body, opts?.signal).then(() => undefined);
  }

  /** Drops the peer's copies of a key (mailgun's DELETE). */
  remove(req: KeyRequest, opts?: CallOptions): Promise<void> {
    const path = this.#path(req);
    if (typeof path !== "string") return Promise.reject(path);
    return this.#call("DELETE", path, this.#headers, undefined, opts?.signal).then(() => undefined);
  }

  /**
   * Stops using the agent once the calls in flight are done (the peer left the ring).
   * Later calls still work; they open fresh connections.
   */
  retire(): void {
    this.#retired = true;
    if (this.#inflight === 0) this.#agent.destroy();
  }

  /** Closes every connection now, failing calls in flight as `unavailable`. */
  destroy(): void {
    this.#retired = true;
    this.#agent.destroy();
  }

  #path(req: KeyRequest): string | PeerError {
    try {
      return `${this.#prefix}${escapeSegment(req.group)}/${escapeSegment(req.key)}`;
    } catch (err) {
      // Lone surrogates have no UTF-8 form, so the key cannot travel; the caller can
      // still load it locally.
      return new PeerError("unavailable", this.id, "key or group is not well-formed Unicode", {
        cause: err,
      });
    }
  }

  #call(
    method: string,
    path: string,
    headers: Record<string, string> | undefined,
    body: Uint8Array | undefined,
    signal: AbortSignal | undefined,
  ): Promise<Buffer> {
    const id = this.id;
    if (signal?.aborted) {
      return Promise.reject(
        new PeerError("aborted", id, "aborted by the caller", { cause: signal.reason }),
      );
    }
    return new Promise<Buffer>((resolve, reject) => {
      let done = false;
      let current: http.ClientRequest | undefined;
      const finish = (err: PeerError | undefined, value?: Buffer): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        if (--this.#inflight === 0 && this.#retired) this.#agent.destroy();
        if (err === undefined) resolve(value as Buffer);
        else {
          current?.destroy();
          reject(err);
        }
      };
      const onAbort = (): void => {
        finish(new PeerError("aborted", id, "aborted by the caller", { cause: signal?.reason }));
      };
      const timer = setTimeout(() => {
        finish(new PeerError("unavailable", id, `timed out after ${this.#timeoutMs} ms`));
      }, this.#timeoutMs);
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#inflight++;

      const attempt = (retry: boolean): void => {
        const r = this.#send(
          {
            agent: this.#agent,
            hostname: this.#hostname,
            port: this.#port,
            method,
            path,
            headers,
          },
          (res) => {
            const status = res.statusCode ?? 0;
            const chunks: Buffer[] = [];
            let size = 0;
            res.on("data", (chunk: Buffer) => {
              size += chunk.length;
              if (size > this.#maxBodyBytes) {
                finish(
                  new PeerError(
                    "unavailable",
                    id,
                    `response body over maxBodyBytes (${this.#maxBodyBytes})`,
                  ),
                );
                return;
              }
              chunks.push(chunk);
            });
            res.on("end", () => {
              const buf = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size);
              if (status === 200) finish(undefined, buf);
              else finish(statusError(id, status, buf));
            });
            res.on("error", (err) => {
              finish(new PeerError("unavailable", id, err.message, { cause: err }));
            });
            res.on("close", () => {
              if (!res.complete)
                finish(new PeerError("unavailable", id, "connection closed mid-answer"));
            });
          },
        );
        current = r;
        r.on("error", (err: NodeJS.ErrnoException) => {
          // A kept-alive socket the server closed just as we reused it: the request
          // never reached the peer, so one retry on a fresh socket is safe.
          if (!done && retry && r.reusedSocket && err.code === "ECONNRESET") {
            attempt(false);
            return;
          }
          finish(new PeerError("unavailable", id, err.message, { cause: err }));
        });
        r.end(body);
      };
      attempt(true);
    });
  }
}
