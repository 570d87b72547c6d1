/**
 * A byte budget shared by every peer answer a pool is reading at once: each answer takes
 * bytes from it as it is buffered (its whole declared Content-Length up front, else chunk
 * by chunk) and gives them back when the call ends, however it ends. So the bytes
 * buffered by all answers in flight together never exceed `maxBytes`, whatever the
 * number of concurrent calls.
 *
 * When the budget is exhausted a new answer is not waited for: its call fails at once as
 * `unavailable` (and core loads the key locally). Waiting would hold sockets and add
 * latency exactly when a burst of large answers is the problem, and could outlast the
 * call's deadline anyway; a local load is what core does for any answer it cannot read.
 */
export class ByteBudget {
  /** The bound, in bytes (`Infinity` = none). */
  readonly maxBytes: number;
  #used = 0;

  /** @param maxBytes an integer >= 1, or `Infinity` for no bound. */
  constructor(maxBytes: number) {
    if (
      typeof maxBytes !== "number" ||
      !(maxBytes === Number.POSITIVE_INFINITY || (Number.isSafeInteger(maxBytes) && maxBytes >= 1))
    ) {
      throw new RangeError(
        `ByteBudget: maxBytes must be an integer >= 1 or Infinity, got ${maxBytes}`,
      );
    }
    this.maxBytes = maxBytes;
  }

  /** Bytes taken and not yet given back. */
  get used(): number {
    return this.#used;
  }

  /** Takes `n` bytes if they fit; returns whether it did (nothing is taken otherwise). */
  tryTake(n: number): boolean {
    if (this.#used + n > this.maxBytes) return false;
    this.#used += n;
    return true;
  }

  /** Gives back `n` bytes taken earlier. */
  give(n: number): void {
    this.#used -= n;
  }
}
