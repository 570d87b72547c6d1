/**
 * The in-flight calls by key, as a Map's get/set/delete/has/size. String keys (a cache's
 * keys: the usual case) live in a null-prototype object used as a dictionary, any other
 * key in a Map.
 *
 * Why not a Map for all: every call adds its key and removes it when it settles, turns of
 * the event loop later. Measured under Node 20, a Map with that churn made V8 promote
 * ~1.6 MB per young-generation GC out of ~9 MB allocated (objects it was done with, kept
 * by the table until the next full GC: mark-compacts went from 1 to 47 in the same run);
 * a dictionary object under the same churn, 0.04 MB. On a cache's loaded peer path that
 * was a large share of the GC's time.
 */
export class CallTable<K, V> {
  /** String keys. Values are never undefined (promises), so `undefined` means absent. */
  #strings: Record<string, V> = Object.create(null);
  #stringCount = 0;
  #others: Map<K, V> | undefined;

  get(key: K): V | undefined {
    return typeof key === "string" ? this.#strings[key] : this.#others?.get(key);
  }

  set(key: K, value: V): void {
    if (typeof key === "string") {
      if (this.#strings[key] === undefined) this.#stringCount++;
      this.#strings[key] = value;
      return;
    }
    this.#others ??= new Map();
    this.#others.set(key, value);
  }

  delete(key: K): boolean {
    if (typeof key === "string") {
      if (this.#strings[key] === undefined) return false;
      delete this.#strings[key];
      this.#stringCount--;
      return true;
    }
    return this.#others?.delete(key) ?? false;
  }

  has(key: K): boolean {
    return typeof key === "string"
      ? this.#strings[key] !== undefined
      : (this.#others?.has(key) ?? false);
  }

  get size(): number {
    return this.#stringCount + (this.#others?.size ?? 0);
  }
}
