/**
 * A TCP fault proxy for tests: put it between a node and a peer (the peer's URL names the
 * proxy, the proxy forwards to the peer's real address) and break the link at runtime.
 *
 * ```ts
 * const proxy = await startFaultProxy({ listen: { host: "127.0.0.4", port }, target: { host: "127.0.0.14", port } });
 * proxy.pause();   // a hung peer (SIGSTOP): nothing moves, nothing is dropped
 * proxy.resume();
 * await proxy.close();
 * ```
 *
 * Modes (each applies to open connections and to new ones):
 * - `pass`: forwards both ways, with backpressure.
 * - `delay(ms)`: forwards each chunk `ms` later (in order); at most {@link MAX_DELAYED_BYTES}
 *   per direction are held, beyond which reading stops until they drain.
 * - `blackhole`: accepts, reads and discards, never answers (new connections are not
 *   forwarded; answers of open ones are discarded too).
 * - `reset`: every connection is reset (RST, `socket.resetAndDestroy`), new ones at once.
 * - `pause`: stops reading on both sides of every connection (new ones are accepted and
 *   not read): data waits in the kernel's socket buffers, as with a stopped process, and
 *   flows on at `resume` (back to `pass`). Nothing is buffered here.
 */
import { once } from "node:events";
import { connect, createServer, type Socket } from "node:net";

/** Most bytes held per direction of a connection by `delay`. */
export const MAX_DELAYED_BYTES = 1 << 20;

export type FaultMode = "pass" | "delay" | "blackhole" | "reset" | "pause";

export interface FaultProxyOptions {
  /** Where the proxy listens (port 0: any free port). */
  listen: { host: string; port: number };
  /** Where it forwards. */
  target: { host: string; port: number };
}

export interface FaultProxy {
  /** The address it listens on. */
  readonly host: string;
  readonly port: number;
  /** The current mode. */
  readonly mode: FaultMode;
  /** Connections open now. */
  readonly connections: number;
  /** Connections accepted so far. */
  readonly accepted: number;
  pass(): void;
  delay(ms: number): void;
  blackhole(): void;
  reset(): void;
  pause(): void;
  /** Back to `pass`, reading again everywhere. */
  resume(): void;
  /** Stops listening and destroys every connection. Safe to call twice. */
  close(): Promise<void>;
}

/** One direction of a connection: from `src` to `dst`. */
interface Flow {
  src: () => Socket | undefined;
  dst: () => Socket | undefined;
  held: number;
}

interface Link {
  client: Socket;
  upstream: Socket | undefined;
  up: Flow;
  down: Flow;
}

/** Starts a proxy in `pass` mode. */
export async function startFaultProxy(o: FaultProxyOptions): Promise<FaultProxy> {
  let mode: FaultMode = "pass";
  let delayMs = 0;
  let accepted = 0;
  const links = new Set<Link>();

  const kill = (l: Link, rst: boolean): void => {
    links.delete(l);
    for (const s of [l.client, l.upstream]) {
      if (s === undefined || s.destroyed) continue;
      if (rst && typeof s.resetAndDestroy === "function" && s.readyState !== "opening") {
        s.resetAndDestroy();
      } else s.destroy();
    }
  };

  const dial = (l: Link): void => {
    const up = connect({ host: o.target.host, port: o.target.port });
    l.upstream = up;
    up.on("error", () => kill(l, false));
    up.on("close", () => kill(l, false));
    up.on("end", () => l.client.end());
    up.on("data", (chunk: Buffer) => forward(l, l.down, chunk));
    if (mode === "pause") up.pause();
  };

  const forward = (l: Link, f: Flow, chunk: Buffer): void => {
    if (mode === "blackhole") return; // read and discarded
    const dst = f.dst();
    if (dst === undefined || dst.destroyed) return;
    if (mode === "delay") {
      f.held += chunk.length;
      if (f.held > MAX_DELAYED_BYTES) f.src()?.pause();
      const t = setTimeout(() => {
        f.held -= chunk.length;
        if (!dst.destroyed) dst.write(chunk);
        if (f.held <= MAX_DELAYED_BYTES && mode !== "pause" && links.has(l)) f.src()?.resume();
      }, delayMs);
      t.unref();
      return;
    }
    if (!dst.write(chunk)) {
      f.src()?.pause();
      dst.once("drain", () => {
        if (mode !== "pause" && links.has(l)) f.src()?.resume();
      });
    }
  };

  const server = createServer((client) => {
    accepted++;
    if (mode === "reset") {
      client.on("error", () => {});
      client.resetAndDestroy();
      return;
    }
    const l: Link = {
      client,
      upstream: undefined,
      up: { src: () => l.client, dst: () => l.upstream, held: 0 },
      down: { src: () => l.upstream, dst: () => l.client, held: 0 },
    };
    links.add(l);
    client.on("error", () => kill(l, false));
    client.on("close", () => kill(l, false));
    client.on("end", () => l.upstream?.end());
    client.on("data", (chunk: Buffer) => forward(l, l.up, chunk));
    if (mode === "pause") client.pause();
    if (mode !== "blackhole" && mode !== "pause") dial(l);
  });
  server.listen(o.listen.port, o.listen.host);
  await Promise.race([
    once(server, "listening"),
    once(server, "error").then(([err]) => Promise.reject(err)),
  ]);
  const addr = server.address();
  const port = typeof addr === "object" && addr !== null ? addr.port : o.listen.port;

  const everySocket = (fn: (s: Socket) => void): void => {
    for (const l of links) {
      fn(l.client);
      if (l.upstream) fn(l.upstream);
    }
  };

  const flowing = (): void => {
    everySocket((s) => s.resume());
    for (const l of links) {
      if (l.upstream === undefined && mode !== "blackhole") dial(l);
    }
  };

  return {
    host: o.listen.host,
    port,
    get mode() {
      return mode;
    },
    get connections() {
      return links.size;
    },
    get accepted() {
      return accepted;
    },
    pass() {
      mode = "pass";
      flowing();
    },
    delay(ms) {
      if (!(ms >= 0)) throw new RangeError(`delay must be >= 0 ms, got ${ms}`);
      mode = "delay";
      delayMs = ms;
      flowing();
    },
    blackhole() {
      mode = "blackhole";
      everySocket((s) => s.resume());
    },
    reset() {
      mode = "reset";
      for (const l of [...links]) kill(l, true);
    },
    pause() {
      mode = "pause";
      everySocket((s) => s.pause());
    },
    resume() {
      mode = "pass";
      flowing();
    },
    async close() {
      for (const l of [...links]) kill(l, false);
      if (!server.listening) return;
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
