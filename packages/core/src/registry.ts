import { InvalidArgumentError, TinycacheError } from "./errors.js";
import { Group } from "./group.js";
import type { GroupObserver } from "./observer.js";
import type { GroupOptions } from "./options.js";
import type { GroupLookup, Logger, PeerPicker } from "./peers.js";

/** Options of {@link GroupRegistry}. */
export interface GroupRegistryOptions {
  /** Default logger of the registry's groups (a group's own `logger` wins). Default silent. */
  logger?: Logger;
  /**
   * Default observer of the registry's groups (a group's own `observer` wins): one place
   * to hand every group to a metrics exporter. Default none.
   */
  observer?: GroupObserver;
}

/**
 * The groups of one node. There is no module-level registry: two registries in one
 * process are two independent nodes (how tests build a cluster in one process). A
 * transport server is handed a registry and looks groups up by name ({@link GroupLookup}).
 */
export class GroupRegistry implements GroupLookup {
  readonly #groups = new Map<string, Group>();
  readonly #logger: Logger | undefined;
  readonly #observer: GroupObserver | undefined;
  #peers: PeerPicker | undefined;

  constructor(opts: GroupRegistryOptions = {}) {
    this.#logger = opts.logger;
    this.#observer = opts.observer;
  }

  /**
   * Creates a group and registers it under `opts.name`. It gets the registry's peers
   * (see {@link GroupRegistry.registerPeers}) unless `opts.peers` is given.
   * @throws InvalidArgumentError when a group of that name exists (groupcache panics).
   */
  newGroup(opts: GroupOptions): Group {
    const name = opts?.name;
    if (typeof name !== "string") throw new TypeError("group name must be a string");
    if (this.#groups.has(name)) {
      throw new InvalidArgumentError(`duplicate registration of group ${name}`);
    }
    const group = new Group({
      ...opts,
      ...(opts.peers === undefined && this.#peers !== undefined ? { peers: this.#peers } : {}),
      ...(opts.logger === undefined && this.#logger !== undefined ? { logger: this.#logger } : {}),
      ...(opts.observer === undefined && this.#observer !== undefined
        ? { observer: this.#observer }
        : {}),
    });
    this.#groups.set(name, group);
    return group;
  }

  /** The group named `name`, or undefined. */
  get(name: string): Group | undefined {
    return this.#groups.get(name);
  }

  /** {@link GroupLookup} for transport servers: same as {@link GroupRegistry.get}. */
  getGroup(name: string): Group | undefined {
    return this.#groups.get(name);
  }

  /** Whether a group named `name` exists. */
  has(name: string): boolean {
    return this.#groups.has(name);
  }

  /** Names of all groups, in creation order. */
  names(): string[] {
    return [...this.#groups.keys()];
  }

  /**
   * Unregisters a group (peers asking for it then get "no such group"). The group object
   * keeps working for whoever holds it. Returns whether it existed.
   */
  deleteGroup(name: string): boolean {
    return this.#groups.delete(name);
  }

  /**
   * Sets the peers of every group of this registry that has none yet, and of groups
   * created later. Once per registry: a second call throws, like groupcache's
   * RegisterPeerPicker.
   */
  registerPeers(picker: PeerPicker): void {
    if (picker === null || typeof picker !== "object" || typeof picker.pickPeer !== "function") {
      throw new TypeError("registerPeers expects a PeerPicker");
    }
    if (this.#peers !== undefined) {
      throw new TinycacheError("peers_already_registered", "registerPeers called more than once");
    }
    this.#peers = picker;
    for (const g of this.#groups.values()) if (!g.hasPeers) g.registerPeers(picker);
  }
}
