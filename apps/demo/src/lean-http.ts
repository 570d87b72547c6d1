import type { Server as HttpServer } from "node:http";
import { STATUS_CODES } from "node:http";
import { createServer, type Server as NetServer, type Socket } from "node:net";

/**
 * The API port's lean lane: a strict reader, over node:net, of the one request the API
 * serves by the thousand (`GET /api?key=K`, HTTP/1.1, no body), in front of a node:http
 * server that takes every connection the lane does not fully understand.
 *
 * Why: node:http builds an IncomingMessage, a ServerResponse and their header objects and
 * events for every request; on one CPU a bare node:http server answers ~91k req/s, the
 * same answers written by this lane ~170k (wrk, 64 connections, keep-alive). That cost was
 * most of the API's, more than all of tinycache's hit path.
 *
 * What the lane answers, and nothing else: complete request heads, within the bytes read
 * so far, of the form `GET <path>[?query] HTTP/1.1`, header lines of token names and
 * visible ASCII values, one Host, and no Content-Length, Transfer-Encoding, Expect,
 * Upgrade or Connection other than keep-alive. At the first request that is anything else
 * (another path or method, HTTP/1.0, a body, a head split across reads, a byte outside
 * visible ASCII, a head over 16 KiB) the lane waits until its own answers are written
 * and hands the connection, with every byte it has not answered, to the node:http
 * server: from then on node:http serves that connection with its own checks, limits and
 * errors (400, 408, 431). The lane itself never answers an error of HTTP's.
 */

/** node:http's default maxHeaderSize: a longer head goes to node:http (which says 431). */
const MAX_HEAD = 16 * 1024;
/** Per char code below 128: 1 for an HTTP token char (RFC 9110: a header name's), 2 for
 * any other char a header value or request target may hold (visible ASCII; space and
 * tab in values only, see target()). Anything else (controls, CR, LF, bytes >= 128) is 0. */
const CHAR_CLASS = (() => {
  const t = new Uint8Array(128);
  for (let c = 0x21; c <= 0x7e; c++) t[c] = 2;
  for (const c of "!#$%&'*+-.^_`|~") t[c.charCodeAt(0)] = 1;
  for (let c = 0x30; c <= 0x39; c++) t[c] = 1;
  for (let c = 0x41; c <= 0x5a; c++) t[c] = 1;
  for (let c = 0x61; c <= 0x7a; c++) t[c] = 1;
  return t;
})();
/** Bytes the lane buffers while it waits to hand a connection over; then it stops reading. */
const MAX_HANDOFF_BUFFER = 64 * 1024;

/** Where the answer to one lane request goes. */
export interface LaneReply {
  /** The client went away (or the server closed): an answer would be dropped. */
  readonly gone: boolean;
  /** Answers with `status` and a UTF-8 text body; later calls are ignored. */
  send(status: number, body: string): void;
}

export interface LeanServerOptions {
  /** The one path the lane answers (e.g. `/api`); the query is the handler's to read. */
  path: string;
  /**
   * Answers one lane request (`url` is the request target as sent, e.g.
   * `/api?key=Tom`), now or later, through `reply`. Must not throw.
   */
  handle(url: string, reply: LaneReply): void;
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
}

/** One lane request: its place in the connection's answer order, and its answer. */
class Slot implements LaneReply {
  /** The whole response, once sent. */
  chunk: string | undefined = undefined;
  readonly #conn: Conn;

  constructor(conn: Conn) {
    this.#conn = conn;
  }

  get gone(): boolean {
    return !this.#conn.socket.writable;
  }

