/**
 * Typed errors. Callers branch on `instanceof` or on `code`, never on messages.
 */

/**
 * Marks an error made by any copy of core with the names of its classes. One process can
 * hold two copies of core (the ES module build and the CommonJS build, when an app loads
 * the family both ways); a plain `instanceof` would then call another copy's NotFoundError
 * a stranger, and core would take a peer's "not found" for a failure. `Symbol.for` is the
 * one registry both copies share.
 */
const KINDS = Symbol.for("@tinycache/core.error-kinds");

/** Base class of every error tinycache throws on purpose. */
export class TinycacheError extends Error {
  readonly code: string;
  declare readonly [KINDS]: readonly string[];
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
    const kinds: string[] = [];
    for (let c: unknown = new.target; typeof c === "function" && c !== Error; ) {
      kinds.push((c as { name: string }).name);
      c = Object.getPrototypeOf(c);
    }
    Object.defineProperty(this, KINDS, { value: kinds });
  }

  /**
   * `err instanceof NotFoundError` holds for errors made by any copy of core in the
   * process (see KINDS), not only this one.
   */
  static override [Symbol.hasInstance]<T>(
    this: abstract new (
      ...args: never[]
    ) => T,
    value: unknown,
  ): value is T {
    if (Function.prototype[Symbol.hasInstance].call(this, value)) return true;
    const kinds = (value as { [KINDS]?: unknown } | null | undefined)?.[KINDS];
    return Array.isArray(kinds) && kinds.includes(this.name);
  }
}

/**
 * Thrown by a getter to say "this key does not exist in the source of truth", which is
 * distinct from failing. It may be cached negatively (penetration defence).
 */
export class NotFoundError extends TinycacheError {
  readonly key: string;
  constructor(key: string, message = `${key} not exist`) {
    super("not_found", message);
    this.key = key;
  }
}

/** A bad argument: key too long, value too large, bad option. Never stored. */
export class InvalidArgumentError extends TinycacheError {
  constructor(message: string) {
    super("invalid_argument", message);
  }
}

/**
 * This node is running as many getter calls as its group allows (`maxConcurrentLoads`)
 * and as many more are already queued (`maxQueuedLoads`): the load is refused at once
 * rather than queued without bound. Never cached. A peer asking this node for the key is
 * answered `unavailable` (HTTP 503) and loads the key itself, within its own limit.
 */
export class OverloadedError extends TinycacheError {
  constructor(message: string) {
    super("overloaded", message);
  }
}

/**
 * What went wrong talking to a peer:
 * - `unavailable`: unreachable, refused, reset, timed out, or an answer we cannot read.
 *   core counts a peer error and loads locally.
 * - `not_found`: the owner's source says the key does not exist. Passed on.
 * - `getter_failed`: the owner's getter failed. Passed on (do not ask the source twice).
 * - `invalid_argument`: the owner rejected the request (e.g. key over its limits). Passed on.
 * - `aborted`: the caller's own signal aborted the call. Passed on.
 */
export type PeerErrorKind =
  | "unavailable"
  | "not_found"
  | "getter_failed"
  | "invalid_argument"
  | "aborted";

export class PeerError extends TinycacheError {
  readonly kind: PeerErrorKind;
  readonly peer: string;
  /**
   * True when one of our own limits stopped the call (the caller's `maxValueBytes`, the
   * pool's budget of answer bytes in flight), not the peer: peer health does not count it
   * as the peer's failure. Core loads the key locally all the same.
   */
  readonly local: boolean;
  constructor(
    kind: PeerErrorKind,
    peer: string,
    message: string,
    options?: { cause?: unknown; local?: boolean },
  ) {
    super(`peer_${kind}`, `peer ${peer}: ${message}`, options);
    this.kind = kind;
    this.peer = peer;
    this.local = options?.local === true;
  }
}
