import type { Server as HttpServer } from "node:http";
import { LeanServer as Lane } from "@tinycache/core/transport";

/**
 * The API port's lean lane: core's LeanServer (a strict HTTP/1.1 reader over node:net in
 * front of a node:http server, see its file comment) taking the one request the API
 * serves by the thousand, `GET /api?key=K`. Every other request, and every connection
 * the lane does not fully understand, is node:http's.
 *
 * Why: node:http builds an IncomingMessage, a ServerResponse and their header objects and
 * events for every request; on one CPU a bare node:http server answers ~91k req/s, the
 * same answers written by the lane ~170k (wrk, 64 connections, keep-alive). That cost was
 * most of the API's, more than all of tinycache's hit path.
 */

/** Where the answer to one lane request goes (a node:http response can be one too). */
export interface LaneReply {
  /** The client went away (or the server closed): an answer would be dropped. */
  readonly gone: boolean;
  /** Answers with `status` and a UTF-8 text body; later calls are ignored. */
  send(status: number, body: string): void;
}

export interface LeanServerOptions {
  /** The one path the lane answers (e.g. `/api`); the query is the handler's to read. */
  path: string;
  /**
   * Answers one lane request (`url` is the request target as sent, e.g.
   * `/api?key=Tom`), now or later, through `reply`. Must not throw.
   */
  handle(url: string, reply: LaneReply): void;
  /**
   * Serves every connection the lane hands over. It never listens itself: the lane emits
   * its `listening` (so that its header and request timeouts run) and its `connection`.
   */
  fallback: HttpServer;
  /** A lane connection idle this long after an answer is closed, as node:http's keepAliveTimeout. */
  keepAliveTimeoutMs: number;
  /**
   * A connection that sent no whole request this long after it opened is closed, as
   * node:http's headersTimeout (a connection left silent is an attacker's or a bug).
   */
  headersTimeoutMs: number;
  /** Most connections open at once, lane's and handed over (net.Server's maxConnections). */
  maxConnections: number;
  /** Under load, a turn's answers leave together (core's LeanServer). @default true */
  coalesceWrites?: boolean;
}

/** A lane on `GET <path>[?query]` (see the top of this file). */
export class LeanServer extends Lane {
  constructor(o: LeanServerOptions) {
    const { path, handle } = o;
    super({
      accepts: (method, target) =>
        method === "GET" &&
        target.startsWith(path) &&
        (target.length === path.length || target.charCodeAt(path.length) === 0x3f) /* ? */,
      handle: (req, reply) => handle(req.target, reply),
      fallback: o.fallback,
      keepAliveTimeoutMs: o.keepAliveTimeoutMs,
      headersTimeoutMs: o.headersTimeoutMs,
      maxConnections: o.maxConnections,
      ...(o.coalesceWrites === undefined ? {} : { coalesceWrites: o.coalesceWrites }),
    });
  }
}
