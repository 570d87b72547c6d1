/**
 * Nodes in Linux network namespaces, each with its own address, for partition tests:
 * one namespace per node, each joined by a veth pair to a bridge in the test's own
 * namespace (which gets an address on the bridge too, so the test reaches every node).
 * A partition is a link set down (`ip link set <veth> down`: its packets are dropped, as
 * a cut cable or a dead switch port does); healing sets it up. Needs root and `ip`
 * (iproute2); tc/netem and iptables are not used.
 *
 * ```ts
 * const reason = await netnsSkipReason();            // undefined when namespaces work
 * const lab = await createNetnsLab(3);               // lab.nodes[i].address, lab.hostAddress
 * const proc = spawnNode([entry, ...], { netns: lab.nodes[0].netns });
 * await lab.partition(2); await lab.heal(2);
 * await lab.destroy();                               // in afterAll, even on failure
 * ```
 */
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { promisify } from "node:util";

const exec = promisify(execFile);

async function ip(...args: string[]): Promise<string> {
  const { stdout } = await exec("ip", args, { timeout: 10_000 });
  return stdout;
}

/**
 * Why namespace tests cannot run here, or undefined when they can: tries a real
 * `ip netns add` (and removes it).
 */
export async function netnsSkipReason(): Promise<string | undefined> {
  if (process.platform !== "linux") return `network namespaces need Linux (${process.platform})`;
  const name = `tcprobe${randomBytes(3).toString("hex")}`;
  try {
    await ip("netns", "add", name);
  } catch (err) {
    const msg = (err as { stderr?: string; message?: string }).stderr?.trim() || String(err);
    return `cannot create a network namespace (ip netns add: ${msg.split("\n")[0]})`;
  }
  await ip("netns", "del", name).catch(() => {});
  return undefined;
}

/** One node's place in the lab. */
export interface NetnsNode {
  /** The namespace to run it in (`spawnNode(args, { netns })`). */
  netns: string;
  /** Its address (IPv4), reachable from every other node and from the test. */
  address: string;
  /** The bridge-side end of its veth pair: down = partitioned. */
  link: string;
}

export interface NetnsLab {
  readonly nodes: readonly NetnsNode[];
  /** The test's own address on the bridge. */
  readonly hostAddress: string;
  /** Cuts node `i` off from everyone (its link down). */
  partition(i: number): Promise<void>;
  /** Reconnects node `i`. */
  heal(i: number): Promise<void>;
  /** Deletes the namespaces, links and bridge. Kill the processes in them first. Safe to call twice. */
  destroy(): Promise<void>;
}

/**
 * Creates `n` namespaces on a fresh bridge with a random 10.x.y.0/24 subnet and random
 * names (parallel runs do not collide). On failure, whatever was made is removed.
 */
export async function createNetnsLab(n: number): Promise<NetnsLab> {
  if (!Number.isInteger(n) || n < 1 || n > 50) throw new RangeError(`1..50 nodes, got ${n}`);
  const id = randomBytes(2).toString("hex");
  const bridge = `tc${id}br`;
  const [a, b] = randomBytes(2);
  const subnet = `10.${100 + ((a as number) % 100)}.${b as number}`;
  const hostAddress = `${subnet}.254`;
  const nodes: NetnsNode[] = [];
  const made = { bridge: false, ns: [] as string[] };
  let destroyed = false;

  const destroy = async (): Promise<void> => {
    if (destroyed) return;
    destroyed = true;
    // Deleting a namespace deletes the veth end inside it, and so its peer on the bridge.
    for (const ns of made.ns) await ip("netns", "del", ns).catch(() => {});
    for (const node of nodes) await ip("link", "del", node.link).catch(() => {});
    if (made.bridge) await ip("link", "del", bridge).catch(() => {});
  };

  try {
    await ip("link", "add", bridge, "type", "bridge");
    made.bridge = true;
    await ip("link", "set", bridge, "type", "bridge", "forward_delay", "0", "stp_state", "0");
    await ip("addr", "add", `${hostAddress}/24`, "dev", bridge);
    await ip("link", "set", bridge, "up");
    for (let i = 0; i < n; i++) {
      const netns = `tc${id}ns${i}`;
      const link = `tc${id}h${i}`;
      const inner = `tc${id}n${i}`;
      const address = `${subnet}.${i + 1}`;
      await ip("netns", "add", netns);
      made.ns.push(netns);
      await ip("link", "add", link, "type", "veth", "peer", "name", inner);
      nodes.push({ netns, address, link });
      await ip("link", "set", inner, "netns", netns);
      await ip("link", "set", link, "master", bridge);
      await ip("link", "set", link, "up");
      await ip("-n", netns, "addr", "add", `${address}/24`, "dev", inner);
      await ip("-n", netns, "link", "set", inner, "up");
      await ip("-n", netns, "link", "set", "lo", "up");
    }
  } catch (err) {
    await destroy();
    throw err;
  }

  const node = (i: number): NetnsNode => {
    const x = nodes[i];
    if (x === undefined) throw new RangeError(`no node ${i}`);
    return x;
  };
  return {
    nodes,
    hostAddress,
    async partition(i) {
      await ip("link", "set", node(i).link, "down");
    },
    async heal(i) {
      await ip("link", "set", node(i).link, "up");
    },
    destroy,
  };
}
