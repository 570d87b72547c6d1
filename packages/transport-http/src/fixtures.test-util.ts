import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { ByteView } from "@tinycache/core";
import type { CallOptions, GroupLookup, ServedGroup } from "@tinycache/core/transport";

/** One call a fake group received. */
export interface Call {
  op: "get" | "set" | "remove";
  key: string;
  value?: Uint8Array;
  expiresAt?: number | undefined;
  signal?: AbortSignal | undefined;
}

/** A ServedGroup whose answers the test decides; every call is recorded. */
export function fakeGroup(
  name: string,
  serveGet: (key: string, opts?: CallOptions) => Promise<{ value: ByteView; expiresAt?: number }>,
  calls: Call[] = [],
): ServedGroup & { calls: Call[] } {
  return {
    name,
    maxKeyBytes: 4096,
    calls,
    serveGet(key, opts) {
      calls.push({ op: "get", key, signal: opts?.signal });
      return serveGet(key, opts);
    },
    serveSet(key, value, expiresAt) {
      calls.push({ op: "set", key, value: new Uint8Array(value), expiresAt });
    },
    serveRemove(key) {
      calls.push({ op: "remove", key });
    },
  };
}

/** A fake group answering `v:<key>` for every key. */
export function echoGroup(name = "g", calls: Call[] = []) {
  return fakeGroup(name, async (key) => ({ value: ByteView.from(`v:${key}`) }), calls);
}

/** Groups for a pool's registry; a group without `maxKeyBytes` gets the default 4096. */
export function lookup(
  ...groups: (Omit<ServedGroup, "maxKeyBytes"> & { maxKeyBytes?: number })[]
): GroupLookup {
  return keyLimitedLookup(4096, ...groups);
}

/** {@link lookup} with every group's key limit set to `maxKeyBytes` (as a group's option). */
export function keyLimitedLookup(
  maxKeyBytes: number,
  ...groups: (Omit<ServedGroup, "maxKeyBytes"> & { maxKeyBytes?: number })[]
): GroupLookup {
  const m = new Map<string, ServedGroup>(
    groups.map((g) => [g.name, Object.assign(Object.create(g) as ServedGroup, { maxKeyBytes })]),
  );
  return { getGroup: (n) => m.get(n) };
}

export interface Served {
  server: http.Server;
  port: number;
  url: string;
  close(): Promise<void>;
}

/** Serves `handler` on 127.0.0.1, port 0. */
export async function serve(handler: http.RequestListener): Promise<Served> {
  const server = http.createServer(handler);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as AddressInfo).port;
  return {
    server,
    port,
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
  };
}

/** Raw requests with an already escaped path: the testkit's, under the names used here. */
export { type HttpAnswer as Answer, httpRequest as request } from "@tinycache/testkit";

/** Hex bytes like the wire doc writes them: "0a 09 76 ...". */
export const hex = (b: Uint8Array): string =>
  Buffer.from(b)
    .toString("hex")
    .replace(/(..)(?!$)/g, "$1 ");
