import * as net from "node:net";

/**
 * A lean HTTP/1.1 client connection for peer calls: one request at a time over one
 * keep-alive TCP socket, the request written in one `write`, the answer read by a small
 * parser of its own. Peer calls are small and constant; node:http's ClientRequest, Agent
 * and IncomingMessage cost more than the loopback round trip itself (profiled: ~10% of an
 * API node's CPU on the peer path), and most of what they handle (upgrades, trailers
 * exposed, streaming bodies to user code, sockets shared with other users) is not needed.
 *
 * It reads answers strictly: a status line `HTTP/1.x NNN`, header lines `name: value`,
 * then a body framed by Content-Length, chunked coding, or (without either) the close of
 * the connection. Anything else fails the call, which a peer call turns into a local load.
 * 1xx interim answers are skipped. An answer with `Connection: close` (or from an HTTP/1.0
 * server) ends the connection's reuse.
 */

/** The answer's head, as node:http's IncomingHttpHeaders: lower-case names. */
export type H1Headers = Record<string, string | undefined>;

/** What a call is told as its answer arrives (called at most once each, in this order). */
export interface H1Sink {
  /**
   * The head is in: status, headers and the body's declared length (-1 when not declared).
   * Return an Error to fail the call before any body byte is read (e.g. over a cap).
   */
  head(status: number, headers: H1Headers, declared: number): Error | undefined;
  /** A piece of the body; return an Error to fail the call (e.g. over a cap). */
  data(chunk: Buffer): Error | undefined;
  /** The whole answer arrived. */
  end(): void;
  /**
   * The call failed: `err` says why; `retryable` when the connection broke before any byte
   * of the answer came on a reused connection (the request may never have reached the
   * peer: a keep-alive race), so sending it again on a fresh connection is safe.
   */
  fail(err: Error, retryable: boolean): void;
}

/** Longest answer head read (status line and headers), as node:http's default. */
const MAX_HEAD_BYTES = 16 * 1024;
const CRLF2 = Buffer.from("\r\n\r\n");
/** An HTTP header name (RFC 9110's token). */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

function noop(): void {}

enum State {
  Head,
  Length,
  ChunkSize,
  ChunkData,
  ChunkDataEnd,
  Trailers,
  UntilClose,
}

/** One socket; `onIdle` returns it to its pool, `onGone` forgets it. */
export class H1Connection {
  readonly #socket: net.Socket;
  readonly #onIdle: (c: H1Connection) => void;
  readonly #onGone: (c: H1Connection) => void;
  #sink: H1Sink | undefined;
  /** Calls answered on this socket so far (a reused socket's failures are retryable). */
  #answered = 0;
  #gotBytes = false;
  #buf: Buffer | undefined;
  #state = State.Head;
  #remaining = 0;
  #keepAlive = true;
  #gone = false;
  /** Unref'd between calls: an idle socket does not keep the process alive (as node's Agent). */
  #idle = false;

