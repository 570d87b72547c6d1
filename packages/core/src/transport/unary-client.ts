import * as http from "node:http";
import * as https from "node:https";
import { PeerError } from "../errors.js";
import type { ByteBudget } from "./byte-budget.js";
import { type H1Connection, type H1Headers, H1Pool, type H1Sink } from "./h1-connection.js";

/** Options of {@link UnaryClient}. */
export interface UnaryClientOptions {
  /** The peer's base URL (`http:` or `https:`); its path, if any, prefixes every call's. */
  url: string;
  /**
   * Deadline of one call, in ms: connect, send, answer and body. Finite and > 0 (every
   * network call needs one).
   */
  timeoutMs: number;
  /**
   * Largest response body read, in bytes; beyond, the call fails and the socket is
   * dropped. A declared Content-Length over it fails the call before any byte is read.
   */
  maxBodyBytes: number;
  /**
   * A budget of response bytes buffered at once, usually shared by every client of a
   * pool (see {@link ByteBudget}; a pool's resolved options carry one, so
   * `new UnaryClient({ url, ...resolvedOptions })` shares it): an answer that does not fit
   * fails as `unavailable`. Default: none.
   */
  inflightBudget?: ByteBudget;
  /**
   * The keep-alive agent to use. Default: one made by {@link createAgent} from
   * `agentOptions`. Either way the client destroys it on {@link UnaryClient.retire} (once
   * idle) and {@link UnaryClient.destroy}.
   */
  agent?: http.Agent;
  /** Options of the agent made when `agent` is not given (see {@link createAgent}). */
  agentOptions?: https.AgentOptions;
}

/** One call: method, path (after the base URL's own path), headers and body as sent. */
export interface UnaryRequest {
  method: "GET" | "POST" | "PUT" | "DELETE";
  /**
   * Starts with `/`; appended to the base URL's path. Sent as is (already escaped): a
   * space, control or character over U+00FF in it fails the call.
   */
  path: string;
  /**
   * Sent as is and never modified (so a caller may reuse one object for every call).
   * A {@link HeaderBlock} (headers checked once, for calls that send the same ones every
   * time) saves checking and formatting them per call. A body without a `content-length`
   * header gets one.
   */
  headers?: http.OutgoingHttpHeaders | HeaderBlock;
  body?: Uint8Array;
  signal?: AbortSignal;
  /**
   * This call's own cap on the response body, in bytes, when lower than the client's
   * `maxBodyBytes` (e.g. a get's `maxValueBytes` plus the answer's framing).
   */
  maxBodyBytes?: number;
  /**
   * For a 200 answer without a Content-Length (a streamed, chunked one): the length the
   * body will have at least, read from its first bytes when the wire format announces it
   * (e.g. {@link protobufFirstFieldEnd}), or -1 when they do not tell (yet). Called with
   * the bytes received so far until it answers or 64 bytes came; an answer announced over
   * the cap is cut off then, before its body is read.
   */
  announcedLength?: (head: Buffer) => number;
}

/** Bytes of a streamed answer's head given to {@link UnaryRequest.announcedLength} at most. */
const HEAD_BYTES = 64;

/**
 * The end of the first field of a protobuf message in bytes, when that field is
 * `fieldNumber` with a length-delimited value (a `bytes` value, as in both wires'
 * GetResponse): so at least the length of the whole message. -1 when `head` does not
 * start with that field, or is too short to tell.
 */
export function protobufFirstFieldEnd(head: Uint8Array, fieldNumber = 1): number {
  if (head.length < 2 || head[0] !== ((fieldNumber << 3) | 2)) return -1;
  let length = 0;
  let scale = 1;
  for (let i = 1; i < head.length && i <= 8; i++) {
    const b = head[i] as number;
    length += (b & 0x7f) * scale;
    if (b < 0x80) return i + 1 + length;
    scale *= 128;
  }
  return -1;
}

