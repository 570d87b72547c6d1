import type { IncomingHttpHeaders } from "node:http";
import { InvalidArgumentError } from "../errors.js";
import type { ServedGroup } from "../peers.js";
import { overKeyBytes } from "../private/key-bytes.js";
import { makeSecretCheck, type ResolvedSharedSecret } from "./options.js";

/** Options of {@link RequestCheck}. */
export interface RequestCheckOptions {
  /** Shared-secret authentication (see `resolveSharedSecret`); undefined = off. */
  auth: ResolvedSharedSecret | undefined;
  /** Largest request body read, in bytes. */
  maxBodyBytes: number;
}

/** The readable side of a request, as both node:http and node:http2 give it. */
export interface RequestLike {
  readonly headers: IncomingHttpHeaders;
  readonly socket: {
    once(event: "close", listener: () => void): unknown;
    destroy(): unknown;
  } | null;
  /** Whether the whole body was received. */
  readonly complete: boolean;
  on(event: "data", listener: (chunk: Buffer) => void): unknown;
  off(event: "data", listener: (chunk: Buffer) => void): unknown;
  once(event: "end" | "error", listener: (...args: unknown[]) => void): unknown;
  pause(): unknown;
  resume(): unknown;
}

/** The writable side, for the deadline: its close tells that the exchange ended. */
export interface ResponseLike {
  readonly writableEnded: boolean;
  once(event: "close", listener: () => void): unknown;
}

/** The writable side, for {@link RequestCheck.closeAfterAnswer}. */
export interface ClosableResponseLike {
  readonly headersSent: boolean;
  setHeader(name: string, value: string): unknown;
  once(event: "finish", listener: () => void): unknown;
}

/** An HTTP/2 stream as the compat request gives it (`req.stream`). */
interface StreamLike {
  readonly closed: boolean;
  close(code?: number): unknown;
}

/** RST_STREAM NO_ERROR: "the answer is complete; stop sending the request" (RFC 9113 8.1). */
const NGHTTP2_NO_ERROR = 0;

/** Why a request stopped waiting: the abort reason handed to the group's load. */
class ClientGone extends Error {
  override name = "AbortError";
  constructor() {
    super("the peer closed the connection");
  }
}

/**
 * What every peer server checks on every request, in one place: the shared secret, the
 * key limit (read from the group, so it is configured once, on the group), the body cap,
 * and the signal that tells a group to stop waiting (the client left, or its deadline
 * passed). A transport's server calls these and maps the outcome to its wire.
 */
export class RequestCheck {
  /** Largest request body read, in bytes. */
  readonly maxBodyBytes: number;
  readonly #header: string | undefined;
  readonly #secretOk: ((got: string | string[] | undefined) => boolean) | undefined;
  readonly #connections = new WeakMap<object, AbortController>();

  constructor(o: RequestCheckOptions) {
    this.maxBodyBytes = o.maxBodyBytes;
    this.#header = o.auth?.header;
    this.#secretOk = o.auth ? makeSecretCheck(o.auth.secret) : undefined;
  }

  /** The lower-case name of the auth header, when authentication is on. */
  get authHeader(): string | undefined {
    return this.#header;
  }

