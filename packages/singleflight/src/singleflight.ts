import { setMaxListeners } from "node:events";

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

/**
 * One in-flight call for one key. Internal: never handed out.
 *
 * The settle handlers are methods bound to this object rather than closures: that keeps
 * the per-call allocations to this object, two bound functions and the shared promise,
 * which measured as cheap as a bare `Map<key, Promise>` (see bench/).
 */
class Call<K, V> {
  /** Settles with fn's outcome, after the key has been released. */
  promise: Promise<V> | undefined = undefined;
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
  readonly calls: Map<K, Call<K, V>>;
  /** Present only when the starter passed a signal: only then can the call be aborted. */
  readonly controller: AbortController | undefined;

  constructor(key: K, calls: Map<K, Call<K, V>>, controller: AbortController | undefined) {
    this.key = key;
    this.calls = calls;
    this.controller = controller;
  }

  ok(value: V): V {
    this.release();
    return value;
  }

  err(error: unknown): never {
    this.release();
    throw error;
  }

  release(): void {
    this.settled = true;
    this.shared = this.callers > 1;
    this.detach();
  }

  /**
   * Removes this call from the map if it is still the one there: after forget(), a full
   * abort, or a reentrant same-key do() from inside fn, the key may hold a newer call.
   */
  detach(): void {
    if (this.calls.get(this.key) === this) this.calls.delete(this.key);
  }
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
  readonly #calls = new Map<K, Call<K, V>>();
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
    if (signal === undefined) {
      // Fast path: no per-caller closures, no promise besides the shared one.
      const call = this.#calls.get(key);
      if (call !== undefined) {
        call.callers++;
        return call.promise as Promise<V>;
      }
      return this.#start(key, fn, false).promise as Promise<V>;
    }
    if (signal.aborted) return Promise.reject(signal.reason);
    let call = this.#calls.get(key);
    if (call !== undefined) call.callers++;
    else call = this.#start(key, fn, true);
    return this.#wait(call, signal);
  }

  /**
   * Like {@link SingleFlight.do}, but also tells whether the result was shared with
   * other callers (Go's `shared` flag; see {@link SharedResult.shared}).
   */
  async doShared(key: K, fn: Work<V>, opts?: DoOptions): Promise<SharedResult<V>> {
    const signal = opts?.signal;
    if (signal?.aborted) throw signal.reason;
    let call = this.#calls.get(key);
    if (call !== undefined) call.callers++;
    else call = this.#start(key, fn, signal !== undefined);
    const value = await (signal === undefined
      ? (call.promise as Promise<V>)
      : this.#wait(call, signal));
    return { value, shared: call.shared };
  }

  /**
   * Releases `key`: the next caller starts a new call even if the current one is still
   * in flight. Callers already waiting keep waiting for the old call, which is not
   * aborted, and whose settling leaves the new call in place.
   *
   * @returns whether a call was in flight for `key`.
   */
  forget(key: K): boolean {
    const call = this.#calls.get(key);
    if (call === undefined) return false;
    call.detach();
    return true;
  }

  /** Whether a call for `key` is in flight (and would be joined by the next caller). */
  has(key: K): boolean {
    return this.#calls.has(key);
  }

  /** Number of keys with a call in flight. */
  get size(): number {
    return this.#calls.size;
  }

  #start(key: K, fn: Work<V>, abortable: boolean): Call<K, V> {
    // Without a signal from the starter nobody can ever abort this call, so fn gets the
    // shared never-aborting signal: an AbortController per call would cost more than
    // the rest of the call's bookkeeping together.
    const controller = abortable ? new AbortController() : undefined;
    const call = new Call<K, V>(key, this.#calls, controller);
    let result: Promise<V> | PromiseLike<V> | V;
    try {
      result = fn(controller === undefined ? this.#neverSignal() : controller.signal);
    } catch (err) {
      result = Promise.reject(err);
    }
    // .then(ok, err) rather than .finally: one reaction, no extra promise.
    call.promise = Promise.resolve(result).then(call.ok.bind(call), call.err.bind(call));
    this.#calls.set(key, call);
    return call;
  }

  #neverSignal(): AbortSignal {
    if (this.#never === undefined) {
      this.#never = new AbortController().signal;
      setMaxListeners(0, this.#never);
    }
    return this.#never;
  }

  /** One abortable caller's wait on `call`; its own promise, so it can leave early. */
  #wait(call: Call<K, V>, signal: AbortSignal): Promise<V> {
    return new Promise<V>((resolve, reject) => {
      const waiter: Waiter<K, V> = { call, reject };
      let watch = this.#watches.get(signal);
      if (watch === undefined) {
        watch = new Watch(signal, this.#watches);
        this.#watches.set(signal, watch);
        signal.addEventListener("abort", watch.onAbort, { once: true });
      }
      watch.waiters.add(waiter);
      const w = watch;
      (call.promise as Promise<V>).then(
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
  readonly call: Call<K, V>;
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
    for (const { call, reject } of this.waiters) {
      // Once fn has settled the result is already on its way: deliver it.
      if (call.settled) continue;
      reject(reason);
      if (--call.callers === 0 && call.controller !== undefined) {
        // Nobody waits any more: release the key so the next caller starts afresh,
        // then tell fn. Detach first, in case fn settles synchronously on abort.
        call.detach();
        call.controller.abort(reason);
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
