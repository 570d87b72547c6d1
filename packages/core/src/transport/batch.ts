import { setMaxListeners } from "node:events";
import { PeerError } from "../errors.js";
import type { KeyRequest, PeerGetOptions, PeerValue } from "../peers.js";

/**
 * Batched peer gets, written once for every transport. Concurrent gets to one peer are
 * queued and sent as one batch call once the requests that make them stop coming: at the
 * end of the {@link BATCH_QUIET_TURNS}th event-loop turn in a row that queued no get, or
 * of the {@link BATCH_MAX_TURNS}th turn since the first get, whichever comes first; at
 * most {@link BATCH_MAX_KEYS} keys and {@link BATCH_MAX_KEY_BYTES} of keys per batch
 * (more make several batches). A batch is invisible to callers:
 *
 * - each caller gets its own key's outcome: a value, or the PeerError a single get would
 *   have given (`not_found`, `getter_failed`, ...): one key's failure never fails another;
 * - a caller's signal aborts only that caller; the batch call itself is aborted only when
 *   every caller of it aborted;
 * - a batch that fails as a whole (peer dead, connection reset, timed out, a status that
 *   is not an answer) rejects each caller with an `unavailable` PeerError, so core loads
 *   each key locally, as after a failed single get;
 * - a flush with one key (the usual case at low load) goes as a plain single get.
 */

/** One key's outcome in a batch answer. */
export type BatchEntry = { ok: true; value: PeerValue } | { ok: false; error: PeerError };

/** Options of one batch call. */
export interface BatchCallOptions {
  /** Aborted when every caller of the batch aborted. */
  signal: AbortSignal;
  /** The callers' `maxValueBytes` (one per batch), if any. */
  maxValueBytes?: number;
}

/**
 * Sends one batch: keys of one group, distinct. Resolves with one entry per key, in
 * order (or a Map by key); rejects (a PeerError, ideally) when the call fails as a whole.
 */
export type SendBatch = (
  group: string,
  keys: readonly string[],
  opts: BatchCallOptions,
) => Promise<readonly BatchEntry[] | ReadonlyMap<string, BatchEntry>>;

/**
 * One remote peer's batch counters, as a pool reports them (`pool.stats().peerBatches`),
 * read from its client's `batchStats()` (see `PeerGetter.batchStats`). `batchedKeys /
 * batches` is the mean number of keys per batch call.
 */
export interface PeerBatchStats {
  /** The peer's URL, as on the ring. */
  url: string;
  /** Batch calls sent to the peer (a flush of one key goes as a plain get: not counted). */
  batches: number;
  /** Keys sent in those batch calls. */
  batchedKeys: number;
}

/**
 * Turns in a row without a new get after which the gets collected are sent. At low load
 * a lone get waits for this many turns with no I/O to add to it (microseconds each);
 * under load a turn that only read peers' answers no longer sends the batch half full.
 */
export const BATCH_QUIET_TURNS = 2;
/**
 * Most event-loop turns a get waits to be sent, however busy the node. Why wait at all:
 * every batch costs its owner a wake-up and a request's fixed work, and costs the asker
 * as much again, so larger batches serve more keys with the same CPU. Measured on the demo
 * cluster's peer path (one CPU, wrk at 64 connections; A/B against sending at the end of
 * the second turn): batches of ~28 keys instead of ~16 and ~11% more requests per
 * second, p50 and p99 no worse; neutral at 2 and 8 connections.
 */
export const BATCH_MAX_TURNS = 6;

/** Most keys in one batch a client sends. */
export const BATCH_MAX_KEYS = 64;
/** Most UTF-8 bytes of keys in one batch a client sends (64 KiB). */
export const BATCH_MAX_KEY_BYTES = 64 * 1024;

/** Options of {@link Batcher}. */
export interface BatcherOptions {
  /** The peer's id (its URL), for errors. */
  id: string;
  /** Sends one batch (see {@link SendBatch}). */
  send: SendBatch;
  /** A plain single get, for a flush of one key. Default: a batch of one. */
  single?: (req: KeyRequest, opts?: PeerGetOptions) => Promise<PeerValue>;
  /** @default {@link BATCH_MAX_KEYS} */
  maxKeys?: number;
  /** @default {@link BATCH_MAX_KEY_BYTES} */
  maxKeyBytes?: number;
}

