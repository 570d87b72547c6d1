/**
 * A third transport, written from TRANSPORT.md alone: tinycache peers over JSON on
 * HTTP/1.1. It is not shipped (JSON and base64 are slow); it exists to show, and to prove
 * with the same contract suite the shipped transports pass, that a transport is only a
 * codec over `@tinycache/core/transport`.
 *
 * Wire: `POST /json/<op>` (op = get | set | remove) with a JSON body
 * `{ group, key, value?, expiresAt? }` (value in base64). A 200 answers `{ value?, expiresAt? }`;
 * any other status answers `{ status, message }` with one of core's status names.
 */
import * as http from "node:http";
import {
  ANSWER_FRAMING_BYTES,
  type CallOptions,
  errorMessage,
  type GroupLookup,
  type KeyRequest,
  mountable,
  nodeServer,
  PeerError,
  type PeerGetOptions,
  type PeerGetter,
  type PeerHandler,
  PeerPoolBase,
  type PeerPoolOptions,
  type PeerValue,
  peerErrorFor,
  RequestCheck,
  requestPath,
  resolvePoolOptions,
  type SetRequest,
  type StatusCode,
  statusOf,
  UnaryClient,
} from "@tinycache/core/transport";

type Op = "get" | "set" | "remove";

/** The client of one peer: encode, call through the shared client, decode. */
class JsonPeer implements PeerGetter {
  readonly id: string;
  readonly #client: UnaryClient;
  readonly #auth: Record<string, string>;

  constructor(client: UnaryClient, auth: Record<string, string>) {
    this.id = client.url;
    this.#client = client;
    this.#auth = auth;
  }

  async get(req: KeyRequest, opts?: PeerGetOptions): Promise<PeerValue> {
    // The caller's value limit, as a body limit: base64 takes 4 bytes per 3.
    const max = opts?.maxValueBytes;
    const cap = max === undefined ? undefined : Math.ceil(max / 3) * 4 + ANSWER_FRAMING_BYTES;
    const m = await this.#call("get", { group: req.group, key: req.key }, opts?.signal, cap);
    if (typeof m.value !== "string") throw new PeerError("unavailable", this.id, "no value");
    const value = new Uint8Array(Buffer.from(m.value, "base64"));
    if (max !== undefined && value.byteLength > max) {
      throw new PeerError("unavailable", this.id, `value over maxValueBytes (${max})`);
    }
    return typeof m.expiresAt === "number" ? { value, expiresAt: m.expiresAt } : { value };
  }

  async set(req: SetRequest, opts?: CallOptions): Promise<void> {
    const value = Buffer.from(req.value).toString("base64");
    await this.#call("set", { ...req, value }, opts?.signal);
  }

  async remove(req: KeyRequest, opts?: CallOptions): Promise<void> {
    await this.#call("remove", { group: req.group, key: req.key }, opts?.signal);
  }

  close(): void {
    this.#client.destroy();
  }

  async #call(
    op: Op,
    msg: object,
    signal?: AbortSignal,
    maxBodyBytes?: number,
  ): Promise<Record<string, unknown>> {
    const body = Buffer.from(JSON.stringify(msg));
    const headers = {
      ...this.#auth,
      "content-type": "application/json",
      "content-length": body.length,
    };
    const res = await this.#client.request({
      method: "POST",
      path: `/json/${op}`,
      headers,
      body,
      signal,
      maxBodyBytes,
    });
    let answer: Record<string, unknown>;
    try {
      answer = JSON.parse(res.body.toString("utf8")) as Record<string, unknown>;
    } catch (err) {
      throw new PeerError("unavailable", this.id, `HTTP ${res.status}, not JSON`, { cause: err });
    }
    if (res.status === 200) return answer;
    // Only a JSON error with a status name is the owner's own verdict.
    const status = typeof answer.status === "string" ? answer.status : "unavailable";
    const message = typeof answer.message === "string" ? answer.message : `HTTP ${res.status}`;
    throw peerErrorFor(status, this.id, message, typeof answer.status === "string");
  }
}

