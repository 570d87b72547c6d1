import type { IncomingMessage, ServerResponse } from "node:http";
import type { GroupStats } from "@tinycache/core";
import type { Logger } from "./log.js";
import type { PeerChange } from "./membership.js";
import { cachedRingLayout, type RingLayout } from "./ring.js";
import { closeUnreadBody, pathOf, type Route, sendText } from "./routes.js";
import { STATUS_PAGE_CSP, STATUS_PAGE_HTML } from "./status-page.js";

/** How long a node's /stats may take before the page shows the node as down. */
export const NODE_TIMEOUT_MS = 1_000;
/** Recent keys per cache each node's /stats carries; `/status/data?keys=` picks up to this many. */
export const MAX_STATUS_KEYS = 20;
const DEFAULT_STATUS_KEYS = 8;
/** Largest /stats answer read (declared length); a node's is a few KB. */
const MAX_STATS_BYTES = 1 << 20;
/** Events the status page keeps (newest first). */
const MAX_EVENTS = 50;
/** A gather answered less than this long ago is handed to the next caller as is. */
const REUSE_MS = 250;

/** What the status page reads of a node's /stats (serve.ts makes it; see the README). */
export interface NodeStatsShape {
  node: {
    self: string;
    pid: number;
    uptimeMs: number;
    transport: string;
    peers: readonly string[];
  };
  group: {
    /** Partial: a node of another version may lack a counter (shown as 0). */
    stats: Partial<GroupStats> & { gets: number };
    main: { items: number; bytes: number };
    hot: { items: number; bytes: number };
  };
  recentKeys: { main: RecentKeyShape[]; hot: RecentKeyShape[] };
  peerHealth: Array<{ url: string; state: string; trips: number; recoveries: number }>;
  membership: {
    source: string;
    problem: string | null;
    history: readonly PeerChange[];
  };
  db: { reads: number };
  memory: { cacheBytes: number };
  api: { responses: Record<string, number> } | null;
}

interface RecentKeyShape {
  key: string;
  notFound: boolean;
}

/** One node as `/status/data` gives it: its figures, or why it is down. */
export type NodeStatus =
  | {
      url: string;
      up: true;
      /** The node that answered this request (it serves the API). */
      self: boolean;
      /** Whether its peer list is the API node's (else the rings disagree). */
      sameRing: boolean;
      answeredInMs: number;
      pid: number;
      uptimeMs: number;
      transport: string;
      peers: readonly string[];
      gets: number;
      cacheHits: number;
      /** cacheHits / gets; null before the first get. */
      hitRatio: number | null;
      loads: number;
      loadsDeduped: number;
      peerLoads: number;
      peerErrors: number;
      localLoads: number;
      serverRequests: number;
      notFounds: number;
      dbReads: number;
      cacheBytes: number;
      main: { items: number; bytes: number };
      hot: { items: number; bytes: number };
      recentKeys: { main: RecentKeyShape[]; hot: RecentKeyShape[] };
      peerHealth: Array<{ url: string; state: string; trips: number; recoveries: number }>;
      membership: { source: string; problem: string | null };
      apiResponses: Record<string, number> | null;
    }
  | { url: string; up: false; self: false; error: string; downSince: string };

/** A change the status page saw or a node reported, for the "recent changes" list. */
export interface StatusEvent {
  at: string;
  node: string;
  kind: "membership" | "down" | "up" | "restart" | "unhealthy" | "healthy";
  text: string;
}

/** The answer of `GET /status/data`. */
export interface StatusData {
  now: string;
  /** The API node (this process). */
  self: string;
  /** Per-node timeout of this gather, in ms. */
  timeoutMs: number;
  /** The ring of the API node's peer list; null when it has none. */
  ring: RingLayout | null;
  /** The API node's peers first (ring order), then any other URL a node listed. */
  nodes: NodeStatus[];
  /** Newest first. */
  events: StatusEvent[];
}