/** A complete answer, whatever its status: mapping a status to an error is the codec's job. */
export interface UnaryResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/** A Content-Length header as a byte count, or -1 when absent or not a valid number. */
function contentLength(raw: string | undefined): number {
  if (raw === undefined || !/^\d{1,16}$/.test(raw)) return -1;
  const n = Number(raw);
  return Number.isSafeInteger(n) ? n : -1;
}

/**
 * The default agent of a peer: keep-alive (peers talk constantly), LIFO (the most recently
 * used socket is the least likely to have been closed by the server meanwhile), and at
 * most 256 sockets per peer, so a burst queues instead of opening thousands of sockets.
 * `options` override everything but `keepAlive`. An `https.Agent` for `https:` URLs (TLS
 * options such as `ca`, `cert`, `key` go in `options`).
 */
export function createAgent(url: string, options: https.AgentOptions = {}): http.Agent {
  const o: https.AgentOptions = {
    maxSockets: 256,
    scheduling: "lifo",
    ...options,
    keepAlive: true,
  };
  return url.startsWith("https:") ? new https.Agent(o) : new http.Agent(o);
}

const ABORTED = "aborted by the caller";
/** An HTTP header name (RFC 9110's token). */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/**
 * What a header value must not hold, as node:http's check: controls but tab (CR, LF, NUL
 * among them), DEL, and characters over U+00FF, which the latin1 head would mangle
 * (U+010A and U+010D go out as LF and CR).
 */
const BAD_VALUE = /[^\t\x20-\x7e\x80-\xff]/;
/** What a path must not hold, as node:http's check: spaces, controls, characters over U+00FF. */
const BAD_PATH = /[^\u0021-\u00ff]/;

/**
 * Headers checked once (names, values: as node:http checks them) and formatted once, for
 * the calls of a client that send the same ones every time (a content type, a secret):
 * the lean client writes their text as is. Checking and formatting every header of every
 * call was ~5% of a Connect client's peer path (four headers a call; profiled).
 */
export class HeaderBlock {
  /** The headers, as given (what node:http's client is handed). */
  readonly headers: Readonly<http.OutgoingHttpHeaders>;
  /** Their `name: value\r\n` lines. */
  readonly text: string;
  /** Whether they include `content-length`. */
  readonly hasLength: boolean;

  /** @throws TypeError for a header name or value node:http would refuse. */
  constructor(headers: http.OutgoingHttpHeaders) {
    this.headers = Object.freeze({ ...headers });
    const { text, hasLength } = headerLines(this.headers);
    this.text = text;
    this.hasLength = hasLength;
  }
}

/** `headers` as `name: value\r\n` lines; throws a TypeError for a bad name or value. */
function headerLines(headers: Readonly<http.OutgoingHttpHeaders>): {
  text: string;
  hasLength: boolean;
} {
  let text = "";
  let hasLength = false;
  for (const name in headers) {
    const v = headers[name];
    if (v === undefined) continue;
    if (!TOKEN.test(name)) throw new TypeError(`invalid header name ${JSON.stringify(name)}`);
    if (name.length === 14 && name.toLowerCase() === "content-length") hasLength = true;
    for (const one of Array.isArray(v) ? v : [v]) {
      const value = String(one);
      if (BAD_VALUE.test(value)) throw new TypeError(`invalid value of header ${name}`);
      text += `${name}: ${value}\r\n`;
    }
  }
  return { text, hasLength };
}

/**
 * The one HTTP/1.1 unary client of every transport: one request, one complete answer,
 * over a keep-alive agent. It owns what both transports need and used to write twice:
 * the deadline, the caller's abort, the body cap, and one retry rule for a stale socket.
 *
 * Failures to get an answer are {@link PeerError}s: `aborted` (the caller's signal),
 * `unavailable` (timed out, refused, reset, body over the cap, closed mid-answer), so core
 * loads the key locally. An answer with any status resolves: the codec reads it.
 *
 * Why not `fetch`: undici's per-request cost is several times a loopback round trip on
 * these small calls, and its body streams cannot be capped before buffering.
 */
