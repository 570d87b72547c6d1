import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { SECRET_ENV, type TransportName } from "./cli.js";
import { peerUrl } from "./config.js";
import type { Logger } from "./log.js";

/** The node entry this module starts, next to it in dist/. */
export const NODE_ENTRY = fileURLToPath(new URL("./node.js", import.meta.url));

export interface ClusterOptions {
  /** Peer ports, one node each. */
  ports: readonly number[];
  /** Port of the user API, served by `apiNode`. */
  apiPort: number;
  /** Which node serves the API. Default: the last port (8003, as the original's run.sh). */
  apiNode?: number;
  transport: TransportName;
  dataDir: string;
  dbLatencyMs: number;
  logLevel: string;
  /** Extra flags for every node (e.g. ["--hot-cache", "off"]). */
  nodeArgs?: readonly string[];
  /** The node entry script. Default: dist/node.js beside this module. */
  nodeEntry?: string;
  /** Restart a node that dies unexpectedly. Default true. */
  restart?: boolean;
  /** How long a stopping node may take before SIGKILL, in ms. Default 5000. */
  stopGraceMs?: number;
  /**
   * Shared peer secret, handed to every node in its environment (TINYCACHE_SECRET, not
   * on the command line, where `ps` shows it). Default: none (nodes on loopback).
   */
  secret?: string;
  logger: Logger;
  /**
   * Every output line of every node. Default: stdout lines to stdout, stderr lines to
   * stderr, unchanged (they are JSON and carry `"node":<port>`).
   */
  onLine?: (port: number, line: string, stream: "stdout" | "stderr") => void;
}

/** One node process, as the launcher sees it. */
export interface NodeProcess {
  port: number;
  url: string;
  api: boolean;
  /** Current child (replaced on restart). */
  child: ChildProcess;
  pid: number;
  /** How many times this node was started (1 = first start). */
  starts: number;
}

/** Node exits within this window count towards the crash-loop limit. */
const CRASH_WINDOW_MS = 30_000;
const MAX_CRASHES_IN_WINDOW = 5;

/**
 * Starts and stops the node processes of one cluster: spawns each with the same --peers,
 * waits for every ready line (no sleeps), restarts a node that dies unexpectedly, and on
 * stop sends SIGTERM, waits, then SIGKILLs stragglers, so no process outlives it.
 */
