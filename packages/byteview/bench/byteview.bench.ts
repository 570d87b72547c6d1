/**
 * ByteView's hot paths (copy in, decode out) beside what a caller would otherwise write by
 * hand with Buffer, interleaved in one process (method: docs/benchmarks.md).
 * ByteView copies on the way in (into Node's Buffer pool) and caches its decoded string:
 * a single copy-in + decode should stay within 0.8x of the bare Buffer round trip, and
 * repeated toString() of one view should beat decoding a Buffer each time.
 */
import { compare, goal, makeKeys, printTable, ratio } from "@tinycache/testkit";
import { ByteView } from "../dist/index.js";

const N = 100_000;
const keys = makeKeys(N);
const arrays = keys.map((k) => new TextEncoder().encode(k.repeat(5)));

function fromAndDecodeByteView(): number {
  let n = 0;
  for (let i = 0; i < N; i++) n += ByteView.from(arrays[i] as Uint8Array).toString().length;
  if (n < 0) throw new Error("unreachable");
  return N;
}

function fromAndDecodeBuffer(): number {
  let n = 0;
  for (let i = 0; i < N; i++) n += Buffer.from(arrays[i] as Uint8Array).toString("utf8").length;
  if (n < 0) throw new Error("unreachable");
  return N;
}

const views = arrays.map((a) => ByteView.from(a));
const buffers = arrays.map((a) => Buffer.from(a));

function repeatDecodeByteView(): number {
  let n = 0;
  for (let r = 0; r < 5; r++)
    for (let i = 0; i < N; i++) n += (views[i] as ByteView).toString().length;
  if (n < 0) throw new Error("unreachable");
  return 5 * N;
}

function repeatDecodeBuffer(): number {
  let n = 0;
  for (let r = 0; r < 5; r++)
    for (let i = 0; i < N; i++) n += (buffers[i] as Buffer).toString("utf8").length;
  if (n < 0) throw new Error("unreachable");
  return 5 * N;
}

const copyIn = await compare("ByteView.from(bytes) + toString(), 100-byte values", [
  { name: "ByteView", run: fromAndDecodeByteView },
  { name: "Buffer.from + toString", run: fromAndDecodeBuffer },
]);
printTable(copyIn, "Buffer.from + toString");

const decode = await compare("toString() of the same value, 5 times", [
  { name: "ByteView (cached)", run: repeatDecodeByteView },
  { name: "Buffer#toString", run: repeatDecodeBuffer },
]);
printTable(decode, "Buffer#toString");

console.log("");
// The wrapper object costs something; it must stay close to the bare Buffer round trip.
goal(
  "byteview from+toString vs Buffer",
  ratio(copyIn, "ByteView", "Buffer.from + toString").median,
  0.8,
);
goal(
  "byteview repeated toString vs Buffer",
  ratio(decode, "ByteView (cached)", "Buffer#toString").median,
  1.0,
);