/** A caller waiting for one key. */
interface Waiter {
  resolve(v: PeerValue): void;
  reject(err: unknown): void;
  signal: AbortSignal | undefined;
  done: boolean;
}

/** The waiters of one batch that passed one signal: one abort listener for them all. */
interface Watch {
  waiters: Waiter[];
  onAbort: () => void;
}

/** A batch being collected (then in flight): keys of one group and one maxValueBytes. */
interface Pending {
  group: string;
  maxValueBytes: number | undefined;
  /** Waiters by key (insertion order: the order sent). */
  keys: Map<string, Waiter[]>;
  keyBytes: number;
  /** Callers not yet settled (for aborting the call when it reaches 0). */
  live: number;
  controller: AbortController | undefined;
  /** The signal every caller so far passed (`mixed` false), or the first one's. */
  signal: AbortSignal | undefined;
  /** Whether callers passed different signals (or some none): the call needs its own. */
  mixed: boolean;
  /**
   * Waiters by the signal they passed. Calls often share one (a Group's shared peer
   * timeout): one listener per signal and batch, not one per key, as Node's EventTarget
   * costs ~1 us per listener added and removed.
   */
  watches: Map<AbortSignal, Watch> | undefined;
}

/**
 * The per-peer batcher: see the file comment. A transport makes one per peer client and
 * routes its gets through {@link Batcher.get} when the peer speaks batches.
 */
export class Batcher {
  readonly #id: string;
  readonly #send: SendBatch;
  readonly #single: ((req: KeyRequest, opts?: PeerGetOptions) => Promise<PeerValue>) | undefined;
  readonly #maxKeys: number;
  readonly #maxKeyBytes: number;
  /** Batches being collected, by group and maxValueBytes. */
  #collecting = new Map<string, Pending>();
  #scheduled = false;
  /** A get was queued since the last turn's end (see #onTurn). */
  #fresh = false;
  /** Turns ended since the first get of the batches being collected. */
  #turns = 0;
  /** Turns in a row, up to the last one ended, that queued no get. */
  #quietTurns = 0;
  #lastSlot: { group: string; max: number; slot: string } | undefined;
  #never: AbortSignal | undefined;
  /** Batch calls sent so far (single gets of a lone key not counted). */
  batches = 0;
  /** Keys sent in batch calls so far. */
  batchedKeys = 0;

  constructor(o: BatcherOptions) {
    this.#id = o.id;
    this.#send = o.send;
    this.#single = o.single;
    this.#maxKeys = o.maxKeys ?? BATCH_MAX_KEYS;
    this.#maxKeyBytes = o.maxKeyBytes ?? BATCH_MAX_KEY_BYTES;
  }

