/**
 * tinycache in a plain node:http server: one port for the peers and for your routes.
 * Run: TINYCACHE_SECRET=change-me node --import tsx node-http.ts
 */
import http from "node:http";
import { NotFoundError } from "@tinycache/core";
import { host, pool, port, scores, self } from "./cache.ts";

/** Your app: any request listener. */
async function app(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const url = new URL(req.url ?? "/", self);
  const key = url.pathname.match(/^\/scores\/([^/]+)$/)?.[1];
  if (req.method !== "GET" || key === undefined) {
    res.writeHead(404).end("no such route\n");
    return;
  }
  try {
    res.end((await scores.get(decodeURIComponent(key))).toString());
  } catch (err) {
    res.writeHead(err instanceof NotFoundError ? 404 : 500).end(`${err}\n`);
  }
}

// The pool answers its own paths (/_groupcache/...) and calls the fallback for every
// other request, untouched: not a byte of its body read, not a header written.
const server = http.createServer((req, res) => pool.handler(req, res, () => void app(req, res)));
server.listen(port, host, () => console.log(`listening on ${self}`));