export interface StatusOptions {
  /** This node's URL (as on the ring). */
  self: string;
  /** This node's current peer list (its ring). */
  peers: () => readonly string[];
  /** This node's own /stats object (read in process, not over HTTP). */
  localStats: () => NodeStatsShape;
  /** The peer secret, sent to the other nodes' /stats. */
  secret: string | undefined;
  /** The header it goes in. */
  authHeader: string;
  logger: Logger;
  timeoutMs?: number;
  now?: () => number;
}

/** The status page's routes and the end of its in-flight requests. */
export interface StatusRoutes {
  route: Route;
  /** Data as the page gets it (for tests and for the route). */
  gather(signal?: AbortSignal): Promise<StatusData>;
  /** Aborts any gather in flight (the node is stopping). */
  close(): void;
}

/** A `keys` value of /status/data, or a message for the 400. */
export function parseStatusQuery(url: string): { keys: number } | { error: string } {
  const q = url.indexOf("?");
  let keys = DEFAULT_STATUS_KEYS;
  if (q < 0) return { keys };
  for (const pair of url.slice(q + 1).split("&")) {
    if (pair === "") continue;
    const eq = pair.indexOf("=");
    const name = eq < 0 ? pair : pair.slice(0, eq);
    const value = eq < 0 ? "" : pair.slice(eq + 1);
    if (name !== "keys") {
      return {
        error: `unknown parameter "${name.slice(0, 100)}": /status/data takes only keys=0..${MAX_STATUS_KEYS}`,
      };
    }
    if (!/^\d{1,3}$/.test(value) || Number(value) > MAX_STATUS_KEYS) {
      return {
        error: `keys must be an integer from 0 to ${MAX_STATUS_KEYS}, got "${value.slice(0, 100)}"`,
      };
    }
    keys = Number(value);
  }
  return { keys };
}

/** Why a fetch failed, in words an operator reads on the page. */
function reasonOf(err: unknown, timeoutMs: number): string {
  const e = err as { name?: string; message?: string; cause?: { code?: string } };
  if (e?.name === "TimeoutError") return `no answer within ${timeoutMs} ms`;
  if (e?.name === "AbortError") return "aborted";
  const code = e?.cause?.code;
  if (code === "ECONNREFUSED") return "connection refused";
  if (code === "ECONNRESET") return "connection reset";
  if (typeof code === "string") return code;
  return String(e?.message ?? err).slice(0, 200);
}

/** A signal aborted by `parent` or after `ms` (AbortSignal.any is Node >= 20.3). */
function withTimeout(parent: AbortSignal, ms: number): { signal: AbortSignal; done(): void } {
  const ac = new AbortController();
  const onAbort = () => ac.abort(parent.reason);
  if (parent.aborted) onAbort();
  else parent.addEventListener("abort", onAbort, { once: true });
  const timer = setTimeout(
    () => ac.abort(new DOMException(`no answer within ${ms} ms`, "TimeoutError")),
    ms,
  );
  return {
    signal: ac.signal,
    done() {
      clearTimeout(timer);
      parent.removeEventListener("abort", onAbort);
    },
  };
}

/** A peer URL without its "http://", for event texts. */
function short(url: string): string {
  return url.startsWith("http://") ? url.slice(7) : url;
}

function isStatsShape(x: unknown): x is NodeStatsShape {
  const s = x as NodeStatsShape;
  return (
    typeof s?.node?.pid === "number" &&
    typeof s.group?.stats?.gets === "number" &&
    Array.isArray(s.recentKeys?.main) &&
    Array.isArray(s.recentKeys?.hot) &&
    Array.isArray(s.node.peers)
  );
}

/** The same peers, in any order (the order only breaks ties between equal ring points). */
function sameSet(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((u) => b.includes(u));
}

