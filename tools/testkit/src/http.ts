import * as http from "node:http";
import * as net from "node:net";

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

/** What {@link sendLargeBody} saw. */
export interface LargeBodyOutcome {
  /** The answer's status, if one arrived before the connection ended. */
  status: number | undefined;
  /** The answer's raw bytes (head and body), as far as they arrived. */
  answer: string;
  /** Body bytes handed to the socket before it ended (or all of them). */
  sentBytes: number;
  /** Whether the server ended the connection before the whole body was sent. */
  cutOff: boolean;
}

/**
 * Sends one HTTP/1.1 request with a large body over a raw socket, 64 KiB at a time and
 * only as fast as the server reads (backpressure), to see whether the server stops
 * reading: `cutOff` is true, and `sentBytes` far below `totalBytes`, when it answered
 * and closed the connection instead of reading everything. `contentLength` declares the
 * length up front; otherwise the body is chunked. Resolves once the connection ends, or
 * after `timeoutMs` (then `cutOff` is false and the socket is destroyed).
 */
export function sendLargeBody(
  port: number,
  opts: {
    method?: string;
    path: string;
    headers?: Record<string, string>;
    totalBytes: number;
    contentLength?: boolean;
    timeoutMs?: number;
  },
): Promise<LargeBodyOutcome> {
  const { totalBytes, method = "POST", timeoutMs = 20_000 } = opts;
  const chunk = Buffer.alloc(64 * 1024, 0x61);
  return new Promise((resolve) => {
    const socket = net.connect(port, "127.0.0.1");
    let sentBytes = 0;
    let ended = false;
    let answer = "";
    const finish = (cutOff: boolean) => {
      if (ended) return;
      ended = true;
      clearTimeout(timer);
      socket.destroy();
      const m = /^HTTP\/1\.1 (\d{3})/.exec(answer);
      resolve({ status: m ? Number(m[1]) : undefined, answer, sentBytes, cutOff });
    };
    const timer = setTimeout(() => finish(false), timeoutMs);
    socket.on("data", (d: Buffer) => {
      answer += d.toString("latin1");
    });
    socket.on("error", () => finish(sentBytes < totalBytes));
    socket.on("close", () => finish(sentBytes < totalBytes));
    const head = [
      `${method} ${opts.path} HTTP/1.1`,
      "Host: 127.0.0.1",
      opts.contentLength ? `Content-Length: ${totalBytes}` : "Transfer-Encoding: chunked",
      ...Object.entries(opts.headers ?? {}).map(([k, v]) => `${k}: ${v}`),
      "",
      "",
    ].join("\r\n");
    socket.write(head);
    const pump = (): void => {
      while (!ended && sentBytes < totalBytes) {
        const n = Math.min(chunk.length, totalBytes - sentBytes);
        const data = n === chunk.length ? chunk : chunk.subarray(0, n);
        sentBytes += n;
        const ok = opts.contentLength
          ? socket.write(data)
          : socket.write(Buffer.concat([Buffer.from(`${n.toString(16)}\r\n`), data, CRLF]));
        if (!ok) {
          socket.once("drain", pump);
          return;
        }
      }
      if (!ended && !opts.contentLength) socket.write("0\r\n\r\n");
    };
    socket.once("connect", pump);
  });
}

const CRLF = Buffer.from("\r\n");

/** The connections of {@link openIdleConnections}. */
export interface IdleConnections {
  sockets: net.Socket[];
  /** Resolves once the server has closed every one of them. */
  allClosed: Promise<void>;
  /** How many are still open. */
  open(): number;
  /** Destroys those still open. */
  destroy(): void;
}

/**
 * Opens `count` TCP connections to 127.0.0.1:`port` that never send a byte (a slowloris
 * or an fd-exhaustion probe); resolves once all are connected. A connection the server
 * refuses outright (e.g. over its `maxConnections`) counts as closed.
 */
export async function openIdleConnections(port: number, count: number): Promise<IdleConnections> {
  const sockets: net.Socket[] = [];
  const closed: Promise<void>[] = [];
  let open = 0;
  const batch = 100;
  for (let i = 0; i < count; i += batch) {
    const connected: Promise<void>[] = [];
    for (let j = i; j < Math.min(count, i + batch); j++) {
      const s = net.connect(port, "127.0.0.1");
      s.on("error", () => {});
      s.on("data", () => {}); // a 408 the server may write before closing
      sockets.push(s);
      open++;
      closed.push(
        new Promise<void>((resolve) =>
          s.once("close", () => {
            open--;
            resolve();
          }),
        ),
      );
      connected.push(
        new Promise<void>((resolve) => {
          s.once("connect", () => resolve());
          s.once("close", () => resolve());
        }),
      );
    }
    await Promise.all(connected);
  }
  return {
    sockets,
    allClosed: Promise.all(closed).then(() => undefined),
    open: () => open,
    destroy: () => {
      for (const s of sockets) s.destroy();
    },
  };
}

/**
 * The soft limit of open file descriptors of this process (`ulimit -n`): from
 * /proc/self/limits on Linux, else from `sh -c "ulimit -n"`; undefined where unknown.
 */
export async function fileDescriptorLimit(): Promise<number | undefined> {
  const parse = (v: string | undefined): number | undefined =>
    v === undefined
      ? undefined
      : v === "unlimited"
        ? Number.POSITIVE_INFINITY
        : Number.isFinite(Number(v))
          ? Number(v)
          : undefined;
  try {
    const { readFile } = await import("node:fs/promises");
    const text = await readFile("/proc/self/limits", "utf8");
    return parse(/^Max open files\s+(\d+|unlimited)/m.exec(text)?.[1]);
  } catch {
    try {
      const { execFileSync } = await import("node:child_process");
      return parse(execFileSync("sh", ["-c", "ulimit -n"], { encoding: "utf8" }).trim());
    } catch {
      return undefined;
    }
  }
}
