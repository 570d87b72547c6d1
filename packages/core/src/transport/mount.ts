/**
 * What lets a pool's request listener share a server with an app (node:http, Express,
 * Fastify, ...): a `next` fallback for the requests that are not peer calls, and a way to
 * ask which they are, judged from the request target alone.
 */

/** Hands a request on, as Express's `next` does (called with no argument). */
export type NextHandler = (err?: unknown) => void;

/** What {@link MountableHandler.handles} reads of a request: its target, nothing else. */
export interface RequestTarget {
  readonly url?: string | undefined;
}

/**
 * A request listener that can be mounted in front of an app.
 *
 * - `handler(req, res)` (as `http.createServer` calls it) answers every request: a path
 *   that is not a peer path gets the transport's refusal (404), as a peer server alone does.
 * - `handler(req, res, next)` answers peer paths only, and calls `next()` for every other
 *   request without touching it: no byte of its body read, no header written. So it can
 *   be the first middleware of an Express app, or the front of a node:http server.
 * - `handler.handles(req)` tells which: whether `req`'s path is a peer path.
 */
export interface MountableHandler<Req extends RequestTarget, Res> {
  (req: Req, res: Res, next?: NextHandler): void;
  /**
   * Whether `req` is for this handler: its path (query left out; an absolute-form target
   * reduced to its path) is a peer path. Reads `req.url` only, so it is safe to ask
   * before anything else has read the request.
   */
  handles(req: RequestTarget): boolean;
}

/**
 * Makes a {@link MountableHandler} of a transport's server: `serve` answers every
 * request (peer calls, and the refusal of anything else), `handles` says which requests
 * are peer calls. With `next`, a request `handles` refuses goes to `next` untouched.
 */
export function mountable<Req extends RequestTarget, Res>(
  serve: (req: Req, res: Res) => void,
  handles: (req: RequestTarget) => boolean,
): MountableHandler<Req, Res> {
  const handler = (req: Req, res: Res, next?: NextHandler): void => {
    // Node calls a request listener with two arguments; a third that is not a function
    // (some servers pass one) is no fallback either.
    if (typeof next === "function" && !handles(req)) {
      next();
      return;
    }
    serve(req, res);
  };
  return Object.assign(handler, { handles });
}

/**
 * The path of a request target (RFC 9112 3.2), without its query: the origin form
 * (`/a/b?q`) as it is, the absolute form (`http://host/a/b?q`, sent to proxies) reduced to
 * its path. Undefined for anything else (`*`, an authority, garbage, no target).
 */
export function requestPath(url: string | undefined): string | undefined {
  if (url === undefined) return undefined;
  let path = url;
  if (url.charCodeAt(0) !== 47 /* "/" */) {
    const scheme = url.indexOf("://");
    if (scheme === -1) return undefined;
    let end = scheme + 3;
    while (end < url.length) {
      const c = url.charCodeAt(end);
      if (c === 47 /* "/" */ || c === 63 /* "?" */ || c === 35 /* "#" */) break;
      end++;
    }
    // No path after the authority (only a query, or nothing): the root.
    if (url.charCodeAt(end) !== 47) return "/";
    path = url.slice(end);
  }
  const q = path.indexOf("?");
  return q === -1 ? path : path.slice(0, q);
}
