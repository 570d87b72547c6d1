import type { Server as HttpServer } from "node:http";
import { STATUS_CODES } from "node:http";
import { type AddressInfo, createServer, type Server as NetServer, type Socket } from "node:net";
import type { Logger } from "../peers.js";
import type { PoolServer } from "./pool.js";

/**
 * A lean lane: a strict HTTP/1.1 reader over node:net for the few requests a server
 * answers by the thousand, in front of a node:http server that takes every connection
 * the lane does not fully understand.
 *
 * Why: node:http builds an IncomingMessage, a ServerResponse and their header objects and
 * events for every request; on one CPU a bare node:http server answers ~91k req/s, the
 * same answers written by a lane ~170k (wrk, 64 connections, keep-alive). On a peer port
 * that was about half of an owner's CPU per batch.
 *
 * What the lane answers, and nothing else: complete requests, within the bytes read so
 * far, of the form `<method> <target> HTTP/1.1` that `accepts(method, target)` takes,
 * header lines of token names and visible ASCII values, one Host, no Transfer-Encoding,
 * Expect or Upgrade, Connection only keep-alive; a GET or DELETE without a body, a POST
 * or PUT with a Content-Length body of at most `maxBodyBytes`. At the first request that is anything
 * else (another path or method, HTTP/1.0, a chunked or larger body, a request split
 * across reads, a byte outside visible ASCII in the head, a head over 16 KiB) the lane
 * waits until its own answers are written and hands the connection, with every byte it
 * has not answered, to the node:http server: from then on node:http serves that
 * connection with its own checks, limits and errors (400, 408, 413, 431). The lane itself
 * never answers an error of HTTP's.
 */

/** node:http's default maxHeaderSize: a longer head goes to node:http (which says 431). */
const MAX_HEAD = 16 * 1024;
/** Per char code below 128: 1 for an HTTP token char (RFC 9110: a header name's), 2 for
 * any other char a header value or request target may hold (visible ASCII; space and
 * tab in values only). Anything else (controls, CR, LF, bytes >= 128) is 0. */
const CHAR_CLASS = (() => {
  const t = new Uint8Array(128);
  for (let c = 0x21; c <= 0x7e; c++) t[c] = 2;
  for (const c of "!#$%&'*+-.^_`|~") t[c.charCodeAt(0)] = 1;
  for (let c = 0x30; c <= 0x39; c++) t[c] = 1;
  for (let c = 0x41; c <= 0x5a; c++) t[c] = 1;
  for (let c = 0x61; c <= 0x7a; c++) t[c] = 1;
  return t;
})();
/**
 * Answers in one event-loop turn from which the lane counts as loaded: the next turn's
 * answers wait for its end (see {@link LeanServerOptions.coalesceWrites}). At 2
 * connections a turn rarely holds more than 2; at 8 and above, most do.
 */
const BUSY_TURN_ANSWERS = 3;
/** Bytes the lane buffers while it waits to hand a connection over; then it stops reading. */
const MAX_HANDOFF_BUFFER = 64 * 1024;
const TEXT_HEADERS = "Content-Type: text/plain; charset=utf-8\r\n";

/** The methods the lane reads: GET and DELETE without a body, POST and PUT with one. */
export type LaneMethod = "GET" | "POST" | "PUT" | "DELETE";

/** The method a request line starting at `start` names (followed by a space), if the lane's. */
function methodAt(buf: string, start: number): LaneMethod | undefined {
  switch (buf.charCodeAt(start)) {
    case 0x47 /* G */:
      return buf.startsWith("GET ", start) ? "GET" : undefined;
    case 0x50 /* P */:
      return buf.startsWith("POST ", start)
        ? "POST"
        : buf.startsWith("PUT ", start)
          ? "PUT"
          : undefined;
    case 0x44 /* D */:
      return buf.startsWith("DELETE ", start) ? "DELETE" : undefined;
    default:
      return undefined;
  }
}

/**
 * What a server gives a lane (the rest of {@link LeanServerOptions} is the port's: the
 * fallback, timeouts, maxConnections): which requests it takes, and how it answers them.
 */
export type LaneHandlers = Pick<
  LeanServerOptions,
  "accepts" | "acceptsHeaders" | "handle" | "captureHeaders" | "maxBodyBytes"
