import { setMaxListeners } from "node:events";
import { CallTable } from "./private/call-table.js";

/** Options for {@link SingleFlight.do} and {@link SingleFlight.doShared}. */
export interface DoOptions {
  /**
   * Aborts this caller's wait only: the returned promise rejects with `signal.reason`
   * (as `fetch` does), while other callers of the same key keep waiting. The call itself
   * (the `signal` handed to `fn`) is aborted only once every caller still waiting for it
   * has aborted. An already-aborted signal rejects at once, without starting or joining
   * a call.
   */
  signal?: AbortSignal | undefined;
}

/** What {@link SingleFlight.doShared} resolves to. */
export interface SharedResult<V> {
  /** The value `fn` resolved to. */
  value: V;
  /**
   * Go's `shared` flag: `true` when the result went to more than one caller, that is,
   * when at least one other caller (through `do` or `doShared`) joined the same call and
   * had not aborted when the call settled. Every caller of one call sees the same flag.
   */
  shared: boolean;
}

/**
 * The work function. `signal` aborts only when every caller still waiting for this call
 * has aborted; pass it on to your I/O (`fetch(url, { signal })`). It may return a value,
 * a promise, or throw; a synchronous throw becomes a rejection.
 */
export type Work<V> = (signal: AbortSignal) => Promise<V> | PromiseLike<V> | V;

/** The two maps of one SingleFlight, as the settle handlers and Meta need them. */
interface Registry<K, V> {
  /** The in-flight call per key, as its shared promise. */
  readonly calls: CallTable<K, Promise<V>>;
  /** Meta of the calls that have one, keyed by the call's promise. */
  readonly metas: Map<Promise<V>, Meta<K, V>>;
}

/**
 * Bookkeeping for a call that needs more than its promise: a call its starter can abort
 * (an AbortController and a count of the callers still waiting), a call started by
 * doShared (a count of callers, for `shared`), or a plain call that an abortable caller
 * joined (a `settled` flag). Internal: never handed out.
 *
 * Calls made only through plain `do` without a signal -- the common case -- have no Meta:
 * any per-call object measured ~150-200 ns per call, about a third on top of a bare
 * `Map<key, Promise>` (see bench/).
 *
 * Meta is keyed by the call's promise rather than its key, so it can never be mixed up
 * with a newer call for the same key (after forget(), a full abort or a reentrant
 * same-key do()), and it lives until its own call settles even once the key is released.
 */
class Meta<K, V> {
  /**
   * Callers waiting (joined and not aborted), the starter included. Callers without a
   * signal never leave, so this reaches 0 only when every waiter has aborted.
   */
  callers = 1;
  /** fn has settled: aborts no longer matter and the result is being delivered. */
  settled = false;
  /** Snapshot of `callers > 1` at settle time, for doShared. */
  shared = false;
  readonly key: K;
  readonly promise: Promise<V>;
  /** Present only when the starter passed a signal: only then can the call be aborted. */
  readonly controller: AbortController | undefined;
  readonly #registry: Registry<K, V>;

  constructor(
    key: K,
    promise: Promise<V>,
    controller: AbortController | undefined,
    registry: Registry<K, V>,
  ) {
    this.key = key;
    this.promise = promise;
    this.controller = controller;
    this.#registry = registry;
  }

  /**
   * Every waiter has aborted: release the key if it still holds this call (it may hold
   * a newer one) and drop this Meta, which nobody can reach any more.
   */
  detach(): void {
    const { calls, metas } = this.#registry;
    if (calls.get(this.key) === this.promise) calls.delete(this.key);
    metas.delete(this.promise);
  }
}

/**
 * Releases the settled call `promise` for `key`. Removes it from `calls` only if it is
 * still the one there: after forget(), a full abort, or a reentrant same-key do() from
 * inside fn, the key may hold a newer call, which must stay. Marks its Meta, if any,
 * settled and drops it.
 */
function release<K, V>(registry: Registry<K, V>, key: K, promise: Promise<V>): void {
  const { calls, metas } = registry;
  if (calls.get(key) === promise) calls.delete(key);
  // Usually no call has Meta: one size check keeps the plain path free of lookups.
  if (metas.size === 0) return;
  const meta = metas.get(promise);
  if (meta === undefined) return;
  metas.delete(promise);
  meta.settled = true;
  meta.shared = meta.callers > 1;
}

/**
 * Collapses concurrent calls per key into one, like Go's `golang.org/x/sync/singleflight`:
 * while a call for a key is in flight, later callers for that key join it instead of
 * calling `fn` again, and all get the same value or the same rejection (the same error
 * object). The key is released the moment the call settles, so the next caller after
 * that starts a fresh call: this deduplicates concurrent work, it does not cache.
 *
 * Keys are compared as `Map` keys (SameValueZero), so any value may be a key.
 *
 * @typeParam K - key type.
 * @typeParam V - value type the work resolves to.
 */
