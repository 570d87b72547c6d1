import { OverloadedError } from "../errors.js";

/** Releases a slot taken by {@link Bulkhead.acquire}; safe to call twice. */
export type Release = () => void;

interface Waiter {
  resolve: (release: Release) => void;
  reject: (err: unknown) => void;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
}

/**
 * At most `limit` holders at once; up to `queueLimit` more wait in FIFO order; beyond,
 * {@link acquire} rejects at once with {@link OverloadedError}. A waiter whose signal
 * aborts leaves the queue (rejects with the signal's reason).
 */
export class Bulkhead {
  readonly limit: number;
  readonly queueLimit: number;
  readonly #what: string;
  #active = 0;
  /** FIFO; aborted waiters are removed at once (splice: the queue is short in practice). */
  readonly #queue: Waiter[] = [];
  /** Acquisitions that had to wait. */
  queued = 0;
  /** Acquisitions refused because the queue was full. */
  rejected = 0;

  constructor(limit: number, queueLimit: number, what: string) {
    this.limit = limit;
    this.queueLimit = queueLimit;
    this.#what = what;
  }

  /** Holders now. */
  get active(): number {
    return this.#active;
  }

  /** Waiters now. */
  get waiting(): number {
    return this.#queue.length;
  }

  /**
   * A slot: at once when one is free, else after the waiters before it.
   * @throws OverloadedError (at once) when the queue is full; `signal.reason` when it aborts.
   */
  acquire(signal?: AbortSignal): Promise<Release> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.#active < this.limit) {
      this.#active++;
      return Promise.resolve(this.#releaser());
    }
    if (this.#queue.length >= this.queueLimit) {
      this.rejected++;
      return Promise.reject(
        new OverloadedError(
          `${this.#what}: ${this.limit} calls running and ${this.queueLimit} queued`,
        ),
      );
    }
    this.queued++;
    return new Promise<Release>((resolve, reject) => {
      const w: Waiter = { resolve, reject, signal, onAbort: undefined };
      if (signal !== undefined) {
        w.onAbort = () => {
          const i = this.#queue.indexOf(w);
          if (i !== -1) this.#queue.splice(i, 1);
          reject(signal.reason);
        };
        signal.addEventListener("abort", w.onAbort, { once: true });
      }
      this.#queue.push(w);
    });
  }

  #releaser(): Release {
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const next = this.#queue.shift();
      if (next === undefined) {
        this.#active--;
        return;
      }
      // The slot passes straight to the next waiter: #active stays the same.
      if (next.onAbort) next.signal?.removeEventListener("abort", next.onAbort);
      next.resolve(this.#releaser());
    };
  }
}
