import { connect, type Socket } from "node:net";

/** One response as {@link RawHttp} read it off the wire. */
export interface RawResponse {
  status: number;
  /** The head as sent (status line and header lines, without the blank line). */
  head: string;
  /** Header lines in order, names lower-cased, values trimmed. */
  lines: [string, string][];
  /** The same as an object (a repeated name keeps its last value). */
  headers: Record<string, string>;
  body: Buffer;
  /** The body as UTF-8 text. */
  text: string;
}

/**
 * A raw HTTP/1.1 connection for tests of servers that must answer exact bytes: writes
 * what it is given, reads whole responses (Content-Length or chunked bodies; interim 1xx
 * answers skipped unless `keepInterim`), in order, so pipelining and hand-overs can be
 * checked byte for byte.
 */
export class RawHttp {
  readonly socket: Socket;
  /** Settles when the connection closed (either side). */
  readonly closed: Promise<void>;
  #data = Buffer.alloc(0);
  #waiter: (() => void) | undefined;
  readonly #keepInterim: boolean;

  constructor(port: number, opts: { host?: string; keepInterim?: boolean } = {}) {
    this.#keepInterim = opts.keepInterim ?? false;
    this.socket = connect(port, opts.host ?? "127.0.0.1");
    this.socket.on("data", (d: Buffer) => {
      this.#data = Buffer.concat([this.#data, d]);
      this.#waiter?.();
    });
    this.socket.on("error", () => {}); // a reset: 'close' follows
    this.closed = new Promise<void>((resolve) => {
      this.socket.once("close", () => {
        this.#waiter?.();
        resolve();
      });
    });
  }

  write(bytes: string | Uint8Array): void {
    this.socket.write(bytes);
  }

  /**
   * The next `n` responses; rejects if the connection closes first. `bodyless`: answers
   * to HEAD (a Content-Length but no body).
   */
  async read(n: number, bodyless = false): Promise<RawResponse[]> {
    const out: RawResponse[] = [];
    while (out.length < n) {
      const r = this.#take(bodyless);
      if (r !== undefined) {
        out.push(r);
        continue;
      }
      if (this.socket.destroyed || this.socket.readableEnded) {
        throw new Error(`connection closed after ${out.length} of ${n} responses`);
      }
      await new Promise<void>((resolve) => {
        this.#waiter = resolve;
      });
    }
    return out;
  }

  /** The next response. */
  async one(): Promise<RawResponse> {
    const [r] = await this.read(1);
    return r as RawResponse;
  }

  destroy(): void {
    this.socket.destroy();
  }

  #take(bodyless: boolean): RawResponse | undefined {
    const end = this.#data.indexOf("\r\n\r\n");
    if (end < 0) return undefined;
    const head = this.#data.subarray(0, end).toString("latin1");
    const all = head.split("\r\n");
    const lines = all.slice(1).map((line): [string, string] => {
      const colon = line.indexOf(":");
      return [line.slice(0, colon).toLowerCase(), line.slice(colon + 1).trim()];
    });
    const headers: Record<string, string> = Object.fromEntries(lines);
    const status = Number((all[0] as string).split(" ")[1]);
    if (status < 200 && !this.#keepInterim) {
      // An interim answer (100 Continue): no body; the real one follows.
      this.#data = this.#data.subarray(end + 4);
      return this.#take(bodyless);
    }
    const rest = this.#data.subarray(end + 4);
    let body: Buffer;
    let used: number;
    if (!bodyless && headers["transfer-encoding"] === "chunked") {
      const parts: Buffer[] = [];
      let p = 0;
      for (;;) {
        const e = rest.indexOf("\r\n", p);
        if (e < 0) return undefined;
        const size = Number.parseInt(rest.subarray(p, e).toString("latin1"), 16);
        if (size === 0) {
          // No trailers on these answers: the last chunk, then the final CRLF.
          if (rest.length < e + 4) return undefined;
          used = e + 4;
          break;
        }
        if (rest.length < e + 2 + size + 2) return undefined;
        parts.push(rest.subarray(e + 2, e + 2 + size));
        p = e + 2 + size + 2;
      }
      body = Buffer.concat(parts);
    } else {
      const length = bodyless ? 0 : Number(headers["content-length"] ?? 0);
      if (rest.length < length) return undefined;
      body = Buffer.from(rest.subarray(0, length));
      used = length;
    }
    this.#data = this.#data.subarray(end + 4 + used);
    return { status, head, lines, headers, body, text: body.toString("utf8") };
  }
}

/**
 * A request's bytes: the request line, `Host: <host>`, a Content-Length when there is a
 * body, `extra` header lines (each ending in CRLF), the blank line and the body.
 */
export function rawRequest(
  method: string,
  target: string,
  opts: { body?: string | Uint8Array; extra?: string; host?: string } = {},
): Buffer {
  const b = opts.body === undefined ? undefined : Buffer.from(opts.body);
  const length = b === undefined ? "" : `Content-Length: ${b.length}\r\n`;
  const head = Buffer.from(
    `${method} ${target} HTTP/1.1\r\nHost: ${opts.host ?? "x"}\r\n${length}${opts.extra ?? ""}\r\n`,
  );
  return b === undefined ? head : Buffer.concat([head, b]);
}
