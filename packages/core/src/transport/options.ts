import { createHash, timingSafeEqual } from "node:crypto";

/**
 * Option checks and the shared-secret check that every transport needs in the same form
 * (HTTP and Connect alike), so that their messages, limits and security stay one piece of
 * code. Each check names its `owner` (e.g. `"HttpPool"`) in the message: the user sees
 * which constructor refused what. Nothing here knows HTTP: a peer URL is only checked,
 * never fetched, and a header is only a name and a value.
 */

/** The header (gRPC: metadata key) that carries the shared secret when none is given. */
export const DEFAULT_AUTH_HEADER = "x-tinycache-auth";

// Header value: visible ASCII and spaces/tabs, as RFC 9110 field-value (no CR/LF/NUL).
const HEADER_VALUE = /^[\t\x20-\x7e]+$/;
// Header name: an RFC 9110 token.
const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/**
 * Checks a peer URL as both transports take them: a non-empty string that parses as an
 * `http:` or `https:` URL without a query or fragment (peers are addressed by their base
 * URL; a query or fragment would be silently dropped or mangled on the way).
 * @param what - what the URL is, for the message, e.g. `"self"` or `"peer URL"`.
 * @param owner - who checks, for the message, e.g. `"HttpPool"`.
 * @returns the URL, parsed.
 * @throws TypeError naming `owner` and `what`.
 */
export function checkPeerUrl(url: unknown, what: string, owner: string): URL {
  if (typeof url !== "string" || url.length === 0) {
    throw new TypeError(`${owner}: ${what} must be a non-empty string, got ${String(url)}`);
  }
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new TypeError(`${owner}: ${what} is not a URL: ${url}`);
  }
  if (u.protocol !== "http:" && u.protocol !== "https:") {
    throw new TypeError(`${owner}: ${what} must be http: or https:, got ${url}`);
  }
  if (u.search !== "" || u.hash !== "") {
    throw new TypeError(`${owner}: ${what} must not have a query or fragment: ${url}`);
  }
  return u;
}

/**
 * An option that must be a safe integer >= 1 (a count or a size), or `dflt` when left out.
 * @throws RangeError `"<owner>: <name> must be an integer >= 1, got <v>"`.
 */
export function positiveIntOption(owner: string, name: string, v: unknown, dflt: number): number {
  if (v === undefined) return dflt;
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 1) {
    throw new RangeError(`${owner}: ${name} must be an integer >= 1, got ${String(v)}`);
  }
  return v;
}

/**
 * The `timeoutMs` option: a finite number of milliseconds > 0 (fractions allowed), or
 * `dflt` when left out. Zero or Infinity are refused: every network call needs a deadline.
 * @throws RangeError `"<owner>: timeoutMs must be a finite number > 0 (...), got <v>"`.
 */
export function timeoutMsOption(owner: string, v: unknown, dflt: number): number {
  const timeoutMs = v ?? dflt;
  if (typeof timeoutMs !== "number" || !Number.isFinite(timeoutMs) || timeoutMs <= 0) {
    throw new RangeError(
      `${owner}: timeoutMs must be a finite number > 0 (every peer call needs a deadline; leave it out for ${dflt} ms), got ${String(timeoutMs)}`,
    );
  }
  return timeoutMs;
}

/** Shared-secret authentication as a transport's options take it. */
export interface SharedSecretOptions {
  /** The secret every peer sends and expects, as a header value: printable ASCII. */
  secret: string;
  /**
   * Header (gRPC: metadata key) that carries the secret.
   * @default "x-tinycache-auth"
   */
  header?: string;
}

/** {@link SharedSecretOptions} after checks: the header name in lower case. */
export interface ResolvedSharedSecret {
  secret: string;
  header: string;
}

/**
 * Checks the `auth` option (undefined = authentication off): the secret must be a
 * non-empty header value of printable ASCII, the header a valid header name, which is
 * returned in lower case (the form Node gives incoming headers in).
 * @throws TypeError naming `owner`.
 */
export function resolveSharedSecret(
  owner: string,
  auth: SharedSecretOptions | undefined,
): ResolvedSharedSecret | undefined {
  if (auth === undefined) return undefined;
  const { secret, header = DEFAULT_AUTH_HEADER } = auth;
  if (typeof secret !== "string" || !HEADER_VALUE.test(secret)) {
    throw new TypeError(`${owner}: auth.secret must be a non-empty printable ASCII string`);
  }
  if (typeof header !== "string" || !HEADER_NAME.test(header)) {
    throw new TypeError(`${owner}: auth.header is not a valid header name: ${String(header)}`);
  }
  return { secret, header: header.toLowerCase() };
}

/**
 * A constant-time check of the shared secret, for a server to run on each request's
 * header value. Both sides are hashed first so the comparison always runs over two
 * equal-length digests: timingSafeEqual needs equal lengths, and comparing raw strings
 * would leak the secret's length. A header sent twice (an array), or missing, fails.
 */
export function makeSecretCheck(
  secret: string,
): (got: string | string[] | null | undefined) => boolean {
  const expected = createHash("sha256").update(secret, "utf8").digest();
  return (got) => {
    if (typeof got !== "string") return false; // missing, or sent twice
    const digest = createHash("sha256").update(got, "utf8").digest();
    return timingSafeEqual(digest, expected);
  };
}
