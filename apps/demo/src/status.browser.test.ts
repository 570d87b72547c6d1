/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
/**
 * The status page in a real headless browser (Debian's chromium, driven by
 * playwright-core): a three-node demo cluster started by the launcher, the page opened
 * on the API port, API requests sent, and the page's figures followed in its DOM. A
 * screenshot is saved to apps/demo/test-output/ (gitignored) to look at. (The DOM lib
 * above types the functions that run in the page.)
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { freePort, isAlive, type Spawned, spawnNode } from "@tinycache/testkit";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generatedKey } from "./keys.js";

const LAUNCH = fileURLToPath(new URL("../dist/launch.js", import.meta.url));
const CHROMIUM = "/usr/bin/chromium";
const OUTPUT = fileURLToPath(new URL("../test-output/", import.meta.url));
const SCREENSHOT = join(OUTPUT, "status.png");
const SCREENSHOT_DOWN = join(OUTPUT, "status-down.png");
const SECRET = "browser-test-secret";

const skipReason = existsSync(CHROMIUM)
  ? undefined
  : `no chromium at ${CHROMIUM} (apt-get install chromium)`;

describe.skipIf(skipReason !== undefined)(
  `the status page in headless chromium${skipReason ? ` (skipped: ${skipReason})` : ""}`,
  () => {
    let dataDir = "";
    let launcher: Spawned | undefined;
    const pids = new Set<number>();
    let ports: number[] = [];
    let api = "";
    let browser: Browser | undefined;
    let page: Page;
    /** What the page logged as errors, and every URL it asked for. */
    const problems: string[] = [];
    const requested: string[] = [];

    beforeAll(async () => {
      dataDir = mkdtempSync(join(tmpdir(), "tinycache-status-browser-"));
      const all = await Promise.all([0, 1, 2, 3].map(() => freePort()));
      ports = all.slice(0, 3);
      api = `http://127.0.0.1:${all[3]}`;
      launcher = spawnNode(
        [
          LAUNCH,
          "--ports",
          ports.join(","),
          "--api-port",
          String(all[3]),
          "--data-dir",
          dataDir,
          // A node killed by the test stays down, so that the page shows it down.
          "--restart",
          "off",
        ],
        { env: { LOG_PRETTY: "0", TINYCACHE_SECRET: SECRET } },
      );
      const ready = JSON.parse(await launcher.waitForLine(/"event":"cluster_ready"/, 30_000));
      for (const n of ready.nodes as { pid: number }[]) pids.add(n.pid);

      const { chromium } = await import("playwright-core");
      browser = await chromium.launch({
        executablePath: CHROMIUM,
        headless: true,
        // CI runs as root, where chromium's sandbox cannot start.
        args: ["--no-sandbox"],
      });
      page = await browser.newPage({ viewport: { width: 1360, height: 900 } });
      page.on("console", (m) => {
        if (m.type() === "error" || m.type() === "warning")
          problems.push(`${m.type()}: ${m.text()}`);
      });
      page.on("pageerror", (e) => problems.push(`pageerror: ${e.message}`));
      page.on("request", (r) => requested.push(r.url()));
    }, 60_000);

    afterAll(async () => {
      await browser?.close();
      await launcher?.kill("SIGKILL");
      for (const pid of pids) if (isAlive(pid)) process.kill(pid, "SIGKILL");
      if (dataDir) rmSync(dataDir, { recursive: true, force: true });
    });

    const peer = (i: number) => `http://127.0.0.1:${ports[i]}`;
    /** A figure of a node's card, as a number ("1,234" -> 1234). */
    const figure = (url: string, field: string) =>
      page.$eval(`article.card[data-node="${url}"] [data-field="${field}"]`, (e) =>
        Number((e.textContent ?? "").replace(/[^0-9.]/g, "")),
      );

    it(`renders the ring and all three nodes, and its figures follow API requests (screenshot: apps/demo/test-output/status.png)`, async () => {
      await page.goto(`${api}/`); // redirects to /status
      expect(new URL(page.url()).pathname).toBe("/status");
      await page.waitForFunction(
        (n) =>
          document.querySelectorAll('article.card[data-up="true"]').length === n &&
          new Set(
            [...document.querySelectorAll("#ring path[data-node]")].map((p) =>
              p.getAttribute("data-node"),
            ),
          ).size === n,
        3,
        { timeout: 15_000 },
      );
      // Every node once in the shares table, the API node flagged, the classic keys marked.
      const rows = await page.$$eval("#shares-body tr", (trs) =>
        trs.map((t) => t.getAttribute("data-node")),
      );
      expect(rows).toEqual([peer(0), peer(1), peer(2)]);
      const ownedRows = await page.$$eval("#shares-body [data-field=rows]", (tds) =>
        tds.reduce((s, td) => s + Number((td.textContent ?? "").replace(/,/g, "")), 0),
      );
      expect(ownedRows).toBe(200_003);
      expect(
        await page.$$eval("#ring text.marker-label", (ts) =>
          ts.map((t) => t.firstChild?.textContent),
        ),
      ).toEqual(["Tom", "Jack", "Sam"]);
      expect(
        await page.$eval(`article.card[data-node="${peer(2)}"] .pill.api`, (e) => e.textContent),
      ).toBe("API");

      const getsBefore = await figure(peer(2), "gets");
      // A key name that is HTML: the page must show it as text, never run it.
      const evil = '<img src=x onerror="window.__pwned=1">';
      const keys = [
        "Tom",
        "Jack",
        "Sam",
        ...Array.from({ length: 20 }, (_, i) => generatedKey(i + 1)),
      ];
      for (const k of [...keys, evil, "Tom", "Tom"]) {
        const res = await fetch(`${api}/api?key=${encodeURIComponent(k)}`, {
          signal: AbortSignal.timeout(10_000),
        });
        expect(res.status, k).toBe(k === evil ? 404 : 200);
        await res.arrayBuffer();
      }
      const asked = keys.length + 3;
      // The page catches up by itself (it polls): wait on its DOM.
      await page.waitForFunction(
        ({ url, want, reads }) => {
          const n = (f: string) =>
            Number(
              (
                document.querySelector(`article.card[data-node="${url}"] [data-field="${f}"]`)
                  ?.textContent ?? ""
              ).replace(/[^0-9.]/g, ""),
            );
          const shown = [...document.querySelectorAll("article.card .keys li")].map(
            (li) => li.textContent,
          );
          // Every card, not only the API node's: the page may show one node's newer figures
          // before another's.
          const total = (f: string) =>
            [...document.querySelectorAll(`article.card [data-field="${f}"]`)]
              .map((e) => Number((e.textContent ?? "").replace(/[^0-9.]/g, "")))
              .reduce((a, b) => a + b, 0);
          return (
            n("gets") >= want &&
            n("cacheHits") >= 2 &&
            total("dbReads") >= reads &&
            shown.includes("Tom") &&
            shown.includes('<img src=x onerror="window.__pwned=1">')
          );
        },
        { url: peer(2), want: getsBefore + asked, reads: keys.length + 1 },
        { timeout: 15_000 },
      );
      expect(await figure(peer(2), "gets")).toBeGreaterThanOrEqual(getsBefore + asked);
      // Tom asked three times: the API node answered twice from its own cache, main if it
      // owns Tom, else hot (the default FrequencyPromotion keeps a remote key from its first
      // fetch while the hot cache has room: no dice, unlike groupcache's 1 in 10).
      expect(await figure(peer(2), "cacheHits")).toBeGreaterThanOrEqual(2);
      // The owners read the database: the cluster as a whole read each key once.
      const reads = await Promise.all([0, 1, 2].map((i) => figure(peer(i), "dbReads")));
      expect(reads.reduce((a, b) => a + b, 0)).toBe(keys.length + 1);
      // Shown as text, run never; a not-found key is marked as such.
      expect(await page.evaluate(() => (window as { __pwned?: number }).__pwned)).toBeUndefined();
      expect(await page.$$eval("article.card .keys li img", (imgs) => imgs.length)).toBe(0);
      expect(
        await page.$$eval("article.card .keys li.nf", (lis) => lis.map((li) => li.textContent)),
      ).toContain(evil);

      mkdirSync(OUTPUT, { recursive: true });
      await page.screenshot({ path: SCREENSHOT, fullPage: true });
      expect(problems).toEqual([]);
      // Nothing but its own origin: the page and /status/data.
      expect(requested.filter((u) => !u.startsWith(`${api}/`))).toEqual([]);
    }, 60_000);

    it(`shows a killed node as down, its arcs pale, and the change in the list (screenshot: apps/demo/test-output/status-down.png)`, async () => {
      const stats = await fetch(`${peer(0)}/stats`, {
        headers: { "x-tinycache-auth": SECRET },
        signal: AbortSignal.timeout(5_000),
      });
      const pid0 = ((await stats.json()) as { node: { pid: number } }).node.pid;
      expect(pids.has(pid0)).toBe(true);
      process.kill(pid0, "SIGKILL");
      await page.waitForFunction(
        (url) =>
          document.querySelector(`article.card[data-node="${url}"]`)?.getAttribute("data-up") ===
            "false" &&
          [...document.querySelectorAll("#events-body tr[data-kind=down]")].some((tr) =>
            tr.textContent?.includes(new URL(url).host),
          ),
        peer(0),
        { timeout: 15_000 },
      );
      const reason = await page.$eval(
        `article.card[data-node="${peer(0)}"] .down-reason`,
        (e) => e.textContent,
      );
      expect(reason).toBe("connection refused");
      const pale = await page.$$eval(`#ring path[data-node="${peer(0)}"]`, (ps) =>
        ps.every((p) => p.getAttribute("fill-opacity") === "0.28"),
      );
      expect(pale).toBe(true);
      // The others still answer, and so does the API (the dead node's keys load elsewhere).
      expect(await page.$$eval('article.card[data-up="true"]', (cs) => cs.length)).toBe(2);
      const res = await fetch(`${api}/api?key=Sam`, { signal: AbortSignal.timeout(10_000) });
      expect(await res.text()).toBe("567");
      await page.screenshot({ path: SCREENSHOT_DOWN, fullPage: true });
      expect(problems).toEqual([]);
    }, 60_000);
  },
);
