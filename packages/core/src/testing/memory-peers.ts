import { HashRing, type HashRingOptions } from "@tinycache/consistenthash";
import { InvalidArgumentError, PeerError } from "../errors.js";
import type {
  CallOptions,
  GroupLookup,
  KeyRequest,
  PeerGetOptions,
  PeerGetter,
  PeerPicker,
  PeerValue,
  SetRequest,
} from "../peers.js";
import { raceSignal } from "../private/abort.js";
import { errorMessage, peerErrorFor, statusOf } from "../transport/status.js";

/** One call crossing the in-memory network, as seen by {@link InMemoryNetworkOptions.onCall}. */
export interface InMemoryCall {
  from: string;
  to: string;
  method: "get" | "set" | "remove";
  group: string;
  key: string;
}

/** Options of {@link InMemoryNetwork}. */
export interface InMemoryNetworkOptions extends HashRingOptions {
  /**
   * Called before each call is delivered; may return a promise to delay it (e.g. a gate a
   * test opens), or throw to fail it (a thrown non-PeerError becomes "unavailable").
   */
  onCall?: (call: InMemoryCall) => void | Promise<void>;
}

interface Node {
  id: string;
  lookup: GroupLookup;
  dead: boolean;
}

/**
 * Several nodes in one process, wired through a real consistent-hash ring with no network:
 * for tests of code built on tinycache, and tinycache's own. Each node is a
 * {@link GroupLookup} (usually a GroupRegistry); `join` returns that node's PeerPicker.
 * Values are copied across, as a wire would. A node marked dead stays on the ring (the
 * others do not know yet) and every call to it rejects with PeerError "unavailable".
 *
 * ```ts
 * const net = new InMemoryNetwork();
 * const a = new GroupRegistry(), b = new GroupRegistry();
 * a.registerPeers(net.join("a", a));
 * b.registerPeers(net.join("b", b));
 * ```
 */
export class InMemoryNetwork {
  readonly #ring: HashRing;
  readonly #nodes = new Map<string, Node>();
  readonly #onCall: InMemoryNetworkOptions["onCall"];
  /** Calls delivered per target node id. */
  readonly calls = new Map<string, number>();

  constructor(opts: InMemoryNetworkOptions = {}) {
    const { onCall, ...ring } = opts;
    this.#ring = new HashRing(ring);
    this.#onCall = onCall;
  }

