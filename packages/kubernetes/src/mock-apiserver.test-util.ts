import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { KubeConfig } from "@kubernetes/client-node";

/** One request the mock API server received. */
export interface ApiRequest {
  kind: "list" | "watch" | "other";
  url: URL;
  /** `performance.now()` when it arrived. */
  at: number;
  res: ServerResponse;
  /** Resolves when the response is closed: answered, or the client hung up. */
  closed: Promise<void>;
  /** Whether the client hung up before the response ended. */
  hungUp: () => boolean;
}

/** What the mock answers to a list request instead of the slices it keeps. */
export type ListOverride =
  | { status: number; body: unknown }
  /** Never answer (the request stays open until the client closes it). */
  | "hang";

export interface EndpointSpec {
  ip: string;
  serving?: boolean;
  ready?: boolean;
  terminating?: boolean;
}

/** An EndpointSlice of `service` as the API server's JSON. */
export function slice(
  name: string,
  service: string,
  endpoints: EndpointSpec[],
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    apiVersion: "discovery.k8s.io/v1",
    kind: "EndpointSlice",
    metadata: { name, labels: { "kubernetes.io/service-name": service } },
    addressType: "IPv4",
    ports: [{ name: "http", port: 8001, protocol: "TCP" }],
    endpoints: endpoints.map((e) => ({
      addresses: [e.ip],
      conditions: {
        ...(e.ready !== undefined && { ready: e.ready }),
        ...(e.serving !== undefined && { serving: e.serving }),
        ...(e.terminating !== undefined && { terminating: e.terminating }),
      },
    })),
    ...extra,
  };
}

/**
 * A Kubernetes API server on loopback that knows EndpointSlices only: it keeps slices,
 * answers `GET /apis/discovery.k8s.io/v1/namespaces/<ns>/endpointslices?labelSelector=...`
 * with those of the selected service, and with `watch=true` holds the response open and
 * streams the events the test scripts (`put`, `remove`, `send`). Every request is recorded
 * and can be awaited (`nextRequest`).
 */
export class MockApiServer {
  readonly requests: ApiRequest[] = [];
  /** Slices by namespace/name. */
  readonly slices = new Map<string, Record<string, unknown>>();
  /** The resourceVersion of the last change. */
  rv = 100;
  /** Answers for the next list requests, in order (then the kept slices again). */
  readonly listOverrides: ListOverride[] = [];
  /** Answers for the next watch requests, in order (then an open stream again). */
  readonly watchOverrides: { status: number; body: unknown }[] = [];
  private cursor = 0;
  private readonly waiters: { match: (r: ApiRequest) => boolean; done: (r: ApiRequest) => void }[] =
    [];

  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  static async start(): Promise<MockApiServer> {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const mock = new MockApiServer(server, (server.address() as AddressInfo).port);
    server.on("request", (req, res) => mock.handle(req, res));
    return mock;
  }