>;

/** One request the lane answers. */
export interface LaneRequest {
  readonly method: LaneMethod;
  /** The request target as sent (e.g. `/api?key=Tom`): visible ASCII. */
  readonly target: string;
  /** The values of the headers named in `captureHeaders` (lower-case names), if sent. */
  readonly headers: Readonly<Record<string, string>>;
  /** The body (empty for a GET). */
  readonly body: Buffer;
  /** The request's connection: its close is the only way an HTTP/1.1 client abandons it. */
  readonly socket: Socket;
}

/** Where the answer to one lane request goes. */
export interface LaneReply {
  /** The client went away (or the server closed): an answer would be dropped. */
  readonly gone: boolean;
  /**
   * Answers with `status` and `body`: a string is sent as UTF-8 text/plain unless
   * `headers` is given, which then holds every extra header line, each ending in CRLF
   * (e.g. `"Content-Type: application/x-protobuf\r\n"`; Content-Length, Date and the
   * keep-alive headers are the lane's). Later calls are ignored.
   */
  send(status: number, body: string | Uint8Array, headers?: string): void;
}

export interface LeanServerOptions {
  /** Whether the lane answers a request (all else goes to `fallback`). Must not throw. */
  accepts(method: LaneMethod, target: string): boolean;
  /** Answers one lane request, now or later, through `reply`. Should not throw (a throw is a 500). */
  handle(req: LaneRequest, reply: LaneReply): void;
  /**
   * Serves every connection the lane hands over. It never listens itself: the lane emits
   * its `listening` (so that its header and request timeouts run) and its `connection`.
   */
  fallback: HttpServer;
  /** A lane connection idle this long after an answer is closed, as node:http's keepAliveTimeout. */
  keepAliveTimeoutMs: number;
  /**
   * A connection that sent no whole request this long after it opened is closed, as
   * node:http's headersTimeout (a connection left silent is an attacker's or a bug).
   */
  headersTimeoutMs: number;
  /** Most connections open at once, lane's and handed over (net.Server's maxConnections). */
  maxConnections: number;
  /**
   * Whether, under load, answers wait for the end of the event-loop turn and leave
   * together (each connection's in one write), as uWebSockets corks a turn's writes.
   * "Under load": the last turn that answered anything answered {@link BUSY_TURN_ANSWERS}
   * or more; at light load every answer is written at once, so a lone request waits for
   * nothing (but for the first turn after a loaded one: its answers wait for its end).
   *
   * Why: answered one by one, each write to a client that has gone back to waiting wakes
   * it again. At 64 connections, a quarter of the demo API's CPU went on its writes, half
   * of that on waking the load generator; with the turn's writes together the API served
   * 8% more requests on the peer path and 19% more on hot keys (wrk, one CPU). Code
   * whose answers already leave in bursts (all resolved by one read) gains nothing and
   * may lose a little (the Redis contender of the cluster benchmark: ~3%).
   * @default true
   */
  coalesceWrites?: boolean;
  /** Largest POST body the lane reads; a longer one goes to `fallback`. @default 1 MiB */
  maxBodyBytes?: number;
  /** Lower-case names of the headers `handle` reads (e.g. an auth header). @default none */
  captureHeaders?: readonly string[];
  /**
   * Whether the lane answers a request, given its captured headers (after `accepts`):
   * e.g. only one content type. Must not throw. @default every request `accepts` takes
   */
  acceptsHeaders?(headers: Readonly<Record<string, string>>): boolean;
}

/** One lane request: its place in the connection's answer order, and its answer. */
class Slot implements LaneReply {
  /** The whole response (head, or head and body), once sent. */
  head: string | undefined = undefined;
  body: Uint8Array | undefined = undefined;
  readonly #conn: Conn;

  constructor(conn: Conn) {
    this.#conn = conn;
  }

  get gone(): boolean {
    return !this.#conn.socket.writable;
  }

  send(status: number, body: string | Uint8Array, headers?: string): void {
    if (this.head !== undefined) return;
    const lane = this.#conn.lane;
    if (typeof body === "string") {
      this.head = lane.head(status, Buffer.byteLength(body), headers ?? TEXT_HEADERS) + body;
    } else {
      this.head = lane.head(status, body.length, headers ?? "");
      if (body.length > 0) this.body = body;
    }
    this.#conn.lane.answered(this.#conn);
  }
}