  /** Queues a get for the next flush; settles as a single get would. */
  get(req: KeyRequest, opts?: PeerGetOptions): Promise<PeerValue> {
    const signal = opts?.signal;
    if (signal?.aborted) return Promise.reject(this.#aborted(signal));
    const max = opts?.maxValueBytes;
    const slot = max === undefined ? req.group : this.#slotOf(req.group, max);
    const keyBytes = Buffer.byteLength(req.key) + 4;
    let p = this.#collecting.get(slot);
    if (
      p !== undefined &&
      !p.keys.has(req.key) &&
      (p.keys.size >= this.#maxKeys || p.keyBytes + keyBytes > this.#maxKeyBytes)
    ) {
      // Full: send it now, start another.
      this.#collecting.delete(slot);
      this.#flush(p);
      p = undefined;
    }
    if (p === undefined) {
      p = {
        group: req.group,
        maxValueBytes: max,
        keys: new Map(),
        keyBytes: 0,
        live: 0,
        controller: undefined,
        signal,
        mixed: false,
        watches: undefined,
      };
      this.#collecting.set(slot, p);
    } else if (signal !== p.signal) p.mixed = true;
    const pending = p;
    return new Promise<PeerValue>((resolve, reject) => {
      const w: Waiter = { resolve, reject, signal, done: false };
      let list = pending.keys.get(req.key);
      if (list === undefined) {
        list = [];
        pending.keys.set(req.key, list);
        pending.keyBytes += keyBytes;
      }
      list.push(w);
      pending.live++;
      if (signal !== undefined) this.#watch(pending, signal, w);
      this.#fresh = true;
      if (!this.#scheduled) {
        this.#scheduled = true;
        this.#turns = 0;
        this.#quietTurns = 0;
        setImmediate(this.#onTurn);
      }
    });
  }

  /**
   * The key of a group's batches with `max`: the last one made, while it fits (a Group
   * always passes the same group and maxValueBytes). A string made per get was flattened
   * and hashed again on every lookup.
   */
  #slotOf(group: string, max: number): string {
    const last = this.#lastSlot;
    if (last !== undefined && last.group === group && last.max === max) return last.slot;
    const slot = `${group}\0${max}`;
    this.#lastSlot = { group, max, slot };
    return slot;
  }

  /**
   * At the end of each event-loop turn (setImmediate) while gets are being collected:
   * sends them after {@link BATCH_QUIET_TURNS} turns in a row without a new get, or
   * {@link BATCH_MAX_TURNS} turns in all (see the file comment).
   */
  readonly #onTurn = (): void => {
    this.#quietTurns = this.#fresh ? 0 : this.#quietTurns + 1;
    this.#fresh = false;
    if (this.#quietTurns < BATCH_QUIET_TURNS && ++this.#turns < BATCH_MAX_TURNS) {
      setImmediate(this.#onTurn);
      return;
    }
    this.#flushAll();
  };

  /** Sends every batch being collected (see #onTurn). */
  readonly #flushAll = (): void => {
    this.#scheduled = false;
    const all = this.#collecting;
    if (all.size === 0) return;
    this.#collecting = new Map();
    for (const p of all.values()) this.#flush(p);
  };

  /** Rejects `w` when `signal` aborts (one listener per signal and batch). */
  #watch(p: Pending, signal: AbortSignal, w: Waiter): void {
    p.watches ??= new Map();
    const known = p.watches.get(signal);
    if (known !== undefined) {
      known.waiters.push(w);
      return;
    }
    const watch: Watch = {
      waiters: [w],
      onAbort: () => {
        p.watches?.delete(signal);
        for (const x of watch.waiters) {
          if (x.done) continue;
          this.#settle(p, x);
          x.reject(this.#aborted(signal));
        }
        if (p.live === 0) p.controller?.abort(signal.reason);
      },
    };
    p.watches.set(signal, watch);
    signal.addEventListener("abort", watch.onAbort, { once: true });
  }

  #settle(p: Pending, w: Waiter): void {
    w.done = true;
    p.live--;
    if (p.live === 0 && p.watches !== undefined) {
      // Every caller settled: no abort matters any more.
      for (const [signal, watch] of p.watches) signal.removeEventListener("abort", watch.onAbort);
      p.watches = undefined;
    }
  }

