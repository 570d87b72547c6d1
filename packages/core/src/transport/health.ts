import { PeerError } from "../errors.js";
import type {
  CallOptions,
  KeyRequest,
  PeerGetOptions,
  PeerGetter,
  PeerValue,
  SetRequest,
} from "../peers.js";

/**
 * Per-peer health, from the outcomes of recent calls: one policy for every transport
 * (it lives under {@link PeerSet}, so the HTTP and Connect pools share it).
 *
 * - A peer is **healthy** until it fails `failureThreshold` calls in a row (a failure: no
 *   answer in time, a refused or reset connection, or any other error that makes core load
 *   the key locally anyway: `unavailable`). An answer (a value, "not found", "my getter
 *   failed", "bad request") is a success, whatever it says.
 * - A get still unanswered after `slowCallMs` (or `slowCallFactor` times the peer's recent
 *   latency, whichever is longer) makes the peer **pinged**: a lightweight call (a get in
 *   the reserved group {@link HEALTH_PROBE_GROUP}, which no node serves, so any peer, Go
 *   groupcache included, answers it at once without touching a getter or a cache). No
 *   answer within `probeTimeoutMs` means the peer is hung: it is judged unhealthy at once.
 *   An answer means the call is only slow (a slow getter at the owner): nothing happens.
 * - When a peer is judged **unhealthy**, every caller still waiting on it is released
 *   (its call fails as `unavailable`, so core loads the key locally), and its keys are
 *   routed locally ({@link PeerSet.pickPeer} answers "no peer"): nobody waits for it.
 * - An unhealthy peer is **probed** with the same ping, in the background (no caller
 *   waits on a probe), when one of its keys is asked for and the probe is due: after
 *   `probeBaseMs`, doubled after each failed probe up to `probeMaxMs`, each delay shortened
 *   by a random fraction up to `probeJitter` (so nodes do not probe in step). A probe
 *   answered makes the peer healthy again, on probation: one more failure before a call
 *   succeeds trips it again and the backoff goes on growing (a flapping peer is probed
 *   less and less often); a call that succeeds clears the record.
 */

/** The group a health ping asks for: no node serves it, so every peer answers at once. */
export const HEALTH_PROBE_GROUP = "_tinycache_health";

/** Options of per-peer health: see the policy above. Every field has a default. */
export interface PeerHealthOptions {
  /**
   * Failed calls in a row that make a peer unhealthy: an integer >= 1.
   * @default 3
   */
  failureThreshold?: number;
  /**
   * A get unanswered after this long (ms), at the least, makes the peer pinged.
   * @default 50
   */
  slowCallMs?: number;
  /**
   * ...or after this many times the peer's recent latency (an average of its answered
   * gets, which includes the owner's getter time on cold keys), when that is longer.
   * @default 4
   */
  slowCallFactor?: number;
  /**
   * How long a ping (and a probe) may take, in ms, before the peer is judged hung; at most
   * the pool's `timeoutMs`.
   * @default 300
   */
  probeTimeoutMs?: number;
  /**
   * First delay before probing an unhealthy peer, in ms; doubled after each failed probe.
   * @default 250
   */
  probeBaseMs?: number;
  /**
   * Longest delay between probes, in ms: after a peer recovers, its keys return to it at
   * most this long (plus one probe) later.
   * @default 5000
   */
  probeMaxMs?: number;
  /**
   * Each probe delay is shortened by a random fraction in [0, probeJitter), in [0, 1].
   * @default 0.5
   */
  probeJitter?: number;
  /** Clock in ms, for tests. @default Date.now */
  now?: () => number;
  /** Randomness in [0, 1), for tests. @default Math.random */
  random?: () => number;
}

/** {@link PeerHealthOptions} after defaults and checks. */
export interface ResolvedHealthOptions {
  failureThreshold: number;
  slowCallMs: number;
  slowCallFactor: number;
  probeTimeoutMs: number;
  probeBaseMs: number;
  probeMaxMs: number;
  probeJitter: number;
  now: () => number;
  random: () => number;
}

/** The defaults of {@link PeerHealthOptions}. */
export const HEALTH_DEFAULTS = Object.freeze({
  failureThreshold: 3,
  slowCallMs: 50,
  slowCallFactor: 4,
  probeTimeoutMs: 300,
  probeBaseMs: 250,
  probeMaxMs: 5000,
  probeJitter: 0.5,
});