/** A parsed request head the lane answers. */
interface Head {
  method: LaneMethod;
  target: string;
  /** Body bytes (Content-Length; 0 for a GET). */
  length: number;
  headers: Record<string, string>;
}

/** A connection while the lane serves it. */
class Conn {
  /** Bytes read and not yet answered, one char per byte (latin1). */
  #buf = "";
  /** Lane requests in arrival order; answers leave in this order (pipelining). */
  readonly #queue: Slot[] = [];
  /** The lane stopped taking requests: the connection goes to node:http once #queue is empty. */
  #handingOff = false;
  /** The lane's tick at this connection's last read or write (for the idle timeout). */
  seen: number;
  /** Whether a request came whole: then idleness is keep-alive, before it a header wait. */
  served = false;
  /** Answers wait for the end of the event-loop turn to be written (LeanServer.answered). */
  waiting = false;

  constructor(
    readonly lane: LeanServer,
    readonly socket: Socket,
  ) {
    socket.on("data", this.#onData);
    socket.on("end", this.#onEnd);
    socket.on("drain", this.#onDrain);
    socket.on("error", noop); // ECONNRESET and the like: 'close' follows
    this.seen = lane.tick;
  }

  /** Not handed over and nothing waiting: safe to close now. */
  get idle(): boolean {
    return !this.#handingOff && this.#queue.length === 0;
  }

  readonly #onData = (d: Buffer): void => {
    this.seen = this.lane.tick;
    if (this.#handingOff) {
      this.#buf += d.toString("latin1");
      if (this.#buf.length > MAX_HANDOFF_BUFFER) this.socket.pause();
      return;
    }
    const buf = this.#buf.length === 0 ? d.toString("latin1") : this.#buf + d.toString("latin1");
    let start = 0;
    for (;;) {
      const end = buf.indexOf("\r\n\r\n", start);
      if (end < 0 || end - start > MAX_HEAD) break;
      const head = this.lane.parse(buf, start, end);
      if (head === undefined) break;
      const bodyStart = end + 4;
      if (bodyStart + head.length > buf.length) break; // the body is not all here
      start = bodyStart + head.length;
      this.served = true;
      const slot = new Slot(this);
      this.#queue.push(slot);
      const req: LaneRequest = {
        method: head.method,
        target: head.target,
        headers: head.headers,
        body:
          head.length === 0
            ? EMPTY
            : Buffer.from(buf.slice(bodyStart, bodyStart + head.length), "latin1"),
        socket: this.socket,
      };
      try {
        this.lane.handle(req, slot);
      } catch {
        slot.send(500, "internal error\n"); // the handler broke its promise not to throw
      }
    }
    this.#buf = start === 0 ? buf : buf.slice(start);
    // What is left is a request split across reads or one the lane does not take.
    if (this.#buf.length > 0) this.#handOff();
    else if (this.socket.writableNeedDrain) this.socket.pause(); // answers pile up unread
  };

  readonly #onDrain = (): void => {
    if (!this.#handingOff) this.socket.resume();
  };

  // The client's end is its going away, as node:http takes it (its default
  // httpAllowHalfOpen false): answers written so far go out, later ones are dropped.
  readonly #onEnd = (): void => {
    this.socket.end();
  };

  /** Writes the answers that are ready, in request order. */
  flush(): void {
    const q = this.#queue;
    const socket = this.socket;
    let out: string | undefined;
    let corked = false;
    while (q.length > 0) {
      const slot = q[0] as Slot;
      if (slot.head === undefined) break;
      q.shift();
      out = out === undefined ? slot.head : out + slot.head;
      if (slot.body !== undefined) {
        if (!corked && socket.writable) {
          socket.cork();
          corked = true;
        }
        if (socket.writable) {
          socket.write(out, "utf8");
          socket.write(slot.body);
        }
        out = undefined;
      }
    }
    if (out !== undefined && socket.writable) socket.write(out, "utf8");
    if (corked) socket.uncork();
    if (corked || out !== undefined) this.seen = this.lane.tick;
    if (q.length > 0) return;
    if (this.lane.closing || !socket.writable) socket.end();
    else if (this.#handingOff) this.#handOff();
  }

  /** Hands the connection to node:http once the lane's answers are written. */
  #handOff(): void {
    this.#handingOff = true;
    if (this.#queue.length > 0) return; // flush() calls again when the last one is written
    const { socket } = this;
    socket.removeListener("data", this.#onData);
    socket.removeListener("end", this.#onEnd);
    socket.removeListener("drain", this.#onDrain);
    socket.removeListener("error", noop);
    this.lane.released(this);
    const rest = this.#buf;
    this.#buf = "";
    // A socket the lane paused (answers piling up, or bytes waiting for the hand-over)
    // flows again; otherwise the new owner decides (a server sniffing for HTTP/2 pauses it
    // and gives it to http2's native session, which a resume here would rob of bytes).
    if (socket.isPaused()) socket.resume();
    this.lane.fallback.emit("connection", socket);
    // node:http reads the socket from here on; the bytes the lane read but did not answer
    // go to it first, the way it reads them itself (its 'data' listener).
    if (rest.length > 0) socket.emit("data", Buffer.from(rest, "latin1"));
  }
}

const EMPTY = Buffer.alloc(0);

function noop(): void {}

/**
 * A node:net server that answers the lane's requests itself and hands every other
 * connection to `fallback` (see the top of this file). Listen and close through it, not
 * through `fallback`.
 */
export class LeanServer {
  readonly fallback: HttpServer;
  readonly keepAliveTimeoutMs: number;
  readonly headersTimeoutMs: number;
  readonly handle: (req: LaneRequest, reply: LaneReply) => void;
  readonly #accepts: (method: LaneMethod, target: string) => boolean;
  readonly #acceptsHeaders: ((headers: Readonly<Record<string, string>>) => boolean) | undefined;
  readonly #maxBodyBytes: number;
  readonly #capture: ReadonlySet<string>;
  /** Lengths of the captured names: only a name of such a length is lower-cased. */
  readonly #captureLengths: ReadonlySet<number>;
  readonly #net: NetServer;
  /** Connections the lane serves now (not the handed-over ones: node:http tracks those). */
  readonly #conns = new Set<Conn>();
  readonly #keepAliveHeader: string;
  /** Closing: connections end once their answers are written; new ones are refused. */
  closing = false;
  /** Counts the idle sweeps; a connection remembers it at each read and write. */
  tick = 0;
  readonly #coalesce: boolean;
  /** Answers given this turn; the first one schedules #endTurn. */
  #turnAnswers = 0;
  /** The last turn with answers was loaded: this turn's answers wait for #endTurn. */
  #loaded = false;
  /** Connections whose answers wait for #endTurn. */
  #waiting: Conn[] = [];
  #sweeper: NodeJS.Timeout | undefined;
  // The Date header, made once a second.
  #date = "";
  #dateUntil = 0;

  constructor(opts: LeanServerOptions) {
    this.fallback = opts.fallback;
    this.keepAliveTimeoutMs = opts.keepAliveTimeoutMs;
    this.headersTimeoutMs = opts.headersTimeoutMs;
    this.handle = opts.handle;
    this.#accepts = opts.accepts;
    this.#acceptsHeaders = opts.acceptsHeaders;
    this.#maxBodyBytes = opts.maxBodyBytes ?? 1024 * 1024;
    this.#coalesce = opts.coalesceWrites ?? true;
    this.#capture = new Set(opts.captureHeaders ?? []);
    this.#captureLengths = new Set([...this.#capture].map((n) => n.length));
    this.#keepAliveHeader = `Connection: keep-alive\r\nKeep-Alive: timeout=${Math.floor(opts.keepAliveTimeoutMs / 1000)}\r\n`;
    this.#net = createServer({ noDelay: true, allowHalfOpen: true }, (socket) => {
      if (this.closing) {
        socket.destroy();
        return;
      }
      const conn = new Conn(this, socket);
      this.#conns.add(conn);
      socket.once("close", () => this.#conns.delete(conn));
    });
    this.#net.maxConnections = opts.maxConnections;
  }

  /** An answer of `conn`'s is ready (its replies call this): written now, or at the end of a loaded turn. */
  answered(conn: Conn): void {
    if (this.#coalesce && this.#turnAnswers++ === 0) setImmediate(this.#endTurn);
    if (!this.#coalesce || !this.#loaded) {
      conn.flush();
    } else if (!conn.waiting) {
      conn.waiting = true;
      this.#waiting.push(conn);
    }
  }

  /** After the turn's I/O (setImmediate): writes what waited, and judges the next turn. */
  readonly #endTurn = (): void => {
    this.#loaded = this.#turnAnswers >= BUSY_TURN_ANSWERS;
    this.#turnAnswers = 0;
    const waiting = this.#waiting;
    if (waiting.length === 0) return;
    this.#waiting = [];
    for (const conn of waiting) {
      conn.waiting = false;
      conn.flush();
    }
  };

  /** Listens on `port` of `host`; rejects with the listen error (e.g. EADDRINUSE). */
  async listen(port: number, host?: string): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error) => reject(err);
      this.#net.once("error", onError);
      this.#net.listen(port, host, () => {
        this.#net.removeListener("error", onError);
        resolve();
      });
    });
    // node:http starts its header/request timeout checks on its own 'listening'.
    this.fallback.emit("listening");
    this.#startSweeper();
  }

