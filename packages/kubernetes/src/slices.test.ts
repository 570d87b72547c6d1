import { describe, expect, it } from "vitest";
import {
  canonicalIp,
  type PeerListRules,
  peerList,
  readSlice,
  resourceVersionOf,
  sliceName,
} from "./slices.js";

const rules: PeerListRules = {
  port: 8001,
  scheme: "http",
  family: undefined,
  selfAddress: undefined,
};

const ep = (ip: string | string[], conditions?: unknown) => ({
  addresses: Array.isArray(ip) ? ip : [ip],
  ...(conditions !== undefined && { conditions }),
});

const v4 = (endpoints: unknown, extra: Record<string, unknown> = {}) =>
  readSlice({ metadata: { name: "s" }, addressType: "IPv4", endpoints, ...extra });

describe("readSlice", () => {
  it("keeps serving, ready and terminating as Kubernetes means them", () => {
    const s = v4([
      ep("10.0.0.1", { ready: true, serving: true, terminating: false }),
      ep("10.0.0.2", { ready: false, serving: false, terminating: false }),
      ep("10.0.0.3", { ready: false, serving: true, terminating: true }),
      ep("10.0.0.4", { ready: false }), // no `serving` (older API servers): ready decides
      ep("10.0.0.5", {}), // all nil: ready, serving, not terminating
      ep("10.0.0.6"), // no conditions at all
    ]);
    expect(s.endpoints.map((e) => [e.addresses[0]?.ip, e.serving, e.terminating])).toEqual([
      ["10.0.0.1", true, false],
      ["10.0.0.2", false, false],
      ["10.0.0.3", true, true],
      ["10.0.0.4", false, false],
      ["10.0.0.5", true, false],
      ["10.0.0.6", true, false],
    ]);
  });

  it("skips what is missing or of the wrong type, never throws", () => {
    const junk: unknown[] = [
      null,
      42,
      "slice",
      [],
      {},
      { metadata: null, endpoints: null },
      { addressType: "IPv4", endpoints: "junk" },
      { addressType: "IPv4", endpoints: { length: 3 } },
      { addressType: "IPv4", endpoints: [null, 7, "x", [], {}, { addresses: "10.0.0.1" }] },
      { addressType: "IPv4", endpoints: [{ addresses: [] }, { addresses: [null, 5, "pod-a"] }] },
      {
        addressType: "IPv4",
        endpoints: [{ addresses: ["10.0.0.256", "10.0.0.1/32", " 10.0.0.1"] }],
      },
      { addressType: "IPv4", endpoints: [{ addresses: ["fd00::1"] }] }, // wrong family
      { addressType: "IPv6", endpoints: [{ addresses: ["10.0.0.1"] }] }, // wrong family
      { addressType: "FQDN", endpoints: [{ addresses: ["pod-a.example.com"] }] },
      { addressType: 7, endpoints: [{ addresses: ["10.0.0.1"] }] },
    ];
    for (const obj of junk) {
      expect(readSlice(obj).endpoints, JSON.stringify(obj)).toEqual([]);
    }
    // Junk conditions: an address is still an endpoint; garbage `serving` falls back to ready.
    const s = v4([ep("10.0.0.1", "junk"), ep("10.0.0.2", { serving: "yes", terminating: 1 })]);
    expect(s.endpoints.map((e) => [e.serving, e.terminating])).toEqual([
      [true, false],
      [true, false],
    ]);
  });

  it("reads ports by name, skipping bad ones", () => {
    const s = v4([], {
      ports: [
        { name: "http", port: 8001, protocol: "TCP" },
        { name: "grpc", port: 0 },
        { name: "metrics", port: "9090" },
        { port: 7000 }, // unnamed
        null,
        { name: "http", port: 9999 }, // a duplicate name: the first wins
      ],
    });
    expect([...s.ports]).toEqual([
      ["http", 8001],
      ["", 7000],
    ]);
    expect(v4([], { ports: "junk" }).ports.size).toBe(0);
  });

  it("canonicalizes IPv6 addresses, and takes either family when addressType is absent", () => {
    const s = readSlice({
      endpoints: [ep(["FD00:0:0::1", "10.0.0.1"]), ep("[fd00::2]")],
    });
    expect(s.endpoints.flatMap((e) => e.addresses)).toEqual([
      { ip: "fd00::1", family: 6 },
      { ip: "10.0.0.1", family: 4 },
      { ip: "fd00::2", family: 6 },
    ]);
  });
});