export class SingleFlight<K, V> {
  /**
   * The in-flight call per key, stored as its shared promise itself (no wrapper object:
   * see {@link Meta} for what that costs), plus the Meta of the few calls that need it.
   */
  readonly #registry: Registry<K, V> = { calls: new CallTable(), metas: new Map() };
  /** Waiters grouped by the signal they passed: one abort listener per signal. */
  readonly #watches = new WeakMap<AbortSignal, Watch<K, V>>();
  /**
   * The signal handed to `fn` when no caller can ever abort the call. One per instance,
   * made on first use: an AbortController per call would cost more than the rest of the
   * call's bookkeeping together. It never aborts, so listeners on it never fire; work
   * that adds listeners should remove them when it settles (fetch and node:http do), or
   * they live as long as this SingleFlight. Concurrent work may legitimately hold many
   * listeners at once, so Node's leak warning is turned off for this signal only.
   */
  #never: AbortSignal | undefined = undefined;

  /**
   * Runs `fn` for `key`, or joins the call already in flight for `key`.
   *
   * @param key - identifies the work; compared with SameValueZero.
   * @param fn - the work; called at most once per flight, with a signal that aborts only
   *   when every caller still waiting has aborted. Not called when joining.
   * @param opts - `signal` aborts this caller's wait (see {@link DoOptions.signal}).
   * @returns the value of the (possibly shared) call; rejects with its error, or with
   *   `signal.reason` when this caller's signal aborts first.
   */
  do(key: K, fn: Work<V>, opts?: DoOptions): Promise<V> {
    const signal = opts?.signal;
    const { calls, metas } = this.#registry;
    const promise = calls.get(key);
    if (signal === undefined) {
      // Fast path: a map lookup and the shared promise, as a bare Map<key, Promise>.
      if (promise === undefined) return this.#start(key, fn, this.#neverSignal());
      if (metas.size !== 0) {
        // A plain joiner never leaves: it pins an abortable call (fn's signal will not
        // abort) and counts for `shared`.
        const meta = metas.get(promise);
        if (meta !== undefined) meta.callers++;
      }
      return promise;
    }
    if (signal.aborted) return Promise.reject(signal.reason);
    const meta =
      promise === undefined
        ? this.#startTracked(key, fn, new AbortController())
        : this.#join(key, promise);
    return this.#wait(meta, signal);
  }

  /**
   * Like {@link SingleFlight.do}, but also tells whether the result was shared with
   * other callers (Go's `shared` flag; see {@link SharedResult.shared}).
   */
  async doShared(key: K, fn: Work<V>, opts?: DoOptions): Promise<SharedResult<V>> {
    const signal = opts?.signal;
    if (signal?.aborted) throw signal.reason;
    const { calls, metas } = this.#registry;
    const promise = calls.get(key);
    let meta: Meta<K, V>;
    if (promise === undefined) {
      // Starting: Meta counts the callers that join later, for `shared`.
      meta = this.#startTracked(key, fn, signal === undefined ? undefined : new AbortController());
    } else if (signal === undefined) {
      const known = metas.size === 0 ? undefined : metas.get(promise);
      // No Meta: a plain call, whose starter never leaves, so this joiner shares it.
      if (known === undefined) return { value: await promise, shared: true };
      known.callers++;
      meta = known;
    } else {
      meta = this.#join(key, promise);
    }
    const value = await (signal === undefined ? meta.promise : this.#wait(meta, signal));
    return { value, shared: meta.shared };
  }

  /**
   * Releases `key`: the next caller starts a new call even if the current one is still
   * in flight. Callers already waiting keep waiting for the old call, which is not
   * aborted, and whose settling leaves the new call in place.
   *
   * @returns whether a call was in flight for `key`.
   */
  forget(key: K): boolean {
    // The old call's Meta, keyed by its promise, stays until that call settles: its
    // waiters still need the caller count and `settled`.
    return this.#registry.calls.delete(key);
  }

  /** Whether a call for `key` is in flight (and would be joined by the next caller). */
  has(key: K): boolean {
    return this.#registry.calls.has(key);
  }

  /** Number of keys with a call in flight. */
  get size(): number {
    return this.#registry.calls.size;
  }

  /** Calls fn and registers the call's shared promise under `key`. */
  #start(key: K, fn: Work<V>, signal: AbortSignal): Promise<V> {
    let result: Promise<V> | PromiseLike<V> | V;
    try {
      result = fn(signal);
    } catch (err) {
      result = Promise.reject(err);
    }
    const registry = this.#registry;
    // The release runs in the reaction that settles the shared promise, so the key is
    // free before any caller's await resumes. .then(ok, err) rather than .finally: one
    // reaction, no extra promise. Closures, not a per-call object (see Meta).
    const promise: Promise<V> = Promise.resolve(result).then(
      (value) => {
        release(registry, key, promise);
        return value;
      },
      (error: unknown) => {
        release(registry, key, promise);
        throw error;
      },
    );
    // Registered after fn returns: a same-key do() issued from inside fn started a call
    // of its own, which this one replaces in the map but never removes (identity check).
    registry.calls.set(key, promise);
    return promise;
  }

