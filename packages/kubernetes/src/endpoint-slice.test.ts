import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ApiException, KubeConfig } from "@kubernetes/client-node";
import { followPeers } from "@tinycache/core";
import { deferred, isFail, isLeave, isUpdate, peerRecorder as recorder } from "@tinycache/testkit";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  type EndpointSliceSourceHooks,
  type EndpointSliceSourceOptions,
  endpointSliceSource,
  endpointSliceSourceWith,
} from "./endpoint-slice.js";
import { MockApiServer, slice, status } from "./mock-apiserver.test-util.js";

const u = (n: number) => `http://10.0.0.${n}:8001`;
const ready = (n: number) => ({
  ip: `10.0.0.${n}`,
  ready: true,
  serving: true,
  terminating: false,
});
/** What the EndpointSlice controller writes for a pod that is shutting down but still ready. */
const terminating = (n: number) => ({
  ip: `10.0.0.${n}`,
  ready: false,
  serving: true,
  terminating: true,
});

let api: MockApiServer;
const running: AbortController[] = [];

beforeEach(async () => {
  api = await MockApiServer.start();
});

afterEach(async () => {
  for (const ac of running.splice(0)) ac.abort();
  await api.close();
});

/** Subscribes a recorder to a source on the mock server (quiet timers unless told). */
function start(
  options: Partial<EndpointSliceSourceOptions> = {},
  hooks: EndpointSliceSourceHooks = {},
) {
  const source = endpointSliceSourceWith(
    {
      service: "cache",
      namespace: "default",
      port: 8001,
      kubeConfig: api.kubeConfig(),
      stallMs: 10_000,
      relistMs: 100_000,
      retryMs: 20,
      ...options,
    },
    { random: () => 0, ...hooks },
  );
  const rec = recorder();
  const ac = new AbortController();
  running.push(ac);
  source.subscribe(rec.sink, ac.signal);
  return { source, rec, ac };
}

