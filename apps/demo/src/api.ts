import type { IncomingMessage, RequestListener, ServerResponse } from "node:http";
import { type Group, InvalidArgumentError, NotFoundError } from "@tinycache/core";
import type { Logger } from "./log.js";
import { pathOf, type Route, sendText } from "./routes.js";

export interface ApiOptions {
  group: Group;
  logger: Logger;
  /** Extra routes tried before the 404 (here: /metrics and /stats). */
  routes: Route;
  /** Responses by status, for /stats and /metrics. */
  responses: Map<number, number>;
  /** A request still waiting after this long gets a 504. */
  timeoutMs: number;
}

/**
 * The user-facing API, as the original's port 9999:
 * - `GET /api?key=K` -> 200 and the value as text; 404 `<key> not exist`; 400 without a key.
 * - `GET /healthz` -> 200 `ok`.
 * - `/metrics` and `/stats` through `routes`.
 */
export function createApiHandler({
  group,
  logger,
  routes,
  responses,
  timeoutMs,
}: ApiOptions): RequestListener {
  const count = (status: number) => responses.set(status, (responses.get(status) ?? 0) + 1);
  const reply = (res: ServerResponse, status: number, body: string) => {
    count(status);
    sendText(res, status, body);
  };

  const serveKey = (req: IncomingMessage, res: ServerResponse, url: string) => {
    const q = url.indexOf("?");
    const key = q < 0 ? null : new URLSearchParams(url.slice(q + 1)).get("key");
    if (key === null || key === "") {
      reply(res, 400, "missing query parameter: key (e.g. /api?key=Tom)\n");
      return;
    }
    // The caller going away (or taking too long) stops its wait; the load itself goes on
    // for the other callers of the same key (core's singleflight decides).
    const ac = new AbortController();
    const onClose = () => {
      if (!res.writableFinished) ac.abort(new Error("client closed the request"));
    };
    req.once("close", onClose);
    const timer = setTimeout(() => ac.abort(new Error("api timeout")), timeoutMs);
    group.get(key, { signal: ac.signal }).then(
      (view) => {
        clearTimeout(timer);
        req.off("close", onClose);
        count(200);
        const body = view.toString();
        res.writeHead(200, {
          "content-type": "text/plain; charset=utf-8",
          "content-length": Buffer.byteLength(body),
        });
        res.end(body);
      },
      (err: unknown) => {
        clearTimeout(timer);
        req.off("close", onClose);
        if (err instanceof NotFoundError) {
          reply(res, 404, `${key} not exist`);
        } else if (err instanceof InvalidArgumentError) {
          reply(res, 400, `${err.message}\n`);
        } else if (ac.signal.aborted) {
          if (res.destroyed || req.destroyed) return; // nobody is listening any more
          reply(res, 504, `timed out loading ${key}\n`);
        } else {
          logger.error({ err, key }, "api: load failed");
          reply(res, 502, `failed to load ${key}: ${err instanceof Error ? err.message : err}\n`);
        }
      },
    );
  };

  return (req, res) => {
    const url = req.url ?? "/";
    const path = pathOf(url);
    if (path === "/api") {
      if (req.method !== "GET" && req.method !== "HEAD") {
        res.setHeader("allow", "GET, HEAD");
        reply(res, 405, `method ${req.method} not allowed on /api\n`);
        return;
      }
      serveKey(req, res, url);
      return;
    }
    if (path === "/healthz") {
      sendText(res, 200, "ok\n");
      return;
    }
    if (routes(req, res)) return;
    sendText(res, 404, `no route ${path}; try /api?key=Tom, /healthz, /metrics, /stats\n`);
  };
}
