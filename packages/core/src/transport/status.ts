import {
  InvalidArgumentError,
  NotFoundError,
  OverloadedError,
  PeerError,
  type PeerErrorKind,
} from "../errors.js";

/**
 * The one mapping between core's errors and what travels between peers, for every
 * transport. A transport only translates a {@link StatusCode} to and from its wire (an
 * HTTP status, a Connect code); what each error means is decided here, once.
 *
 * The names are the Connect/gRPC code names, so a Connect transport maps them with
 * `codeFromString`/`codeToString` and an HTTP transport with a small table.
 *
 * Server side, {@link statusOf} (what a peer is told about an error a group threw):
 * | thrown by the group | status |
 * |---|---|
 * | NotFoundError (or an error with `code: "not_found"`) | not_found |
 * | InvalidArgumentError (or `code: "invalid_argument"`) | invalid_argument |
 * | OverloadedError (or `code: "overloaded"`: the getter limit and its queue are full) | unavailable (the asker loads the key itself) |
 * | anything, after the request's own signal aborted | canceled, or deadline_exceeded for a TimeoutError reason |
 * | anything else (the getter failed) | internal |
 *
 * A server also answers, on its own: unknown group -> failed_precondition (the asker loads
 * the key itself), missing or wrong secret -> unauthenticated, body too large ->
 * resource_exhausted.
 *
 * Client side, {@link peerErrorFor} (what core is told, as a {@link PeerError} kind):
 * | status | kind |
 * |---|---|
 * | not_found | not_found (passed on to the caller, cached negatively) |
 * | invalid_argument | invalid_argument (passed on) |
 * | internal, unknown, when the owner marked it as its verdict | getter_failed (passed on) |
 * | anything else | unavailable (core loads the key locally) |
 */
export type StatusCode =
  | "not_found"
  | "invalid_argument"
  | "failed_precondition"
  | "unauthenticated"
  | "resource_exhausted"
  | "canceled"
  | "deadline_exceeded"
  | "unavailable"
  | "internal";

/** Longest error message sent to a peer: a runaway getter message must not bloat answers. */
export const MAX_ERROR_MESSAGE = 1024;

/** An error's message for a peer, capped at {@link MAX_ERROR_MESSAGE} characters. */
export function errorMessage(err: unknown): string {
  let m: string;
  try {
    m = err instanceof Error ? err.message : String(err);
  } catch {
    m = "internal error";
  }
  return m.length > MAX_ERROR_MESSAGE ? `${m.slice(0, MAX_ERROR_MESSAGE)}...` : m;
}

/**
 * What a server tells a peer about an error thrown by a group call. Typed errors are
 * recognised by class and, for a second copy of core loaded in one process, by `code`.
 * `signal` is the request's own: once it aborted, the error is about the request (the
 * caller left or its deadline passed), never the getter's verdict.
 */
export function statusOf(err: unknown, signal?: AbortSignal): StatusCode {
  const code = (err as { code?: unknown } | null)?.code;
  if (err instanceof NotFoundError || code === "not_found" || code === "peer_not_found") {
    return "not_found";
  }
  if (
    err instanceof InvalidArgumentError ||
    code === "invalid_argument" ||
    code === "peer_invalid_argument"
  ) {
    return "invalid_argument";
  }
  if (err instanceof OverloadedError || code === "overloaded") return "unavailable";
  if (signal?.aborted) {
    const reason: unknown = signal.reason;
    return (reason as { name?: unknown } | null)?.name === "TimeoutError"
      ? "deadline_exceeded"
      : "canceled";
  }
  return "internal";
}

/**
 * The {@link PeerErrorKind} of a status a peer answered (see the table above). Any name
 * outside {@link StatusCode} (a code of a newer peer, a proxy's answer) is `unavailable`.
 * @param fromOwner - whether the answer is the owner's own verdict: only then is
 *   `internal`/`unknown` the getter's failure; from anything else (an HTTP stack, a proxy)
 *   it means the owner could not answer.
 */
export function kindOfStatus(status: string, fromOwner: boolean): PeerErrorKind {
  switch (status) {
    case "not_found":
      return "not_found";
    case "invalid_argument":
      return "invalid_argument";
    case "internal":
    case "unknown":
      return fromOwner ? "getter_failed" : "unavailable";
    default:
      return "unavailable";
  }
}

/** The PeerError for a status `peer` answered, with the peer's message. */
export function peerErrorFor(
  status: string,
  peer: string,
  message: string,
  fromOwner: boolean,
  options?: { cause?: unknown },
): PeerError {
  return new PeerError(kindOfStatus(status, fromOwner), peer, message, options);
}

/**
 * Turns whatever a client call threw into a PeerError: PeerErrors pass through; after the
 * caller's signal aborted, `aborted`; anything else is a failure to talk to the peer
 * (`unavailable`), never the owner's verdict.
 */
export function toPeerError(err: unknown, peer: string, signal?: AbortSignal): PeerError {
  if (err instanceof PeerError) return err;
  if (signal?.aborted) {
    return new PeerError("aborted", peer, "aborted by the caller", { cause: signal.reason });
  }
  return new PeerError("unavailable", peer, errorMessage(err), { cause: err });
}