  /** The address it listens on (as net.Server's). */
  address(): ReturnType<NetServer["address"]> {
    return this.#net.address();
  }

  get listening(): boolean {
    return this.#net.listening;
  }

  /** net.Server's 'error' after listening (e.g. EMFILE), for logging. */
  onError(listener: (err: Error) => void): void {
    this.#net.on("error", listener);
  }

  /**
   * Stops listening; idle connections close now, the others once their waiting answers
   * are written (node:http's likewise), and whatever is still open after `graceMs`.
   */
  async close(graceMs = 2000): Promise<void> {
    if (!this.#net.listening) return;
    this.closing = true;
    clearInterval(this.#sweeper);
    const closed = new Promise<void>((resolve) => this.#net.close(() => resolve()));
    // The others end once their last answer is written (Conn.flush).
    for (const conn of this.#conns) if (conn.idle) conn.socket.destroy();
    // Stops node:http's timeout checks and closes its idle connections; it never
    // listened, so its close callback's ERR_SERVER_NOT_RUNNING means nothing here.
    this.fallback.close(noop);
    const force = setTimeout(() => {
      for (const conn of this.#conns) conn.socket.destroy();
      this.fallback.closeAllConnections();
    }, graceMs);
    await closed;
    clearTimeout(force);
  }

  /**
   * The keep-alive and header timeouts without a timer per socket (re-armed at every
   * read and write, that cost ~1.5% of the API's CPU): every quarter of the shorter
   * timeout a sweep counts a tick and closes the idle connections last seen ticks enough
   * ago, so a connection closes after between 1 and 1.25 timeouts of idleness.
   */
  #startSweeper(): void {
    const period = Math.max(
      1,
      Math.floor(Math.min(this.keepAliveTimeoutMs, this.headersTimeoutMs) / 4),
    );
    // Seen during tick k, i.e. at most (k+1) periods in: idle for a whole timeout by
    // tick k + ticks.
    const keepAliveTicks = Math.ceil(this.keepAliveTimeoutMs / period) + 1;
    const headersTicks = Math.ceil(this.headersTimeoutMs / period) + 1;
    this.#sweeper = setInterval(() => {
      const tick = ++this.tick;
      for (const conn of this.#conns) {
        if (!conn.idle) continue;
        if (tick - conn.seen >= (conn.served ? keepAliveTicks : headersTicks)) {
          conn.socket.destroy();
        }
      }
    }, period);
    this.#sweeper.unref();
  }

  /** Connections the lane serves now (handed-over ones are node:http's). */
  get connections(): number {
    return this.#conns.size;
  }

  /** A connection handed over: node:http owns it now. */
  released(conn: Conn): void {
    this.#conns.delete(conn);
  }

  /**
   * The request of the head `buf[start, end)` (its CRLF lines, without the blank line)
   * if the lane answers it, else undefined (hand the connection over). One pass over the
   * head's chars, no slices but the target's and the few header names it reads.
   */
  parse(buf: string, start: number, end: number): Head | undefined {
    const method = methodAt(buf, start);
    if (method === undefined) return undefined;
    const withBody = method === "POST" || method === "PUT";
    const urlStart = start + method.length + 1;
    const lineEnd = buf.indexOf("\r\n", start);
    const first = lineEnd < 0 || lineEnd > end ? end : lineEnd;
    const urlEnd = first - 9;
    if (urlEnd <= urlStart || !buf.startsWith(" HTTP/1.1", urlEnd)) return undefined;
    for (let i = urlStart; i < urlEnd; i++) {
      const c = buf.charCodeAt(i);
      if (c >= 128 || CHAR_CLASS[c] === 0) return undefined; // space, control, non-ASCII
    }
    const target = buf.slice(urlStart, urlEnd);
    if (!this.#accepts(method, target)) return undefined;
    let host = false;
    let length = -1;
    const headers: Record<string, string> = {};
    const lengths = this.#captureLengths;
    let p = first + 2;
    while (p < end) {
      let e = buf.indexOf("\r\n", p);
      if (e < 0 || e > end) e = end;
      // The name: token chars up to the colon (a leading space, obs-fold, fails here).
      let colon = p;
      for (;;) {
        if (colon === e) return undefined;
        const c = buf.charCodeAt(colon);
        if (c === 0x3a /* : */) break;
        if (c >= 128 || CHAR_CLASS[c] !== 1) return undefined;
        colon++;
      }
      if (colon === p) return undefined;
      // The value: visible ASCII, space and tab.
      for (let i = colon + 1; i < e; i++) {
        const c = buf.charCodeAt(i);
        if (c >= 128 || (CHAR_CLASS[c] === 0 && c !== 0x20 && c !== 0x09)) return undefined;
      }
      const n = colon - p;
      // Only names of these lengths can be ones the lane must look at.
      if (n === 4 || n === 6 || n === 7 || n === 10 || n === 14 || n === 17 || lengths.has(n)) {
        const name = buf.slice(p, colon).toLowerCase();
        switch (name) {
          case "host":
            if (host) return undefined;
            host = true;
            break;
          case "connection":
            if (
              buf
                .slice(colon + 1, e)
                .trim()
                .toLowerCase() !== "keep-alive"
            )
              return undefined;
            break;
          case "content-length": {
            if (length >= 0 || !withBody) return undefined;
            const v = buf.slice(colon + 1, e).trim();
            if (!/^\d{1,10}$/.test(v)) return undefined;
            length = Number(v);
            if (length > this.#maxBodyBytes) return undefined;
            break;
          }
          case "transfer-encoding":
          case "expect":
          case "upgrade":
            return undefined;
          default:
            if (this.#capture.has(name)) {
              if (headers[name] !== undefined) return undefined; // node:http's to join
              headers[name] = buf.slice(colon + 1, e).trim();
            }
        }
      }
      p = e + 2;
    }
    if (!host || (withBody && length < 0)) return undefined;
    if (this.#acceptsHeaders !== undefined && !this.#acceptsHeaders(headers)) return undefined;
    return { method, target, length: Math.max(length, 0), headers };
  }

  /** A response head as node:http writes one: status line, `headers`, length, date, keep-alive. */
  head(status: number, length: number, headers: string): string {
    const now = Date.now();
    if (now >= this.#dateUntil) {
      this.#date = new Date(now).toUTCString();
      this.#dateUntil = now - (now % 1000) + 1000;
    }
    return `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? "Unknown"}\r\n${headers}Content-Length: ${length}\r\nDate: ${this.#date}\r\n${this.#keepAliveHeader}\r\n`;
  }
}

/**
 * A lane as a pool's server: `close` stops listening and drops every connection, idle or
 * not, the lane's and node:http's (peers reconnect elsewhere). Errors after listening go
 * to `logger`.
 */
export function leanPoolServer(lane: LeanServer, logger: Logger): PoolServer {
  return {
    async listen(port, host) {
      await lane.listen(port, host);
      lane.onError((err) => logger.error({ err }, "tinycache: peer server error"));
      return lane.address() as AddressInfo;
    },
    close: () => lane.close(0),
  };
}
