/**
 * tinycache in a Fastify 5 app.
 * Run: TINYCACHE_SECRET=change-me node --import tsx fastify.ts
 *
 * Fastify owns its server, so the pool goes in front of it through `serverFactory`: a
 * peer call is answered before Fastify sees it (no routing, hooks, body parsing or
 * logging on the cache's hot path), and every other request is handed to Fastify
 * untouched. (Handing peer calls over from inside Fastify instead, with a route or an
 * onRequest hook that calls `reply.hijack()` and `pool.handler(request.raw, reply.raw)`,
 * would put Fastify's routing and request objects on every peer call, and a route
 * handler only runs after Fastify has parsed, or refused, the peer's protobuf body.)
 */
import http from "node:http";
import { NotFoundError } from "@tinycache/core";
import Fastify from "fastify";
import { host, pool, port, scores, self } from "./cache.ts";

const app = Fastify({
  serverFactory: (fastifyHandler) =>
    http.createServer((req, res) => pool.handler(req, res, () => fastifyHandler(req, res))),
});

app.get<{ Params: { key: string } }>("/scores/:key", async (request, reply) => {
  try {
    return (await scores.get(request.params.key)).toString();
  } catch (err) {
    return reply.code(err instanceof NotFoundError ? 404 : 500).send(`${err}\n`);
  }
});
// Your routes read their bodies as usual: the pool left them alone.
app.put<{ Params: { key: string }; Body: { score: number } }>(
  "/scores/:key",
  async (request, reply) => {
    await scores.set(request.params.key, String(request.body.score));
    return reply.code(204).send();
  },
);

await app.listen({ port, host });
console.log(`listening on ${self}`);
