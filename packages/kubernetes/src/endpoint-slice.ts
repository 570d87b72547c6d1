import { readFileSync } from "node:fs";
import {
  ApiException,
  DiscoveryV1Api,
  KubeConfig,
  Observable,
  type RequestContext,
  type ResponseContext,
  Watch,
} from "@kubernetes/client-node";
import type { PeerSink, PeerSource } from "@tinycache/core";
import { safeSink } from "./private/safe-sink.js";
import {
  canonicalIp,
  type PeerList,
  type PeerListRules,
  peerList,
  readSlice,
  resourceVersionOf,
  type SliceView,
  sliceName,
} from "./slices.js";

/** Options of {@link endpointSliceSource}. */
export interface EndpointSliceSourceOptions {
  /** The Service whose EndpointSlices are followed (label `kubernetes.io/service-name`). */
  service: string;
  /**
   * The Service's namespace. Default: this pod's own (the service account's `namespace`
   * file), else the kubeconfig context's namespace, else `"default"`.
   */
  namespace?: string;
  /**
   * The peers' port: a number, used for every address; or the name of a port of the
   * Service (as the slices' `ports` name it, e.g. `"http"`), looked up in each slice.
   */
  port: number | string;
  /** @default "http" */
  scheme?: "http" | "https";
  /**
   * This process's own base URL (the pool's `self`, e.g. `http://10.1.2.3:8001`); its
   * host must be an IP address unless `selfAddress` is given. With it (or `selfAddress`)
   * the source sees this process's endpoint turn terminating and reports `leave`.
   */
  self?: string;
  /** This process's own address (the pod IP), when `self` does not carry it. */
  selfAddress?: string;
  /**
   * Which slices: `"IPv4"` or `"IPv6"` (a dual-stack Service has both, and each pod must
   * appear once). Default: the family of `self`/`selfAddress`, else IPv4 when there are
   * IPv4 slices, else IPv6.
   */
  addressType?: "IPv4" | "IPv6";
  /** Default: `KubeConfig#loadFromDefault()` (in-cluster service account, or `~/.kube/config`). */
  kubeConfig?: KubeConfig;
  /**
   * A watch that brings no event and no bookmark for this long is dropped and the slices
   * are listed again; a list that takes this long fails. @default 60000
   */
  stallMs?: number;
  /** The slices are listed again (and the watch restarted) this often. @default 300000 */
  relistMs?: number;
  /** The first wait after a failed list or a watch that ended or failed; doubles on each
   * failure in a row. @default 1000 */
  retryMs?: number;
  /** The longest wait between retries. @default 30000, or retryMs when larger */
  maxRetryMs?: number;
}

/** @internal Test seams of {@link endpointSliceSource}. */
export interface EndpointSliceSourceHooks {
  /** In [0, 1): each retry wait is shortened by up to 20% of it. Default `Math.random`. */
  random?: () => number;
  /** Runs `fn` after `ms`; returns a cancel function. Default: an unref'ed setTimeout. */
  setTimer?: (fn: () => void, ms: number) => () => void;
  /** Where the pod's namespace is read. Default: the service account's. */
  namespaceFile?: string;
}

const NAMESPACE_FILE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

function bad(Err: typeof TypeError | typeof RangeError, what: string, got: unknown): never {
  throw new Err(
    `endpointSliceSource: ${what}, got ${typeof got === "string" ? JSON.stringify(got) : String(got)}`,
  );
}

function positive(value: unknown, what: string): number {
  if (typeof value !== "number" || !Number.isFinite(value) || !(value > 0)) {
    bad(RangeError, `${what} must be a finite number > 0`, value);
  }
  return value;
}

/** The pod's namespace from the service account's file, if there is one. */
function podNamespace(file: string): string | undefined {
  try {
    const ns = readFileSync(file, "utf8").trim();
    return ns === "" ? undefined : ns;
  } catch {
    return undefined;
  }
}