const HTTP_STATUS: Record<StatusCode, number> = {
  not_found: 404,
  invalid_argument: 400,
  failed_precondition: 412,
  unauthenticated: 401,
  resource_exhausted: 413,
  canceled: 503,
  deadline_exceeded: 503,
  unavailable: 503,
  internal: 500,
};

/** The server side: check, decode, call the group, encode. */
function jsonHandler(registry: GroupLookup, check: RequestCheck): PeerHandler {
  // Paths under /json/ are the pool's; with `next`, mountable hands on every other one.
  const handles = (req: { url?: string | undefined }) =>
    requestPath(req.url)?.startsWith("/json/") === true;
  return mountable((req: http.IncomingMessage, res: http.ServerResponse) => {
    const send = (status: number, msg: object): void => {
      if (res.headersSent || res.destroyed) return;
      const body = Buffer.from(JSON.stringify(msg));
      res.writeHead(status, { "content-type": "application/json", "content-length": body.length });
      res.end(body);
    };
    const fail = (status: StatusCode, message: string): void =>
      send(HTTP_STATUS[status], { status, message });
    if (!handles(req)) {
      req.resume();
      send(404, { status: "unavailable", message: "not a tinycache JSON peer path" });
      return;
    }
    const op = (requestPath(req.url) as string).slice(6);
    if (req.method !== "POST" || (op !== "get" && op !== "set" && op !== "remove")) {
      req.resume();
      fail("unavailable", "not a tinycache JSON peer path");
      return;
    }
    if (!check.authorized(req.headers)) {
      req.resume();
      fail("unauthenticated", "missing or wrong peer secret");
      return;
    }
    check.readBody(
      req,
      (body) => {
        let m: { group?: unknown; key?: unknown; value?: unknown; expiresAt?: unknown };
        try {
          m = JSON.parse(body.toString("utf8")) as typeof m;
        } catch {
          return fail("invalid_argument", "malformed JSON");
        }
        if (typeof m?.group !== "string" || typeof m.key !== "string") {
          return fail("invalid_argument", "group and key must be strings");
        }
        const group = registry.getGroup(m.group);
        if (group === undefined) return fail("failed_precondition", `no such group: ${m.group}`);
        const bad = check.keyError(group, m.key);
        if (bad !== undefined) return fail("invalid_argument", bad.message);
        const signal = check.connectionSignal(req);
        const expiresAt = typeof m.expiresAt === "number" ? m.expiresAt : undefined;
        const key = m.key;
        const work = async (): Promise<object> => {
          if (op === "get") {
            const got = await group.serveGet(key, { signal });
            const value = Buffer.from(got.value.byteSlice()).toString("base64");
            return got.expiresAt === undefined ? { value } : { value, expiresAt: got.expiresAt };
          }
          if (op === "set") {
            if (typeof m.value !== "string") throw new TypeError("value must be base64");
            group.serveSet(key, new Uint8Array(Buffer.from(m.value, "base64")), expiresAt);
          } else group.serveRemove(key);
          return {};
        };
        work().then(
          (out) => send(200, out),
          (err: unknown) => fail(statusOf(err, signal), errorMessage(err)),
        );
      },
      () => fail("resource_exhausted", check.tooLargeMessage()),
    );
  }, handles);
}

/** The pool: core's PeerPoolBase plus the two halves above. */
export class JsonPool extends PeerPoolBase<JsonPeer> {
  constructor(options: PeerPoolOptions) {
    const o = resolvePoolOptions("JsonPool", options);
    const handler = jsonHandler(o.registry, new RequestCheck(o));
    const auth: Record<string, string> = o.auth ? { [o.auth.header]: o.auth.secret } : {};
    super(o, {
      name: "JsonPool",
      connect: (url) => new JsonPeer(new UnaryClient({ url, ...o }), auth),
      disconnect: (peer) => peer.close(),
      handler,
      createServer: () => nodeServer(http.createServer(handler), o.logger),
    });
  }
}
