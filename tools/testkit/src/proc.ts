import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { createServer } from "node:net";
import { createInterface } from "node:readline";

/**
 * A free TCP port on 127.0.0.1 for a server a test starts later (a peer must know the
 * others' URLs before it listens).
 *
 * Not the OS's port 0: those come from the ephemeral range, which every outgoing loopback
 * connection of every parallel test also draws from, so between our probe and the
 * server's listen() a client socket could take the port (seen in CI: EADDRINUSE). Ports
 * are drawn at random below the ephemeral range instead, where only listeners live, and
 * probed by binding; `taken` guards against handing out the same port twice in a process.
 * With `hosts`, the port is free on every one of them (nodes on their own loopback
 * addresses that share a port, as pods do).
 */
const taken = new Set<number>();
export async function freePort(hosts: readonly string[] = ["127.0.0.1"]): Promise<number> {
  const [low, high] = await portRange();
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = low + Math.floor(Math.random() * (high - low));
    if (taken.has(port) || !(await portIsFreeOn(port, hosts))) continue;
    taken.add(port);
    return port;
  }
  throw new Error(`no free port found in ${low}-${high}`);
}

/** [low, high) below the kernel's ephemeral range (default 32768), above 1024. */
async function portRange(): Promise<[number, number]> {
  let ephemeralLow = 32768;
  try {
    const { readFile } = await import("node:fs/promises");
    const text = await readFile("/proc/sys/net/ipv4/ip_local_port_range", "utf8");
    const low = Number(text.trim().split(/\s+/)[0]);
    if (Number.isInteger(low) && low > 4096) ephemeralLow = low;
  } catch {
    // Not Linux: keep the IANA default.
  }
  return [Math.max(1025, ephemeralLow - 12_000), ephemeralLow];
}

/** Whether a TCP port can be bound on every one of `hosts` (nobody holds it). */
export async function portIsFreeOn(port: number, hosts: readonly string[]): Promise<boolean> {
  for (const host of hosts) if (!(await portIsFree(port, host))) return false;
  return true;
}

/** Whether a TCP port can be bound on `host` (nobody holds it). */
export async function portIsFree(port: number, host = "127.0.0.1"): Promise<boolean> {
  const srv = createServer();
  try {
    srv.listen(port, host);
    await Promise.race([
      once(srv, "listening"),
      once(srv, "error").then(([err]) => {
        throw err;
      }),
    ]);
  } catch {
    return false;
  }
  srv.close();
  await once(srv, "close");
  return true;
}

export interface Spawned {
  child: ChildProcess;
  /** Every stdout+stderr line seen so far. */
  lines: string[];
  /**
   * Resolves with the first line that matches: already seen (from line index `from` on,
   * default 0: all of them) or future.
   */
  waitForLine(re: RegExp, timeoutMs?: number, from?: number): Promise<string>;
  /** SIGKILL (or `signal`) and wait for exit. Safe to call twice. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * Spawns a Node process and follows its output line by line, so tests wait for an
 * event ("listening on ...") instead of sleeping. Track every Spawned in a list and
 * `kill()` them all in afterAll/afterEach.
 */
export function spawnNode(
  args: string[],
  opts: {
    cwd?: string;
    env?: NodeJS.ProcessEnv;
    /** Run it in this network namespace (`ip netns exec`, which execs Node: same pid). */
    netns?: string;
  } = {},
): Spawned {
  const [cmd, argv] =
    opts.netns === undefined
      ? [process.execPath, args]
      : ["ip", ["netns", "exec", opts.netns, process.execPath, ...args]];
  return spawnCommand(cmd, argv, { cwd: opts.cwd, env: opts.env });
}

/**
 * {@link spawnNode} for any command (e.g. `pnpm demo`, as a user types it). With
 * `detached`, the command leads a process group of its own, as a terminal's foreground
 * job does: `process.kill(-child.pid, "SIGINT")` is then a Ctrl-C to everything it
 * started, and `kill()` ends the whole group.
 */
export function spawnCommand(
  cmd: string,
  args: string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv; detached?: boolean } = {},
): Spawned {
  const detached = opts.detached === true;
  const child = spawn(cmd, args, {
    cwd: opts.cwd,
    env: { ...process.env, ...opts.env },
    stdio: ["ignore", "pipe", "pipe"],
    detached,
  });
  const lines: string[] = [];
  const waiters: { re: RegExp; resolve: (l: string) => void }[] = [];
  const onLine = (line: string) => {
    lines.push(line);
    for (let i = waiters.length - 1; i >= 0; i--) {
      const w = waiters[i];
      if (w?.re.test(line)) {
        waiters.splice(i, 1);
        w.resolve(line);
      }
    }
  };
  if (child.stdout) createInterface({ input: child.stdout }).on("line", onLine);
  if (child.stderr) createInterface({ input: child.stderr }).on("line", onLine);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once("exit", (code, signal) => resolve({ code, signal }));
  });
  return {
    child,
    lines,
    exited,
    waitForLine(re, timeoutMs = 15_000, from = 0) {
      const seen = lines.slice(from).find((l) => re.test(l));
      if (seen !== undefined) return Promise.resolve(seen);
      return new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => {
          reject(new Error(`timed out waiting for ${re}; output so far:\n${lines.join("\n")}`));
        }, timeoutMs);
        const done = (l: string) => {
          clearTimeout(timer);
          resolve(l);
        };
        waiters.push({ re, resolve: done });
        void exited.then(({ code, signal }) => {
          clearTimeout(timer);
          reject(
            new Error(`process exited (${code ?? signal}) before ${re}:\n${lines.join("\n")}`),
          );
        });
      });
    },
    async kill(signal = "SIGKILL") {
      if (detached && child.pid !== undefined) {
        // The leader may be gone while the group lives on (its children): signal them all.
        try {
          process.kill(-child.pid, signal);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== "ESRCH") throw err;
        }
      } else if (child.exitCode === null && child.signalCode === null) {
        child.kill(signal);
      }
      await exited;
    },
  };
}

/** Whether a process with this pid still exists (a zombie counts until it is reaped). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== "ESRCH";
  }
}

/**
 * Runs a Node command line to its end: its exit code and its output, one string (safe in
 * concurrent tests: it owns and always reaps its child).
 */
export async function runNode(
  args: string[],
  opts: Parameters<typeof spawnNode>[1] = {},
): Promise<{ code: number | null; out: string }> {
  const p = spawnNode(args, opts);
  // "close" comes after the last output line was read ("exit" may come before).
  const closed = once(p.child, "close");
  try {
    const [{ code }] = await Promise.all([p.exited, closed]);
    return { code, out: p.lines.join("\n") };
  } finally {
    await p.kill();
  }
}