/**
 * Peers from the EndpointSlices of a Kubernetes Service, as a {@link PeerSource}: lists
 * the slices (`discovery.k8s.io/v1`, label `kubernetes.io/service-name=<service>`), then
 * watches them from the list's `resourceVersion` (with bookmarks). After the list and
 * after each change it reports the whole peer list: every address of every endpoint that
 * is serving and not terminating, as `scheme://ip:port`, sorted.
 *
 * When this process's own endpoint (found by `self` or `selfAddress`) turns terminating,
 * it reports `leave` with the others (again only if the others change), and no more
 * `update`s: the process drains out of its own ring while the others drop it.
 *
 * The slices are listed again when the API server answers 410 Gone (the watch fell too
 * far behind), when the watch is quiet for `stallMs` (not even a bookmark), every
 * `relistMs`, and, after a wait that doubles with each failure in a row (`retryMs` up to
 * `maxRetryMs`), when the watch ends or fails. Failed lists and watches are reported as
 * `fail`. Aborting closes the list or watch request in flight and cancels every timer.
 *
 * Named `k8s:<namespace>/<service>:<port>`. Needs `get`, `list` and `watch` on
 * `endpointslices` (API group `discovery.k8s.io`) in the namespace.
 * @throws TypeError/RangeError for bad options, or a kubeconfig without a current cluster.
 */
export function endpointSliceSource(options: EndpointSliceSourceOptions): PeerSource {
  return endpointSliceSourceWith(options, {});
}

