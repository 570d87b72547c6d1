import {
  type Agent,
  type ClientRequest,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type OutgoingHttpHeaders,
  request,
} from "node:http";
import { request as httpsRequest } from "node:https";
import { Code, ConnectError } from "@connectrpc/connect";
import { codeFromHttpStatus, codeFromName, VERDICT_HEADER } from "../codes.js";

/**
 * A minimal client of the Connect protocol for unary calls with binary bodies over
 * HTTP/1.1 keep-alive (https://connectrpc.com/docs/protocol#unary-request): POST
 * `<base>/<service>/<Method>`, `Content-Type: application/proto`,
 * `Connect-Protocol-Version: 1`, `Connect-Timeout-Ms`; a 200 carries the response
 * message, any other status the error JSON `{code, message}`.
 *
 * Why not connect-node's transport: for one small unary call its generic machinery
 * (header objects, async-iterable bodies, envelope checks, an abort sentinel) costs
 * several times the round trip itself on loopback; this speaks the same bytes to the
 * same servers. Errors are ConnectErrors, as connect-node's are.
 */
export class ConnectH1Caller {
  readonly #send: typeof request;
  readonly #host: string;
  readonly #port: string;
  readonly #prefix: string;
  readonly #agent: Agent;
  readonly #headers: OutgoingHttpHeaders;
  readonly #maxBytes: number;

  constructor(
    baseUrl: string,
    opts: {
      agent: Agent;
      timeoutMs: number;
      maxMessageBytes: number;
      headers: Record<string, string>;
    },
  ) {
    const u = new URL(baseUrl);
    this.#send = u.protocol === "https:" ? httpsRequest : request;
    this.#host = u.hostname.startsWith("[") ? u.hostname.slice(1, -1) : u.hostname;
    this.#port = u.port;
    this.#prefix = u.pathname.endsWith("/") ? u.pathname.slice(0, -1) : u.pathname;
    this.#agent = opts.agent;
    this.#maxBytes = opts.maxMessageBytes;
    this.#headers = {
      "content-type": "application/proto",
      "connect-protocol-version": "1",
      ...opts.headers,
    };
  }

  /**
   * Calls `<service>/<method>` with an encoded request; resolves with the encoded
   * response. `timeoutMs` bounds the whole call (connect, send, answer, body) and is sent
   * to the server as its deadline.
   */
  call(
    path: string,
    body: Uint8Array,
    timeoutMs: number,
    signal: AbortSignal | undefined,
  ): Promise<Buffer> {
    return new Promise<Buffer>((resolve, reject) => {
      if (signal?.aborted) {
        reject(new ConnectError("canceled by the caller", Code.Canceled));
        return;
      }
      let done = false;
      let retried = false;
      let req: ClientRequest;
      const finish = (err: ConnectError | undefined, out?: Buffer) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        if (err) {
          req.destroy();
          reject(err);
        } else resolve(out as Buffer);
      };
      const onAbort = () => finish(new ConnectError("canceled by the caller", Code.Canceled));
      const timer = setTimeout(
        () =>
          finish(new ConnectError(`deadline of ${timeoutMs} ms exceeded`, Code.DeadlineExceeded)),
        timeoutMs,
      );
      signal?.addEventListener("abort", onAbort, { once: true });
      const send = () => {
        req = this.#send({
          host: this.#host,
          port: this.#port,
          method: "POST",
          path: this.#prefix + path,
          agent: this.#agent,
          headers: {
            ...this.#headers,
            "connect-timeout-ms": String(Math.max(1, Math.ceil(timeoutMs))),
            "content-length": body.length,
          },
        });
        req.once("error", onRequestError);
        req.once("response", onResponse);
        req.end(body);
      };
      const onRequestError = (e: NodeJS.ErrnoException) => {
        // A kept-alive socket the server closed just as we reused it: every call of the
        // service is idempotent, so send once more on a fresh socket rather than report
        // the peer down (which would make core load the key itself).
        if (
          !done &&
          !retried &&
          req.reusedSocket &&
          (e.code === "ECONNRESET" || e.code === "EPIPE")
        ) {
          retried = true;
          send();
          return;
        }
        finish(new ConnectError(e.message, Code.Unavailable, undefined, undefined, e));
      };
      const onResponse = (res: IncomingMessage) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on("data", (c: Buffer) => {
          size += c.length;
          if (size > this.#maxBytes) {
            finish(
              new ConnectError(
                `response larger than ${this.#maxBytes} bytes`,
                Code.ResourceExhausted,
              ),
            );
            return;
          }
          chunks.push(c);
        });
        res.once("error", (e) =>
          finish(new ConnectError(e.message, Code.Unavailable, undefined, undefined, e)),
        );
        res.once("end", () => {
          if (done) return;
          const data = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size);
          const status = res.statusCode ?? 0;
          if (status === 200) {
            if (res.headers["content-type"] !== "application/proto") {
              finish(
                new ConnectError(
                  `unexpected content type ${String(res.headers["content-type"])}`,
                  Code.Unavailable,
                ),
              );
            } else finish(undefined, data);
            return;
          }
          finish(errorFromResponse(status, res.headers, data));
        });
      };
      send();
    });
  }
}

/** The error of a non-200 Connect unary answer: its JSON body, else its HTTP status. */
function errorFromResponse(
  status: number,
  headers: IncomingHttpHeaders,
  data: Buffer,
): ConnectError {
  if (headers["content-type"]?.startsWith("application/json")) {
    try {
      const j = JSON.parse(data.toString("utf8")) as { code?: unknown; message?: unknown };
      if (typeof j === "object" && j !== null && typeof j.code === "string") {
        const verdict = headers[VERDICT_HEADER];
        return new ConnectError(
          typeof j.message === "string" ? j.message : "",
          codeFromName(j.code),
          typeof verdict === "string" ? { [VERDICT_HEADER]: verdict } : undefined,
        );
      }
    } catch {
      // fall through to the status
    }
  }
  // Without the error JSON the answer did not come from a Connect handler (a proxy, a
  // wrong port): never the owner's verdict, so never internal/unknown (= getter failed).
  const code = codeFromHttpStatus(status);
  return new ConnectError(
    `HTTP ${status}`,
    code === Code.Internal || code === Code.Unknown ? Code.Unavailable : code,
  );
}
