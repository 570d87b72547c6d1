import { describe, expect, it } from "vitest";
import {
  checkPeerUrl,
  DEFAULT_AUTH_HEADER,
  makeSecretCheck,
  positiveIntOption,
  resolveSharedSecret,
  timeoutMsOption,
} from "./options.js";
import { resolvePoolOptions } from "./pool.js";

describe("checkPeerUrl", () => {
  it("accepts http(s) base URLs, with a path, port, IPv6 or unicode host", () => {
    for (const u of [
      "http://a",
      "https://10.0.0.1:8443",
      "http://[::1]:8001/cache/",
      "http://bücher.example",
    ]) {
      expect(checkPeerUrl(u, "peer URL", "P")).toBeInstanceOf(URL);
    }
  });

  it("names the owner and what it checked", () => {
    expect(() => checkPeerUrl("", "self", "HttpPool")).toThrow(
      "HttpPool: self must be a non-empty string, got ",
    );
    expect(() => checkPeerUrl(undefined, "self", "HttpPool")).toThrow(
      "HttpPool: self must be a non-empty string, got undefined",
    );
    expect(() => checkPeerUrl("a b", "peer URL", "ConnectPool")).toThrow(
      "ConnectPool: peer URL is not a URL: a b",
    );
    expect(() => checkPeerUrl("ftp://x", "peer URL", "X")).toThrow(
      "X: peer URL must be http: or https:, got ftp://x",
    );
    expect(() => checkPeerUrl("http://x/?a=1", "peer URL", "X")).toThrow(
      "X: peer URL must not have a query or fragment: http://x/?a=1",
    );
    expect(() => checkPeerUrl("http://x/#f", "peer URL", "X")).toThrow(TypeError);
  });
});

describe("positiveIntOption", () => {
  it("defaults, accepts safe integers >= 1, refuses the rest", () => {
    expect(positiveIntOption("P", "n", undefined, 7)).toBe(7);
    expect(positiveIntOption("P", "n", 1, 7)).toBe(1);
    expect(positiveIntOption("P", "n", Number.MAX_SAFE_INTEGER, 7)).toBe(Number.MAX_SAFE_INTEGER);
    for (const bad of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 53, "3", null]) {
      expect(() => positiveIntOption("P", "n", bad, 7)).toThrow(RangeError);
    }
    expect(() => positiveIntOption("HttpPool", "replicas", 0, 50)).toThrow(
      "HttpPool: replicas must be an integer >= 1, got 0",
    );
  });
});

describe("timeoutMsOption", () => {
  it("defaults, accepts finite numbers > 0 (fractions too), refuses the rest", () => {
    expect(timeoutMsOption("P", undefined, 500)).toBe(500);
    expect(timeoutMsOption("P", 0.5, 500)).toBe(0.5);
    for (const bad of [0, -1, Number.NaN, Number.POSITIVE_INFINITY, "1"]) {
      expect(() => timeoutMsOption("P", bad, 500)).toThrow(RangeError);
    }
    expect(() => timeoutMsOption("ConnectPool", 0, 500)).toThrow(
      "ConnectPool: timeoutMs must be a finite number > 0 (every peer call needs a deadline; leave it out for 500 ms), got 0",
    );
  });
});

describe("resolveSharedSecret", () => {
  it("is off when not given", () => {
    expect(resolveSharedSecret("P", undefined)).toBeUndefined();
  });

  it("defaults the header and lower-cases it", () => {
    expect(resolveSharedSecret("P", { secret: "s 3cr3t!" })).toEqual({
      secret: "s 3cr3t!",
      header: DEFAULT_AUTH_HEADER,
    });
    expect(resolveSharedSecret("P", { secret: "s", header: "X-Peer-Auth" })).toEqual({
      secret: "s",
      header: "x-peer-auth",
    });
  });

  it("refuses secrets that are not a header value, and bad header names", () => {
    for (const secret of ["", "a\nb", "a\rb", "nul\0", "é", 42]) {
      expect(() => resolveSharedSecret("HttpPool", { secret: secret as string })).toThrow(
        "HttpPool: auth.secret must be a non-empty printable ASCII string",
      );
    }
    for (const header of ["", "a b", "a:b", "é", 1]) {
      expect(() => resolveSharedSecret("P", { secret: "s", header: header as string })).toThrow(
        /P: auth.header is not a valid header name/,
      );
    }
  });
});

describe("makeSecretCheck", () => {
  it("accepts exactly the secret", () => {
    const ok = makeSecretCheck("s3cret");
    expect(ok("s3cret")).toBe(true);
    expect(ok("s3cre")).toBe(false);
    expect(ok("s3crett")).toBe(false);
    expect(ok("S3cret")).toBe(false);
    expect(ok("")).toBe(false);
    expect(ok("x".repeat(100_000))).toBe(false);
  });

  it("fails a missing header or one sent twice", () => {
    const ok = makeSecretCheck("s");
    expect(ok(undefined)).toBe(false);
    expect(ok(null)).toBe(false);
    expect(ok(["s", "s"])).toBe(false);
  });
});

describe("pool options: batch and maxBatchKeys", () => {
  const base = { self: "http://127.0.0.1:1", registry: { getGroup: () => undefined } };
  it("default to batching on and 1000 keys; refuse bad values", () => {
    const o = resolvePoolOptions("P", base);
    expect(o.batch).toBe(true);
    expect(o.maxBatchKeys).toBe(1000);
    expect(resolvePoolOptions("P", { ...base, batch: false, maxBatchKeys: 5 })).toMatchObject({
      batch: false,
      maxBatchKeys: 5,
    });
    expect(() => resolvePoolOptions("P", { ...base, batch: "yes" as never })).toThrow(/P: batch/);
    expect(() => resolvePoolOptions("P", { ...base, maxBatchKeys: 0 })).toThrow(/maxBatchKeys/);
  });
});