  /** Adds node `id` serving the groups of `lookup`; returns the node's PeerPicker. */
  join(id: string, lookup: GroupLookup): PeerPicker {
    if (typeof id !== "string" || id === "")
      throw new TypeError("node id must be a non-empty string");
    if (this.#nodes.has(id)) throw new InvalidArgumentError(`node ${id} already joined`);
    this.#nodes.set(id, { id, lookup, dead: false });
    this.#ring.add(id);
    return new InMemoryPicker(this, id);
  }

  /** Removes node `id` from the ring (the others stop picking it). */
  leave(id: string): void {
    this.#nodes.delete(id);
    this.#ring.remove(id);
  }

  /** Marks node `id` dead (calls to it fail "unavailable") or alive again. */
  setDead(id: string, dead = true): void {
    const node = this.#nodes.get(id);
    if (node === undefined) throw new InvalidArgumentError(`unknown node ${id}`);
    node.dead = dead;
  }

  /** The owner of `key` on the ring. */
  ownerOf(key: string): string | undefined {
    return this.#ring.get(key);
  }

  /** Ids of the joined nodes. */
  get nodes(): readonly string[] {
    return this.#ring.nodes;
  }

  /** @internal */
  async deliver<T>(
    call: InMemoryCall,
    signal: AbortSignal | undefined,
    fn: (lookup: GroupLookup) => T | Promise<T>,
  ): Promise<T> {
    const fail = (kind: "unavailable" | "aborted", msg: string, cause?: unknown): PeerError =>
      new PeerError(kind, call.to, msg, cause === undefined ? undefined : { cause });
    if (signal?.aborted) throw fail("aborted", "aborted", signal.reason);
    try {
      await raceSignal(Promise.resolve(this.#onCall?.(call)), signal);
    } catch (err) {
      if (signal?.aborted) throw fail("aborted", "aborted", signal.reason);
      throw err instanceof PeerError ? err : fail("unavailable", String(err), err);
    }
    const node = this.#nodes.get(call.to);
    if (node === undefined || node.dead) throw fail("unavailable", "peer is down");
    this.calls.set(call.to, (this.calls.get(call.to) ?? 0) + 1);
    try {
      return await raceSignal(
        Promise.resolve().then(() => fn(node.lookup)),
        signal,
      );
    } catch (err) {
      if (signal?.aborted) throw fail("aborted", "aborted", signal.reason);
      if (err instanceof PeerError) throw err;
      // As a wire would carry it: the owner's status, through the one mapping of every
      // transport.
      throw peerErrorFor(statusOf(err), call.to, errorMessage(err), true, { cause: err });
    }
  }
}

function groupOf(lookup: GroupLookup, to: string, name: string) {
  const g = lookup.getGroup(name);
  // As a groupcache peer answers 404 "no such group": the caller loads locally.
  if (g === undefined) throw new PeerError("unavailable", to, `no such group: ${name}`);
  return g;
}

class InMemoryPeer implements PeerGetter {
  readonly id: string;
  readonly #net: InMemoryNetwork;
  readonly #from: string;
  constructor(net: InMemoryNetwork, from: string, to: string) {
    this.#net = net;
    this.#from = from;
    this.id = to;
  }
  get(req: KeyRequest, opts?: PeerGetOptions): Promise<PeerValue> {
    const call: InMemoryCall = { from: this.#from, to: this.id, method: "get", ...pick(req) };
    return this.#net.deliver(call, opts?.signal, async (lookup) => {
      const got = await groupOf(lookup, this.id, req.group).serveGet(
        req.key,
        opts?.signal ? { signal: opts.signal } : undefined,
      );
      const max = opts?.maxValueBytes;
      if (max !== undefined && got.value.byteLength > max) {
        throw new PeerError("unavailable", this.id, `value over maxValueBytes (${max})`);
      }
      const out: PeerValue = { value: got.value.byteSlice() };
      if (got.expiresAt !== undefined) out.expiresAt = got.expiresAt;
      return out;
    });
  }
  set(req: SetRequest, opts?: CallOptions): Promise<void> {
    const call: InMemoryCall = { from: this.#from, to: this.id, method: "set", ...pick(req) };
    const value = req.value.slice();
    return this.#net.deliver(call, opts?.signal, (lookup) =>
      groupOf(lookup, this.id, req.group).serveSet(req.key, value, req.expiresAt),
    );
  }
  remove(req: KeyRequest, opts?: CallOptions): Promise<void> {
    const call: InMemoryCall = { from: this.#from, to: this.id, method: "remove", ...pick(req) };
    return this.#net.deliver(call, opts?.signal, (lookup) =>
      groupOf(lookup, this.id, req.group).serveRemove(req.key),
    );
  }
}

function pick(req: KeyRequest): { group: string; key: string } {
  return { group: req.group, key: req.key };
}

class InMemoryPicker implements PeerPicker {
  readonly #net: InMemoryNetwork;
  readonly #self: string;
  readonly #peers = new Map<string, InMemoryPeer>();
  constructor(net: InMemoryNetwork, self: string) {
    this.#net = net;
    this.#self = self;
  }
  #peer(id: string): InMemoryPeer {
    let p = this.#peers.get(id);
    if (p === undefined) {
      p = new InMemoryPeer(this.#net, this.#self, id);
      this.#peers.set(id, p);
    }
    return p;
  }
  pickPeer(key: string): PeerGetter | undefined {
    const owner = this.#net.ownerOf(key);
    return owner === undefined || owner === this.#self ? undefined : this.#peer(owner);
  }
  peers(): readonly PeerGetter[] {
    return this.#net.nodes.filter((id) => id !== this.#self).map((id) => this.#peer(id));
  }
}