  /**
   * Starts a call with Meta: abortable when `controller` is given (the starter passed a
   * signal), otherwise only counting its callers (doShared without a signal).
   */
  #startTracked(key: K, fn: Work<V>, controller: AbortController | undefined): Meta<K, V> {
    // Without a signal from the starter nobody can ever abort this call, so fn gets the
    // shared never-aborting signal.
    const signal = controller === undefined ? this.#neverSignal() : controller.signal;
    const promise = this.#start(key, fn, signal);
    const meta = new Meta(key, promise, controller, this.#registry);
    // fn has returned but not settled yet (the release is a reaction), so this is in
    // place before the release looks for it.
    this.#registry.metas.set(promise, meta);
    return meta;
  }

  /** Counts one more caller of the in-flight call `promise`, giving it Meta if it has none. */
  #join(key: K, promise: Promise<V>): Meta<K, V> {
    const metas = this.#registry.metas;
    let meta = metas.get(promise);
    if (meta === undefined) {
      // A plain call: its starter passed no signal, so it cannot be aborted, and the
      // starter counts as a caller that never leaves (callers starts at 1).
      meta = new Meta(key, promise, undefined, this.#registry);
      metas.set(promise, meta);
    }
    meta.callers++;
    return meta;
  }

  #neverSignal(): AbortSignal {
    if (this.#never === undefined) {
      this.#never = new AbortController().signal;
      setMaxListeners(0, this.#never);
    }
    return this.#never;
  }

  /** One abortable caller's wait on a call; its own promise, so it can leave early. */
  #wait(meta: Meta<K, V>, signal: AbortSignal): Promise<V> {
    return new Promise<V>((resolve, reject) => {
      const waiter: Waiter<K, V> = { meta, reject };
      let watch = this.#watches.get(signal);
      if (watch === undefined) {
        watch = new Watch(signal, this.#watches);
        this.#watches.set(signal, watch);
        signal.addEventListener("abort", watch.onAbort, { once: true });
      }
      watch.waiters.add(waiter);
      const w = watch;
      meta.promise.then(
        (value) => {
          w.leave(waiter);
          resolve(value);
        },
        (err: unknown) => {
          w.leave(waiter);
          reject(err);
        },
      );
    });
  }
}

/** A caller waiting with a signal. */
interface Waiter<K, V> {
  readonly meta: Meta<K, V>;
  readonly reject: (reason: unknown) => void;
}
/**
 * Every waiter of one SingleFlight that passed the same signal, behind one abort
 * listener. One listener per caller would make a long-lived signal shared by many
 * callers (a server's shutdown signal, say) cost O(n) per caller -- Node's EventTarget
 * scans its listeners on every add -- and trip MaxListenersExceededWarning past 10.
 * The listener is removed as soon as no waiter is left, so idle signals carry nothing.
 */
class Watch<K, V> {
  readonly waiters = new Set<Waiter<K, V>>();
  readonly #signal: AbortSignal;
  readonly #watches: WeakMap<AbortSignal, Watch<K, V>>;

  constructor(signal: AbortSignal, watches: WeakMap<AbortSignal, Watch<K, V>>) {
    this.#signal = signal;
    this.#watches = watches;
  }

  readonly onAbort = (): void => {
    if (this.#watches.get(this.#signal) === this) this.#watches.delete(this.#signal);
    const reason: unknown = this.#signal.reason;
    for (const { meta, reject } of this.waiters) {
      // Once fn has settled the result is already on its way: deliver it.
      if (meta.settled) continue;
      reject(reason);
      if (--meta.callers === 0 && meta.controller !== undefined) {
        // Nobody waits any more: release the key so the next caller starts afresh,
        // then tell fn. Detach first, in case fn settles synchronously on abort.
        meta.detach();
        meta.controller.abort(reason);
      }
    }
    this.waiters.clear();
  };

  leave(waiter: Waiter<K, V>): void {
    if (!this.waiters.delete(waiter) || this.waiters.size !== 0) return;
    this.#signal.removeEventListener("abort", this.onAbort);
    if (this.#watches.get(this.#signal) === this) this.#watches.delete(this.#signal);
  }
}