  send(status: number, body: string): void {
    if (this.chunk !== undefined) return;
    this.chunk = this.#conn.lane.response(status, body);
    this.#conn.flush();
  }
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
      const url = this.lane.target(buf, start, end);
      if (url === undefined) break;
      start = end + 4;
      this.served = true;
      const slot = new Slot(this);
      this.#queue.push(slot);
      try {
        this.lane.handle(url, slot);
      } catch {
        slot.send(500, "internal error\n"); // the handler broke its promise not to throw
      }
    }
    this.#buf = start === 0 ? buf : buf.slice(start);
    // What is left is a head split across reads or one the lane does not take.
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
    let out: string | undefined;
    while (q.length > 0) {
      const chunk = (q[0] as Slot).chunk;
      if (chunk === undefined) break;
      q.shift();
      out = out === undefined ? chunk : out + chunk;
    }
    if (out !== undefined && this.socket.writable) {
      this.socket.write(out, "utf8");
      this.seen = this.lane.tick;
    }
    if (q.length > 0) return;
    if (this.lane.closing || !this.socket.writable) this.socket.end();
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
    this.lane.fallback.emit("connection", socket);
    // node:http reads the socket from here on; the bytes the lane read but did not answer
    // go to it first, the way it reads them itself (its 'data' listener).
    if (rest.length > 0) socket.emit("data", Buffer.from(rest, "latin1"));
    socket.resume();
  }
}

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
  readonly handle: (url: string, reply: LaneReply) => void;
  readonly #path: string;
  readonly #net: NetServer;
  /** Connections the lane serves now (not the handed-over ones: node:http tracks those). */
  readonly #conns = new Set<Conn>();
  readonly #keepAliveHeader: string;
  /** Closing: connections end once their answers are written; new ones are refused. */
  closing = false;
  /** Counts the idle sweeps; a connection remembers it at each read and write. */
  tick = 0;
  #sweeper: NodeJS.Timeout | undefined;
  // The Date header, made once a second.
  #date = "";
  #dateUntil = 0;

  constructor(opts: LeanServerOptions) {
    this.fallback = opts.fallback;
    this.keepAliveTimeoutMs = opts.keepAliveTimeoutMs;
    this.headersTimeoutMs = opts.headersTimeoutMs;
    this.handle = opts.handle;
    this.#path = opts.path;
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

  /** Listens on `port` of `host`; rejects with the listen error (e.g. EADDRINUSE). */
  async listen(port: number, host: string): Promise<void> {
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
   * The request target of the head `buf[start, end)` (its CRLF lines, without the blank
   * line) if the lane answers it, else undefined (hand the connection over). One pass
   * over the head's chars, no slices but the target's and the few header names it reads.
   */
  target(buf: string, start: number, end: number): string | undefined {
    if (!buf.startsWith("GET ", start)) return undefined;
    const lineEnd = buf.indexOf("\r\n", start);
    const first = lineEnd < 0 || lineEnd > end ? end : lineEnd;
    const urlStart = start + 4;
    const urlEnd = first - 9;
    if (urlEnd <= urlStart || !buf.startsWith(" HTTP/1.1", urlEnd)) return undefined;
    const path = this.#path;
    if (!buf.startsWith(path, urlStart)) return undefined;
    const afterPath = urlStart + path.length;
    if (afterPath < urlEnd && buf.charCodeAt(afterPath) !== 0x3f /* ? */) return undefined;
    for (let i = afterPath; i < urlEnd; i++) {
      const c = buf.charCodeAt(i);
      if (c >= 128 || CHAR_CLASS[c] === 0) return undefined; // space, control, non-ASCII
    }
    let host = false;
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
      if (n === 4 || n === 6 || n === 7 || n === 10 || n === 14 || n === 17) {
        switch (buf.slice(p, colon).toLowerCase()) {
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
          case "content-length":
          case "transfer-encoding":
          case "expect":
          case "upgrade":
            return undefined;
        }
      }
      p = e + 2;
    }
    return host ? buf.slice(urlStart, urlEnd) : undefined;
  }

  /** A whole response: status line, headers as node:http writes them, and the body. */
  response(status: number, body: string): string {
    const now = Date.now();
    if (now >= this.#dateUntil) {
      this.#date = new Date(now).toUTCString();
      this.#dateUntil = now - (now % 1000) + 1000;
    }
    return `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? "Unknown"}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nDate: ${this.#date}\r\n${this.#keepAliveHeader}\r\n${body}`;
  }
}
