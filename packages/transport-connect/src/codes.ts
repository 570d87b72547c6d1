import { Code, ConnectError } from "@connectrpc/connect";
import {
  InvalidArgumentError,
  NotFoundError,
  PeerError,
  type PeerErrorKind,
} from "@tinycache/core";

/**
 * The mapping between core's errors and Connect codes, in both directions, in one place
 * so that the server and the client agree.
 *
 * Server side (what a peer is told):
 * | thrown by the group | code |
 * |---|---|
 * | NotFoundError | not_found |
 * | InvalidArgumentError, bad request (empty group, long key) | invalid_argument |
 * | unknown group | failed_precondition (the asker loads locally) |
 * | missing or wrong secret | unauthenticated |
 * | the call was cancelled / its deadline passed | canceled / deadline_exceeded |
 * | anything else (the getter failed) | internal |
 *
 * Client side (what core is told, as a {@link PeerError} kind):
 * | code | kind |
 * |---|---|
 * | not_found | not_found |
 * | invalid_argument | invalid_argument |
 * | internal, unknown, marked by the owner as its getter's failure | getter_failed |
 * | the caller's signal aborted | aborted |
 * | anything else (unavailable, deadline_exceeded, unimplemented, failed_precondition, unauthenticated, network errors) | unavailable |
 */

const CODE_NAMES: readonly string[] = [
  "ok",
  "canceled",
  "unknown",
  "invalid_argument",
  "deadline_exceeded",
  "not_found",
  "already_exists",
  "permission_denied",
  "resource_exhausted",
  "failed_precondition",
  "aborted",
  "out_of_range",
  "unimplemented",
  "internal",
  "unavailable",
  "data_loss",
  "unauthenticated",
];

/** Connect's wire name of a code ("not_found"). */
export function codeName(code: Code): string {
  return CODE_NAMES[code] ?? "unknown";
}

/** The code of a wire name, or Unknown. */
export function codeFromName(name: unknown): Code {
  const i = typeof name === "string" ? CODE_NAMES.indexOf(name) : -1;
  return i > 0 ? (i as Code) : Code.Unknown;
}

/** HTTP status of a Connect unary error (https://connectrpc.com/docs/protocol#error-codes). */
export function httpStatusOf(code: Code): number {
  switch (code) {
    case Code.Canceled:
      return 499;
    case Code.InvalidArgument:
    case Code.FailedPrecondition:
    case Code.OutOfRange:
      return 400;
    case Code.DeadlineExceeded:
      return 504;
    case Code.NotFound:
      return 404;
    case Code.AlreadyExists:
    case Code.Aborted:
      return 409;
    case Code.PermissionDenied:
      return 403;
    case Code.ResourceExhausted:
      return 429;
    case Code.Unimplemented:
      return 501;
    case Code.Unavailable:
      return 503;
    case Code.Unauthenticated:
      return 401;
    default:
      return 500;
  }
}

/** The code a client infers from an HTTP status when the body carries no error JSON. */
export function codeFromHttpStatus(status: number): Code {
  switch (status) {
    case 400:
      return Code.Internal;
    case 401:
      return Code.Unauthenticated;
    case 403:
      return Code.PermissionDenied;
    case 404:
      return Code.Unimplemented;
    case 429:
    case 502:
    case 503:
    case 504:
      return Code.Unavailable;
    default:
      return Code.Unknown;
  }
}

/**
 * Metadata (a response header, or a gRPC trailer) that marks an internal error as the
 * owner's verdict "the getter failed". Without it an internal/unknown error may come from
 * the client's own HTTP stack (connect-node reports e.g. an HTTP/2 GOAWAY as internal),
 * and must count as "unavailable" so core loads the key locally.
 */
export const VERDICT_HEADER = "tinycache-verdict";

// Getter error messages travel to peers; a runaway message must not bloat every answer.
const MAX_MESSAGE = 1024;

function messageOf(err: unknown): string {
  const m = err instanceof Error ? err.message : String(err);
  return m.length > MAX_MESSAGE ? `${m.slice(0, MAX_MESSAGE)}...` : m;
}

/**
 * What the server tells a peer about an error of a group call. The group signals "not
 * found" and "bad argument" with core's typed errors (checked by class and, for copies
 * of core loaded twice, by `code`).
 */
export function serverError(err: unknown, signal?: AbortSignal): ConnectError {
  if (err instanceof ConnectError) return err;
  const code = (err as { code?: unknown } | null)?.code;
  if (err instanceof NotFoundError || code === "not_found") {
    return new ConnectError(messageOf(err), Code.NotFound);
  }
  if (err instanceof InvalidArgumentError || code === "invalid_argument") {
    return new ConnectError(messageOf(err), Code.InvalidArgument);
  }
  if (signal?.aborted) {
    const reason: unknown = signal.reason;
    const timedOut = (reason as { name?: unknown } | null)?.name === "TimeoutError";
    return new ConnectError(
      timedOut ? "deadline exceeded" : "canceled",
      timedOut ? Code.DeadlineExceeded : Code.Canceled,
    );
  }
  return new ConnectError(messageOf(err), Code.Internal, { [VERDICT_HEADER]: "getter_failed" });
}

/**
 * The PeerError kind of a Connect code (see the table above). `fromOwner` says the error
 * is the owner's answer (see {@link VERDICT_HEADER}), needed for internal/unknown.
 */
export function kindOf(code: Code, fromOwner: boolean): PeerErrorKind {
  switch (code) {
    case Code.NotFound:
      return "not_found";
    case Code.InvalidArgument:
      return "invalid_argument";
    case Code.Internal:
    case Code.Unknown:
      return fromOwner ? "getter_failed" : "unavailable";
    default:
      return "unavailable";
  }
}

/** Turns whatever a call threw into the PeerError core expects. */
export function toPeerError(err: unknown, peer: string, signal?: AbortSignal): PeerError {
  if (err instanceof PeerError) return err;
  if (signal?.aborted) {
    return new PeerError("aborted", peer, "aborted by the caller", { cause: err });
  }
  // connect-node and our own client report network failures as ConnectErrors; anything
  // else escaping a call is a failure to talk to the peer, never the owner's verdict.
  if (!(err instanceof ConnectError)) {
    return new PeerError("unavailable", peer, messageOf(err), { cause: err });
  }
  const ce = err;
  const fromOwner = ce.metadata.get(VERDICT_HEADER) === "getter_failed";
  return new PeerError(kindOf(ce.code, fromOwner), peer, `${codeName(ce.code)}: ${ce.rawMessage}`, {
    cause: err,
  });
}
