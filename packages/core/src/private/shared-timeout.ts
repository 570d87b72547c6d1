/**
 * Coarse timeouts shared by the calls that start close together, for the peer calls of a
 * Group whose callers passed no signal (the common case: an API handler awaiting `get`).
 *
 * `callSignal` gives each call its own AbortController, timer and listener: measured, that
 * was ~80% of a remote get's cost in core (5.4 us of a 0.9 us get), most of it in Node's
 * EventTarget. Here the calls that start within one slot (1/16 of the timeout) share one
 * AbortController and one timer; each call only adds a small record to its slot. A call's
 * timeout thus fires between `ms` and `ms + ms/16` after it started: never early, at most
 * ~6% late.
 *
 * A slot's timer aborts its signal (transports that honour it stop) and rejects every
 * call of it still running (for a getter that ignores signals, the caller's wait still
 * ends). A slot is released (timer cleared, records dropped) as soon as it stopped taking
 * calls and its last call settled.
 */

import { setMaxListeners } from "node:events";

/** A call still running, in its slot's list (unlinked when it settles). */
interface Race {
  reject: ((err: unknown) => void) | undefined;
  prev: Race | undefined;
  next: Race | undefined;
}

interface Slot {
  controller: AbortController;
  timer: ReturnType<typeof setTimeout>;
  /** Takes new calls until this time (performance.now()). */
  open: number;
  /** Calls not settled yet (of {@link SharedTimeout.run}). */
  live: number;
  /**
   * Whether {@link SharedTimeout.signal} handed out this slot's signal: its calls are not
   * counted, so the timer must run to its end (it aborts a signal nobody may listen to
   * any more, at worst).
   */
  signalled: boolean;
  /**
   * The calls not settled yet, newest first. A settled call leaves the list at once, so
   * a slot, which lives ms/16 and more (625 ms for the default 10 s), holds only the
   * calls still running, not every call it ever took.
   */
  head: Race | undefined;
}

/** Shared timeouts of one duration: see the file comment. One per Group. */
export class SharedTimeout {
  readonly #ms: number;
  readonly #slotMs: number;
  #current: Slot | undefined;

  /** @param ms - the timeout, > 0 and finite. */
  constructor(ms: number) {
    this.#ms = ms;
    this.#slotMs = Math.max(1, ms / 16);
  }

  /**
   * Runs `call` with the signal of the current slot; settles as its promise does, or
   * rejects with the slot's TimeoutError once the slot's time is up.
   */
  run<T>(call: (signal: AbortSignal) => Promise<T>): Promise<T> {
    // Never an aborted slot: its timer fires after `open`, and takes it out of #current.
    const slot = this.#slot();
    let p: Promise<T>;
    try {
      p = call(slot.controller.signal);
    } catch (err) {
      p = Promise.reject(err);
    }
    slot.live++;
    return new Promise<T>((resolve, reject) => {
      const first = slot.head;
      const race: Race = { reject, prev: undefined, next: first };
      if (first !== undefined) first.prev = race;
      slot.head = race;
      p.then(
        (v) => {
          if (this.#settle(slot, race)) resolve(v);
        },
        (err: unknown) => {
          if (this.#settle(slot, race)) reject(err);
        },
      );
    });
  }

  /**
   * The current slot's signal, for a call that settles by itself once it aborts (a
   * getter that honours signals): no record, no race. The slot's timer aborts it between
   * `ms` and `ms + ms/16` after the call starts, as for {@link run}.
   */
  signal(): AbortSignal {
    const slot = this.#slot();
    slot.signalled = true;
    return slot.controller.signal;
  }

  /** Marks `race` settled; false when the timeout already rejected it. */
  #settle(slot: Slot, race: Race): boolean {
    if (race.reject === undefined) return false;
    race.reject = undefined;
    const { prev, next } = race;
    if (prev === undefined) slot.head = next;
    else prev.next = next;
    if (next !== undefined) next.prev = prev;
    race.prev = race.next = undefined;
    slot.live--;
    if (slot.live === 0 && slot !== this.#current && !slot.signalled) this.#release(slot);
    return true;
  }

  #release(slot: Slot): void {
    clearTimeout(slot.timer);
    slot.head = undefined;
  }

  #slot(): Slot {
    const now = performance.now();
    const cur = this.#current;
    if (cur !== undefined && now < cur.open) return cur;
    if (cur !== undefined && cur.live === 0 && !cur.signalled) this.#release(cur);
    const controller = new AbortController();
    // Every call of the slot may listen (a transport per request): many listeners at once
    // are expected, so Node's leak warning is off for this signal.
    setMaxListeners(0, controller.signal);
    const ms = this.#ms;
    const slot: Slot = {
      controller,
      open: now + this.#slotMs,
      live: 0,
      signalled: false,
      head: undefined,
      timer: setTimeout(() => {
        if (this.#current === slot) this.#current = undefined;
        const reason = new DOMException(`timed out after ${ms} ms`, "TimeoutError");
        controller.abort(reason);
        // The abort's listeners may settle calls (unlinking them): take what is left.
        let r = slot.head;
        slot.head = undefined;
        while (r !== undefined) {
          const next = r.next;
          const reject = r.reject;
          r.reject = undefined;
          r.prev = r.next = undefined;
          if (reject !== undefined) {
            slot.live--;
            reject(reason);
          }
          r = next;
        }
      }, ms + this.#slotMs),
    };
    slot.timer.unref?.();
    this.#current = slot;
    return slot;
  }
}
