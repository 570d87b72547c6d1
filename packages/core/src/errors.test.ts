import { describe, expect, it } from "vitest";
import {
  InvalidArgumentError,
  NotFoundError,
  OverloadedError,
  PeerError,
  TinycacheError,
} from "./errors.js";

// A second copy of this module, as when an app loads core's ES module build and a
// transport loads its CommonJS build: same source, distinct classes.
const other = (await import(`./errors.js?copy=${"2"}`)) as typeof import("./errors.js");

describe("errors", () => {
  it("the second copy really has distinct classes", () => {
    expect(other.NotFoundError).not.toBe(NotFoundError);
  });

  it("instanceof holds across copies of core, by class and by base class", () => {
    const nf = new other.NotFoundError("Tom");
    expect(nf instanceof NotFoundError).toBe(true);
    expect(nf instanceof TinycacheError).toBe(true);
    expect(nf instanceof Error).toBe(true);
    expect(nf instanceof PeerError).toBe(false);
    const pe = new other.PeerError("unavailable", "http://a", "down");
    expect(pe instanceof PeerError).toBe(true);
    expect(pe instanceof NotFoundError).toBe(false);
    expect(new other.OverloadedError("busy") instanceof OverloadedError).toBe(true);
    expect(new other.InvalidArgumentError("bad") instanceof InvalidArgumentError).toBe(true);
  });

  it("a user's subclass is an instance of every class above it", () => {
    class Gone extends other.NotFoundError {}
    const e = new Gone("k");
    expect(e instanceof NotFoundError).toBe(true);
    expect(e instanceof TinycacheError).toBe(true);
    expect(e.name).toBe("Gone");
    expect(e.code).toBe("not_found");
  });

  it("strangers are not instances: plain errors, look-alikes, null, primitives", () => {
    class NotFoundErrorLookAlike extends Error {}
    Object.defineProperty(NotFoundErrorLookAlike, "name", { value: "NotFoundError" });
    expect(new NotFoundErrorLookAlike("x") instanceof NotFoundError).toBe(false);
    expect(new Error("x") instanceof TinycacheError).toBe(false);
    expect((null as unknown) instanceof TinycacheError).toBe(false);
    expect(("not_found" as unknown) instanceof NotFoundError).toBe(false);
    expect({ code: "not_found" } instanceof NotFoundError).toBe(false);
  });

  it("keeps name, code, message and cause", () => {
    const cause = new Error("socket");
    const e = new PeerError("getter_failed", "http://b", "boom", { cause });
    expect(e.name).toBe("PeerError");
    expect(e.code).toBe("peer_getter_failed");
    expect(e.message).toBe("peer http://b: boom");
    expect(e.cause).toBe(cause);
    expect(Object.keys(e)).not.toContain("Symbol(@tinycache/core.error-kinds)");
  });
});
