import type { IncomingMessage, ServerResponse } from "node:http";
import type { Registry } from "prom-client";

/** Handles a request and returns true, or returns false to let the next handler try. */
export type Route = (req: IncomingMessage, res: ServerResponse) => boolean;

/** The path of a request URL, without the query. */
export function pathOf(url: string | undefined): string {
  if (url === undefined) return "/";
  const q = url.indexOf("?");
  return q < 0 ? url : url.slice(0, q);
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

/**
 * `GET /metrics` (Prometheus text format), `GET /stats` (JSON) and `GET /healthz`, served on every node:
 * on the peer port (beside the transport's routes) and on the API port.
 */
export function observabilityRoutes(metrics: Registry, stats: () => object): Route {
  return (req, res) => {
    const path = pathOf(req.url);
    if (path === "/healthz" && (req.method === "GET" || req.method === "HEAD")) {
      // Liveness and readiness of the node (Docker HEALTHCHECK, Kubernetes probes).
      sendText(res, 200, "ok\n");
      return true;
    }
    if (path !== "/metrics" && path !== "/stats") return false;
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.setHeader("allow", "GET, HEAD");
      sendText(res, 405, `method ${req.method} not allowed on ${path}\n`);
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
