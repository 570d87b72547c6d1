import type { ByteView } from "@tinycache/byteview";
import { NotFoundError } from "../errors.js";
import type { CallOptions, ServedGroup } from "../peers.js";
import { errorMessage, type StatusCode, statusOf } from "./status.js";

/**
 * The owner's half of batched gets, for every transport: one lookup per key, all at once
 * (misses load concurrently, through the group's getter limit and singleflight), each key
 * answered on its own. A transport only decodes the request, checks its size with
 * {@link batchSizeError} and encodes the answers.
 */

/** One key's answer: a value, or a status and message (as a single get would fail). */
export type BatchAnswer =
  | { key: string; ok: true; value: ByteView; expiresAt?: number }
  | { key: string; ok: false; code: StatusCode; message: string };

/** Default of the `maxBatchKeys` pool option: most keys a server answers in one batch. */
export const DEFAULT_MAX_BATCH_KEYS = 1000;

/**
 * Bytes a key's entry in an answer takes beyond its key and value (tags, lengths,
 * expiry), counted against the answer's cap.
 */
export const BATCH_ENTRY_OVERHEAD = 32;

/** Options of {@link serveBatch}. */
export interface ServeBatchOptions extends CallOptions {
  /**
   * Checks a key as a single get would (its length against the group's limit): an error
   * makes the key's answer `invalid_argument`.
   */
  keyError?: (group: ServedGroup, key: string) => Error | undefined;
  /**
   * Most bytes of the whole answer (keys, values and framing): values that do not fit,
   * taken in request order, are answered `resource_exhausted` instead (the asker then
   * loads them itself), so one batch cannot take unbounded memory.
   */
  maxAnswerBytes: number;
  /**
   * The asker's deadline for the whole batch, in ms: the answer is sent after
   * {@link BATCH_ANSWER_FRACTION} of it at the latest, with `deadline_exceeded` for the
   * keys still loading (the asker loads them itself, as after a single get that timed
   * out; their loads go on and fill the cache). So one slow key does not hold the others
   * until the whole batch times out. Default: no deadline.
   */
  timeoutMs?: number;
}

/** Share of the asker's deadline after which a batch is answered with what is ready. */
export const BATCH_ANSWER_FRACTION = 0.8;

/**
 * Why a batch of `count` keys is refused as a whole (a message), or undefined: more than
 * `maxBatchKeys` keys. A transport answers 413 / `resource_exhausted`.
 */
export function batchSizeError(count: number, maxBatchKeys: number): string | undefined {
  return count > maxBatchKeys ? `${count} keys in one batch, more than ${maxBatchKeys}` : undefined;
}

/**
 * Answers a batch: one answer per key, in order (a key asked twice is looked up once).
 * Never rejects: a group's error becomes that key's answer.
 */
export function serveBatch(
  group: ServedGroup,
  keys: readonly string[],
  o: ServeBatchOptions,
): Promise<BatchAnswer[]> {
  // The usual batch on a warm owner: every key a hit. Answered from the caches at once,
  // without a promise, closure and Map entry per key or the deadline's timer; the keys
  // that are not cached go the general way, the cached ones keeping their answers.
  if (typeof group.serveCached !== "function") return serveLoads(group, keys, o, undefined);
  const cached = cachedAnswers(group, keys, o);
  if (cached.complete)
    return Promise.resolve(bound(cached.answers as BatchAnswer[], o.maxAnswerBytes));
  return serveLoads(group, keys, o, cached.answers);
}

/**
 * A peer's single get answered from the group's caches at once, for a transport's server
 * (see `ServedGroup.serveCached`): the value, or undefined when the get must go through
 * `serveGet` (not cached, refused, or a group without `serveCached`).
 * @throws NotFoundError for a cached "not found": the answer `serveGet` would reject with.
 */
export function serveCachedGet(
  group: ServedGroup,
  key: string,
): NonNullable<ReturnType<NonNullable<ServedGroup["serveCached"]>>> | undefined {
  if (typeof group.serveCached !== "function") return undefined;
  const v = group.serveCached(key);
  if (v === null) throw new NotFoundError(key);
  return v;
}

/**
 * The answers of the keys the group has cached (`serveCached`), by position; undefined
 * for the others (not cached, or refused by `keyError`: the general path answers them).
 * A repeated key gets its first answer.
 */