/** @internal {@link endpointSliceSource} with test seams. */
export function endpointSliceSourceWith(
  options: EndpointSliceSourceOptions,
  hooks: EndpointSliceSourceHooks,
): PeerSource {
  if (options === null || typeof options !== "object") {
    bad(TypeError, "options must be an object", options);
  }
  const { service, port, scheme = "http", self, addressType } = options;
  if (typeof service !== "string" || service.length > 63 || !DNS_LABEL.test(service)) {
    bad(TypeError, "service must be a Service name (a DNS label)", service);
  }
  if (typeof port === "number") {
    if (!Number.isInteger(port) || port < 1 || port > 65535) {
      bad(RangeError, "port must be an integer in 1-65535 or a port name", port);
    }
  } else if (typeof port !== "string" || port.trim() === "") {
    bad(TypeError, "port must be a port number or a port name", port);
  }
  if (scheme !== "http" && scheme !== "https") {
    bad(TypeError, 'scheme must be "http" or "https"', scheme);
  }
  if (addressType !== undefined && addressType !== "IPv4" && addressType !== "IPv6") {
    bad(TypeError, 'addressType must be "IPv4" or "IPv6"', addressType);
  }
  let selfAddress: string | undefined;
  let selfFamily: 4 | 6 | undefined;
  if (options.selfAddress !== undefined) {
    const a = canonicalIp(options.selfAddress);
    if (a === undefined) bad(TypeError, "selfAddress must be an IP address", options.selfAddress);
    selfAddress = a.ip;
    selfFamily = a.family;
  }
  if (self !== undefined) {
    let host: string;
    try {
      const url = new URL(self);
      if (url.protocol !== "http:" && url.protocol !== "https:") throw new Error();
      host = url.hostname;
    } catch {
      bad(TypeError, "self must be an http(s) URL", self);
    }
    const a = canonicalIp(host);
    if (a === undefined && selfAddress === undefined) {
      bad(
        TypeError,
        "self must have an IP address as its host (the pod IP), or give selfAddress",
        self,
      );
    }
    if (selfAddress === undefined && a !== undefined) {
      selfAddress = a.ip;
      selfFamily = a.family;
    }
  }
  const stallMs = positive(options.stallMs ?? 60_000, "stallMs");
  const relistMs = positive(options.relistMs ?? 300_000, "relistMs");
  const retryMs = positive(options.retryMs ?? 1000, "retryMs");
  const maxRetryMs = positive(options.maxRetryMs ?? Math.max(30_000, retryMs), "maxRetryMs");
  if (maxRetryMs < retryMs)
    bad(RangeError, `maxRetryMs must be >= retryMs (${retryMs})`, maxRetryMs);

  let kc = options.kubeConfig;
  if (kc === undefined) {
    kc = new KubeConfig();
    kc.loadFromDefault();
  } else if (typeof (kc as Partial<KubeConfig>)?.makeApiClient !== "function") {
    bad(TypeError, "kubeConfig must be a KubeConfig of @kubernetes/client-node", kc);
  }
  if (kc.getCurrentCluster() === null) {
    bad(TypeError, "the kubeconfig has no current cluster", kc.getCurrentContext());
  }
  let namespace = options.namespace;
  if (namespace === undefined) {
    namespace =
      podNamespace(hooks.namespaceFile ?? NAMESPACE_FILE) ??
      kc.getContextObject(kc.getCurrentContext())?.namespace ??
      "default";
  }
  if (typeof namespace !== "string" || namespace.length > 63 || !DNS_LABEL.test(namespace)) {
    bad(TypeError, "namespace must be a namespace name (a DNS label)", namespace);
  }

  const api = kc.makeApiClient(DiscoveryV1Api);
  const watcher = new Watch(kc);
  const ns = namespace;
  const labelSelector = `kubernetes.io/service-name=${service}`;
  const path = `/apis/discovery.k8s.io/v1/namespaces/${encodeURIComponent(ns)}/endpointslices`;
  const what = `EndpointSlices of service "${service}" in namespace "${ns}"`;
  const rules: PeerListRules = {
    port,
    scheme,
    family: addressType === "IPv4" ? 4 : addressType === "IPv6" ? 6 : selfFamily,
    selfAddress,
  };
  const random = hooks.random ?? Math.random;
  const setTimer =
    hooks.setTimer ??
    ((fn: () => void, ms: number) => {
      const t = setTimeout(fn, ms);
      t.unref();
      return () => clearTimeout(t);
    });

  /**
   * Lists the slices; the request is closed when `signal` aborts. Resolves to the API
   * server's JSON as it came: client-node's typed model is built by a deserializer that
   * throws on some malformed fields, and one bad slice must not fail the whole list
   * (readSlice skips what it cannot use).
   */
  const list = async (signal: AbortSignal): Promise<unknown> => {
    let answered: { status: number; text: string } | undefined;
    const call = api.listNamespacedEndpointSlice(
      { namespace: ns, labelSelector },
      {
        middleware: [
          {
            pre: (ctx: RequestContext) => {
              ctx.setSignal(signal);
              return new Observable(Promise.resolve(ctx));
            },
            post: (ctx: ResponseContext) =>
              new Observable(
                ctx.body.text().then((text) => {
                  answered = { status: ctx.httpStatusCode, text };
                  ctx.body = { text: async () => text, binary: async () => Buffer.from(text) };
                  return ctx;
                }),
              ),
          },
        ],
        middlewareMergeStrategy: "append",
      },
    );
    try {
      await call;
    } catch (err) {
      // An error status (ApiException), the network, or the typed model: only the last
      // is overruled, by the JSON itself.
      if (answered === undefined || answered.status < 200 || answered.status > 299) throw err;
    }
    if (answered === undefined) throw new Error("no answer"); // not reached: post always runs
    return JSON.parse(answered.text);
  };

  return {
    name: `k8s:${ns}/${service}:${port}`,
    subscribe(rawSink, signal) {
      if (signal.aborted) return;
      const sink = safeSink(rawSink, signal);
      new Subscription(sink, signal, {
        list,
        watch: (query, onEvent, onEnd) =>
          watcher.watch(path, query, onEvent, onEnd) as Promise<AbortController>,
        what,
        labelSelector,
        rules,
        stallMs,
        relistMs,
        retryMs,
        maxRetryMs,
        random,
        setTimer,
      }).relist();
    },
  };
}

interface SubscriptionConfig {
  list(signal: AbortSignal): Promise<unknown>;
  watch(
    query: Record<string, string | boolean | undefined>,
    onEvent: (type: string, obj: unknown) => void,
    onEnd: (err: unknown) => void,
  ): Promise<AbortController>;
  what: string;
  labelSelector: string;
  rules: PeerListRules;
  stallMs: number;
  relistMs: number;
  retryMs: number;
  maxRetryMs: number;
  random: () => number;
  setTimer: (fn: () => void, ms: number) => () => void;
}

