/**
 * A single Get from the client's side (batching off, Connect over HTTP/1.1), against a
 * server that answers whatever bytes a test gives it: the verdicts a caller sees for a
 * good answer, a malformed one, one of the wrong type, an oversized value and a closed
 * peer. The Get is a promise chain (no async functions: each hop shows at light load),
 * so every failure must still come out as a rejected PeerError, never a throw.
 */
import { once } from "node:events";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { PeerError } from "@tinycache/core";
import type { GroupLookup, PeerGetter } from "@tinycache/core/transport";
import { afterEach, describe, expect, it } from "vitest";
import { dec } from "./fake-group.test-util.js";
import { type ConnectPeer, ConnectPool } from "./index.js";

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const noGroups: GroupLookup = { getGroup: () => undefined };

interface Answer {
  status: number;
  type: string;
  body: Uint8Array;
}

/** A peer at a free port that answers every call with `answer()`; its requests' paths. */
async function fakePeer(
  answer: () => Answer,
): Promise<{ peer: PeerGetter; paths: string[]; pool: ConnectPool }> {
  const paths: string[] = [];
  const server = http.createServer((req, res) => {
    paths.push(req.url ?? "");
    req.resume();
    req.on("end", () => {
      const a = answer();
      res.writeHead(a.status, { "content-type": a.type, "content-length": a.body.length });
      res.end(a.body);
    });
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  cleanups.push(() => new Promise((r) => server.close(r)));
  server.on("connection", (s) => cleanups.push(() => s.destroy()));
  const pool = new ConnectPool({
    self: "http://client.invalid:1",
    registry: noGroups,
    batch: false,
  });
  cleanups.push(() => pool.close());
  pool.setPeers(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  const peer = pool.peerClients()[0];
  if (peer === undefined) throw new Error("no peer");
  return { peer, paths, pool };
}

/** GetResponse{value} as protobuf writes it (field 1, length-delimited). */
const getResponse = (value: string) => {
  const v = Buffer.from(value);
  return Buffer.concat([Buffer.from([0x0a, v.length]), v]);
};
const proto = (body: Uint8Array): Answer => ({ status: 200, type: "application/proto", body });

describe("a single Get, client side", () => {
  it("reads the value of a good answer, and asks the Get method", async () => {
    const { peer, paths } = await fakePeer(() => proto(getResponse("630")));
    const got = await peer.get({ group: "scores", key: "Tom" });
    expect(dec(got.value)).toBe("630");
    expect(got.expiresAt).toBeUndefined();
    expect(paths).toEqual(["/tinycache.v1.CacheService/Get"]);
  });

  it("a malformed GetResponse: a rejected unavailable PeerError (the key loads locally)", async () => {
    // Field 1 says 5 bytes follow; one does.
    const { peer } = await fakePeer(() => proto(Buffer.from([0x0a, 0x05, 0x61])));
    const err = await peer.get({ group: "scores", key: "Tom" }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PeerError);
    expect(err).toMatchObject({ kind: "unavailable" });
  });

  it("a malformed GetManyResponse: the batch call rejects with an unavailable PeerError", async () => {
    // Field 1 (a result) says 5 bytes follow; one does.
    const { peer, paths } = await fakePeer(() => proto(Buffer.from([0x0a, 0x05, 0x61])));
    const err = await (peer as ConnectPeer)
      .getMany("scores", ["Tom", "Jack"])
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PeerError);
    expect(err).toMatchObject({ kind: "unavailable" });
    expect((err as Error).message).toContain("malformed response");
    expect(paths).toEqual(["/tinycache.v1.CacheService/GetMany"]);
  });

  it("a 200 that is not application/proto: unavailable", async () => {
    const { peer } = await fakePeer(() => ({
      status: 200,
      type: "text/plain",
      body: Buffer.from("630"),
    }));
    await expect(peer.get({ group: "scores", key: "Tom" })).rejects.toMatchObject({
      kind: "unavailable",
    });
  });

  it("a value over the caller's maxValueBytes: unavailable, loaded locally; within it: the value", async () => {
    const { peer } = await fakePeer(() => proto(getResponse("x".repeat(40))));
    const err = await peer
      .get({ group: "scores", key: "Tom" }, { maxValueBytes: 39 })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PeerError);
    expect(err).toMatchObject({ kind: "unavailable" });
    const got = await peer.get({ group: "scores", key: "Tom" }, { maxValueBytes: 40 });
    expect(got.value.byteLength).toBe(40);
  });

  it("unicode keys go out as UTF-8 and come back answered", async () => {
    const { peer } = await fakePeer(() => proto(getResponse("ok")));
    const got = await peer.get({ group: "scores", key: "Zoë 🦊 東京" });
    expect(dec(got.value)).toBe("ok");
  });

  it("a peer of a closed pool: a rejected unavailable PeerError, and no request sent", async () => {
    const { peer, paths, pool } = await fakePeer(() => proto(getResponse("630")));
    await pool.close();
    const call = peer.get({ group: "scores", key: "Tom" });
    expect(call).toBeInstanceOf(Promise);
    await expect(call).rejects.toMatchObject({ kind: "unavailable" });
    expect(paths).toEqual([]);
  });
});
