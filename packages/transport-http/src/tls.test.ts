import { HashRing } from "@tinycache/consistenthash";
import { GroupRegistry, PeerError } from "@tinycache/core";
import { freePort, selfSignedCert } from "@tinycache/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HttpPool } from "./http-pool.js";

const tls = selfSignedCert();

describe.skipIf(tls === undefined)(
  "HTTPS peers with auth (SKIPPED without the openssl CLI)",
  () => {
    const pools: HttpPool[] = [];
    const loads: string[][] = [];
    const groups: ReturnType<GroupRegistry["newGroup"]>[] = [];
    let urls: string[] = [];

    beforeAll(async () => {
      const { key, cert } = tls as { key: Buffer; cert: Buffer };
      const ports = [await freePort(), await freePort()];
      urls = ports.map((p) => `https://127.0.0.1:${p}`);
      for (let i = 0; i < 2; i++) {
        const seen: string[] = [];
        loads.push(seen);
        const registry = new GroupRegistry();
        groups.push(
          registry.newGroup({
            name: "scores",
            cacheBytes: 1 << 20,
            getter: async (k) => {
              seen.push(k);
              return `v:${k}`;
            },
          }),
        );
        const pool = new HttpPool({
          self: urls[i] as string,
          registry,
          tls: { key, cert },
          agentOptions: { ca: cert },
          auth: { secret: "tls-and-a-secret" },
        });
        pool.setPeers(...urls);
        registry.registerPeers(pool);
        await pool.listen(ports[i], "127.0.0.1");
        pools.push(pool);
      }
    });
    afterAll(async () => {
      await Promise.all(pools.map((p) => p.close()));
    });

    it("fetches from the owner over TLS; each key loaded once, on its owner", async () => {
      const ring = new HashRing().add(...urls);
      for (let i = 0; i < 20; i++) {
        const key = `key ${i}`;
        for (const g of groups) expect((await g.get(key)).toString()).toBe(`v:${key}`);
        const owner = urls.indexOf(ring.get(key) as string);
        expect(loads[owner]?.filter((k) => k === key)).toEqual([key]);
        expect(loads[1 - owner]).not.toContain(key);
      }
    });

    it("a client that does not trust the certificate gets unavailable", async () => {
      const stranger = new HttpPool({
        self: "https://127.0.0.1:1",
        registry: new GroupRegistry(),
        auth: { secret: "tls-and-a-secret" },
      });
      try {
        stranger.setPeers(urls[0] as string);
        const err = await stranger
          .peers()[0]
          ?.get({ group: "scores", key: "k" })
          .catch((e: unknown) => e);
        expect(err).toBeInstanceOf(PeerError);
        expect((err as PeerError).kind).toBe("unavailable");
      } finally {
        await stranger.close();
      }
    });
  },
);