  /**
   * The signal of the call for `p`'s callers, aborted once every one of them aborted.
   * When they all passed one signal (the usual case: a Group's shared peer timeout) it is
   * that signal; when none passed any, one that never aborts. Only callers with different
   * signals get an AbortController of the batch's own: a controller per batch was the
   * peer path's largest source of objects that outlive a young-generation GC (Node's
   * AbortSignals do, measured), which made the GC's share triple.
   */
  #callSignal(p: Pending): AbortSignal {
    if (!p.mixed) return p.signal ?? this.#neverSignal();
    const controller = new AbortController();
    p.controller = controller;
    return controller.signal;
  }

  /** A signal that never aborts, made once. Calls remove their listeners when they end. */
  #neverSignal(): AbortSignal {
    if (this.#never === undefined) {
      this.#never = new AbortController().signal;
      // Every call in flight to this peer may listen at once.
      setMaxListeners(0, this.#never);
    }
    return this.#never;
  }

  #aborted(signal: AbortSignal): PeerError {
    return new PeerError("aborted", this.#id, "aborted by the caller", { cause: signal.reason });
  }

  #flush(p: Pending): void {
    if (p.live === 0) return; // every caller aborted before the flush
    const keys: string[] = [];
    for (const [key, list] of p.keys) if (list.some((w) => !w.done)) keys.push(key);
    if (keys.length === 1 && this.#single !== undefined) {
      this.#flushSingle(p, keys[0] as string);
      return;
    }
    const signal = this.#callSignal(p);
    this.batches++;
    this.batchedKeys += keys.length;
    let call: Promise<readonly BatchEntry[] | ReadonlyMap<string, BatchEntry>>;
    try {
      call = this.#send(
        p.group,
        keys,
        p.maxValueBytes === undefined ? { signal } : { signal, maxValueBytes: p.maxValueBytes },
      );
    } catch (err) {
      call = Promise.reject(err);
    }
    call.then(
      (entries) => {
        const max = p.maxValueBytes;
        for (let i = 0; i < keys.length; i++) {
          const key = keys[i] as string;
          const e = Array.isArray(entries)
            ? (entries as readonly BatchEntry[])[i]
            : (entries as ReadonlyMap<string, BatchEntry>).get(key);
          let out: BatchEntry;
          if (e === undefined) {
            out = {
              ok: false,
              error: new PeerError("unavailable", this.#id, "batch answer without this key"),
            };
          } else if (e.ok && max !== undefined && e.value.value.byteLength > max) {
            out = {
              ok: false,
              error: new PeerError("unavailable", this.#id, `value over maxValueBytes (${max})`, {
                local: true,
              }),
            };
          } else if (!e.ok && e.error.kind === "unavailable" && !e.error.local) {
            // The owner answered the batch: this key's failure (its getter limit, no room
            // in the answer) says nothing of the peer's health. Core loads it locally.
            out = {
              ok: false,
              error: new PeerError("unavailable", this.#id, e.error.message, {
                cause: e.error,
                local: true,
              }),
            };
          } else out = e;
          this.#answer(p, key, out);
        }
      },
      (err: unknown) => {
        const error = wholeBatchError(err, this.#id);
        for (const key of keys) this.#answer(p, key, { ok: false, error });
      },
    );
  }

  /** One key left to send: a plain get, with the signal of its (usually one) caller. */
  #flushSingle(p: Pending, key: string): void {
    const waiters = (p.keys.get(key) as Waiter[]).filter((w) => !w.done);
    const opts: PeerGetOptions = {};
    if (p.maxValueBytes !== undefined) opts.maxValueBytes = p.maxValueBytes;
    if (waiters.length === 1) {
      const w = waiters[0] as Waiter;
      // The caller's own signal goes with the call: its abort is already the call's.
      if (w.signal !== undefined) opts.signal = w.signal;
      this.#callSingle(p, key, opts, (err) => {
        if (w.done) return;
        this.#settle(p, w);
        w.reject(err);
      });
      return;
    }
    // Several callers of one key: one call, aborted when all of them aborted.
    opts.signal = this.#callSignal(p);
    this.#callSingle(p, key, opts, (err) =>
      this.#answer(p, key, { ok: false, error: err as PeerError }),
    );
  }

  /** The plain get of {@link #flushSingle}: its value answers the key, `onError` the rest. */
  #callSingle(
    p: Pending,
    key: string,
    opts: PeerGetOptions,
    onError: (err: unknown) => void,
  ): void {
    const single = this.#single as (req: KeyRequest, opts?: PeerGetOptions) => Promise<PeerValue>;
    let call: Promise<PeerValue>;
    try {
      call = single({ group: p.group, key }, opts);
    } catch (err) {
      call = Promise.reject(err);
    }
    call.then((v) => this.#answer(p, key, { ok: true, value: v }), onError);
  }

  #answer(p: Pending, key: string, e: BatchEntry): void {
    const list = p.keys.get(key);
    if (list === undefined) return;
    for (const w of list) {
      if (w.done) continue;
      this.#settle(p, w);
      if (e.ok) w.resolve(e.value);
      else w.reject(e.error);
    }
  }
}

/**
 * What each caller of a batch that failed as a whole is told: `unavailable` (core loads
 * the key locally), keeping the cause. A status about the batch itself (a 4xx for the
 * batch, not for a key) says nothing of any key, so it is `unavailable` too.
 */
function wholeBatchError(err: unknown, id: string): PeerError {
  if (err instanceof PeerError && (err.kind === "unavailable" || err.kind === "aborted")) {
    return err;
  }
  const message = err instanceof Error ? err.message : String(err);
  return new PeerError("unavailable", id, `batch failed: ${message}`, { cause: err });
}