/**
 * One subscription's list-then-watch loop. Each list starts a new cycle (`cycle` counts
 * them); whatever an older cycle's requests report afterwards is ignored, so an aborted
 * watch's last words never trigger anything.
 */
class Subscription {
  private readonly slices = new Map<string, SliceView>();
  private resourceVersion: string | undefined;
  private cycle = 0;
  /** Failures in a row (lists, watches that ended or failed); an event resets it. */
  private failures = 0;
  private listRequest: AbortController | undefined;
  private watchRequest: AbortController | undefined;
  private cancelStall: (() => void) | undefined;
  private cancelRelist: (() => void) | undefined;
  private cancelRetry: (() => void) | undefined;
  /** The others last given to `leave`, once this process is leaving. */
  private left: string[] | undefined;

  constructor(
    private readonly sink: PeerSink,
    private readonly signal: AbortSignal,
    private readonly c: SubscriptionConfig,
  ) {
    signal.addEventListener("abort", () => this.stop(), { once: true });
  }

  /** Ends the current cycle: its requests closed, its timers cancelled. */
  private stop(): void {
    this.cycle++;
    this.listRequest?.abort();
    this.listRequest = undefined;
    this.watchRequest?.abort();
    this.watchRequest = undefined;
    for (const cancel of [this.cancelStall, this.cancelRelist, this.cancelRetry]) cancel?.();
    this.cancelStall = this.cancelRelist = this.cancelRetry = undefined;
  }

  private current(cycle: number): boolean {
    return cycle === this.cycle && !this.signal.aborted;
  }

  /** (Re)starts the stall timer of the cycle: `onStall` runs after `stallMs` of silence. */
  private armStall(cycle: number, onStall: () => void): void {
    this.cancelStall?.();
    this.cancelStall = this.c.setTimer(() => {
      this.cancelStall = undefined;
      if (this.current(cycle)) onStall();
    }, this.c.stallMs);
  }

  /** Lists the slices now, then watches them. */
  relist(): void {
    this.stop();
    if (this.signal.aborted) return;
    const cycle = this.cycle;
    const request = new AbortController();
    this.listRequest = request;
    this.armStall(cycle, () => {
      this.sink.fail(new Error(`listing ${this.c.what} took longer than ${this.c.stallMs} ms`));
      this.retryLater();
    });
    this.c.list(request.signal).then(
      (answer) => {
        if (this.current(cycle)) this.listed(cycle, answer);
      },
      (err: unknown) => {
        if (!this.current(cycle)) return;
        this.sink.fail(describe(err, `listing ${this.c.what}`));
        this.retryLater();
      },
    );
  }

  private listed(cycle: number, answer: unknown): void {
    this.listRequest = undefined;
    this.cancelStall?.();
    this.cancelStall = undefined;
    this.slices.clear();
    const items = (answer as { items?: unknown } | null)?.items;
    if (Array.isArray(items)) {
      for (const item of items) {
        const name = sliceName(item);
        if (name !== undefined) this.slices.set(name, readSlice(item));
      }
    }
    this.resourceVersion = resourceVersionOf(answer);
    this.publish();
    this.cancelRelist = this.c.setTimer(() => {
      this.cancelRelist = undefined;
      if (this.current(cycle)) this.relist();
    }, this.c.relistMs);
    this.watch(cycle);
  }

  private watch(cycle: number): void {
    // Silence, even before the API server answers the watch: list again.
    this.armStall(cycle, () => this.relist());
    this.c
      .watch(
        {
          labelSelector: this.c.labelSelector,
          resourceVersion: this.resourceVersion,
          allowWatchBookmarks: true,
        },
        (type, obj) => {
          if (this.current(cycle)) this.event(cycle, type, obj);
        },
        (err) => {
          if (this.current(cycle)) this.watchEnded(err);
        },
      )
      .then(
        (request) => {
          if (this.current(cycle)) this.watchRequest = request;
          else request.abort(); // the cycle ended while the watch was being opened
        },
        (err: unknown) => {
          if (this.current(cycle)) this.watchEnded(err);
        },
      );
  }

