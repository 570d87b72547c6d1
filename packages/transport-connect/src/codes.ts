import { Code, ConnectError } from "@connectrpc/connect";
import { codeFromString, codeToString } from "@connectrpc/connect/protocol-connect";
import {
  errorMessage,
  type PeerError,
  peerErrorFor,
  statusOf,
  toPeerError as toPeerErrorBase,
} from "@tinycache/core/transport";

/**
 * The Connect side of core's one error mapping (`statusOf` / `peerErrorFor` in
 * `@tinycache/core/transport`, whose table says what each error means). core's status
 * names are Connect's code names, so the translation is connect's own `codeFromString` /
 * `codeToString`; this file adds only what Connect needs beyond that: the verdict marker.
 */

/**
 * Metadata (a response header, or a gRPC trailer) that marks an error as the owner's
 * verdict about the key: `getter_failed` on an internal error, `not_found` on a not_found.
 * Without it, an internal/unknown error may come from the client's own HTTP stack
 * (connect-node reports e.g. an HTTP/2 GOAWAY as internal), and a not_found from anything
 * that can write Connect's error JSON or a gRPC status (a proxy, a gateway, another
 * service on a placeholder URL): both count as "unavailable", so core loads the key
 * locally instead of passing on a verdict nobody gave.
 */
export const VERDICT_HEADER = "tinycache-verdict";

/** What the server tells a peer about an error of a group call. */
export function serverError(err: unknown, signal?: AbortSignal): ConnectError {
  if (err instanceof ConnectError) return err;
  const status = statusOf(err, signal);
  const code = codeFromString(status) ?? Code.Internal;
  const verdict =
    code === Code.Internal ? "getter_failed" : code === Code.NotFound ? "not_found" : undefined;
  return new ConnectError(
    errorMessage(err),
    code,
    verdict === undefined ? undefined : { [VERDICT_HEADER]: verdict },
  );
}

/** The PeerError of one key's error inside a GetMany answer (always the owner's verdict). */
export function keyError(peer: string, code: string, message: string): PeerError {
  return peerErrorFor(code, peer, `${code}: ${message}`, true);
}

/** Turns whatever a call threw into the PeerError core expects. */
export function toPeerError(err: unknown, peer: string, signal?: AbortSignal): PeerError {
  if (!(err instanceof ConnectError) || signal?.aborted) return toPeerErrorBase(err, peer, signal);
  const name = codeToString(err.code);
  const verdict = err.metadata.get(VERDICT_HEADER);
  if (name === "not_found" && verdict !== "not_found") {
    // Not a tinycache owner's verdict: no answer about the key.
    return peerErrorFor(
      "unavailable",
      peer,
      `not_found without a verdict: ${err.rawMessage}`,
      false,
      {
        cause: err,
      },
    );
  }
  const fromOwner = verdict === "getter_failed";
  return peerErrorFor(name, peer, `${name}: ${err.rawMessage}`, fromOwner, { cause: err });
}

export { codeToString };
