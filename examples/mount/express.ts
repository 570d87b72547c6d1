/**
 * tinycache in an Express 5 app: the pool's handler is a middleware.
 * Run: TINYCACHE_SECRET=change-me node --import tsx express.ts
 */

import { NotFoundError } from "@tinycache/core";
import express from "express";
import { host, pool, port, scores, self } from "./cache.ts";

const app = express();
// First, at the root and before any body parser: peer calls (/_groupcache/...) are
// answered here; every other request goes on (next()) with its body unread.
app.use(pool.handler);
app.use(express.json());

app.get("/scores/:key", async (req, res) => {
  try {
    res.send((await scores.get(req.params.key)).toString());
  } catch (err) {
    res.status(err instanceof NotFoundError ? 404 : 500).send(`${err}\n`);
  }
});
// Your routes read their bodies as usual: the pool left them alone.
app.put("/scores/:key", async (req, res) => {
  await scores.set(req.params.key, String(req.body.score));
  res.sendStatus(204);
});

app.listen(port, host, (err) => {
  if (err) throw err;
  console.log(`listening on ${self}`);
});
