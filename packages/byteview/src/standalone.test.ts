import { fileURLToPath } from "node:url";
import { packAndRun } from "@tinycache/testkit";
import { expect, it } from "vitest";

const packageDir = fileURLToPath(new URL("..", import.meta.url));

// Packs the built package (dist/ must exist: turbo runs `build` before `test`), installs the
// tarball with npm outside the workspace and uses it from plain Node ESM, as a user would.
it("installs from its tarball and works from plain Node ESM", async () => {
  const script = `
import { inspect } from "node:util";
import { ByteView } from "@tinycache/byteview";
const input = new TextEncoder().encode("héllo 😀");
const v = ByteView.from(input);
input[0] = 0;
const out = v.byteSlice();
out[1] = 0;
console.log(JSON.stringify({
  length: v.length,
  text: v.toString(),
  first: v.at(0),
  last: v.at(-1),
  slice: v.slice(0, 5).toString(),
  equals: v.equals("héllo 😀"),
  inspected: inspect({ v }),
}));
`;
  const stdout = await packAndRun([packageDir], script);
  expect(JSON.parse(stdout.trim())).toEqual({
    length: 11,
    text: "héllo 😀",
    first: 0x68,
    last: 0x80,
    slice: "héll",
    equals: true,
    inspected: '{ v: ByteView(11) "héllo 😀" }',
  });
}, 60_000);
