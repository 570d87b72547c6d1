import { describe, expect, it } from "vitest";
import { compare, roundOrders } from "./bench.js";

describe("roundOrders", () => {
  it("gives each round a permutation, each position and each neighbour equally often", () => {
    for (let n = 1; n <= 9; n++) {
      const rows = roundOrders(n);
      expect(rows.length).toBe(n % 2 === 0 || n === 1 ? n : 2 * n);
      const atPosition = new Map<string, number>();
      const after = new Map<string, number>();
      for (const row of rows) {
        expect([...row].sort((a, b) => a - b)).toEqual([...Array(n).keys()]);
        row.forEach((c, i) => {
          atPosition.set(`${c}@${i}`, (atPosition.get(`${c}@${i}`) ?? 0) + 1);
          if (i > 0) after.set(`${row[i - 1]}>${c}`, (after.get(`${row[i - 1]}>${c}`) ?? 0) + 1);
        });
      }
      expect(atPosition.size).toBe(n * n);
      expect(new Set(atPosition.values()).size).toBe(1);
      // Every ordered pair of different contenders is adjacent, all equally often.
      expect(after.size).toBe(n * (n - 1));
      expect(new Set(after.values()).size).toBeLessThanOrEqual(1);
    }
  });

  it("rejects a count that is not a positive integer", () => {
    expect(() => roundOrders(0)).toThrow(RangeError);
    expect(() => roundOrders(2.5)).toThrow(RangeError);
  });
});

describe("compare", () => {
  it("measures whole design periods and no contender twice in a row within a round", async () => {
    const log: string[] = [];
    const contender = (name: string) => ({
      name,
      run: () => {
        log.push(name);
        return 1;
      },
    });
    const cmp = await compare("t", ["a", "b", "c"].map(contender), { rounds: 4, warmup: 1 });
    // 3 contenders: a period of 6 rounds, so 4 rounds round up to 6, plus 1 warm-up.
    for (const name of ["a", "b", "c"]) expect(cmp.opsPerSec.get(name)).toHaveLength(6);
    expect(log).toHaveLength(21);
    for (let r = 0; r < 7; r++) expect(new Set(log.slice(3 * r, 3 * r + 3)).size).toBe(3);
  });
});