  private event(cycle: number, type: string, obj: unknown): void {
    this.armStall(cycle, () => this.relist());
    switch (type) {
      case "ADDED":
      case "MODIFIED":
      case "DELETED": {
        this.failures = 0;
        this.resourceVersion = resourceVersionOf(obj) ?? this.resourceVersion;
        const name = sliceName(obj);
        if (name === undefined) return; // junk: nothing to key it by
        if (type === "DELETED") this.slices.delete(name);
        else this.slices.set(name, readSlice(obj));
        this.publish();
        return;
      }
      case "BOOKMARK":
        this.failures = 0;
        this.resourceVersion = resourceVersionOf(obj) ?? this.resourceVersion;
        return;
      case "ERROR": {
        const status = (obj ?? {}) as { code?: unknown; reason?: unknown; message?: unknown };
        if (status.code === 410 || status.reason === "Expired" || status.reason === "Gone") {
          this.expired();
          return;
        }
        const detail = [status.code, status.reason, status.message]
          .filter((x) => typeof x === "string" || typeof x === "number")
          .join(" ");
        this.sink.fail(new Error(`watching ${this.c.what} failed: ${detail || "ERROR event"}`));
        this.retryLater();
        return;
      }
      default:
        return; // an event type this source does not know: ignored
    }
  }

  private watchEnded(err: unknown): void {
    if ((err as { statusCode?: unknown } | null)?.statusCode === 410) {
      this.expired();
      return;
    }
    if (err) this.sink.fail(describe(err, `watching ${this.c.what}`));
    // A watch the API server closed (its timeout) is normal; one that ends at once is not:
    // the wait doubles until an event arrives.
    this.retryLater();
  }

  /** 410 Gone: the watch's resourceVersion is too old. List again (at once, the first time). */
  private expired(): void {
    if (this.failures === 0) {
      this.failures++;
      this.relist();
    } else {
      this.retryLater();
    }
  }

  /** Ends the cycle and lists again after the backoff wait. */
  private retryLater(): void {
    this.stop();
    if (this.signal.aborted) return;
    const base = Math.min(this.c.maxRetryMs, this.c.retryMs * 2 ** Math.min(this.failures, 30));
    this.failures++;
    this.cancelRetry = this.c.setTimer(
      () => {
        this.cancelRetry = undefined;
        if (!this.signal.aborted) this.relist();
      },
      base * (1 - 0.2 * this.c.random()),
    );
  }

  /** Reports the peer list of the slices now kept (or, once leaving, the others). */
  private publish(): void {
    const list: PeerList = peerList(this.slices.values(), this.c.rules);
    if (list.selfTerminating || this.left !== undefined) {
      const same =
        this.left !== undefined &&
        this.left.length === list.others.length &&
        this.left.every((u, i) => u === list.others[i]);
      if (!same) {
        this.left = list.others;
        this.sink.leave(list.others);
      }
      return;
    }
    this.sink.update(list.urls);
  }
}

/** An error for `sink.fail` that says what failed, with the client's error as its cause. */
function describe(err: unknown, doing: string): Error {
  if (err instanceof ApiException) {
    let detail = "";
    const body: unknown = err.body;
    try {
      const status = typeof body === "string" ? JSON.parse(body) : body;
      if (typeof status?.message === "string") detail = `: ${status.message}`;
    } catch {
      // not a Status object
    }
    return new Error(`${doing} failed: HTTP ${err.code}${detail}`, { cause: err });
  }
  const status = (err as { statusCode?: unknown } | null)?.statusCode;
  if (typeof status === "number") {
    return new Error(`${doing} failed: HTTP ${status} ${(err as Error).message ?? ""}`.trim(), {
      cause: err,
    });
  }
  const message = err instanceof Error ? err.message : String(err);
  return new Error(`${doing} failed: ${message}`, { cause: err });
}