describe("endpointSliceSource: list, then watch", () => {
  it("reports the list, then each change the watch brings", async () => {
    api.put(slice("cache-a", "cache", [ready(1), ready(2)]));
    api.put(slice("other-a", "other", [ready(9)])); // another Service: not selected
    const listedAt = String(api.rv);
    const { rec } = start();

    const list = await api.nextRequest("list");
    expect(list.url.pathname).toBe("/apis/discovery.k8s.io/v1/namespaces/default/endpointslices");
    expect(list.url.searchParams.get("labelSelector")).toBe("kubernetes.io/service-name=cache");
    await rec.next(isUpdate([u(1), u(2)]));

    const watch = await api.nextRequest("watch");
    expect(watch.url.pathname).toBe(list.url.pathname);
    expect(Object.fromEntries(watch.url.searchParams)).toEqual({
      watch: "true",
      labelSelector: "kubernetes.io/service-name=cache",
      resourceVersion: listedAt,
      allowWatchBookmarks: "true",
    });

    // A pod became ready.
    api.put(slice("cache-a", "cache", [ready(1), ready(2), ready(3)]));
    await rec.next(isUpdate([u(1), u(2), u(3)]));
    // A second slice (a large Service is split in several).
    api.put(slice("cache-b", "cache", [ready(4)]));
    await rec.next(isUpdate([u(1), u(2), u(3), u(4)]));
    // Pod 2 is shutting down: serving -> terminating, it leaves the list.
    api.put(slice("cache-a", "cache", [ready(1), terminating(2), ready(3)]));
    await rec.next(isUpdate([u(1), u(3), u(4)]));
    // A pod that is not ready is not a peer.
    api.put(slice("cache-b", "cache", [{ ip: "10.0.0.4", ready: false, serving: false }]));
    await rec.next(isUpdate([u(1), u(3)]));
    api.put(slice("cache-b", "cache", [ready(4)]));
    await rec.next(isUpdate([u(1), u(3), u(4)]));
    // The slice is deleted.
    api.remove("cache-b");
    await rec.next(isUpdate([u(1), u(3)]));

    expect(rec.events.filter(isFail)).toEqual([]);
    expect(api.requests.map((r) => r.kind)).toEqual(["list", "watch"]);
  });

  it("follows a named port, https, and the namespace of the pod", async () => {
    const dir = mkdtempSync(join(tmpdir(), "tinycache-k8s-"));
    try {
      const nsFile = join(dir, "namespace");
      writeFileSync(nsFile, "team-a\n");
      api.put(
        slice("cache-a", "cache", [ready(1)], {
          ports: [
            { name: "grpc", port: 9001 },
            { name: "http", port: 9000 },
          ],
        }),
        "team-a",
      );
      const { source, rec } = start(
        { namespace: undefined, port: "http", scheme: "https" },
        { namespaceFile: nsFile },
      );
      expect(source.name).toBe("k8s:team-a/cache:http");
      await rec.next(isUpdate(["https://10.0.0.1:9000"]));
      expect((await api.nextRequest("list", 0)).url.pathname).toBe(
        "/apis/discovery.k8s.io/v1/namespaces/team-a/endpointslices",
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("skips slices without addresses and junk, without crashing", async () => {
    api.put(slice("cache-a", "cache", [ready(1)]));
    api.put(slice("cache-empty", "cache", [])); // no endpoints
    api.put({ ...slice("cache-junk", "cache", []), endpoints: "junk", ports: 7 });
    api.put({ ...slice("cache-fqdn", "cache", []), addressType: "FQDN" });
    const { rec } = start();
    await rec.next(isUpdate([u(1)]));
    const watch = await api.nextRequest("watch");

    api.send(watch, "this is not JSON");
    api.send(watch, { type: "ADDED", object: "junk" });
    api.send(watch, { type: "ADDED", object: { metadata: {} } }); // no name
    api.send(watch, { type: "MODIFIED", object: null });
    api.send(watch, { type: "DELETED", object: 42 });
    api.send(watch, { type: "SOMETHING-NEW", object: {} });
    api.send(watch, {
      type: "ADDED",
      object: {
        metadata: { name: "cache-bad", resourceVersion: "x" },
        addressType: "IPv4",
        endpoints: [
          null,
          { addresses: [] },
          { addresses: ["not-an-ip", 7, null] },
          { addresses: ["10.0.0.5"], conditions: "junk" }, // junk conditions: ready
        ],
      },
    });
    await rec.next(isUpdate([u(1), u(5)]));
    api.put(slice("cache-b", "cache", [ready(2)]));
    await rec.next(isUpdate([u(1), u(2), u(5)]));
    expect(rec.events.filter(isFail)).toEqual([]);
    expect(api.requests.map((r) => r.kind)).toEqual(["list", "watch"]);
  });
});

describe("endpointSliceSource: listing again", () => {
  it("lists again at once on a 410 Gone ERROR event", async () => {
    api.put(slice("cache-a", "cache", [ready(1), ready(2)]));
    const { rec } = start();
    const watch1 = await api.nextRequest("watch");
    await rec.next(isUpdate([u(1), u(2)]));

    // Changes the watch never brought (it fell behind), then the API server gives up on it.
    api.slices.set("default/cache-a", slice("cache-a", "cache", [ready(1), ready(3)]));
    api.rv = 500;
    const from = api.requests.length;
    api.expire(watch1);

    const list2 = await api.nextRequest("list", from);
    await rec.next(isUpdate([u(1), u(3)]));
    const watch2 = await api.nextRequest("watch", from);
    expect(watch2.url.searchParams.get("resourceVersion")).toBe("500");
    expect(list2.at).toBeLessThan(watch2.at);
    expect(rec.events.filter(isFail)).toEqual([]); // 410 is routine, not a failure

    // The new watch works.
    api.put(slice("cache-a", "cache", [ready(1), ready(3), ready(4)]));
    await rec.next(isUpdate([u(1), u(3), u(4)]));
  });

  it("lists again on an HTTP 410 answer to the watch", async () => {
    api.put(slice("cache-a", "cache", [ready(1)]));
    api.watchOverrides.push({ status: 410, body: status(410, "Gone", "too old resource version") });
    const { rec } = start();
    const watch1 = await api.nextRequest("watch");
    await api.nextRequest("list", api.requests.indexOf(watch1));
    await api.nextRequest("watch", api.requests.indexOf(watch1) + 1);
    expect(api.requests.map((r) => r.kind)).toEqual(["list", "watch", "list", "watch"]);
    expect(rec.events.filter(isFail)).toEqual([]);
    expect(rec.events.every(isUpdate([u(1)]))).toBe(true);
  });

  it("drops a watch that stalls (no event for stallMs) and lists again", async () => {
    api.put(slice("cache-a", "cache", [ready(1)]));
    const { rec } = start({ stallMs: 150 });
    const watch1 = await api.nextRequest("watch");
    await rec.next(isUpdate([u(1)]));
    // Meanwhile pod 2 came up, and the watch never said so.
    api.slices.set("default/cache-a", slice("cache-a", "cache", [ready(1), ready(2)]));

    const list2 = await api.nextRequest("list", api.requests.indexOf(watch1));
    await watch1.closed;
    expect(watch1.hungUp()).toBe(true); // the client closed the stalled watch
    expect(list2.at - watch1.at).toBeGreaterThanOrEqual(150 - 5);
    await rec.next(isUpdate([u(1), u(2)]));
    expect(rec.events.filter(isFail)).toEqual([]);
  });

  it("keeps a quiet watch alive while bookmarks arrive", async () => {
    const stallMs = 800;
    api.put(slice("cache-a", "cache", [ready(1)]));
    start({ stallMs });
    const watch1 = await api.nextRequest("watch");
    const from = api.requests.length;

    // A bookmark before the watch would stall; the server scripts it, the test awaits.
    const bookmarked = deferred<number>();
    setTimeout(() => {
      api.bookmark(watch1);
      bookmarked.resolve(performance.now());
    }, 300);
    const bookmarkAt = await bookmarked.promise;
    const list2 = await api.nextRequest("list", from, 5000);
    // No list before stallMs after the bookmark (timers may fire up to ~1 ms early).
    expect(list2.at - bookmarkAt).toBeGreaterThanOrEqual(stallMs - 5);
    expect(list2.at - watch1.at).toBeGreaterThanOrEqual(stallMs + 300 - 5);
    expect(api.requests.slice(0, from).map((r) => r.kind)).toEqual(["list", "watch"]);
  });

  it("lists again every relistMs, restarting the watch", async () => {
    api.put(slice("cache-a", "cache", [ready(1)]));
    const { rec } = start({ relistMs: 100 });
    const watch1 = await api.nextRequest("watch");
    const list2 = await api.nextRequest("list", api.requests.indexOf(watch1));
    await watch1.closed;
    expect(watch1.hungUp()).toBe(true);
    await api.nextRequest("watch", api.requests.indexOf(list2));
    expect(rec.events.filter(isUpdate([u(1)])).length).toBeGreaterThanOrEqual(2);
    expect(rec.events.filter(isFail)).toEqual([]);
  });

  it("lists again (after retryMs) when the API server ends the watch", async () => {
    api.put(slice("cache-a", "cache", [ready(1)]));
    const { rec } = start();
    const watch1 = await api.nextRequest("watch");
    api.slices.set("default/cache-a", slice("cache-a", "cache", [ready(1), ready(2)]));
    watch1.res.end(); // the API server's watch timeout
    await api.nextRequest("list", api.requests.indexOf(watch1));
    await rec.next(isUpdate([u(1), u(2)]));
    await api.nextRequest("watch", api.requests.indexOf(watch1) + 1);
    expect(rec.events.filter(isFail)).toEqual([]);
  });
});

describe("endpointSliceSource: failures", () => {
  it("reports a failed list and retries it", async () => {
    api.put(slice("cache-a", "cache", [ready(1)]));
    api.listOverrides.push(
      { status: 500, body: status(500, "InternalError", "etcd is down") },
      { status: 403, body: status(403, "Forbidden", "cannot list endpointslices") },
    );
    const { rec } = start();
    const fail1 = await rec.next(isFail);
    const fail2 = await rec.next(isFail, rec.events.indexOf(fail1) + 1);
    await rec.next(isUpdate([u(1)]));

    await api.nextRequest("watch");
    const reason1 = (fail1 as { reason: Error }).reason;
    expect(reason1.message).toMatch(
      /^listing EndpointSlices of service "cache" in namespace "default" failed: HTTP 500: etcd is down$/,
    );
    expect(reason1.cause).toBeInstanceOf(ApiException);
    expect((reason1.cause as ApiException<unknown>).code).toBe(500);
    expect((fail2 as { reason: Error }).reason.message).toMatch(/HTTP 403: cannot list/);
    expect(api.requests.map((r) => r.kind)).toEqual(["list", "list", "list", "watch"]);
    expect(rec.events.map((e) => e.kind)).toEqual(["fail", "fail", "update"]);
  });

  it("fails a list that takes longer than stallMs, closes it and retries", async () => {
    api.put(slice("cache-a", "cache", [ready(1)]));
    api.listOverrides.push("hang");
    const { rec } = start({ stallMs: 100 });
    const list1 = await api.nextRequest("list");
    const fail = await rec.next(isFail);
    expect((fail as { reason: Error }).reason.message).toMatch(/took longer than 100 ms/);
    await list1.closed;
    expect(list1.hungUp()).toBe(true);
    await rec.next(isUpdate([u(1)]));
  });

  it("reports a failed watch (HTTP 403, or an ERROR event) and starts over", async () => {
    api.put(slice("cache-a", "cache", [ready(1)]));
    api.watchOverrides.push({ status: 403, body: status(403, "Forbidden", "cannot watch") });
    const { rec } = start();
    const fail1 = await rec.next(isFail);
    expect((fail1 as { reason: Error }).reason.message).toMatch(
      /^watching EndpointSlices of service "cache" in namespace "default" failed: HTTP 403/,
    );
    const watch2 = await api.nextRequest("watch", 2);
    api.send(watch2, { type: "ERROR", object: status(500, "InternalError", "boom") });
    const fail2 = await rec.next(isFail, rec.events.indexOf(fail1) + 1);
    expect((fail2 as { reason: Error }).reason.message).toMatch(/failed: 500 InternalError boom$/);
    await watch2.closed;
    await api.nextRequest("watch", api.requests.indexOf(watch2) + 1);
    expect(api.requests.map((r) => r.kind)).toEqual([
      "list",
      "watch",
      "list",
      "watch",
      "list",
      "watch",
    ]);
  });
});

describe("endpointSliceSource: leaving", () => {
  it("reports leave with the others when this process's endpoint turns terminating", async () => {
    api.put(slice("cache-a", "cache", [ready(1), ready(2), ready(3)]));
    const { rec } = start({ self: u(1) });
    await rec.next(isUpdate([u(1), u(2), u(3)]));
    await api.nextRequest("watch");

    api.put(slice("cache-a", "cache", [terminating(1), ready(2), ready(3)]));
    const left = await rec.next(isLeave([u(2), u(3)]));
    // Nothing changes among the others: nothing reported. Then one does: leave again.
    api.put(slice("cache-a", "cache", [terminating(1), ready(2), ready(3)]));
    api.put(slice("cache-b", "cache", [ready(4)]));
    await rec.next(isLeave([u(2), u(3), u(4)]));
    // This pod's endpoint goes away at last: still leaving, never an update again.
    api.put(slice("cache-a", "cache", [ready(2), ready(3)]));
    api.put(slice("cache-b", "cache", [ready(4), ready(5)]));
    await rec.next(isLeave([u(2), u(3), u(4), u(5)]));
    expect(rec.events.slice(rec.events.indexOf(left))).toEqual([
      { kind: "leave", urls: [u(2), u(3)] },
      { kind: "leave", urls: [u(2), u(3), u(4)] },
      { kind: "leave", urls: [u(2), u(3), u(4), u(5)] },
    ]);
  });

  it("finds its endpoint by selfAddress, IPv6 too", async () => {
    const six = (n: number, t = false) => ({
      ip: `fd00::${n}`,
      serving: true,
      ready: !t,
      terminating: t,
    });
    api.put({ ...slice("cache-v6", "cache", [six(1), six(2)]), addressType: "IPv6" });
    api.put(slice("cache-v4", "cache", [ready(1), ready(2)])); // dual stack: not these
    const { rec } = start({ selfAddress: "FD00:0::1" });
    await rec.next(isUpdate(["http://[fd00::1]:8001", "http://[fd00::2]:8001"]));
    await api.nextRequest("watch");
    api.put({ ...slice("cache-v6", "cache", [six(1, true), six(2)]), addressType: "IPv6" });
    await rec.next(isLeave(["http://[fd00::2]:8001"]));
  });
});

describe("endpointSliceSource: stopping", () => {
  it("closes the watch on abort, and asks nothing more", async () => {
    api.put(slice("cache-a", "cache", [ready(1)]));
    const timers = countedTimers();
    const { rec, ac } = start({ stallMs: 200, relistMs: 200, retryMs: 10 }, timers);
    await rec.next(isUpdate([u(1)]));
    const watch = await api.nextRequest("watch");
    const count = api.requests.length;
    const reports = rec.events.length;

    ac.abort();
    await watch.closed;
    expect(watch.hungUp()).toBe(true);
    expect(timers.live()).toBe(0);
    // No timer is left to fire and no request is open; a window longer than every
    // interval shows it (an absence cannot be awaited).
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(api.requests.length).toBe(count);
    expect(rec.events.length).toBe(reports);
    api.put(slice("cache-a", "cache", [ready(1), ready(2)]));
    expect(api.openWatches()).toEqual([]);
  });

  it("closes a list in flight on abort", async () => {
    api.listOverrides.push("hang");
    const timers = countedTimers();
    const { rec, ac } = start({}, timers);
    const list = await api.nextRequest("list");
    ac.abort();
    await list.closed;
    expect(list.hungUp()).toBe(true);
    expect(timers.live()).toBe(0);
    expect(rec.events).toEqual([]);
  });

  it("does nothing for a signal that is already aborted", () => {
    const ac = new AbortController();
    ac.abort();
    const rec = recorder();
    endpointSliceSource({ service: "cache", port: 8001, kubeConfig: api.kubeConfig() }).subscribe(
      rec.sink,
      ac.signal,
    );
    expect(api.requests).toEqual([]);
  });
});

describe("endpointSliceSource: with followPeers", () => {
  it("drives a pool, and drains it when this process terminates", async () => {
    const self = u(1);
    const calls: string[][] = [];
    let changed = deferred<void>();
    const pool = {
      self,
      setPeers(...urls: string[]) {
        calls.push(urls);
        changed.resolve();
      },
    };
    const nextChange = async () => {
      await changed.promise;
      changed = deferred<void>();
      return calls.at(-1);
    };
    api.put(slice("cache-a", "cache", [ready(1), ready(2)]));
    const membership = followPeers(
      pool,
      endpointSliceSource({
        service: "cache",
        namespace: "default",
        port: 8001,
        self,
        kubeConfig: api.kubeConfig(),
      }),
      { batchMs: 0 },
    );
    try {
      expect(membership.source).toBe("k8s:default/cache:8001");
      expect(await nextChange()).toEqual([u(1), u(2)]);
      const watch = await api.nextRequest("watch");

      api.put(slice("cache-a", "cache", [ready(1), ready(2), ready(3)]));
      expect(await nextChange()).toEqual([u(1), u(2), u(3)]);

      api.put(slice("cache-a", "cache", [terminating(1), ready(2), ready(3)]));
      expect(await nextChange()).toEqual([u(2), u(3)]); // drains: out of its own ring
      expect(membership.peers).toEqual([u(2), u(3)]);
      expect(membership.problem).toBeUndefined();
      expect(membership.stats).toMatchObject({ changes: 3, failures: 0, refusedWithoutSelf: 0 });

      membership.close();
      await watch.closed;
      expect(watch.hungUp()).toBe(true);
    } finally {
      membership.close();
    }
  });
});

describe("endpointSliceSource: options", () => {
  it("is named after namespace, service and port", () => {
    const kubeConfig = api.kubeConfig();
    expect(
      endpointSliceSource({ service: "cache", namespace: "prod", port: 8001, kubeConfig }).name,
    ).toBe("k8s:prod/cache:8001");
  });

  it("takes the namespace from the pod, else the kubeconfig context, else default", () => {
    const missing = { namespaceFile: "/nonexistent/tinycache/namespace" };
    const kubeConfig = api.kubeConfig();
    expect(endpointSliceSourceWith({ service: "cache", port: 1, kubeConfig }, missing).name).toBe(
      "k8s:default/cache:1",
    );
    const withNs = new KubeConfig();
    withNs.loadFromOptions({
      clusters: [{ name: "mock", server: `http://127.0.0.1:${api.port}`, skipTLSVerify: true }],
      users: [{ name: "u", token: "t" }],
      contexts: [{ name: "c", cluster: "mock", user: "u", namespace: "dev" }],
      currentContext: "c",
    });
    expect(
      endpointSliceSourceWith({ service: "cache", port: 1, kubeConfig: withNs }, missing).name,
    ).toBe("k8s:dev/cache:1");
  });

  it("refuses bad options", () => {
    const kubeConfig = api.kubeConfig();
    const ok: EndpointSliceSourceOptions = { service: "cache", port: 8001, kubeConfig };
    const bad: [Partial<EndpointSliceSourceOptions> | Record<string, unknown>, RegExp][] = [
      [{ service: "" }, /service must be/],
      [{ service: "Cache_1" }, /service must be/],
      [{ port: 0 }, /port must be an integer in 1-65535/],
      [{ port: 1.5 }, /port must be an integer/],
      [{ port: "" }, /port must be a port number or a port name/],
      [{ scheme: "ftp" }, /scheme must be/],
      [{ namespace: "Not/A/Namespace" }, /namespace must be/],
      [{ addressType: "FQDN" }, /addressType must be/],
      [{ self: "not a url" }, /self must be an http\(s\) URL/],
      [{ self: "http://cache-0.cache:8001" }, /self must have an IP address/],
      [{ selfAddress: "cache-0" }, /selfAddress must be an IP address/],
      [{ stallMs: 0 }, /stallMs must be a finite number > 0/],
      [{ relistMs: Number.NaN }, /relistMs must be/],
      [{ retryMs: -1 }, /retryMs must be/],
      [{ retryMs: 100, maxRetryMs: 50 }, /maxRetryMs must be >= retryMs/],
      [{ kubeConfig: {} }, /kubeConfig must be a KubeConfig/],
      [{ kubeConfig: new KubeConfig() }, /no current cluster/],
    ];
    for (const [patch, message] of bad) {
      expect(
        () => endpointSliceSource({ ...ok, ...patch } as EndpointSliceSourceOptions),
        JSON.stringify(patch),
      ).toThrow(message);
    }
    // A host name in self is fine with selfAddress.
    expect(() =>
      endpointSliceSource({ ...ok, self: "http://cache-0.cache:8001", selfAddress: "10.0.0.1" }),
    ).not.toThrow();
  });
});

/** Timers as the source's `setTimer` seam wants them (real, unref'ed), with a live count. */
export function countedTimers() {
  const live = new Set<NodeJS.Timeout>();
  return {
    live: () => live.size,
    setTimer(fn: () => void, ms: number): () => void {
      const t = setTimeout(() => {
        live.delete(t);
        fn();
      }, ms);
      t.unref();
      live.add(t);
      return () => {
        clearTimeout(t);
        live.delete(t);
      };
    },
  };
}
