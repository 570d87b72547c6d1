import { ByteView, NotFoundError } from "@tinycache/core";
import type { CallOptions, ServedGroup } from "@tinycache/core/transport";

/** A ServedGroup over a Map, with keys that fail in known ways, for the transport tests. */
export class FakeGroup implements ServedGroup {
  readonly name: string;
  readonly maxKeyBytes: number;
  readonly data = new Map<string, { value: Uint8Array; expiresAt?: number }>();
  readonly calls: string[] = [];
  /** Resolves each time the "hang" key is asked for (so tests abort after the server has it). */
  hangStarted: Promise<void>;
  #markHang!: () => void;
  /** The signals of hanging calls, to check the server aborts them. */
  readonly hangSignals: AbortSignal[] = [];

  constructor(name: string, maxKeyBytes = 4096) {
    this.name = name;
    this.maxKeyBytes = maxKeyBytes;
    this.hangStarted = this.#newHang();
  }

  #newHang(): Promise<void> {
    return new Promise<void>((r) => {
      this.#markHang = r;
    });
  }

  serveGet(key: string, opts?: CallOptions): Promise<{ value: ByteView; expiresAt?: number }> {
    this.calls.push(key);
    if (key === "boom") return Promise.reject(new Error("database is down"));
    if (key === "hang") {
      const signal = opts?.signal;
      if (signal) this.hangSignals.push(signal);
      this.#markHang();
      this.hangStarted = this.#newHang();
      return new Promise((_, reject) => {
        signal?.addEventListener("abort", () => reject(signal.reason), { once: true });
      });
    }
    const e = this.data.get(key);
    if (e === undefined) return Promise.reject(new NotFoundError(key));
    return Promise.resolve(
      e.expiresAt === undefined
        ? { value: ByteView.from(e.value) }
        : { value: ByteView.from(e.value), expiresAt: e.expiresAt },
    );
  }

  serveSet(key: string, value: Uint8Array, expiresAt?: number): void {
    this.data.set(key, expiresAt === undefined ? { value } : { value, expiresAt });
  }

  serveRemove(key: string): void {
    this.data.delete(key);
  }
}

export const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
export const dec = (b: Uint8Array): string => new TextDecoder().decode(b);