/**
 * The status page of the API node: `GET /status` (one static HTML page, its script and
 * style inline), `GET /status/data` (JSON: every node's figures, the ring, recent
 * changes) and `GET /` (a redirect to /status). Each node's figures come from its
 * /stats, fetched here with the peer secret (the browser never holds it), each with a
 * timeout: a node that does not answer in time shows as down.
 *
 * Events come from two places: the nodes' own peer-list histories (complete, with their
 * times) and what successive gathers see change (a node down or up, restarted, judged
 * unhealthy by the API node), which is only seen while a page polls.
 */
export function statusRoutes(opts: StatusOptions): StatusRoutes {
  const timeoutMs = opts.timeoutMs ?? NODE_TIMEOUT_MS;
  const now = opts.now ?? Date.now;
  const layout = cachedRingLayout();
  const closing = new AbortController();
  const events: StatusEvent[] = [];
  /** Per node: the last gather's view, to see what changed. */
  const last = new Map<
    string,
    { up: boolean; pid?: number; historySeen: string; downSince?: string }
  >();
  /** The API node's judgement of each peer, last gather. */
  const lastHealth = new Map<string, string>();
  let inFlight: Promise<StatusData> | undefined;
  let lastAnswer: { at: number; data: StatusData } | undefined;

  const event = (node: string, kind: StatusEvent["kind"], text: string, at = now()) => {
    events.unshift({ at: new Date(at).toISOString(), node, kind, text });
    events.sort((a, b) => (a.at < b.at ? 1 : a.at > b.at ? -1 : 0));
    if (events.length > MAX_EVENTS) events.length = MAX_EVENTS;
  };

  const fetchStats = async (
    url: string,
    signal: AbortSignal,
  ): Promise<{ ok: true; stats: NodeStatsShape; ms: number } | { ok: false; error: string }> => {
    const started = now();
    const t = withTimeout(signal, timeoutMs);
    try {
      const res = await fetch(`${url}/stats`, {
        headers: opts.secret === undefined ? {} : { [opts.authHeader]: opts.secret },
        signal: t.signal,
      });
      // A /stats is a few KB; a peer URL that answers something huge is not read.
      if (Number(res.headers.get("content-length") ?? 0) > MAX_STATS_BYTES) {
        await res.body?.cancel();
        return { ok: false, error: "answered more than 1 MiB" };
      }
      const body = await res.text();
      if (res.status === 401) return { ok: false, error: "401: it does not share our secret" };
      if (res.status !== 200) return { ok: false, error: `answered ${res.status}` };
      let parsed: unknown;
      try {
        parsed = JSON.parse(body);
      } catch {
        return { ok: false, error: "answered something that is not JSON" };
      }
      if (!isStatsShape(parsed)) return { ok: false, error: "not a tinycache node's /stats" };
      return { ok: true, stats: parsed, ms: now() - started };
    } catch (err) {
      return { ok: false, error: reasonOf(err, timeoutMs) };
    } finally {
      t.done();
    }
  };

  const view = (
    url: string,
    s: NodeStatsShape,
    ms: number,
    ring: readonly string[],
  ): NodeStatus & { up: true } => {
    const g = s.group.stats;
    const gets = g.gets;
    return {
      url,
      up: true,
      self: url === opts.self,
      sameRing: sameSet(s.node.peers, ring),
      answeredInMs: ms,
      pid: s.node.pid,
      uptimeMs: s.node.uptimeMs,
      transport: s.node.transport,
      peers: s.node.peers,
      gets,
      cacheHits: g.cacheHits ?? 0,
      hitRatio: gets === 0 ? null : (g.cacheHits ?? 0) / gets,
      loads: g.loads ?? 0,
      loadsDeduped: g.loadsDeduped ?? 0,
      peerLoads: g.peerLoads ?? 0,
      peerErrors: g.peerErrors ?? 0,
      localLoads: g.localLoads ?? 0,
      serverRequests: g.serverRequests ?? 0,
      notFounds: g.notFounds ?? 0,
      dbReads: s.db.reads,
      cacheBytes: s.memory.cacheBytes,
      main: { items: s.group.main.items, bytes: s.group.main.bytes },
      hot: { items: s.group.hot.items, bytes: s.group.hot.bytes },
      recentKeys: s.recentKeys,
      peerHealth: s.peerHealth.map(({ url, state, trips, recoveries }) => ({
        url,
        state,
        trips,
        recoveries,
      })),
      membership: { source: s.membership.source, problem: s.membership.problem },
      apiResponses: s.api?.responses ?? null,
    };
  };

  /** Updates the events from one node's answer (or its silence). */
  const observe = (url: string, s: NodeStatsShape | undefined, error: string | undefined) => {
    const prev = last.get(url);
    if (s === undefined) {
      const downSince = prev?.up === false ? prev.downSince : new Date(now()).toISOString();
      if (prev === undefined || prev.up) event(url, "down", `not answering: ${error}`);
      last.set(url, { ...(prev ?? { historySeen: "" }), up: false, downSince });
      return;
    }
    if (prev !== undefined && !prev.up) event(url, "up", "answering again");
    if (prev?.pid !== undefined && prev.pid !== s.node.pid) {
      event(url, "restart", `restarted (pid ${prev.pid} -> ${s.node.pid})`);
    }
    let seen = prev?.historySeen ?? "";
    for (const c of s.membership.history) {
      if (c.at <= seen) continue;
      const parts = [
        c.joined.length > 0 ? `joined: ${c.joined.map(short).join(", ")}` : "",
        c.left.length > 0 ? `left: ${c.left.map(short).join(", ")}` : "",
      ].filter(Boolean);
      const first = seen === "" && prev === undefined && c === s.membership.history[0];
      const text = first
        ? `peer list of ${c.peers.length} (${s.membership.source}): ${c.peers.map(short).join(", ")}`
        : `peer list changed (${s.membership.source}): ${parts.join("; ") || "reordered"}`;
      event(url, "membership", text, Date.parse(c.at));
      seen = c.at;
    }
    last.set(url, { up: true, pid: s.node.pid, historySeen: seen });
  };

  const gatherNow = async (signal: AbortSignal): Promise<StatusData> => {
    const ring = [...opts.peers()];
    const local = opts.localStats();
    const urls = [...ring];
    if (!urls.includes(opts.self)) urls.unshift(opts.self);
    const answers = new Map<string, Awaited<ReturnType<typeof fetchStats>>>();
    answers.set(opts.self, { ok: true, stats: local, ms: 0 });
    await Promise.all(
      urls
        .filter((u) => u !== opts.self)
        .map(async (u) => answers.set(u, await fetchStats(u, signal))),
    );
    // A URL some node lists but the API node does not (the rings disagree): shown too.
    for (const a of [...answers.values()]) {
      if (!a.ok) continue;
      for (const u of a.stats.node.peers) {
        if (!answers.has(u)) {
          urls.push(u);
          answers.set(u, await fetchStats(u, signal));
        }
      }
    }
    const nodes: NodeStatus[] = urls.map((url) => {
      const a = answers.get(url) as Awaited<ReturnType<typeof fetchStats>>;
      observe(url, a.ok ? a.stats : undefined, a.ok ? undefined : a.error);
      if (!a.ok) {
        return {
          url,
          up: false,
          self: false,
          error: a.error,
          downSince: last.get(url)?.downSince ?? new Date(now()).toISOString(),
        };
      }
      return view(url, a.stats, a.ms, ring);
    });
    for (const h of local.peerHealth) {
      const before = lastHealth.get(h.url) ?? "healthy";
      if (h.state !== before) {
        event(
          opts.self,
          h.state === "unhealthy" ? "unhealthy" : "healthy",
          h.state === "unhealthy"
            ? `judges ${short(h.url)} unhealthy: its keys load here until it answers a probe`
            : `judges ${short(h.url)} healthy again: its keys go to it`,
        );
      }
      lastHealth.set(h.url, h.state);
    }
    return {
      now: new Date(now()).toISOString(),
      self: opts.self,
      timeoutMs,
      ring: layout(ring) ?? null,
      nodes,
      events: events.slice(),
    };
  };

  /**
   * One gather at a time, shared by every caller (several open pages cost the nodes one
   * round of /stats), and reused for REUSE_MS; only the node's closing aborts it, not a
   * caller leaving.
   */
  const gather = async (keys: number, signal?: AbortSignal): Promise<StatusData> => {
    if (lastAnswer !== undefined && now() - lastAnswer.at < REUSE_MS) return trim(lastAnswer.data);
    if (inFlight === undefined) {
      inFlight = gatherNow(closing.signal).finally(() => {
        inFlight = undefined;
      });
      inFlight.then(
        (data) => {
          lastAnswer = { at: now(), data };
        },
        () => {},
      );
    }
    const data = await (signal === undefined
      ? inFlight
      : Promise.race([
          inFlight,
          new Promise<never>((_, reject) => {
            if (signal.aborted) reject(signal.reason);
            signal.addEventListener("abort", () => reject(signal.reason), { once: true });
          }),
        ]));
    return trim(data);

    function trim(d: StatusData): StatusData {
      return {
        ...d,
        nodes: d.nodes.map((n) =>
          n.up
            ? {
                ...n,
                recentKeys: {
                  main: n.recentKeys.main.slice(0, keys),
                  hot: n.recentKeys.hot.slice(0, keys),
                },
              }
            : n,
        ),
      };
    }
  };

  const sendJson = (res: ServerResponse, body: object) => {
    const text = `${JSON.stringify(body)}\n`;
    res.writeHead(200, {
      "content-type": "application/json; charset=utf-8",
      "content-length": Buffer.byteLength(text),
      "cache-control": "no-store",
    });
    res.end(text);
  };

  const route: Route = (req: IncomingMessage, res: ServerResponse) => {
    const url = req.url ?? "/";
    const path = pathOf(url);
    if (path !== "/" && path !== "/status" && path !== "/status/data") return false;
    closeUnreadBody(req, res);
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.setHeader("allow", "GET, HEAD");
      sendText(res, 405, `method ${req.method} not allowed on ${path}\n`);
      return true;
    }
    if (path === "/") {
      res.writeHead(302, { location: "/status", "content-length": 0 });
      res.end();
      return true;
    }
    if (path === "/status") {
      res.writeHead(200, {
        "content-type": "text/html; charset=utf-8",
        "content-length": Buffer.byteLength(STATUS_PAGE_HTML),
        "cache-control": "no-store",
        "content-security-policy": STATUS_PAGE_CSP,
        "x-content-type-options": "nosniff",
        "referrer-policy": "no-referrer",
      });
      res.end(req.method === "HEAD" ? undefined : STATUS_PAGE_HTML);
      return true;
    }
    const q = parseStatusQuery(url);
    if ("error" in q) {
      sendText(res, 400, `${q.error}\n`);
      return true;
    }
    // A client that leaves stops waiting; the shared gather goes on for the others.
    const left = new AbortController();
    res.once("close", () => left.abort());
    gather(q.keys, left.signal).then(
      (data) => {
        if (!res.destroyed) sendJson(res, data);
      },
      (err: unknown) => {
        if (left.signal.aborted) return;
        opts.logger.error({ err, event: "status_failed" }, "status: gather failed");
        sendText(res, 500, `status failed: ${err instanceof Error ? err.message : err}\n`);
      },
    );
    return true;
  };

  return {
    route,
    gather: (signal) => gather(DEFAULT_STATUS_KEYS, signal),
    close: () => closing.abort(),
  };
}