function positive(owner: string, name: string, v: unknown, dflt: number): number {
  if (v === undefined) return dflt;
  if (typeof v !== "number" || !Number.isFinite(v) || v <= 0) {
    throw new RangeError(`${owner}: health.${name} must be a finite number > 0, got ${String(v)}`);
  }
  return v;
}

/**
 * Checks the `health` option of a pool and fills in its defaults; `false` turns health
 * off (undefined is returned). `timeoutMs` (the pool's call deadline) caps the probe
 * timeout.
 * @throws TypeError or RangeError naming `owner` and the option.
 */
export function resolveHealthOptions(
  owner: string,
  o: PeerHealthOptions | false | undefined,
  timeoutMs: number,
): ResolvedHealthOptions | undefined {
  if (o === false) return undefined;
  const h = o ?? {};
  if (typeof h !== "object" || h === null) {
    throw new TypeError(`${owner}: health must be an options object or false`);
  }
  const threshold = h.failureThreshold ?? HEALTH_DEFAULTS.failureThreshold;
  if (!Number.isSafeInteger(threshold) || threshold < 1) {
    throw new RangeError(
      `${owner}: health.failureThreshold must be an integer >= 1, got ${String(threshold)}`,
    );
  }
  const jitter = h.probeJitter ?? HEALTH_DEFAULTS.probeJitter;
  if (typeof jitter !== "number" || !(jitter >= 0 && jitter <= 1)) {
    throw new RangeError(`${owner}: health.probeJitter must be in [0, 1], got ${String(jitter)}`);
  }
  const base = positive(owner, "probeBaseMs", h.probeBaseMs, HEALTH_DEFAULTS.probeBaseMs);
  const max = positive(owner, "probeMaxMs", h.probeMaxMs, HEALTH_DEFAULTS.probeMaxMs);
  if (max < base) {
    throw new RangeError(`${owner}: health.probeMaxMs (${max}) must be >= probeBaseMs (${base})`);
  }
  for (const fn of ["now", "random"] as const) {
    if (h[fn] !== undefined && typeof h[fn] !== "function") {
      throw new TypeError(`${owner}: health.${fn} must be a function`);
    }
  }
  return {
    failureThreshold: threshold,
    slowCallMs: positive(owner, "slowCallMs", h.slowCallMs, HEALTH_DEFAULTS.slowCallMs),
    slowCallFactor: positive(
      owner,
      "slowCallFactor",
      h.slowCallFactor,
      HEALTH_DEFAULTS.slowCallFactor,
    ),
    probeTimeoutMs: Math.min(
      timeoutMs,
      positive(owner, "probeTimeoutMs", h.probeTimeoutMs, HEALTH_DEFAULTS.probeTimeoutMs),
    ),
    probeBaseMs: base,
    probeMaxMs: max,
    probeJitter: jitter,
    now: h.now ?? Date.now,
    random: h.random ?? Math.random,
  };
}

/** One peer's health, as pool stats show it. Counters are monotonic. */
export interface PeerHealthStats {
  /** The peer's URL. */
  url: string;
  /** `"unhealthy"`: its keys are loaded locally until a probe answers. */
  state: "healthy" | "unhealthy";
  /** Failed calls since the last success. */
  consecutiveFailures: number;
  /** Average latency of its answered gets, in ms (an EWMA); null before the first. */
  latencyMs: number | null;
  /** How long a get may stay unanswered before the peer is pinged, in ms. */
  slowAfterMs: number;
  /** Ms until the next probe is due (sent with the next request for one of its keys); null when healthy. */
  nextProbeInMs: number | null;
  /** Calls made (get, set, remove; pings and probes not included). */
  calls: number;
  /** Calls that failed (see the policy). */
  failures: number;
  /** Gets that ran past `slowAfterMs`. */
  slowCalls: number;
  /** Pings and probes sent. */
  pings: number;
  /** Pings and probes unanswered (or refused). */
  pingFailures: number;
  /** Times the peer was judged unhealthy. */
  trips: number;
  /** Times a probe found it answering again. */
  recoveries: number;
  /** Keys routed locally because the peer was unhealthy. */
  skipped: number;
  /** Waiting callers released when it was judged unhealthy. */
  released: number;
  /** The last failure's message, if any. */
  lastFailure: string | null;
}

/** EWMA weight of a new latency sample. */
const LATENCY_ALPHA = 0.2;

/**
 * The health state machine of one peer: pure (a clock and randomness are injected), no
 * timers. {@link MonitoredPeer} feeds it call outcomes; {@link PeerSet} asks it whether to
 * route keys to the peer.
 */
