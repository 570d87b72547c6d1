import { describe, expect, it } from "vitest";
import { SingleFlight } from "../singleflight.js";
import { CallTable } from "./call-table.js";

describe("CallTable", () => {
  it("behaves as a Map for string keys, the prototype's names and index-like strings included", () => {
    const t = new CallTable<unknown, string>();
    const keys = [
      "a",
      "",
      "__proto__",
      "constructor",
      "toString",
      "hasOwnProperty",
      "0",
      "4294967295",
      "-1",
      "1e3",
      "ünï 🎉",
    ];
    for (const k of keys) {
      expect(t.has(k)).toBe(false);
      expect(t.get(k)).toBeUndefined();
    }
    for (const [i, k] of keys.entries()) t.set(k, `v${i}`);
    expect(t.size).toBe(keys.length);
    keys.forEach((k, i) => {
      expect(t.get(k)).toBe(`v${i}`);
      expect(t.has(k)).toBe(true);
    });
    t.set("a", "again"); // overwrite: no new entry
    expect(t.size).toBe(keys.length);
    expect(t.delete("__proto__")).toBe(true);
    expect(t.delete("__proto__")).toBe(false);
    expect(t.get("__proto__")).toBeUndefined();
    expect(t.size).toBe(keys.length - 1);
    for (const k of keys) t.delete(k);
    expect(t.size).toBe(0);
  });

  it("keeps non-string keys apart from strings that look the same (SameValueZero, as a Map)", () => {
    const t = new CallTable<unknown, string>();
    const obj = {};
    t.set(1, "number");
    t.set("1", "string");
    t.set(obj, "object");
    t.set(-0, "zero");
    t.set(Number.NaN, "nan");
    expect(t.get(1)).toBe("number");
    expect(t.get("1")).toBe("string");
    expect(t.get(obj)).toBe("object");
    expect(t.get(0)).toBe("zero");
    expect(t.get(Number.NaN)).toBe("nan");
    expect(t.size).toBe(5);
    expect(t.delete(1)).toBe(true);
    expect(t.get("1")).toBe("string");
    expect(t.delete({})).toBe(false);
    expect(t.size).toBe(4);
  });

  it("a SingleFlight keyed by such strings collapses and releases them like any other", async () => {
    const sf = new SingleFlight<string, string>();
    let calls = 0;
    const work = async () => {
      calls++;
      return "v";
    };
    const ps = ["__proto__", "__proto__", "constructor", "constructor"].map((k) => sf.do(k, work));
    expect(sf.size).toBe(2);
    expect(await Promise.all(ps)).toEqual(["v", "v", "v", "v"]);
    expect(calls).toBe(2);
    expect(sf.size).toBe(0);
    expect(sf.has("__proto__")).toBe(false);
  });
});