export class Cluster {
  readonly #opts: Required<Omit<ClusterOptions, "onLine" | "apiNode" | "secret">> & {
    onLine: NonNullable<ClusterOptions["onLine"]>;
    apiNode: number;
    secret: string | undefined;
  };
  readonly #nodes = new Map<number, NodeProcess>();
  readonly #crashes = new Map<number, number[]>();
  readonly #restartTimers = new Set<NodeJS.Timeout>();
  #stopping = false;
  /** Rejects start() when a node dies before it is ready. */
  #earlyDeath: ((err: Error) => void) | undefined;

  constructor(opts: ClusterOptions) {
    if (opts.ports.length === 0) throw new RangeError("a cluster needs at least one port");
    const apiNode = opts.apiNode ?? opts.ports[opts.ports.length - 1]!;
    if (!opts.ports.includes(apiNode)) {
      throw new RangeError(`apiNode ${apiNode} is not one of the ports`);
    }
    this.#opts = {
      nodeEntry: NODE_ENTRY,
      nodeArgs: [],
      restart: true,
      stopGraceMs: 5_000,
      onLine: (_port, line, stream) => {
        (stream === "stdout" ? process.stdout : process.stderr).write(`${line}\n`);
      },
      ...opts,
      apiNode,
      secret: opts.secret,
    };
  }

  get peers(): string[] {
    return this.#opts.ports.map((p) => peerUrl(p));
  }

  get apiUrl(): string {
    return `http://127.0.0.1:${this.#opts.apiPort}`;
  }

  /** Live nodes by port. */
  get nodes(): ReadonlyMap<number, NodeProcess> {
    return this.#nodes;
  }

  /** Starts every node and resolves once all are ready; on failure stops the others. */
  async start(): Promise<void> {
    const died = new Promise<never>((_, reject) => {
      this.#earlyDeath = reject;
    });
    died.catch(() => {}); // observed through the race below
    try {
      await Promise.race([Promise.all(this.#opts.ports.map((p) => this.#spawn(p))), died]);
    } catch (err) {
      await this.stop();
      throw err;
    } finally {
      this.#earlyDeath = undefined;
    }
  }

  #args(port: number): string[] {
    const o = this.#opts;
    const args = [
      o.nodeEntry,
      "--port",
      String(port),
      "--peers",
      this.peers.join(","),
      "--transport",
      o.transport,
      "--data-dir",
      o.dataDir,
      "--db-latency-ms",
      String(o.dbLatencyMs),
      "--log-level",
      o.logLevel,
      ...o.nodeArgs,
    ];
    if (port === o.apiNode) args.push("--api", "--api-port", String(o.apiPort));
    return args;
  }

  /** Spawns the node on `port`; resolves when it logged its ready line. */
  #spawn(port: number): Promise<NodeProcess> {
    const o = this.#opts;
    const prev = this.#nodes.get(port);
    // An IPC channel: a node stops itself when the launcher disappears (even by SIGKILL),
    // so a crashed launcher leaves no orphans.
    const child = spawn(process.execPath, this.#args(port), {
      stdio: ["ignore", "pipe", "pipe", "ipc"],
      env: {
        ...process.env,
        LOG_PRETTY: "0",
        ...(o.secret === undefined ? {} : { [SECRET_ENV]: o.secret }),
      },
    });
    const node: NodeProcess = {
      port,
      url: peerUrl(port),
      api: port === o.apiNode,
      child,
      pid: child.pid ?? -1,
      starts: (prev?.starts ?? 0) + 1,
    };
    this.#nodes.set(port, node);

    let resolveReady!: (n: NodeProcess) => void;
    let rejectReady!: (e: Error) => void;
    const ready = new Promise<NodeProcess>((res, rej) => {
      resolveReady = res;
      rejectReady = rej;
    });
    ready.catch(() => {}); // start() or the restart path observes it
    let isReady = false;
    const tail: string[] = [];
    const onLine = (line: string, stream: "stdout" | "stderr") => {
      tail.push(line);
      if (tail.length > 20) tail.shift();
      if (!isReady && stream === "stdout" && line.includes('"event":"ready"')) {
        isReady = true;
        o.onLine(port, line, stream);
        o.logger.info(
          { event: "node_ready", port, childPid: node.pid, start: node.starts, api: node.api },
          `node ${port} ready (pid ${node.pid})`,
        );
        resolveReady(node);
        return;
      }
      o.onLine(port, line, stream);
    };
    if (child.stdout) {
      createInterface({ input: child.stdout }).on("line", (l) => onLine(l, "stdout"));
    }
    if (child.stderr) {
      createInterface({ input: child.stderr }).on("line", (l) => onLine(l, "stderr"));
    }
    child.on("error", (err) => {
      o.logger.error({ err, event: "node_spawn_failed", port }, `node ${port} failed to spawn`);
    });
    child.once("exit", (code, signal) => {
      // `exit` can fire before the last output lines are read; let them drain first.
      setImmediate(() => this.#onExit(node, code, signal, isReady, tail, rejectReady));
    });
    return ready;
  }

  #onExit(
    node: NodeProcess,
    code: number | null,
    signal: NodeJS.Signals | null,
    wasReady: boolean,
    tail: string[],
    rejectReady: (e: Error) => void,
  ): void {
    const { port } = node;
    if (this.#stopping) return;
    const o = this.#opts;
    if (!wasReady) {
      const err = new Error(
        `node ${port} exited (${code ?? signal}) before it was ready:\n${tail.join("\n")}`,
      );
      rejectReady(err);
      this.#earlyDeath?.(err);
      if (this.#earlyDeath) return;
    }
    o.logger.warn(
      { event: "node_exited", port, childPid: node.pid, code, signal },
      `node ${port} (pid ${node.pid}) exited unexpectedly (${code ?? signal})`,
    );
    if (!o.restart) return;
    const now = Date.now();
    const recent = (this.#crashes.get(port) ?? []).filter((t) => now - t < CRASH_WINDOW_MS);
    recent.push(now);
    this.#crashes.set(port, recent);
    if (recent.length > MAX_CRASHES_IN_WINDOW) {
      o.logger.error(
        { event: "node_crash_loop", port, crashes: recent.length },
        `node ${port} keeps dying; not restarting it again`,
      );
      return;
    }
    // Back off a little more after each recent crash, so a crash loop does not spin.
    const delayMs = 200 * recent.length;
    o.logger.info(
      { event: "node_restarting", port, inMs: delayMs },
      `restarting node ${port} in ${delayMs} ms`,
    );
    const timer = setTimeout(() => {
      this.#restartTimers.delete(timer);
      if (this.#stopping) return;
      this.#spawn(port).catch((err: unknown) => {
        o.logger.error({ err, event: "node_restart_failed", port }, `node ${port} restart failed`);
      });
    }, delayMs);
    this.#restartTimers.add(timer);
  }

  /**
   * Stops every node: SIGTERM, then SIGKILL after `stopGraceMs`; resolves when every
   * process has exited. Safe to call twice.
   */
  async stop(): Promise<void> {
    this.#stopping = true;
    for (const t of this.#restartTimers) clearTimeout(t);
    this.#restartTimers.clear();
    const grace = this.#opts.stopGraceMs;
    await Promise.all(
      [...this.#nodes.values()].map(async ({ child, port }) => {
        if (child.exitCode !== null || child.signalCode !== null) return;
        const exited = once(child, "exit");
        child.kill("SIGTERM");
        const timer = setTimeout(() => {
          this.#opts.logger.warn(
            { event: "node_killed", port, childPid: child.pid },
            `node ${port} did not stop within ${grace} ms: SIGKILL`,
          );
          child.kill("SIGKILL");
        }, grace);
        await exited;
        clearTimeout(timer);
      }),
    );
  }
}
