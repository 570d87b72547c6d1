/**
 * Parses the text of a peer file: either a JSON array of strings (or `{ "peers": [...] }`),
 * or one URL per line. In the line format, blank lines are skipped, surrounding whitespace
 * is trimmed, and `#` starts a comment when it begins a line or follows whitespace (a `#`
 * inside a word is kept, so a bad URL reaches the membership and is counted there).
 * Lines are not checked: followPeers drops and counts URLs that do not parse.
 * @throws SyntaxError for bad JSON, TypeError for JSON of the wrong shape.
 */
export function parsePeerList(text: string): string[] {
  const body = text.startsWith("\uFEFF") ? text.slice(1) : text;
  const first = body.trimStart()[0];
  if (first === "[" || first === "{") return fromJson(JSON.parse(body));
  const urls: string[] = [];
  for (const raw of body.split(/\r?\n/)) {
    const line = raw.replace(/(^|\s)#.*$/, "").trim();
    if (line !== "") urls.push(line);
  }
  return urls;
}

function fromJson(value: unknown): string[] {
  const list =
    Array.isArray(value) || value === null || typeof value !== "object"
      ? value
      : (value as { peers?: unknown }).peers;
  if (!Array.isArray(list)) {
    throw new TypeError('expected a JSON array of peer URLs or { "peers": [...] }');
  }
  const bad = list.findIndex((u) => typeof u !== "string");
  if (bad >= 0) {
    throw new TypeError(
      `expected peer URLs as strings, got ${JSON.stringify(list[bad]) ?? String(list[bad])} at index ${bad}`,
    );
  }
  return list.map((u: string) => u.trim());
}