  constructor(
    host: string,
    port: number,
    onIdle: (c: H1Connection) => void,
    onGone: (c: H1Connection) => void,
  ) {
    this.#onIdle = onIdle;
    this.#onGone = onGone;
    const s = net.connect({ host, port, noDelay: true });
    this.#socket = s;
    s.on("data", (chunk: Buffer) => this.#read(chunk));
    s.on("end", () => this.#closed(new Error("connection closed by the peer")));
    s.on("close", () => this.#closed(new Error("connection closed")));
    s.on("error", (err) => this.#closed(err));
  }

  /** Whether the socket can take another call. */
  get usable(): boolean {
    return !this.#gone && this.#sink === undefined;
  }

  /** Sends one request (its bytes, head and body) and reports its answer to `sink`. */
  send(bytes: Buffer, sink: H1Sink): void {
    if (this.#idle) {
      this.#idle = false;
      this.#socket.ref();
    }
    this.#sink = sink;
    this.#gotBytes = false;
    this.#state = State.Head;
    this.#buf = undefined;
    this.#socket.write(bytes);
  }

  /**
   * Drops the socket: a call gave up on its answer, or (with `err`, which fails the call
   * in flight, if any) the pool closes.
   */
  destroy(err?: Error): void {
    const sink = this.#sink;
    this.#sink = undefined;
    if (!this.#gone) {
      this.#gone = true;
      this.#onGone(this);
    }
    this.#socket.destroy();
    if (err !== undefined) sink?.fail(err, false);
  }

  #closed(err: Error): void {
    const sink = this.#sink;
    const wasGone = this.#gone;
    this.#gone = true;
    this.#sink = undefined;
    if (!wasGone) this.#onGone(this);
    this.#socket.destroy();
    if (sink === undefined) return;
    if (this.#state === State.UntilClose && err.message === "connection closed by the peer") {
      sink.end();
      return;
    }
    sink.fail(err, !this.#gotBytes && this.#answered > 0);
  }

  /** Fails the call in flight with `err` (never retryable) and drops the socket. */
  #fail(err: Error): void {
    this.destroy(err);
  }

  #read(chunk: Buffer): void {
    if (this.#sink === undefined) {
      // Bytes nobody asked for: the connection is out of step; drop it.
      this.#fail(new Error("unexpected bytes from the peer"));
      return;
    }
    this.#gotBytes = true;
    let buf = this.#buf === undefined ? chunk : Buffer.concat([this.#buf, chunk]);
    this.#buf = undefined;
    while (this.#sink !== undefined) {
      const sink: H1Sink = this.#sink;
      switch (this.#state) {
        case State.Head: {
          const end = buf.indexOf(CRLF2);
          // The head is `end` bytes; without its blank line yet, at least all but the last
          // 3 bytes (they may start the blank line): the same limit, however bytes come.
          if (end < 0 ? buf.length - 3 > MAX_HEAD_BYTES : end > MAX_HEAD_BYTES) {
            this.#fail(new Error(`answer head over ${MAX_HEAD_BYTES} bytes`));
            return;
          }
          if (end < 0) {
            this.#buf = buf;
            return;
          }
          const err = this.#head(buf.toString("latin1", 0, end), sink);
          if (err !== undefined) {
            this.#fail(err);
            return;
          }
          buf = buf.subarray(end + 4);
          if ((this.#state as State) === State.Length && this.#remaining === 0) this.#done(buf);
          break;
        }
        case State.Length:
        case State.ChunkData: {
          // Body bytes counted down in #remaining: the whole body, or one chunk's data.
          if (buf.length === 0) return;
          const n = Math.min(buf.length, this.#remaining);
          const err = sink.data(n === buf.length ? buf : buf.subarray(0, n));
          if (err !== undefined) {
            this.#fail(err);
            return;
          }
          this.#remaining -= n;
          buf = buf.subarray(n);
          if (this.#remaining > 0) break;
          if (this.#state === State.Length) this.#done(buf);
          else this.#state = State.ChunkDataEnd;
          break;
        }
        case State.ChunkSize: {
          const eol = buf.indexOf(10);
          if (eol < 0) {
            if (buf.length > 1024) {
              this.#fail(new Error("malformed chunked answer"));
              return;
            }
            this.#buf = buf;
            return;
          }
          const line = buf.toString("latin1", 0, eol).replace(/\r$/, "");
          const m = /^([0-9a-fA-F]{1,12})(?:;.*)?$/.exec(line);
          if (m === null) {
            this.#fail(new Error("malformed chunked answer"));
            return;
          }
          this.#remaining = Number.parseInt(m[1] as string, 16);
          this.#state = this.#remaining === 0 ? State.Trailers : State.ChunkData;
          buf = buf.subarray(eol + 1);
          break;
        }
        case State.ChunkDataEnd: {
          if (buf.length < 2) {
            this.#buf = buf;
            return;
          }
          if (buf[0] !== 13 || buf[1] !== 10) {
            this.#fail(new Error("malformed chunked answer"));
            return;
          }
          buf = buf.subarray(2);
          this.#state = State.ChunkSize;
          break;
        }
        case State.Trailers: {
          // Trailer lines, ignored, up to an empty line.
          const eol = buf.indexOf(10);
          if (eol < 0) {
            if (buf.length > MAX_HEAD_BYTES) {
              this.#fail(new Error("malformed chunked answer"));
              return;
            }
            this.#buf = buf;
            return;
          }
          const empty = eol === 0 || (eol === 1 && buf[0] === 13);
          buf = buf.subarray(eol + 1);
          if (empty) this.#done(buf);
          break;
        }
        case State.UntilClose: {
          if (buf.length === 0) return;
          const err = sink.data(buf);
          if (err !== undefined) this.#fail(err);
          return;
        }
      }
    }
    if (buf.length > 0) this.#fail(new Error("unexpected bytes from the peer"));
  }

  /** Parses an answer's head; sets the body's framing. */
  #head(text: string, sink: H1Sink): Error | undefined {
    const lines = text.split("\r\n");
    const m = /^HTTP\/1\.([01]) (\d{3})(?: |$)/.exec(lines[0] as string);
    if (m === null) return new Error("malformed answer: not an HTTP/1.x status line");
    const status = Number(m[2]);
    const headers: H1Headers = {};
    for (let i = 1; i < lines.length; i++) {
      const line = lines[i] as string;
      const colon = line.indexOf(":");
      // A name is a token: "Content-Length : 2" or a folded line is no header of ours.
      if (colon <= 0 || !TOKEN.test(line.slice(0, colon))) {
        return new Error("malformed answer header");
      }
      const name = line.slice(0, colon).toLowerCase();
      const value = line.slice(colon + 1).trim();
      // typeof: `headers` inherits Object.prototype's members (a "constructor" header).
      const had = headers[name];
      headers[name] = typeof had === "string" ? `${had}, ${value}` : value;
    }
    if (status < 200) {
      // An interim answer (100 Continue, 103 Early Hints): the real one follows.
      if (status === 101) return new Error("unexpected protocol switch");
      this.#state = State.Head;
      return undefined;
    }
    // Connection is a list of tokens (e.g. "keep-alive, close").
    const conn =
      headers.connection
        ?.toLowerCase()
        .split(",")
        .map((t) => t.trim()) ?? [];
    this.#keepAlive = m[1] === "1" ? !conn.includes("close") : conn.includes("keep-alive");
    const te = headers["transfer-encoding"];
    const cl = headers["content-length"];
    let declared = -1;
    if (status === 204 || status === 304) {
      // Never a body, whatever the head says (RFC 9112 6.3; a 304 may declare the length
      // of the representation it stands for).
      declared = 0;
      this.#state = State.Length;
      this.#remaining = 0;
    } else if (te !== undefined) {
      if (te.toLowerCase() !== "chunked") return new Error(`unsupported transfer-encoding ${te}`);
      this.#state = State.ChunkSize;
    } else if (cl !== undefined) {
      if (!/^\d{1,15}$/.test(cl)) return new Error("malformed content-length");
      declared = Number(cl);
      this.#state = State.Length;
      this.#remaining = declared;
    } else {
      this.#state = State.UntilClose;
      this.#keepAlive = false;
    }
    return sink.head(status, headers, declared);
  }

  /** The answer is complete: report it and hand the socket back (or drop it). */
  #done(rest: Buffer): void {
    const sink = this.#sink;
    this.#sink = undefined;
    this.#answered++;
    this.#state = State.Head;
    if (!this.#keepAlive || rest.length > 0) {
      this.#gone = true;
      this.#onGone(this);
      this.#socket.destroy();
    } else {
      this.#idle = true;
      this.#socket.unref();
      this.#onIdle(this);
    }
    sink?.end();
  }
}

/**
 * The connections to one peer: idle ones reused last-in first-out (the most recently used
 * is the least likely to have been closed by the server meanwhile), at most `maxSockets`
 * at once; calls beyond wait for one to come free.
 */
export class H1Pool {
  readonly #host: string;
  readonly #port: number;
  readonly #maxSockets: number;
  readonly #idle: H1Connection[] = [];
  readonly #all = new Set<H1Connection>();
  readonly #waiting: Array<(c: H1Connection | undefined) => void> = [];
  #closed = false;

  constructor(host: string, port: number, maxSockets: number) {
    this.#host = host;
    this.#port = port;
    this.#maxSockets = maxSockets;
  }

  /**
   * Runs `use` with a connection free for one call: now, or once one comes free (or with
   * undefined if the pool is destroyed meanwhile). Returns a function that withdraws a
   * call still waiting.
   */
  acquire(use: (c: H1Connection | undefined) => void): () => void {
    for (let c = this.#idle.pop(); c !== undefined; c = this.#idle.pop()) {
      if (c.usable) {
        use(c);
        return noop;
      }
    }
    if (this.#all.size < this.#maxSockets || this.#closed) {
      use(this.#open());
      return noop;
    }
    this.#waiting.push(use);
    return () => {
      const i = this.#waiting.indexOf(use);
      if (i >= 0) this.#waiting.splice(i, 1);
    };
  }

  #open(): H1Connection {
    const c = new H1Connection(
      this.#host,
      this.#port,
      (idle) => {
        const next = this.#waiting.shift();
        if (next !== undefined) next(idle);
        else if (this.#closed) idle.destroy();
        else this.#idle.push(idle);
      },
      (gone) => {
        this.#all.delete(gone);
        const i = this.#idle.indexOf(gone);
        if (i >= 0) this.#idle.splice(i, 1);
        // A waiting call gets the room the lost connection leaves.
        if (this.#closed) return;
        const next = this.#waiting.shift();
        if (next !== undefined) next(this.#open());
      },
    );
    this.#all.add(c);
    return c;
  }

  /** Closes idle connections now and every other one once its call ends. */
  retire(): void {
    this.#closed = true;
    for (const c of this.#idle.splice(0)) c.destroy();
  }

  /** Closes every connection now (their calls fail). */
  destroy(): void {
    this.#closed = true;
    this.#idle.length = 0;
    for (const c of [...this.#all]) c.destroy(new Error("client closed"));
    for (const use of this.#waiting.splice(0)) use(undefined);
  }
}
