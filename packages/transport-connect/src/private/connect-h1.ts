import type { IncomingHttpHeaders } from "node:http";
import { Code, ConnectError } from "@connectrpc/connect";
import { codeFromHttpStatus, errorFromJsonBytes } from "@connectrpc/connect/protocol-connect";
import {
  HeaderBlock,
  protobufFirstFieldEnd,
  type UnaryClient,
  type UnaryResponse,
} from "@tinycache/core/transport";
import { VERDICT_HEADER } from "../codes.js";

/**
 * The Connect protocol's unary call with binary bodies, over core's HTTP/1.1
 * {@link UnaryClient} (https://connectrpc.com/docs/protocol#unary-request): POST
 * `<base>/<service>/<Method>`, `Content-Type: application/proto`,
 * `Connect-Protocol-Version: 1`, `Connect-Timeout-Ms`; a 200 carries the response
 * message, any other status the error JSON `{code, message}`. Only the codec lives here:
 * deadline, abort, body cap and keep-alive are the client's.
 *
 * Why not connect-node's transport: for one small unary call its generic machinery
 * (header objects, async-iterable bodies, envelope checks, an abort sentinel) costs
 * several times the round trip itself on loopback; this speaks the same bytes to the
 * same servers (the transport-connect benchmark measures both).
 */
export class ConnectH1Caller {
  readonly #client: UnaryClient;
  /** Every call's headers but its length (the client adds it), checked once. */
  readonly #headers: HeaderBlock;

  constructor(client: UnaryClient, headers: Record<string, string>) {
    this.#client = client;
    this.#headers = new HeaderBlock({
      "content-type": "application/proto",
      "connect-protocol-version": "1",
      ...headers,
      "connect-timeout-ms": String(Math.max(1, Math.ceil(client.timeoutMs))),
    });
  }

  /**
   * Calls `/<service>/<method>` with an encoded request; resolves with the encoded
   * response. Throws the client's PeerError when no answer came, a ConnectError for an
   * error answer.
   */
  call(
    path: string,
    body: Uint8Array,
    signal: AbortSignal | undefined,
    maxBodyBytes?: number,
  ): Promise<Buffer>;
  /**
   * As above, the response message read by `decode` in the same step (a Get at light load
   * is a handful of promise hops in all: one fewer is measurable).
   */
  call<T>(
    path: string,
    body: Uint8Array,
    signal: AbortSignal | undefined,
    maxBodyBytes: number | undefined,
    decode: (message: Buffer) => T,
  ): Promise<T>;
  call<T>(
    path: string,
    body: Uint8Array,
    signal: AbortSignal | undefined,
    maxBodyBytes?: number,
    decode?: (message: Buffer) => T,
  ): Promise<Buffer | T> {
    return this.#client
      .request({
        method: "POST",
        path,
        headers: this.#headers,
        body,
        signal,
        maxBodyBytes,
        // A streamed GetResponse says its value's length first (field 1).
        announcedLength: path.endsWith("/Get") ? protobufFirstFieldEnd : undefined,
      })
      .then<Buffer | T>(decode === undefined ? answerBody : (res) => decode(answerBody(res)));
  }

  /** Stops using the connections once the calls in flight are done. */
  close(): void {
    this.#client.destroy();
  }
}

/** A unary answer's message, or the error it carries. */
function answerBody(res: UnaryResponse): Buffer {
  if (res.status === 200) {
    if (res.headers["content-type"] !== "application/proto") {
      throw new ConnectError(
        `unexpected content type ${String(res.headers["content-type"])}`,
        Code.Unavailable,
      );
    }
    return res.body;
  }
  throw errorFromResponse(res.status, res.headers, res.body);
}

/** The error of a non-200 Connect unary answer: its JSON body, else its HTTP status. */
function errorFromResponse(
  status: number,
  headers: IncomingHttpHeaders,
  data: Buffer,
): ConnectError {
  // Without the error JSON the answer did not come from a Connect handler (a proxy, a
  // wrong port): never the owner's verdict, so never internal/unknown (= getter failed).
  const code = codeFromHttpStatus(status);
  const fallback = new ConnectError(
    `HTTP ${status}`,
    code === Code.Internal || code === Code.Unknown ? Code.Unavailable : code,
  );
  if (!headers["content-type"]?.startsWith("application/json")) return fallback;
  const verdict = headers[VERDICT_HEADER];
  try {
    return errorFromJsonBytes(
      data,
      typeof verdict === "string" ? { [VERDICT_HEADER]: verdict } : undefined,
      fallback,
    );
  } catch {
    return fallback;
  }
}