  /** A KubeConfig for this server, as client-node's own tests make one. */
  kubeConfig(): KubeConfig {
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: "mock", server: `http://127.0.0.1:${this.port}`, skipTLSVerify: true }],
      users: [{ name: "u", token: "t" }],
      contexts: [{ name: "c", cluster: "mock", user: "u" }],
      currentContext: "c",
    });
    return kc;
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? "/", "http://127.0.0.1");
    const m = /^\/apis\/discovery\.k8s\.io\/v1\/namespaces\/([^/]+)\/endpointslices$/.exec(
      url.pathname,
    );
    const kind = m === null ? "other" : url.searchParams.get("watch") === "true" ? "watch" : "list";
    let hungUp = false;
    const closed = new Promise<void>((resolve) =>
      res.on("close", () => {
        hungUp = !res.writableFinished;
        resolve();
      }),
    );
    const r: ApiRequest = { kind, url, at: performance.now(), res, closed, hungUp: () => hungUp };
    this.requests.push(r);
    if (kind === "other" || m === null) {
      this.json(res, 404, status(404, "NotFound", `no such path ${url.pathname}`));
    } else if (kind === "list") {
      const override = this.listOverrides.shift();
      if (override === "hang") {
        // answered by no one: the client's abort closes it
      } else if (override !== undefined) {
        this.json(res, override.status, override.body);
      } else {
        const items = this.selected(decodeURIComponent(m[1] as string), url);
        this.json(res, 200, {
          apiVersion: "discovery.k8s.io/v1",
          kind: "EndpointSliceList",
          metadata: { resourceVersion: String(this.rv) },
          items,
        });
      }
    } else {
      const override = this.watchOverrides.shift();
      if (override !== undefined) {
        this.json(res, override.status, override.body);
      } else {
        res.writeHead(200, { "content-type": "application/json", "transfer-encoding": "chunked" });
        res.flushHeaders();
      }
    }
    for (let i = this.waiters.length - 1; i >= 0; i--) {
      const w = this.waiters[i];
      if (w?.match(r)) {
        this.waiters.splice(i, 1);
        w.done(r);
      }
    }
  }

  private selected(namespace: string, url: URL): unknown[] {
    const selector = url.searchParams.get("labelSelector") ?? "";
    return [...this.slices.entries()]
      .filter(([key, s]) => key.startsWith(`${namespace}/`) && matches(s, selector))
      .map(([, s]) => s);
  }

  private json(res: ServerResponse, code: number, body: unknown): void {
    res.writeHead(code, { "content-type": "application/json" });
    res.end(JSON.stringify(body));
  }

  /** The open watch requests (the client has not hung up, the server not ended them). */
  openWatches(): ApiRequest[] {
    return this.requests.filter((r) => r.kind === "watch" && !r.res.writableEnded && !r.res.closed);
  }

  /**
   * The first request of `kind` from index `from` on; by default from just after the one
   * it last returned, so a request that came before the test asked still counts.
   */
  nextRequest(kind: ApiRequest["kind"], from = this.cursor, timeoutMs = 5000) {
    const found = this.requests.slice(from).find((r) => r.kind === kind);
    if (found) {
      this.cursor = this.requests.indexOf(found) + 1;
      return Promise.resolve(found);
    }
    return new Promise<ApiRequest>((resolve, reject) => {
      const timer = setTimeout(
        () =>
          reject(
            new Error(
              `no ${kind} request within ${timeoutMs} ms; got ${this.requests
                .map((r) => r.kind)
                .join(", ")}`,
            ),
          ),
        timeoutMs,
      );
      this.waiters.push({
        match: (r) => r.kind === kind && this.requests.indexOf(r) >= from,
        done: (r) => {
          clearTimeout(timer);
          this.cursor = this.requests.indexOf(r) + 1;
          resolve(r);
        },
      });
    });
  }

  /** Adds or replaces a slice (in `default` unless `namespace`); streams ADDED/MODIFIED. */
  put(s: Record<string, unknown>, namespace = "default"): void {
    const meta = s.metadata as { name: string; resourceVersion?: string };
    const key = `${namespace}/${meta.name}`;
    const type = this.slices.has(key) ? "MODIFIED" : "ADDED";
    meta.resourceVersion = String(++this.rv);
    this.slices.set(key, s);
    this.broadcast(type, s);
  }

  /** Deletes a slice; streams DELETED. */
  remove(name: string, namespace = "default"): void {
    const key = `${namespace}/${name}`;
    const s = this.slices.get(key);
    if (s === undefined) throw new Error(`no slice ${key}`);
    this.slices.delete(key);
    (s.metadata as { resourceVersion: string }).resourceVersion = String(++this.rv);
    this.broadcast("DELETED", s);
  }

  private broadcast(type: string, s: Record<string, unknown>): void {
    for (const w of this.openWatches()) {
      const selector = w.url.searchParams.get("labelSelector") ?? "";
      if (matches(s, selector)) this.send(w, { type, object: s });
    }
  }

  /** Writes one event (or any line) to a watch response. */
  send(watch: ApiRequest, event: unknown): void {
    watch.res.write(`${typeof event === "string" ? event : JSON.stringify(event)}\n`);
  }

  /** A BOOKMARK at the current resourceVersion. */
  bookmark(watch: ApiRequest): void {
    this.send(watch, {
      type: "BOOKMARK",
      object: { kind: "EndpointSlice", metadata: { resourceVersion: String(this.rv) } },
    });
  }

  /** What the API server sends when a watch's resourceVersion is too old, then it ends. */
  expire(watch: ApiRequest): void {
    this.send(watch, {
      type: "ERROR",
      object: status(410, "Expired", "too old resource version: 1 (100)"),
    });
    watch.res.end();
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

export function status(code: number, reason: string, message: string) {
  return {
    kind: "Status",
    apiVersion: "v1",
    metadata: {},
    status: "Failure",
    message,
    reason,
    code,
  };
}

/** Equality-based label selectors only (`a=b,c=d`), as the source sends. */
function matches(s: Record<string, unknown>, selector: string): boolean {
  const labels = ((s.metadata as { labels?: Record<string, string> })?.labels ?? {}) as Record<
    string,
    string
  >;
  return selector
    .split(",")
    .filter((x) => x !== "")
    .every((term) => {
      const [k, v] = term.split("=");
      return k !== undefined && labels[k] === v;
    });
}
