import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from "node:http";
import type { Registry } from "prom-client";
import type { LaneReply } from "./lean-http.js";

/** Handles a request and returns true, or returns false to let the next handler try. */
export type Route = (req: IncomingMessage, res: ServerResponse) => boolean;

/** The path of a request URL, without the query. */
export function pathOf(url: string | undefined): string {
  if (url === undefined) return "/";
  const q = url.indexOf("?");
  return q < 0 ? url : url.slice(0, q);
}

/** Whether a request comes with a body (a length above 0, or chunks). */
export function hasBody(req: IncomingMessage): boolean {
  const length = req.headers["content-length"];
  return req.headers["transfer-encoding"] !== undefined || (length !== undefined && length !== "0");
}

/**
 * For an answer to a request whose body the demo never reads (no route takes one): the
 * connection closes once the answer is written, instead of Node reading and discarding
 * the whole body (100 MB, or endless chunks) to reuse the connection. Call before
 * answering.
 */
export function closeUnreadBody(req: IncomingMessage, res: ServerResponse): void {
  if (!hasBody(req) || req.complete) return;
  if (req.httpVersionMajor >= 2) return; // HTTP/2: the stream ends with the answer
  if (!res.headersSent) res.setHeader("connection", "close");
  res.once("finish", () => req.socket.destroy());
}

/** Sends a short text answer (the demo's only body type besides JSON and metrics). */
export function sendText(res: ServerResponse, status: number, body: string): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  res.writeHead(status, {
    "content-type": "text/plain; charset=utf-8",
    "content-length": Buffer.byteLength(body),
  });
  res.end(body);
}

/** A node:http response as a {@link LaneReply}, so /api answers take one path for both. */
export class ResponseReply implements LaneReply {
  readonly #res: ServerResponse;
  constructor(res: ServerResponse) {
    this.#res = res;
  }
  get gone(): boolean {
    return this.#res.destroyed;
  }
  send(status: number, body: string): void {
    sendText(this.#res, status, body);
  }
}

/**
 * `GET /metrics` (Prometheus text format), `GET /stats` (JSON) and `GET /healthz`, served on every node:
 * on the peer port (beside the transport's routes) and on the API port.
 *
 * `statsAuthorized` guards /stats (pid, peer list, database path: an attacker's map of
 * the cluster): with a peer secret set, /stats answers 401 without it, in the header the
 * peers use. /metrics and /healthz stay open, for scrapers and probes.
 */
export function observabilityRoutes(
  metrics: Registry,
  stats: () => object,
  statsAuthorized: (headers: IncomingHttpHeaders) => boolean = () => true,
): Route {
  return (req, res) => {
    const path = pathOf(req.url);
    if (path === "/healthz" && (req.method === "GET" || req.method === "HEAD")) {
      // Liveness and readiness of the node (Docker HEALTHCHECK, Kubernetes probes).
      closeUnreadBody(req, res);
      sendText(res, 200, "ok\n");
      return true;
    }
    if (path !== "/metrics" && path !== "/stats") return false;
    closeUnreadBody(req, res);
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.setHeader("allow", "GET, HEAD");
      sendText(res, 405, `method ${req.method} not allowed on ${path}\n`);
      return true;
    }
    if (path === "/stats" && !statsAuthorized(req.headers)) {
      res.setHeader("www-authenticate", 'Tinycache realm="peers", header="x-tinycache-auth"');
      sendText(res, 401, "/stats needs the peer secret in the x-tinycache-auth header\n");
      return true;
    }
    if (path === "/stats") {
      // `/stats?gc=1` on a node started with --expose-gc collects garbage first, so that
      // heapUsed shows what is live (for memory tests and debugging; ignored otherwise).
      const gc = (globalThis as { gc?: () => void }).gc;
      if (gc !== undefined && /[?&]gc=1(&|$)/.test(req.url ?? "")) gc();
      const body = `${JSON.stringify(stats(), null, 2)}\n`;
      res.writeHead(200, {
        "content-type": "application/json; charset=utf-8",
        "content-length": Buffer.byteLength(body),
      });
      res.end(body);
      return true;
    }
    metrics.metrics().then(
      (body) => {
        res.writeHead(200, {
          "content-type": metrics.contentType,
          "content-length": Buffer.byteLength(body),
        });
        res.end(body);
      },
      (err: unknown) => sendText(res, 500, `metrics failed: ${String(err)}\n`),
    );
    return true;
  };
}
