import { fileURLToPath } from "node:url";
import { packAndRun } from "@tinycache/testkit";
import { expect, it } from "vitest";

const packageDir = fileURLToPath(new URL("..", import.meta.url));

// Packs the built package (dist/ must exist: turbo runs `build` before `test`), installs the
// tarball with npm outside the workspace and uses it from plain Node ESM, as a user would.
it("installs from its tarball and works from plain Node ESM", async () => {
  const script = `
import { SingleFlight } from "@tinycache/singleflight";
const flight = new SingleFlight();
let calls = 0;
let release;
const gate = new Promise((r) => { release = r; });
const load = async (signal) => { calls++; await gate; return "v:" + signal.aborted; };
const ps = Array.from({ length: 100 }, () => flight.do("k", load));
const shared = flight.doShared("k", load);
const ac = new AbortController();
const aborted = flight.do("k", load, { signal: ac.signal }).catch((e) => e.name);
const inFlight = flight.size;
ac.abort();
release();
const values = new Set(await Promise.all(ps));
console.log(JSON.stringify({
  calls, inFlight, values: [...values], shared: await shared, aborted: await aborted,
  after: flight.size, forgot: flight.forget("k"),
}));
`;
  const stdout = await packAndRun([packageDir], script);
  expect(JSON.parse(stdout.trim())).toEqual({
    calls: 1,
    inFlight: 1,
    values: ["v:false"],
    shared: { value: "v:false", shared: true },
    aborted: "AbortError",
    after: 0,
    forgot: false,
  });
}, 60_000);
