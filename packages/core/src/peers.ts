import type { ByteView } from "@tinycache/byteview";

/**
 * The seams between core and a transport. core owns these interfaces; a transport
 * (HTTP, Connect, or the in-memory one of `@tinycache/core/testing`) implements them.
 * Group knows no transport, no protobuf and no HTTP; the shared HTTP/1.1 machinery that
 * transports build on lives apart, in the `@tinycache/core/transport` subpath.
 */

/** Per-call options. Every network call honours `signal` (and its own timeout). */
export interface CallOptions {
  signal?: AbortSignal;
}

/** Options of {@link PeerGetter.get}: the call's, plus how large an answer may be. */
export interface PeerGetOptions extends CallOptions {
  /**
   * Largest value the caller accepts, in bytes (the group's `maxValueBytes`). The
   * transport enforces it WHILE reading: an answer whose declared length (or whose bytes
   * read so far) exceed it plus the framing of the answer ({@link ANSWER_FRAMING_BYTES})
   * is not read further, its connection is dropped, and the call fails with a PeerError
   * of kind `unavailable` (so core loads the key locally). A value over it in a complete
   * answer fails the same way. Absent: only the transport's own body cap applies.
   */
  maxValueBytes?: number;
}

/**
 * Bytes a get answer's body may hold beyond the value: protobuf tags, lengths and expiry,
 * or an error answer's message. A transport reads at most `maxValueBytes` + this many
 * body bytes, then checks the decoded value against `maxValueBytes` exactly.
 */
export const ANSWER_FRAMING_BYTES = 1024;

/** Which key of which group. */
export interface KeyRequest {
  group: string;
  key: string;
}

/** A value as a peer hands it over: raw bytes plus the owner's absolute expiry. */
export interface PeerValue {
  value: Uint8Array;
  /** Milliseconds since the Unix epoch after which the value must not be served. */
  expiresAt?: number;
}

export interface SetRequest extends KeyRequest {
  value: Uint8Array;
  /** Absolute expiry (ms since epoch); absent = no expiry. */
  expiresAt?: number;
}

/**
 * One remote peer. Implementations throw {@link PeerError} (see errors.ts) so that core
 * can tell "peer unreachable" (load locally) from "owner says not found" or "owner's
 * getter failed" (pass on; do not ask the source twice).
 */
export interface PeerGetter {
  /** A stable name for logs and results, e.g. the peer's base URL. */
  readonly id: string;
  /** The owner's value of a key; honours `opts.maxValueBytes` (see {@link PeerGetOptions}). */
  get(req: KeyRequest, opts?: PeerGetOptions): Promise<PeerValue>;
  set(req: SetRequest, opts?: CallOptions): Promise<void>;
  remove(req: KeyRequest, opts?: CallOptions): Promise<void>;
  /**
   * Optional, for transports that batch gets (core's transport `Batcher`): the batch calls
   * sent to this peer so far and the keys they carried (a lone key sent as a plain get
   * counts in neither). A pool reports it per peer in `pool.stats().peerBatches`; groups
   * never call it.
   */
  batchStats?(): { batches: number; keys: number };
  /**
   * Optional: true when every `get` settles promptly once its `opts.signal` aborts (it
   * rejects then, whatever the peer does). A group then times its peer calls out through
   * the signal alone, instead of racing each call against the timeout as it must for a
   * getter that may ignore signals (one promise and a record less per remote get). Both
   * tinycache transports' peers, and core's health wrapper around them, say so.
   */
  readonly honoursSignals?: boolean;
}

/** Chooses the owner of a key. */
export interface PeerPicker {
  /** The owner's getter, or undefined when this process owns the key or has no peers. */
  pickPeer(key: string): PeerGetter | undefined;
  /** Every remote peer (not this process), for broadcasts such as remove. */
  peers(): readonly PeerGetter[];
}

/** What a transport server needs from a group to answer its peers. */
export interface ServedGroup {
  readonly name: string;
  /** Longest key the group accepts, in UTF-8 bytes: servers check it before any work. */
  readonly maxKeyBytes: number;
  /** Answers a peer's get: counts a server request, then loads as `get` does. */
  serveGet(key: string, opts?: CallOptions): Promise<{ value: ByteView; expiresAt?: number }>;
  /**
   * A peer's get answered from this node's caches alone, synchronously: what `serveGet`
   * would resolve with, `null` for a cached "not found", or `undefined` when the key is
   * not cached (or `serveGet` would refuse it): then call `serveGet`. Counted as
   * `serveGet` counts a hit; a miss counts nothing. Optional: a batch's all-hit answer
   * skips a promise per key with it.
   */
  serveCached?(key: string): { value: ByteView; expiresAt?: number } | null | undefined;
  /** A peer (or this node) tells us, the owner or a holder, to store a value locally. */
  serveSet(key: string, value: Uint8Array, expiresAt?: number): void;
  /** A peer tells us to drop our local copies (main and hot) of a key. */
  serveRemove(key: string): void;
}

/** How a transport server finds groups: a GroupRegistry satisfies it. */
export interface GroupLookup {
  getGroup(name: string): ServedGroup | undefined;
}

/** pino-compatible structured logger; core never writes to the console. */
export interface Logger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}