export class UnaryClient {
  /** The peer's base URL, as given. */
  readonly url: string;
  readonly #send: typeof http.request;
  /** node:http's agent, for `https:` peers and a given agent or agent options. */
  readonly #agent: http.Agent | undefined;
  /** The lean client's connections, for plain `http:` peers (see {@link H1Connection}). */
  readonly #h1: H1Pool | undefined;
  /** `Host` header value and the head's first lines up to the path, for the lean client. */
  readonly #host: string;
  readonly #hostname: string;
  readonly #port: number;
  readonly #prefix: string;
  readonly #timeoutMs: number;
  readonly #maxBodyBytes: number;
  readonly #budget: ByteBudget | undefined;
  #inflight = 0;
  #retired = false;

  constructor(o: UnaryClientOptions) {
    const u = new URL(o.url);
    this.url = o.url;
    this.#send = u.protocol === "https:" ? https.request : http.request;
    const lean =
      o.agent === undefined &&
      u.protocol === "http:" &&
      Object.keys(o.agentOptions ?? {}).every((k) => k === "maxSockets");
    this.#agent = lean ? undefined : (o.agent ?? createAgent(o.url, o.agentOptions));
    this.#host = u.host;
    // URL keeps IPv6 literals in brackets; the socket layer wants them bare.
    this.#hostname = u.hostname.replace(/^\[(.*)\]$/, "$1");
    this.#port = u.port ? Number(u.port) : u.protocol === "https:" ? 443 : 80;
    this.#prefix = u.pathname === "/" ? "" : u.pathname.replace(/\/$/, "");
    this.#timeoutMs = o.timeoutMs;
    this.#maxBodyBytes = o.maxBodyBytes;
    this.#budget = o.inflightBudget;
    this.#h1 = lean
      ? new H1Pool(this.#hostname, this.#port, o.agentOptions?.maxSockets ?? 256)
      : undefined;
  }

  /** The deadline of every call, in ms (a codec may send it to the server). */
  get timeoutMs(): number {
    return this.#timeoutMs;
  }

  /** Sends one request and reads its whole answer (see the class comment for failures). */
  request(req: UnaryRequest): Promise<UnaryResponse> {
    const id = this.url;
    const signal = req.signal;
    if (signal?.aborted) {
      return Promise.reject(new PeerError("aborted", id, ABORTED, { cause: signal.reason }));
    }
    const budget = this.#budget;
    const limit = Math.min(this.#maxBodyBytes, req.maxBodyBytes ?? Number.POSITIVE_INFINITY);
    return new Promise<UnaryResponse>((resolve, reject) => {
      let done = false;
      let current: http.ClientRequest | undefined;
      /** The lean client's connection of this call, while it waits for the answer. */
      let conn: H1Connection | undefined;
      /** Withdraws this call from the lean pool's queue, while it waits for a connection. */
      let withdraw: (() => void) | undefined;
      /** Bytes of this answer taken from the budget, given back when the call ends. */
      let taken = 0;
      const finish = (err: PeerError | undefined, res?: UnaryResponse): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        if (taken > 0) {
          budget?.give(taken);
          taken = 0;
        }
        signal?.removeEventListener("abort", onAbort);
        if (--this.#inflight === 0 && this.#retired) this.#agent?.destroy();
        if (err === undefined) resolve(res as UnaryResponse);
        else {
          current?.destroy();
          conn?.destroy();
          withdraw?.();
          reject(err);
        }
      };
      const onAbort = (): void => {
        finish(new PeerError("aborted", id, ABORTED, { cause: signal?.reason }));
      };
      const timer = setTimeout(() => {
        // The TimeoutError cause lets an observer tell a timeout from other failures.
        const msg = `timed out after ${this.#timeoutMs} ms`;
        finish(
          new PeerError("unavailable", id, msg, { cause: new DOMException(msg, "TimeoutError") }),
        );
      }, this.#timeoutMs);
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#inflight++;

      const which = limit === this.#maxBodyBytes ? "maxBodyBytes" : "the call's maxBodyBytes";
      const tooLarge = (what: string): PeerError =>
        new PeerError("unavailable", id, `response body ${what} over ${which} (${limit})`, {
          local: true,
        });
      const noBudget = (n: number): PeerError =>
        new PeerError(
          "unavailable",
          id,
          `${n} more response bytes do not fit in the budget of answers in flight (${budget?.used} of ${budget?.maxBytes} bytes used)`,
          { local: true },
        );

      /**
       * An answer's body as it comes, for both clients: the caps and the budget checked
       * on its declared length (-1: none) before any byte is read and on every piece,
       * a streamed 200 answer's announced length read from its first bytes. A body that
       * comes in several pieces with a declared length goes straight into one buffer of
       * that length (one that comes in one piece, the usual small answer, is kept).
       * `copy`: keep copies of streamed pieces (the lean parser's may share a buffer).
       */
      const bodyReader = (declared: number, status: number, copy: boolean) => {
        let whole: Buffer | undefined;
        const chunks: Buffer[] = [];
        let size = 0;
        let announced = declared < 0 && status === 200 ? req.announcedLength : undefined;
        return {
          /** The declared length's checks, before any byte is read. */
          start(): PeerError | undefined {
            if (declared > limit) return tooLarge(`of ${declared} bytes (Content-Length)`);
            if (declared > 0 && budget !== undefined) {
              if (!budget.tryTake(declared)) return noBudget(declared);
              taken = declared;
            }
            return undefined;
          },
          add(chunk: Buffer): PeerError | undefined {
            size += chunk.length;
            if (size > limit) return tooLarge(`of more than ${size - chunk.length} bytes`);
            if (announced !== undefined) {
              const head = chunks.length === 0 ? chunk : Buffer.concat([...chunks, chunk], size);
              const n = announced(head.subarray(0, HEAD_BYTES));
              if (n > limit) return tooLarge(`announced as at least ${n} bytes by its first bytes`);
              if (n >= 0 || size >= HEAD_BYTES) announced = undefined;
            }
            if (declared >= 0) {
              // Neither parser passes more than the declared length.
              if (whole === undefined) {
                if (chunk.length === declared) {
                  chunks.push(chunk);
                  return undefined;
                }
                whole = Buffer.allocUnsafe(declared);
              }
              chunk.copy(whole, size - chunk.length);
              return undefined;
            }
            if (budget !== undefined) {
              if (!budget.tryTake(chunk.length)) return noBudget(chunk.length);
              taken += chunk.length;
            }
            chunks.push(copy ? Buffer.from(chunk) : chunk);
            return undefined;
          },
          body(): Buffer {
            return whole !== undefined
              ? whole.subarray(0, size)
              : chunks.length === 1
                ? (chunks[0] as Buffer)
                : Buffer.concat(chunks, size);
          },
        };
      };

      const onResponse = (res: http.IncomingMessage): void => {
        const status = res.statusCode ?? 0;
        const body = bodyReader(contentLength(res.headers["content-length"]), status, false);
        const refused = body.start();
        if (refused !== undefined) {
          finish(refused);
          return;
        }
        res.on("data", (chunk: Buffer) => {
          if (done) return;
          // Stop reading at once on a refusal; destroying the request drops the socket.
          const err = body.add(chunk);
          if (err !== undefined) finish(err);
        });
        res.on("end", () => {
          finish(undefined, { status, headers: res.headers, body: body.body() });
        });
        res.on("error", (err) => {
          finish(new PeerError("unavailable", id, err.message, { cause: err }));
        });
        res.on("close", () => {
          if (!res.complete)
            finish(new PeerError("unavailable", id, "connection closed mid-answer"));
        });
      };

      const pool = this.#h1;
      if (pool !== undefined) {
        let bytes: Buffer;
        try {
          bytes = this.#requestBytes(req);
        } catch (err) {
          finish(new PeerError("invalid_argument", id, (err as Error).message, { local: true }));
          return;
        }
        const leanAttempt = (retry: boolean): void => {
          withdraw = pool.acquire((c) => {
            withdraw = undefined;
            if (done) {
              if (c?.usable) c.destroy();
              return;
            }
            if (c === undefined) {
              finish(new PeerError("unavailable", id, "client closed"));
              return;
            }
            conn = c;
            c.send(bytes, sink(retry));
          });
        };
        const sink = (retry: boolean): H1Sink => {
          let status = 0;
          let headers: H1Headers = {};
          let body: ReturnType<typeof bodyReader> | undefined;
          return {
            head: (st, hs, declared) => {
              status = st;
              headers = hs;
              body = bodyReader(declared, st, true);
              return body.start();
            },
            data: (chunk) => body?.add(chunk),
            end: () => {
              conn = undefined;
              finish(undefined, { status, headers, body: body?.body() ?? Buffer.alloc(0) });
            },
            fail: (err, retryable) => {
              conn = undefined;
              if (done) return;
              if (retry && retryable) {
                leanAttempt(false);
                return;
              }
              finish(
                err instanceof PeerError
                  ? err
                  : new PeerError("unavailable", id, err.message, { cause: err }),
              );
            },
          };
        };
        leanAttempt(true);
        return;
      }

      const attempt = (retry: boolean): void => {
        const agent = this.#agent as http.Agent;
        const r = this.#send(
          {
            agent,
            hostname: this.#hostname,
            port: this.#port,
            method: req.method,
            path: this.#prefix + req.path,
            headers:
              req.headers instanceof HeaderBlock
                ? (req.headers.headers as http.OutgoingHttpHeaders)
                : req.headers,
          },
          onResponse,
        );
        current = r;
        r.on("error", (err: NodeJS.ErrnoException) => {
          // A kept-alive socket the server closed just as we reused it: the request never
          // reached the peer, so one retry on a fresh socket is safe (every peer call is
          // idempotent) and better than reporting the peer down.
          if (
            !done &&
            retry &&
            r.reusedSocket &&
            (err.code === "ECONNRESET" || err.code === "EPIPE")
          ) {
            attempt(false);
            return;
          }
          finish(new PeerError("unavailable", id, err.message, { cause: err }));
        });
        r.end(req.body);
      };
      attempt(true);
    });
  }

  /**
   * Stops using the agent once the calls in flight are done (the peer left the ring).
   * Later calls still work; they open fresh connections.
   */
  retire(): void {
    this.#retired = true;
    this.#h1?.retire();
    if (this.#inflight === 0) this.#agent?.destroy();
  }

  /** Closes every connection now, failing calls in flight as `unavailable`. */
  destroy(): void {
    this.#retired = true;
    this.#h1?.destroy();
    this.#agent?.destroy();
  }

  /**
   * A request's bytes for the lean client, head and body in one buffer (one write). Header
   * names and values, and the path, are checked as node:http checks them; a bad one throws.
   */
  #requestBytes(req: UnaryRequest): Buffer {
    if (BAD_PATH.test(req.path)) throw new TypeError("request path contains unescaped characters");
    let head = `${req.method} ${this.#prefix}${req.path} HTTP/1.1\r\nHost: ${this.#host}\r\nConnection: keep-alive\r\n`;
    let hasLength = false;
    const headers = req.headers;
    if (headers instanceof HeaderBlock) {
      head += headers.text;
      hasLength = headers.hasLength;
    } else if (headers !== undefined) {
      const lines = headerLines(headers);
      head += lines.text;
      hasLength = lines.hasLength;
    }
    const body = req.body;
    if (!hasLength && (body !== undefined || req.method === "POST" || req.method === "PUT")) {
      head += `Content-Length: ${body?.length ?? 0}\r\n`;
    }
    head += "\r\n";
    const headLength = Buffer.byteLength(head, "latin1");
    if (body === undefined || body.length === 0) return Buffer.from(head, "latin1");
    const out = Buffer.allocUnsafe(headLength + body.length);
    out.write(head, 0, "latin1");
    out.set(body, headLength);
    return out;
  }
}
