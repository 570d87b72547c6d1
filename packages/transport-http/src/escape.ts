/**
 * Path escaping for groupcache peer URLs.
 *
 * Go's golang/groupcache client escapes with `url.QueryEscape`, which turns a space into
 * `+`, while its server decodes the path without turning `+` back into a space: a key
 * `a b` sent by Go arrives as `a+b` (golang/groupcache#25). So we escape with pure
 * percent-encoding (space -> `%20`, `+` -> `%2B`), which every groupcache server decodes
 * to the original key, and we decode without treating `+` specially, exactly as Go does.
 */

/**
 * Escapes one path segment (a group name or a key) for a peer URL. Everything except
 * `A-Z a-z 0-9 - _ . ! ~ * ' ( )` is percent-encoded as UTF-8, so `/`, `?`, `#`, `%`,
 * `+`, space and non-ASCII all survive the trip. Never produces `+`.
 * @throws URIError if `s` holds a lone surrogate (it has no UTF-8 encoding).
 */
export function escapeSegment(s: string): string {
  // encodeURIComponent is exactly RFC 3986 percent-encoding of UTF-8 with the unreserved
  // set above; it is native and fast.
  return encodeURIComponent(s);
}

const BAD_ESCAPE = /%(?![0-9A-Fa-f]{2})/;

/**
 * Decodes one raw path segment: `%XX` escapes become bytes, read as UTF-8; `+` stays a
 * literal plus. Returns undefined for a malformed escape (`%` not followed by two hex
 * digits) or for bytes that are not UTF-8 ({@link whyUndecodable} says which).
 */
export function unescapeSegment(raw: string): string | undefined {
  if (raw.indexOf("%") === -1) return raw; // the common case: nothing to decode
  try {
    return decodeURIComponent(raw);
  } catch {
    return undefined;
  }
}

/** The 400 message for a segment {@link unescapeSegment} refused. */
export function whyUndecodable(raw: string): string {
  return BAD_ESCAPE.test(raw)
    ? "bad request: invalid percent-encoding"
    : "bad request: path is not UTF-8";
}
