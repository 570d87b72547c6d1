import { PeerError, type PeerErrorKind } from "./errors.js";
import type { Logger } from "./peers.js";

/**
 * How one peer get ended, as the group judged it:
 * - `ok`: the owner's value was used.
 * - `timeout`: the group's `peerTimeoutMs` or the transport's own timeout ran out (the
 *   key then loads locally, as for `unavailable`).
 * - a {@link PeerErrorKind}: `unavailable` (unreachable, refused, an answer we cannot read
 *   or that is over `maxValueBytes`; the key loads locally), `not_found` (the owner's
 *   verdict), `getter_failed`, `invalid_argument`, `aborted` (every caller gave up).
 *   An error that is not a PeerError counts as `unavailable`, as the group treats it.
 */
export type PeerCallOutcome = "ok" | "timeout" | PeerErrorKind;

/** One get sent to the key's owner (a peer), timed from the call to its settling. */
export interface PeerCallEvent {
  /** The group's name. */
  readonly group: string;
  /** The peer's id (`PeerGetter.id`: its base URL for the HTTP and Connect pools). */
  readonly peer: string;
  readonly outcome: PeerCallOutcome;
  /** Wall time of the call in seconds, as the group waited for it (monotonic clock). */
  readonly seconds: number;
}

/**
 * How one getter call ended: `ok` (a value, cached unless it expired at once),
 * `not_found` (the getter threw NotFoundError), `error` (anything else it threw, an
 * abort included, or a result the group refused: not bytes, over `maxValueBytes`). The
 * same split as the `localLoads` / `localLoadErrs` counters.
 */
export type LoadOutcome = "ok" | "not_found" | "error";

/** One call of the group's getter on this node, timed from the call to its settling. */
export interface LoadEvent {
  /** The group's name. */
  readonly group: string;
  readonly outcome: LoadOutcome;
  /**
   * Wall time of the getter call in seconds (monotonic clock). Time spent waiting for a
   * slot of `maxConcurrentLoads` is not included, and a load refused with
   * OverloadedError calls no getter and reports nothing.
   */
  readonly seconds: number;
}

/**
 * Receives the timing of what a group waits for on a miss: each get sent to a peer, each
 * getter call. Both methods are optional. Cache hits report nothing (and cost nothing:
 * with no observer, the group reads no clock and allocates no event). Calls are
 * synchronous, on the load's path: keep them cheap (e.g. a histogram's `observe`). A
 * method that throws (or returns a promise that rejects) never fails a get: the group
 * logs its first failure at warn and keeps calling it. `@tinycache/prometheus` provides
 * one that feeds prom-client histograms.
 */
export interface GroupObserver {
  /** After each get sent to a peer (never for set/remove or a peer's request to us). */
  peerCall?(event: PeerCallEvent): void;
  /** After each getter call on this node (not for values fetched from a peer). */
  load?(event: LoadEvent): void;
}

/** `performance.now()` at the start of something timed, for {@link elapsedSeconds}. */
export function startTimer(): number {
  return performance.now();
}

function elapsedSeconds(start: number): number {
  return (performance.now() - start) / 1000;
}

/**
 * A group's observer, guarded: events are built and sent here, and whatever the observer
 * throws is caught and logged once. The group keeps `undefined` instead of this when it
 * has no observer, so the miss path pays for a branch only.
 * @internal
 */
export class ObserverCalls {
  readonly #observer: GroupObserver;
  readonly #group: string;
  readonly #logger: Logger;
  #failed = false;
  readonly #onError = (err: unknown): void => this.#failure(err);

  constructor(observer: GroupObserver, group: string, logger: Logger) {
    this.#observer = observer;
    this.#group = group;
    this.#logger = logger;
  }

  peerCall(peer: string, outcome: PeerCallOutcome, start: number): void {
    const seconds = elapsedSeconds(start);
    try {
      const r: unknown = this.#observer.peerCall?.({ group: this.#group, peer, outcome, seconds });
      if (r !== undefined) this.#settle(r);
    } catch (err) {
      this.#failure(err);
    }
  }

  load(outcome: LoadOutcome, start: number): void {
    const seconds = elapsedSeconds(start);
    try {
      const r: unknown = this.#observer.load?.({ group: this.#group, outcome, seconds });
      if (r !== undefined) this.#settle(r);
    } catch (err) {
      this.#failure(err);
    }
  }

  /** An async observer's rejection would otherwise be unhandled (and end the process). */
  #settle(r: unknown): void {
    if (typeof (r as PromiseLike<unknown>).then === "function") {
      (r as PromiseLike<unknown>).then(undefined, this.#onError);
    }
  }

  #failure(err: unknown): void {
    if (this.#failed) return;
    this.#failed = true;
    this.#logger.warn(
      { err, group: this.#group },
      "tinycache: the group's observer threw (later failures are not logged); gets go on",
    );
  }
}

/**
 * The outcome of a failed peer get. `flight` aborts when every caller gave up; `call` is
 * the flight's signal with the group's `peerTimeoutMs` on top, so when it aborted and the
 * flight's did not, the timeout ran out. The transports' own timeout is a PeerError
 * `unavailable` caused by a TimeoutError.
 * @internal
 */
export function peerCallOutcome(
  err: unknown,
  flight: AbortSignal,
  call: AbortSignal | undefined,
): PeerCallOutcome {
  if (flight.aborted) return "aborted";
  if (call?.aborted) return "timeout";
  if (!(err instanceof PeerError)) return "unavailable";
  if (err.kind === "unavailable" && (err.cause as { name?: unknown })?.name === "TimeoutError") {
    return "timeout";
  }
  return err.kind;
}