function cachedAnswers(
  group: ServedGroup,
  keys: readonly string[],
  o: ServeBatchOptions,
): { answers: (BatchAnswer | undefined)[]; complete: boolean } {
  const serveCached = group.serveCached as NonNullable<ServedGroup["serveCached"]>;
  const first = keys.length > 1 ? new Map<string, number>() : undefined;
  const answers: (BatchAnswer | undefined)[] = new Array(keys.length);
  let complete = true;
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i] as string;
    if (first !== undefined) {
      const at = first.get(key);
      if (at !== undefined) {
        answers[i] = answers[at];
        if (answers[i] === undefined) complete = false;
        continue;
      }
      first.set(key, i);
    }
    const v = o.keyError?.(group, key) === undefined ? serveCached.call(group, key) : undefined;
    if (v === undefined) {
      answers[i] = undefined;
      complete = false;
    } else if (v === null) {
      const message = errorMessage(new NotFoundError(key));
      answers[i] = { key, ok: false, code: "not_found", message };
    } else if (v.expiresAt === undefined) answers[i] = { key, ok: true, value: v.value };
    else answers[i] = { key, ok: true, value: v.value, expiresAt: v.expiresAt };
  }
  return { answers, complete };
}

/** The general path: every key looked up (and loaded when missing) at once. */
async function serveLoads(
  group: ServedGroup,
  keys: readonly string[],
  o: ServeBatchOptions,
  known: readonly (BatchAnswer | undefined)[] | undefined,
): Promise<BatchAnswer[]> {
  const signal = o.signal;
  const lookups = new Map<string, Promise<BatchAnswer>>();
  const lookup = async (key: string): Promise<BatchAnswer> => {
    try {
      const bad = o.keyError?.(group, key);
      if (bad !== undefined)
        return { key, ok: false, code: "invalid_argument", message: bad.message };
      const { value, expiresAt } = await group.serveGet(key, signal ? { signal } : undefined);
      return expiresAt === undefined
        ? { key, ok: true, value }
        : { key, ok: true, value, expiresAt };
    } catch (err) {
      return { key, ok: false, code: statusOf(err, signal), message: errorMessage(err) };
    }
  };
  const all = keys.map((key, i) => {
    const answered = known?.[i];
    if (answered !== undefined) return Promise.resolve(answered);
    let p = lookups.get(key);
    if (p === undefined) {
      p = lookup(key);
      lookups.set(key, p);
    }
    return p;
  });
  let answers: BatchAnswer[];
  const timeoutMs = o.timeoutMs;
  if (timeoutMs === undefined || !Number.isFinite(timeoutMs) || timeoutMs <= 0) {
    answers = await Promise.all(all);
  } else {
    const ready: (BatchAnswer | undefined)[] = Array.from({ length: all.length }, () => undefined);
    all.forEach((p, i) => {
      p.then((a) => {
        ready[i] = a;
      });
    });
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, Math.max(1, Math.floor(timeoutMs * BATCH_ANSWER_FRACTION)));
    });
    await Promise.race([Promise.all(all), late]);
    clearTimeout(timer);
    answers = ready.map(
      (a, i) =>
        a ?? {
          key: keys[i] as string,
          ok: false,
          code: "deadline_exceeded",
          message: "not loaded within the batch's deadline: load it locally",
        },
    );
  }
  return bound(answers, o.maxAnswerBytes);
}

/** The answer's bound, in request order: a value that does not fit is not sent. */
function bound(answers: BatchAnswer[], maxAnswerBytes: number): BatchAnswer[] {
  let room = maxAnswerBytes;
  for (let i = 0; i < answers.length; i++) {
    const a = answers[i] as BatchAnswer;
    const size =
      BATCH_ENTRY_OVERHEAD +
      a.key.length * 3 +
      (a.ok ? a.value.byteLength : Math.min(a.message.length * 3, 4096));
    if (size <= room) {
      room -= size;
      continue;
    }
    answers[i] = {
      key: a.key,
      ok: false,
      code: "resource_exhausted",
      message: "no room left in the batch answer: ask for this key alone",
    };
    room -= Math.min(room, BATCH_ENTRY_OVERHEAD + a.key.length * 3 + 64);
  }
  return answers;
}
