import * as http from "node:http";

/** What {@link httpRequest} resolves to: the status, headers and whole body. */
export interface HttpAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/**
 * One HTTP/1.1 request to 127.0.0.1 with a raw (already escaped) path, on a fresh
 * connection unless `agent` is given: for tests that send exactly the bytes a peer or a
 * hostile client would.
 */
export function httpRequest(
  port: number,
  method: string,
  path: string,
  opts: { headers?: Record<string, string>; body?: Uint8Array; agent?: http.Agent } = {},
): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const r = http.request(
      {
        host: "127.0.0.1",
        port,
        method,
        path,
        // Node frames a GET/DELETE body only when told its length.
        headers:
          opts.body !== undefined && opts.headers?.["transfer-encoding"] === undefined
            ? { "content-length": String(opts.body.length), ...opts.headers }
            : opts.headers,
        agent: opts.agent ?? false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks),
          }),
        );
        res.on("error", reject);
      },
    );
    r.on("error", reject);
    r.end(opts.body);
  });
}