export class PeerHealth {
  readonly url: string;
  readonly #o: ResolvedHealthOptions;
  #healthy = true;
  #consecutive = 0;
  #latency: number | undefined;
  /** Failed probes since the peer last answered a real call: the backoff exponent. */
  #attempt = 0;
  #nextProbeAt = 0;
  #probing = false;
  #lastFailure: string | null = null;
  readonly #n = {
    calls: 0,
    failures: 0,
    slowCalls: 0,
    pings: 0,
    pingFailures: 0,
    trips: 0,
    recoveries: 0,
    skipped: 0,
    released: 0,
  };
  /** Called when the peer is judged unhealthy (to release the callers waiting on it). */
  onTrip: (() => void) | undefined;

  constructor(url: string, options: ResolvedHealthOptions) {
    this.url = url;
    this.#o = options;
  }

  get healthy(): boolean {
    return this.#healthy;
  }

  get options(): ResolvedHealthOptions {
    return this.#o;
  }

  /** How long a get may stay unanswered before the peer is pinged, in ms. */
  get slowAfterMs(): number {
    const l = this.#latency;
    const byLatency = l === undefined ? 0 : l * this.#o.slowCallFactor;
    return Math.max(this.#o.slowCallMs, byLatency);
  }

  /**
   * Whether a key of this peer may be sent to it: `"yes"` (healthy), `"no"` (unhealthy:
   * load it locally; counted as skipped), or `"probe"` (unhealthy, and a probe is due: the
   * caller sends one in the background, then loads locally; counted as skipped).
   */
  route(): "yes" | "no" | "probe" {
    if (this.#healthy) return "yes";
    this.#n.skipped++;
    if (this.#probing || this.#o.now() < this.#nextProbeAt) return "no";
    this.#probing = true;
    this.#n.pings++;
    return "probe";
  }

  /** A call is about to be sent. */
  callStarted(): void {
    this.#n.calls++;
  }

  /** The peer answered (anything), after `latencyMs`; `get` says whether to count its latency. */
  succeeded(latencyMs: number, get: boolean): void {
    if (get && latencyMs >= 0) {
      const l = this.#latency;
      this.#latency = l === undefined ? latencyMs : l + LATENCY_ALPHA * (latencyMs - l);
    }
    this.#consecutive = 0;
    this.#attempt = 0;
    if (!this.#healthy) this.#recover();
  }

  /** A call failed (see the policy). May trip the peer. */
  failed(why: string): void {
    this.#n.failures++;
    this.#lastFailure = why;
    this.#consecutive++;
    if (this.#healthy && this.#consecutive >= this.#o.failureThreshold) this.#trip();
  }

  /** A get ran past {@link slowAfterMs}; returns whether a ping should be sent (none in flight). */
  slow(): boolean {
    this.#n.slowCalls++;
    if (this.#probing || !this.#healthy) return false;
    this.#probing = true;
    this.#n.pings++;
    return true;
  }

  /** The outcome of a ping or probe: `answered` within `probeTimeoutMs`, or not (`why`). */
  pinged(answered: boolean, why?: string): void {
    this.#probing = false;
    if (answered) {
      if (!this.#healthy) {
        // On probation: one more failure trips it again, and the backoff goes on growing
        // until a real call is answered.
        this.#consecutive = this.#o.failureThreshold - 1;
        this.#attempt++;
        this.#recover();
      }
      return;
    }
    this.#n.pingFailures++;
    this.#lastFailure = why ?? "ping unanswered";
    if (this.#healthy) this.#trip();
    else {
      this.#attempt++;
      this.#schedule();
    }
  }

  /** Callers released at a trip. */
  released(n: number): void {
    this.#n.released += n;
  }

  stats(): PeerHealthStats {
    const l = this.#latency;
    return {
      url: this.url,
      state: this.#healthy ? "healthy" : "unhealthy",
      consecutiveFailures: this.#consecutive,
      latencyMs: l === undefined ? null : Math.round(l * 1000) / 1000,
      slowAfterMs: Math.round(this.slowAfterMs * 1000) / 1000,
      nextProbeInMs: this.#healthy ? null : Math.max(0, this.#nextProbeAt - this.#o.now()),
      ...this.#n,
      lastFailure: this.#lastFailure,
    };
  }

  #trip(): void {
    this.#healthy = false;
    this.#n.trips++;
    this.#schedule();
    this.onTrip?.();
  }

  #recover(): void {
    this.#healthy = true;
    this.#n.recoveries++;
  }

  /** The next probe: base * 2^attempt, capped, shortened by up to `probeJitter`. */
  #schedule(): void {
    const o = this.#o;
    const delay = Math.min(o.probeMaxMs, o.probeBaseMs * 2 ** Math.min(this.#attempt, 30));
    this.#nextProbeAt = o.now() + delay * (1 - o.probeJitter * o.random());
  }
}

/**
 * Whether `err` (or a cause of it) is a connection-level failure: an errno-style code
 * (`ECONNREFUSED`, `ECONNRESET`, `EHOSTUNREACH`, ...). An answer, whatever its status, is
 * not one.
 */
export function isConnectionError(err: unknown): boolean {
  let e: unknown = err;
  for (let depth = 0; depth < 5 && e !== null && typeof e === "object"; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string" && /^E[A-Z_]+$/.test(code)) return true;
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}

function isTimeoutReason(reason: unknown): boolean {
  return (reason as { name?: unknown } | null)?.name === "TimeoutError";
}

/**
 * One get waiting on the peer, releasable when the peer is judged unhealthy; linked into
 * its peer's list of waiting gets, oldest first. A list rather than a Set: on a loaded
 * peer path the Set's hashing and table churn cost more than the rest of the wrapper, and
 * its records outlived young-generation GCs (measured: 2 MB promoted per scavenge with
 * the Set, 0.1 MB without).
 */
class Waiter {
  prev: Waiter | undefined = undefined;
  next: Waiter | undefined = undefined;
  settled = false;
  constructor(
    /** When the get started (performance.now()). */
    readonly started: number,
    readonly reject: (err: unknown) => void,
  ) {}
}

/**
 * A transport's client of one peer, watched: every call's outcome goes to the peer's
 * {@link PeerHealth}, a slow get makes it pinged, and when the peer is judged unhealthy
 * the gets waiting on it are released. What {@link PeerSet.pickPeer} hands to core.
 */
export class MonitoredPeer<P extends PeerGetter> implements PeerGetter {
  readonly id: string;
  /** The transport's own client. */
  readonly client: P;
  readonly health: PeerHealth;
  /** As its client's: the wrapper settles no later than the client does. */
  readonly honoursSignals: boolean;
  /** Gets waiting on the peer: the oldest, the newest, how many. */
  #first: Waiter | undefined;
  #last: Waiter | undefined;
  #waiting = 0;
  /**
   * One timer per peer, not one per get (a timer per call cost a third of the client's
   * throughput in bench/transport-http.bench.ts): armed while gets wait, it looks for one
   * older than slowAfterMs, so a slow get is noticed within one to two slowAfterMs.
   */
  #slowTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(client: P, options: ResolvedHealthOptions) {
    this.id = client.id;
    this.client = client;
    this.honoursSignals = client.honoursSignals === true;
    this.health = new PeerHealth(client.id, options);
    this.health.onTrip = () => this.#releaseAll();
  }

  get(req: KeyRequest, opts?: PeerGetOptions): Promise<PeerValue> {
    const signal = opts?.signal;
    if (signal?.aborted) return this.client.get(req, opts);
    const health = this.health;
    health.callStarted();
    const started = performance.now();
    // At a trip the caller is released at once; the request itself is left to end by the
    // transport's own timeout (timeoutMs), which bounds the sockets a hung peer holds. An
    // AbortController per call to stop it sooner cost a fifth of the client's throughput
    // (bench/transport-http.bench.ts).
    return new Promise<PeerValue>((resolve, reject) => {
      const w = new Waiter(started, reject);
      this.#enlist(w);
      if (this.#slowTimer === undefined) this.#armSlowCheck();
      this.client.get(req, opts).then(
        (v) => {
          if (!this.#settle(w)) return;
          health.succeeded(performance.now() - started, true);
          resolve(v);
        },
        (err: unknown) => {
          if (!this.#settle(w)) return;
          this.#record(err, performance.now() - started, signal, true);
          reject(err);
        },
      );
    });
  }

  /** Appends `w` to the waiting gets (the newest). */
  #enlist(w: Waiter): void {
    const last = this.#last;
    w.prev = last;
    if (last === undefined) this.#first = w;
    else last.next = w;
    this.#last = w;
    this.#waiting++;
  }

  /** Takes `w` out of the waiting gets; false when it was settled already (released). */
  #settle(w: Waiter): boolean {
    if (w.settled) return false;
    w.settled = true;
    const { prev, next } = w;
    if (prev === undefined) this.#first = next;
    else prev.next = next;
    if (next === undefined) this.#last = prev;
    else next.prev = prev;
    w.prev = w.next = undefined;
    this.#waiting--;
    return true;
  }

  async set(req: SetRequest, opts?: CallOptions): Promise<void> {
    const started = performance.now();
    this.health.callStarted();
    try {
      await this.client.set(req, opts);
    } catch (err) {
      this.#record(err, performance.now() - started, opts?.signal, false);
      throw err;
    }
    this.health.succeeded(performance.now() - started, false);
  }

  async remove(req: KeyRequest, opts?: CallOptions): Promise<void> {
    const started = performance.now();
    this.health.callStarted();
    try {
      await this.client.remove(req, opts);
    } catch (err) {
      this.#record(err, performance.now() - started, opts?.signal, false);
      throw err;
    }
    this.health.succeeded(performance.now() - started, false);
  }

  /**
   * Sends a ping (or a probe) in the background: a get in {@link HEALTH_PROBE_GROUP}.
   * Answered within `probeTimeoutMs` with anything but a connection failure: alive.
   */
  ping(): void {
    const health = this.health;
    const ms = health.options.probeTimeoutMs;
    const ac = new AbortController();
    let done = false;
    const timer = setTimeout(() => {
      if (done) return;
      done = true;
      ac.abort(new DOMException(`ping timed out after ${ms} ms`, "TimeoutError"));
      health.pinged(false, `ping unanswered after ${ms} ms`);
    }, ms);
    timer.unref?.();
    const settle = (err: unknown): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (err !== undefined && isConnectionError(err)) {
        health.pinged(false, `ping failed: ${(err as Error).message ?? String(err)}`);
      } else health.pinged(true);
    };
    let p: Promise<unknown>;
    try {
      p = this.client.get({ group: HEALTH_PROBE_GROUP, key: "ping" }, { signal: ac.signal });
    } catch (err) {
      p = Promise.reject(err);
    }
    p.then(
      () => settle(undefined),
      (err: unknown) => settle(err ?? new Error("ping failed")),
    );
  }

  /** The outcome of a failed call: a health failure, or an answer (a success). */
  #record(err: unknown, ms: number, signal: AbortSignal | undefined, get: boolean): void {
    const health = this.health;
    if (err instanceof PeerError) {
      if (err.kind === "aborted" || signal?.aborted) {
        // The caller gave up: about the caller, unless its deadline passed (core's
        // peerTimeoutMs), which says the peer was too slow.
        if (signal?.aborted && isTimeoutReason(signal.reason)) {
          health.failed(`no answer within the caller's deadline (${Math.round(ms)} ms)`);
        }
        return;
      }
      if (err.kind !== "unavailable") {
        health.succeeded(ms, get); // the owner's verdict: an answer
        return;
      }
      if (err.local) return; // our own limit stopped it: says nothing of the peer
      health.failed(err.message);
      return;
    }
    if (signal?.aborted) {
      if (isTimeoutReason(signal.reason)) health.failed("no answer within the caller's deadline");
      return;
    }
    // Not a PeerError (a transport that throws raw errors): core loads the key locally,
    // so it counts as a failure, as `unavailable` does.
    health.failed(err instanceof Error ? err.message : String(err));
  }

  #armSlowCheck(): void {
    const t = setTimeout(() => this.#slowCheck(), this.health.slowAfterMs);
    t.unref?.();
    this.#slowTimer = t;
  }

  /** Pings the peer when a get has waited longer than slowAfterMs; re-arms while gets wait. */
  #slowCheck(): void {
    this.#slowTimer = undefined;
    const oldest = this.#first;
    if (oldest === undefined) return;
    if (performance.now() - oldest.started >= this.health.slowAfterMs && this.health.slow()) {
      this.ping();
    }
    if (this.#waiting > 0) this.#armSlowCheck();
  }

  /** The peer was judged unhealthy: every get waiting on it fails now (core loads locally). */
  #releaseAll(): void {
    if (this.#first === undefined) return;
    this.health.released(this.#waiting);
    const err = new PeerError(
      "unavailable",
      this.id,
      "peer judged unhealthy (hung or unreachable); loading locally",
    );
    // Taken off the list first: a rejection's handlers may start new gets on this peer.
    let w: Waiter | undefined = this.#first;
    this.#first = this.#last = undefined;
    this.#waiting = 0;
    while (w !== undefined) {
      const next: Waiter | undefined = w.next;
      w.prev = w.next = undefined;
      if (!w.settled) {
        w.settled = true;
        w.reject(err);
      }
      w = next;
    }
  }
}