  /** Whether the request may be served: authentication is off, or it carries the secret. */
  authorized(headers: IncomingHttpHeaders): boolean {
    const ok = this.#secretOk;
    return ok === undefined || ok(headers[this.#header as string]);
  }

  /**
   * The group's error for a key over its `maxKeyBytes`, before any work is done for it
   * (the group checks again itself); undefined when the key fits.
   */
  keyError(group: ServedGroup, key: string): InvalidArgumentError | undefined {
    const max = group.maxKeyBytes;
    if (!overKeyBytes(key, max)) return undefined;
    return new InvalidArgumentError(`key too long (max ${max} bytes)`);
  }

  /** Whether the declared `content-length` is already over {@link maxBodyBytes}. */
  declaredTooLarge(headers: IncomingHttpHeaders): boolean {
    const declared = headers["content-length"];
    return declared !== undefined && Number(declared) > this.maxBodyBytes;
  }

  /** The message of a body over the cap. */
  tooLargeMessage(): string {
    return `request body too large (max ${this.maxBodyBytes} bytes)`;
  }

  /**
   * Reads the request body up to {@link maxBodyBytes}. Calls exactly one of `onBody`
   * (the whole body) or `onTooLarge` (once: at once for a declared `content-length` over
   * the cap, else as soon as the cap is passed), or neither when the request fails (the
   * client is gone: nobody to answer). Past the cap nothing more is read: `onTooLarge`
   * must answer after {@link closeAfterAnswer}, which ends the exchange without reading
   * the rest.
   */
  readBody(req: RequestLike, onBody: (body: Buffer) => void, onTooLarge: () => void): void {
    const max = this.maxBodyBytes;
    if (this.declaredTooLarge(req.headers)) {
      onTooLarge();
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let failed = false;
    const onData = (chunk: Buffer): void => {
      if (failed) return;
      size += chunk.length;
      if (size > max) {
        failed = true;
        chunks.length = 0;
        req.off("data", onData);
        req.pause();
        onTooLarge();
        return;
      }
      chunks.push(chunk);
    };
    req.on("data", onData);
    req.once("error", () => {
      failed = true;
    });
    req.once("end", () => {
      if (failed) return;
      onBody(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size));
    });
  }

  /**
   * Ends an exchange whose request body will not be read (refused before reading it, or
   * over the cap), instead of Node's default of reading and discarding the rest, however
   * large, to reuse the connection. HTTP/1.1: the answer says `Connection: close` and the
   * connection is destroyed once the answer is written. HTTP/2: only the request's stream
   * is reset once answered (NO_ERROR, RFC 9113 8.1); the session stays. Call it before
   * writing the answer; it does nothing for a request already received whole.
   */
  closeAfterAnswer(req: RequestLike, res: ClosableResponseLike): void {
    if (req.complete) return;
    const stream = (req as { stream?: StreamLike }).stream;
    if (stream !== undefined) {
      res.once("finish", () => {
        if (!stream.closed) stream.close(NGHTTP2_NO_ERROR);
      });
      return;
    }
    // HTTP/1.1 without a body (no length, no chunks): nothing to leave unread.
    const h = req.headers;
    const length = h["content-length"];
    if (h["transfer-encoding"] === undefined && (length === undefined || length === "0")) return;
    if (!res.headersSent) res.setHeader("connection", "close");
    res.once("finish", () => req.socket?.destroy());
  }

  /**
   * A signal that aborts when the request's connection closes: one per connection, not
   * per request. An HTTP/1.1 client can only abandon a request by closing its connection,
   * so this is as precise as a per-request signal, and it saves an AbortSignal per request
   * (signals are EventTargets: making one costs more than the rest of a cached answer).
   */
  connectionSignal(req: RequestLike): AbortSignal {
    return this.socketSignal(req.socket as NonNullable<RequestLike["socket"]>);
  }

  /** {@link connectionSignal} of a connection itself (a lean lane's request gives its socket). */
  socketSignal(socket: NonNullable<RequestLike["socket"]>): AbortSignal {
    let ac = this.#connections.get(socket);
    if (ac === undefined) {
      const ctl = new AbortController();
      this.#connections.set(socket, ctl);
      socket.once("close", () => ctl.abort(new ClientGone()));
      ac = ctl;
    }
    return ac.signal;
  }

  /**
   * A signal for one exchange that aborts when the client goes away before the answer is
   * written (`AbortError`) or after `timeoutMs` (`TimeoutError`; none when undefined), and
   * `done` to release its timer once the answer is ready.
   */
  deadline(
    res: ResponseLike,
    timeoutMs: number | undefined,
  ): { signal: AbortSignal; done: () => void } {
    const ac = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    if (timeoutMs !== undefined) {
      timer = setTimeout(
        () => ac.abort(new DOMException("deadline exceeded", "TimeoutError")),
        timeoutMs,
      );
    }
    const done = (): void => {
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
    };
    res.once("close", () => {
      done();
      if (!res.writableEnded) ac.abort(new DOMException("client went away", "AbortError"));
    });
    return { signal: ac.signal, done };
  }
}
