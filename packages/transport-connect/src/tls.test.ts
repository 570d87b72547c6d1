import { once } from "node:events";
import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";
import type { GroupLookup } from "@tinycache/core/transport";
import { afterEach, describe, expect, it } from "vitest";
import { dec, enc, FakeGroup } from "./fake-group.test-util.js";
import { ConnectPool, type PeerProtocol } from "./index.js";

// A self-signed P-256 certificate for localhost / 127.0.0.1, valid until 2125, made once
// with openssl for these tests (so they need no openssl at run time). Test-only key.
const KEY = `-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgYPwJXVcSZz8y3DWt
X1PRayfujX0rbJwJNSvppsisKeuhRANCAAQrSKO8cIiQ2P7FSLzg2OW56YqsR1M7
0kPNYgdunPJQd6BS9hbjMUXAlqHJCcVTcqEBRAzXxqLjoVUuBaKbfCV9
-----END PRIVATE KEY-----`;
const CERT = `-----BEGIN CERTIFICATE-----
MIIBmjCCAUGgAwIBAgIUAu3BOVE3AwMVfc14lbAgkaxVHjAwCgYIKoZIzj0EAwIw
FDESMBAGA1UEAwwJbG9jYWxob3N0MCAXDTI2MTEyNjAyMDgxNVoYDzIxMjYxMTAy
MDIwODE1WjAUMRIwEAYDVQQDDAlsb2NhbGhvc3QwWTATBgcqhkjOPQIBBggqhkjO
PQMBBwNCAAQrSKO8cIiQ2P7FSLzg2OW56YqsR1M70kPNYgdunPJQd6BS9hbjMUXA
lqHJCcVTcqEBRAzXxqLjoVUuBaKbfCV9o28wbTAdBgNVHQ4EFgQUxh/FXX96I4ot
GS1QrXeRp/ys7dcwHwYDVR0jBBgwFoAUxh/FXX96I4otGS1QrXeRp/ys7dcwDwYD
VR0TAQH/BAUwAwEB/zAaBgNVHREEEzARgglsb2NhbGhvc3SHBH8AAAEwCgYIKoZI
zj0EAwIDRwAwRAIgECpEpAUjWBVD+8c7SbyXWJXSjOV+OENFt4Tta/9V2EwCIB80
rggu1LHCRYra0TVGQEKHMFCnvNwbbEipCoINGL33
-----END CERTIFICATE-----`;

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

describe("TLS: the handler in an http2 secure server (allowHTTP1)", () => {
  const variants: { protocol: PeerProtocol; httpVersion: "1.1" | "2" }[] = [
    { protocol: "connect", httpVersion: "1.1" },
    { protocol: "connect", httpVersion: "2" },
    { protocol: "grpc", httpVersion: "2" },
    { protocol: "grpcweb", httpVersion: "1.1" },
  ];

  it.each(variants)("$protocol over HTTP/$httpVersion trusts the given CA", async (v) => {
    const group = new FakeGroup("scores");
    group.data.set("Tom", { value: enc("630") });
    const registry: GroupLookup = { getGroup: (n) => (n === "scores" ? group : undefined) };
    const server = new ConnectPool({ self: "https://127.0.0.1:1", registry });
    const tls = http2.createSecureServer(
      { key: KEY, cert: CERT, allowHTTP1: true },
      server.handler,
    );
    tls.listen(0, "127.0.0.1");
    await once(tls, "listening");
    const url = `https://127.0.0.1:${(tls.address() as AddressInfo).port}`;
    cleanups.push(
      () => new Promise((r) => tls.close(r)),
      () => server.close(),
    );
    // Sessions to close when the server goes: http2 secure servers wait for them.
    tls.on("session", (s) => cleanups.push(() => s.destroy()));

    const client = new ConnectPool({
      self: "https://127.0.0.1:2",
      registry: { getGroup: () => undefined },
      ...v,
      agentOptions: { ca: CERT },
      http2Options: { ca: CERT },
    });
    client.setPeers(url);
    cleanups.push(() => client.close());
    const peer = client.peers()[0]!;
    expect(dec((await peer.get({ group: "scores", key: "Tom" })).value)).toBe("630");

    // Without the CA the certificate is not trusted: unavailable, never a crash.
    const stranger = new ConnectPool({
      self: "https://127.0.0.1:3",
      registry: { getGroup: () => undefined },
      ...v,
    });
    stranger.setPeers(url);
    cleanups.push(() => stranger.close());
    await expect(stranger.peers()[0]!.get({ group: "scores", key: "Tom" })).rejects.toMatchObject({
      kind: "unavailable",
    });
  });
});