describe("peerList", () => {
  it("lists serving, non-terminating endpoints, sorted and unique", () => {
    const a = v4([
      ep("10.0.0.2", { serving: true }),
      ep("10.0.0.1", { serving: true }),
      ep("10.0.0.3", { serving: false }),
      ep("10.0.0.4", { serving: true, terminating: true }),
    ]);
    const b = v4([ep("10.0.0.2"), ep("10.0.0.10")]); // the same pod in two slices: once
    // Sorted as strings, as followPeers sorts (":" sorts after "0").
    expect(peerList([a, b], rules)).toEqual({
      urls: ["http://10.0.0.10:8001", "http://10.0.0.1:8001", "http://10.0.0.2:8001"],
      others: ["http://10.0.0.10:8001", "http://10.0.0.1:8001", "http://10.0.0.2:8001"],
      selfTerminating: false,
    });
    expect(peerList([], rules).urls).toEqual([]);
  });

  it("uses a named port of each slice; a slice without it adds nobody", () => {
    const a = v4([ep("10.0.0.1")], { ports: [{ name: "http", port: 9000 }] });
    const b = v4([ep("10.0.0.2")], { ports: [{ name: "grpc", port: 9001 }] });
    expect(peerList([a, b], { ...rules, port: "http", scheme: "https" }).urls).toEqual([
      "https://10.0.0.1:9000",
    ]);
  });

  it("takes one family: IPv4 when there is any, IPv6 (bracketed) otherwise, or as told", () => {
    const four = v4([ep("10.0.0.1")]);
    const six = readSlice({ addressType: "IPv6", endpoints: [ep("fd00::1")] });
    expect(peerList([four, six], rules).urls).toEqual(["http://10.0.0.1:8001"]);
    expect(peerList([six], rules).urls).toEqual(["http://[fd00::1]:8001"]);
    expect(peerList([four, six], { ...rules, family: 6 }).urls).toEqual(["http://[fd00::1]:8001"]);
  });

  it("finds this process's endpoint: others exclude it, and it may be terminating", () => {
    const s = (selfConditions: unknown) =>
      v4([ep("10.0.0.1", selfConditions), ep("10.0.0.2"), ep("10.0.0.3")]);
    const self = { ...rules, selfAddress: "10.0.0.1" };
    expect(peerList([s({ serving: true })], self)).toEqual({
      urls: ["http://10.0.0.1:8001", "http://10.0.0.2:8001", "http://10.0.0.3:8001"],
      others: ["http://10.0.0.2:8001", "http://10.0.0.3:8001"],
      selfTerminating: false,
    });
    expect(peerList([s({ serving: true, terminating: true })], self)).toEqual({
      urls: ["http://10.0.0.2:8001", "http://10.0.0.3:8001"],
      others: ["http://10.0.0.2:8001", "http://10.0.0.3:8001"],
      selfTerminating: true,
    });
    // Not serving (not ready yet) is not leaving: followPeers refuses that list instead.
    expect(peerList([s({ serving: false })], self).selfTerminating).toBe(false);
  });
});

describe("helpers", () => {
  it("canonicalIp", () => {
    expect(canonicalIp("10.1.2.3")).toEqual({ ip: "10.1.2.3", family: 4 });
    expect(canonicalIp("[2001:DB8::0:1]")).toEqual({ ip: "2001:db8::1", family: 6 });
    for (const x of ["", "host", "10.0.0", "[10.0.0.1]", 17, null, undefined]) {
      expect(canonicalIp(x)).toBeUndefined();
    }
  });

  it("sliceName and resourceVersionOf read metadata defensively", () => {
    expect(sliceName({ metadata: { name: "a", resourceVersion: "7" } })).toBe("a");
    expect(resourceVersionOf({ metadata: { name: "a", resourceVersion: "7" } })).toBe("7");
    for (const x of [
      null,
      "a",
      {},
      { metadata: "a" },
      { metadata: { name: 5, resourceVersion: 7 } },
    ]) {
      expect(sliceName(x)).toBeUndefined();
      expect(resourceVersionOf(x)).toBeUndefined();
    }
  });
});
