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
  get(req: KeyRequest, opts?: CallOptions): Promise<PeerValue>;
  set(req: SetRequest, opts?: CallOptions): Promise<void>;
  remove(req: KeyRequest, opts?: CallOptions): Promise<void>;
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
