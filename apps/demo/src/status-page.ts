import { createHash } from "node:crypto";

/**
 * The status page: one static HTML document, its style and script inline, so it needs no
 * build step and loads nothing from anywhere (the CSP below forbids it: the script may
 * only fetch /status/data from the same origin). Everything the page shows is written
 * with textContent, never as HTML: key names are whatever users asked for.
 *
 * The script avoids backquotes and dollar-brace so that it can live in this template.
 */

const STYLE = `
:root {
  --bg: #f5f6f8; --panel: #fff; --ink: #1d2330; --muted: #6b7385; --line: #e4e7ec;
  --good: #1f9d55; --bad: #d64545; --warn: #b7791f;
  font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", "DejaVu Sans", sans-serif;
  color: var(--ink); background: var(--bg);
}
* { box-sizing: border-box; }
body { margin: 0; font-size: 14px; line-height: 1.4; }
header { display: flex; align-items: center; justify-content: space-between; gap: 16px;
  padding: 14px 24px; background: #1d2330; color: #fff; }
header h1 { margin: 0; font-size: 20px; font-weight: 650; letter-spacing: .2px; }
header .sub { color: #aab3c5; margin-left: 10px; font-size: 14px; }
.brand { display: flex; align-items: baseline; }
.conn { display: flex; align-items: center; gap: 8px; font-size: 13px; color: #d5dae4; }
.conn .dot { width: 10px; height: 10px; border-radius: 50%; background: #8a93a6; }
.conn[data-state="live"] .dot { background: #38d17a; box-shadow: 0 0 0 3px rgba(56, 209, 122, .25); }
.conn[data-state="lost"] .dot { background: #ff6b6b; }
main { max-width: 1280px; margin: 0 auto; padding: 18px 24px 8px; display: grid; gap: 18px; }
.row { display: grid; grid-template-columns: minmax(0, 1.25fr) minmax(0, 1fr); gap: 18px; }
@media (max-width: 980px) { .row { grid-template-columns: minmax(0, 1fr); } }
.panel { background: var(--panel); border: 1px solid var(--line); border-radius: 10px; padding: 16px 18px; }
h2 { margin: 0 0 12px; font-size: 15px; font-weight: 650; }
h2 .hint { font-weight: 400; color: var(--muted); font-size: 12.5px; margin-left: 6px; }
.banner { display: none; border-radius: 8px; padding: 10px 14px; background: #fff4e5;
  border: 1px solid #f3d19c; color: #7a4d00; }
.banner.on { display: block; }
.ring-wrap { display: flex; gap: 28px; align-items: center; flex-wrap: wrap; }
.ring-side { flex: 1; min-width: 320px; }
#ring { width: 300px; height: 279px; flex: none; }
#ring .center-big { font-size: 22px; font-weight: 650; fill: var(--ink); }
#ring .center-small { font-size: 9.5px; fill: var(--muted); }
#ring .marker-label { font-size: 10px; fill: var(--ink); font-weight: 600; }
.shares { width: 100%; border-collapse: collapse; }
.shares th.num { text-align: right; }
.shares th { text-align: left; font-weight: 500; color: var(--muted); font-size: 12px; padding: 0 8px 6px 0; }
.shares td { padding: 6px 8px 6px 0; border-top: 1px solid var(--line); vertical-align: middle; }
.shares td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.shares td.barcell { width: 38%; }
.bar { height: 8px; background: #edf0f4; border-radius: 4px; overflow: hidden; min-width: 70px; }
.bar > div { height: 100%; border-radius: 4px; }
.swatch { display: inline-block; width: 11px; height: 11px; border-radius: 3px; margin-right: 7px; vertical-align: -1px; }
.note { color: var(--muted); font-size: 12.5px; margin: 12px 0 0; }
.pill { display: inline-block; font-size: 11px; font-weight: 600; padding: 1px 7px; border-radius: 999px;
  margin-left: 6px; vertical-align: 1px; }
.pill.up { background: #e3f6ea; color: var(--good); }
.pill.down { background: #fde8e8; color: var(--bad); }
.pill.api { background: #e8eefc; color: #3454b4; }
.pill.warn { background: #fff4e5; color: var(--warn); }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(340px, 1fr)); gap: 14px; }
.card { border: 1px solid var(--line); border-radius: 10px; padding: 14px 16px; background: #fff;
  border-top-width: 4px; }
.card.down { background: #fbfbfc; color: var(--muted); }
.card h3 { margin: 0 0 10px; font-size: 14.5px; font-weight: 650; display: flex; align-items: center; }
.card h3 .host { font-family: ui-monospace, "SF Mono", Menlo, Consolas, "DejaVu Sans Mono", monospace; font-size: 13.5px; }
.ratio { display: flex; align-items: center; gap: 10px; margin-bottom: 10px; }
.ratio .big { font-size: 26px; font-weight: 650; font-variant-numeric: tabular-nums; min-width: 84px; }
.ratio .label { color: var(--muted); font-size: 12px; }
.ratio .bar { flex: 1; height: 10px; }
dl.figs { display: grid; grid-template-columns: 1fr 1fr; gap: 6px 16px; margin: 0; }
dl.figs div { display: flex; justify-content: space-between; gap: 8px; border-bottom: 1px dashed var(--line); padding-bottom: 3px; }
dl.figs dt { color: var(--muted); }
dl.figs dd { margin: 0; font-variant-numeric: tabular-nums; font-weight: 550; text-align: right; }
dl.figs dd .rate { color: var(--muted); font-weight: 400; font-size: 12px; margin-left: 4px; }
dd.alert { color: var(--bad); }
.meta { color: var(--muted); font-size: 12px; margin-top: 9px; }
.keys { margin-top: 12px; display: grid; gap: 9px; border-top: 1px solid var(--line); padding-top: 10px; }
.keys h4 { margin: 0 0 5px; font-size: 12px; font-weight: 600; color: var(--muted); }
.keys ol { margin: 0; padding: 0; list-style: none; display: flex; flex-wrap: wrap; gap: 4px; }
.keys li { font-family: ui-monospace, "SF Mono", Menlo, Consolas, "DejaVu Sans Mono", monospace; font-size: 12px;
  background: #f0f2f6; border-radius: 5px; padding: 1px 6px; max-width: 100%; overflow: hidden;
  text-overflow: ellipsis; white-space: nowrap; }
.keys li.nf { background: #fdf0f0; color: var(--bad); }
.keys .empty { color: var(--muted); font-size: 12px; }
.down-reason { margin: 4px 0 0; color: var(--bad); }
table.events { width: 100%; border-collapse: collapse; }
table.events td { padding: 5px 8px 5px 0; border-top: 1px solid var(--line); vertical-align: top; }
table.events td.time { white-space: nowrap; color: var(--muted); font-variant-numeric: tabular-nums; width: 1%; }
table.events td.node { white-space: nowrap; width: 1%; font-family: ui-monospace, Menlo, Consolas, "DejaVu Sans Mono", monospace; font-size: 12.5px; }
table.events td.what { word-break: break-word; }
table.events tr.down td.what, table.events tr.unhealthy td.what { color: var(--bad); }
table.events tr.up td.what, table.events tr.healthy td.what { color: var(--good); }
.events-box { max-height: 310px; overflow: auto; }
.empty-events { color: var(--muted); }
footer { max-width: 1280px; margin: 0 auto; padding: 6px 24px 24px; color: var(--muted); font-size: 12px; }
code { font-family: ui-monospace, Menlo, Consolas, "DejaVu Sans Mono", monospace; font-size: 12px; }
`;

const SCRIPT = String.raw`
(function () {
  "use strict";
  var COLORS = ["#4f7cff", "#f08a24", "#1fa971", "#9b51e0", "#e0464e", "#1e9bd7", "#c9a400", "#7a8599"];
  var POLL_MS = 1000;
  var SVGNS = "http://www.w3.org/2000/svg";
  var prev = {};
  var polls = 0;
  var colorIndex = {};
  var nextColor = 0;

  function $(id) { return document.getElementById(id); }
  function h(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function s(tag, attrs) {
    var e = document.createElementNS(SVGNS, tag);
    for (var k in attrs) e.setAttribute(k, String(attrs[k]));
    return e;
  }
  function int(n) { return Number(n).toLocaleString("en-US"); }
  function pct(x, d) { return x === null || x === undefined ? "\u2014" : (x * 100).toFixed(d === undefined ? 1 : d) + "%"; }
  function host(url) { try { return new URL(url).host; } catch (e) { return url; } }
  function color(url) {
    if (!(url in colorIndex)) colorIndex[url] = nextColor++;
    return COLORS[colorIndex[url] % COLORS.length];
  }
  function clock(iso) {
    var d = new Date(iso);
    function p(n) { return (n < 10 ? "0" : "") + n; }
    return p(d.getHours()) + ":" + p(d.getMinutes()) + ":" + p(d.getSeconds());
  }
  function duration(ms) {
    var s = Math.floor(ms / 1000);
    if (s < 60) return s + " s";
    var m = Math.floor(s / 60);
    if (m < 60) return m + " min " + (s % 60) + " s";
    var hrs = Math.floor(m / 60);
    return hrs + " h " + (m % 60) + " min";
  }
  function swatch(url) {
    var e = h("span", "swatch");
    e.style.background = color(url);
    return e;
  }
  function bar(fraction, fill) {
    var b = h("div", "bar");
    var f = h("div");
    f.style.width = Math.max(0, Math.min(1, fraction)) * 100 + "%";
    f.style.background = fill;
    b.appendChild(f);
    return b;
  }

  function point(frac, r) {
    var a = frac * 2 * Math.PI - Math.PI / 2;
    return [r * Math.cos(a), r * Math.sin(a)];
  }
  function arcPath(from, to, r0, r1) {
    var p0 = point(from, r1), p1 = point(to, r1), p2 = point(to, r0), p3 = point(from, r0);
    var large = to - from > 0.5 ? 1 : 0;
    return "M" + p0[0] + " " + p0[1] + "A" + r1 + " " + r1 + " 0 " + large + " 1 " + p1[0] + " " + p1[1] +
      "L" + p2[0] + " " + p2[1] + "A" + r0 + " " + r0 + " 0 " + large + " 0 " + p3[0] + " " + p3[1] + "Z";
  }

  function renderRing(data, upByUrl) {
    var svg = $("ring");
    var ring = data.ring;
    svg.replaceChildren();
    var shares = $("shares-body");
    shares.replaceChildren();
    if (!ring) {
      $("ring-hint").textContent = "no peers";
      return;
    }
    $("ring-hint").textContent = ring.nodes.length + " nodes \u00d7 " + ring.replicas + " points, " + ring.hash;
    svg.appendChild(s("circle", { cx: 0, cy: 0, r: 85, fill: "none", stroke: "#edf0f4", "stroke-width": 30 }));
    ring.arcs.forEach(function (a) {
      var url = ring.nodes[a.node].url;
      var pieces = a.to - a.from > 0.5 ? [[a.from, (a.from + a.to) / 2], [(a.from + a.to) / 2, a.to]] : [[a.from, a.to]];
      pieces.forEach(function (p) {
        var path = s("path", { d: arcPath(p[0], p[1], 70, 100), fill: color(url), "data-node": url });
        if (upByUrl[url] === false) path.setAttribute("fill-opacity", "0.28");
        var t = s("title", {});
        t.textContent = host(url) + " owns " + pct(p[1] - p[0], 2) + " of the hash space here";
        path.appendChild(t);
        svg.appendChild(path);
      });
    });
    ring.markers.forEach(function (m) {
      var url = ring.nodes[m.owner] ? ring.nodes[m.owner].url : "";
      var p = point(m.at, 100), q = point(m.at, 108), l = point(m.at, 117);
      svg.appendChild(s("line", { x1: p[0], y1: p[1], x2: q[0], y2: q[1], stroke: "#1d2330", "stroke-width": 1.2 }));
      svg.appendChild(s("circle", { cx: q[0], cy: q[1], r: 2.6, fill: "#1d2330" }));
      var anchor = Math.abs(l[0]) < 12 ? "middle" : l[0] > 0 ? "start" : "end";
      var t = s("text", { x: l[0], y: l[1] + 3.5, "text-anchor": anchor, "class": "marker-label" });
      t.textContent = m.key;
      var title = s("title", {});
      title.textContent = m.key + " hashes to " + pct(m.at, 2) + " of the ring: owner " + host(url);
      t.appendChild(title);
      svg.appendChild(t);
    });
    var big = s("text", { x: 0, y: 2, "text-anchor": "middle", "class": "center-big" });
    big.textContent = ring.nodes.length + (ring.nodes.length === 1 ? " node" : " nodes");
    svg.appendChild(big);
    var small = s("text", { x: 0, y: 18, "text-anchor": "middle", "class": "center-small" });
    small.textContent = int(ring.totalRows) + " rows";
    svg.appendChild(small);

    var maxShare = 0;
    ring.nodes.forEach(function (n) { maxShare = Math.max(maxShare, n.rowShare); });
    ring.nodes.forEach(function (n) {
      var tr = h("tr");
      tr.setAttribute("data-node", n.url);
      var name = h("td");
      name.appendChild(swatch(n.url));
      name.appendChild(h("span", "", host(n.url)));
      if (upByUrl[n.url] === false) name.appendChild(h("span", "pill down", "down"));
      tr.appendChild(name);
      tr.appendChild(h("td", "num", pct(n.hashShare)));
      var rows = h("td", "num", int(n.rows));
      rows.setAttribute("data-field", "rows");
      tr.appendChild(rows);
      var b = h("td", "barcell");
      b.appendChild(bar(maxShare ? n.rowShare / maxShare : 0, color(n.url)));
      tr.appendChild(b);
      tr.appendChild(h("td", "num", pct(n.rowShare)));
      shares.appendChild(tr);
    });
  }

  function fig(dl, label, field, value, extra, alert) {
    var d = h("div");
    d.appendChild(h("dt", "", label));
    var dd = h("dd", alert ? "alert" : "", value);
    dd.setAttribute("data-field", field);
    if (extra) dd.appendChild(h("span", "rate", extra));
    d.appendChild(dd);
    dl.appendChild(d);
  }

  function keyList(title, keys) {
    var box = h("div");
    box.appendChild(h("h4", "", title));
    if (keys.length === 0) {
      box.appendChild(h("div", "empty", "none"));
      return box;
    }
    var ol = h("ol");
    keys.forEach(function (k) {
      var li = h("li", k.notFound ? "nf" : "", k.key);
      li.title = k.notFound ? k.key + " (cached as not found)" : k.key;
      ol.appendChild(li);
    });
    box.appendChild(ol);
    return box;
  }

  function renderNodes(data) {
    var box = $("nodes");
    box.replaceChildren();
    var t = Date.parse(data.now);
    var warn = [];
    data.nodes.forEach(function (n) {
      var card = h("article", "card" + (n.up ? "" : " down"));
      card.setAttribute("data-node", n.url);
      card.setAttribute("data-up", String(n.up));
      card.style.borderTopColor = color(n.url);
      var title = h("h3");
      title.appendChild(swatch(n.url));
      title.appendChild(h("span", "host", host(n.url)));
      if (n.self) title.appendChild(h("span", "pill api", "API"));
      title.appendChild(h("span", "pill " + (n.up ? "up" : "down"), n.up ? "up" : "down"));
      if (n.up && !n.sameRing) {
        title.appendChild(h("span", "pill warn", "other ring"));
        warn.push(host(n.url));
      }
      card.appendChild(title);
      if (!n.up) {
        card.appendChild(h("p", "down-reason", n.error));
        card.appendChild(h("div", "meta", "down since " + clock(n.downSince) + "; its keys load at the node that asks"));
        box.appendChild(card);
        return;
      }
      var p = prev[n.url];
      var rate = "";
      if (p && p.pid === n.pid && t > p.at) {
        rate = Math.round(((n.gets - p.gets) * 1000) / (t - p.at)) + "/s";
      }
      prev[n.url] = { at: t, gets: n.gets, pid: n.pid };

      var ratio = h("div", "ratio");
      var big = h("div", "big", pct(n.hitRatio));
      big.setAttribute("data-field", "hitRatio");
      ratio.appendChild(big);
      ratio.appendChild(bar(n.hitRatio || 0, color(n.url)));
      ratio.appendChild(h("div", "label", "hit ratio"));
      card.appendChild(ratio);

      var dl = h("dl", "figs");
      fig(dl, "gets", "gets", int(n.gets), rate);
      fig(dl, "cache hits", "cacheHits", int(n.cacheHits));
      fig(dl, "loads", "loads", int(n.loads));
      fig(dl, "from owners", "peerLoads", int(n.peerLoads));
      fig(dl, "peer errors", "peerErrors", int(n.peerErrors), "", n.peerErrors > 0);
      fig(dl, "db reads", "dbReads", int(n.dbReads));
      fig(dl, "served to peers", "serverRequests", int(n.serverRequests));
      fig(dl, "not found", "notFounds", int(n.notFounds));
      fig(dl, "main cache", "mainItems", int(n.main.items));
      fig(dl, "hot cache", "hotItems", int(n.hot.items));
      card.appendChild(dl);

      var unhealthy = n.peerHealth.filter(function (x) { return x.state !== "healthy"; });
      var meta = "pid " + n.pid + " \u00b7 up " + duration(n.uptimeMs) + " \u00b7 " + n.transport +
        " \u00b7 peers: " + n.membership.source + " \u00b7 /stats in " + n.answeredInMs + " ms";
      card.appendChild(h("div", "meta", meta));
      if (unhealthy.length > 0) {
        card.appendChild(h("div", "down-reason", "judges unhealthy: " + unhealthy.map(function (x) { return host(x.url); }).join(", ")));
      }
      if (n.membership.problem) card.appendChild(h("div", "down-reason", "membership: " + n.membership.problem));

      var keys = h("div", "keys");
      var mk = keyList("hot keys \u00b7 main cache, most recent first", n.recentKeys.main);
      mk.setAttribute("data-keys", "main");
      var hk = keyList("hot keys \u00b7 hot cache, most recent first", n.recentKeys.hot);
      hk.setAttribute("data-keys", "hot");
      keys.appendChild(mk);
      keys.appendChild(hk);
      card.appendChild(keys);
      box.appendChild(card);
    });
    var banner = $("banner");
    banner.textContent = warn.length ? "These nodes have a different peer list than the API node (their rings disagree): " + warn.join(", ") : "";
    banner.className = "banner" + (warn.length ? " on" : "");
  }

  function renderEvents(data) {
    var body = $("events-body");
    body.replaceChildren();
    $("events-empty").style.display = data.events.length ? "none" : "block";
    data.events.forEach(function (e) {
      var tr = h("tr", e.kind);
      tr.setAttribute("data-kind", e.kind);
      tr.appendChild(h("td", "time", clock(e.at)));
      var node = h("td", "node");
      node.appendChild(swatch(e.node));
      node.appendChild(h("span", "", host(e.node)));
      tr.appendChild(node);
      tr.appendChild(h("td", "what", e.text));
      body.appendChild(tr);
    });
  }

  function render(data) {
    var upByUrl = {};
    if (data.ring) data.ring.nodes.forEach(function (n) { color(n.url); });
    data.nodes.forEach(function (n) { upByUrl[n.url] = n.up; color(n.url); });
    renderRing(data, upByUrl);
    renderNodes(data);
    renderEvents(data);
    polls++;
    document.body.setAttribute("data-polls", String(polls));
    var c = $("conn");
    c.setAttribute("data-state", "live");
    var up = data.nodes.filter(function (n) { return n.up; }).length;
    $("conn-text").textContent = "live \u00b7 " + up + "/" + data.nodes.length + " nodes up \u00b7 " + clock(data.now);
  }

  function lost(err) {
    $("conn").setAttribute("data-state", "lost");
    $("conn-text").textContent = "the API node does not answer (" + (err && err.message ? err.message : err) + "); retrying";
  }

  function poll() {
    var ac = new AbortController();
    var timer = setTimeout(function () { ac.abort(new Error("timed out")); }, 5000);
    fetch("/status/data", { cache: "no-store", signal: ac.signal })
      .then(function (r) {
        if (!r.ok) throw new Error("HTTP " + r.status);
        return r.json();
      })
      .then(render, lost)
      .finally(function () {
        clearTimeout(timer);
        setTimeout(poll, POLL_MS);
      });
  }
  poll();
})();
`;

const HTML_HEAD = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>tinycache status</title>
<style>${STYLE}</style>
</head>`;

const HTML_BODY = `<body data-polls="0">
<header>
  <div class="brand"><h1>tinycache</h1><span class="sub">demo cluster status</span></div>
  <div id="conn" class="conn" data-state="connecting"><span class="dot"></span><span id="conn-text">connecting\u2026</span></div>
</header>
<main>
  <div id="banner" class="banner" role="alert"></div>
  <section class="panel" id="ring-panel">
    <h2>Ring <span class="hint" id="ring-hint"></span></h2>
    <div class="ring-wrap">
      <svg id="ring" viewBox="-142 -132 284 264" role="img" aria-label="The consistent-hash ring: each node's arcs of the hash space"></svg>
      <div class="ring-side">
        <table class="shares">
          <thead><tr><th>node</th><th class="num">hash space</th><th class="num">rows owned</th><th></th><th class="num">of rows</th></tr></thead>
          <tbody id="shares-body"></tbody>
        </table>
        <p class="note">The API node's ring, as its pool builds it: each node's points on a circle of
        2<sup>32</sup> hashes; a key belongs to the first point at or after its hash. <b>Hash space</b>: the
        share of the circle a node's arcs cover. <b>Rows owned</b>: the demo database's keys the ring routes to
        it, counted exactly. Marks: where Tom, Jack and Sam hash. A down node's arcs are pale: the node that
        asks for one of its keys loads it itself.</p>
      </div>
    </div>
  </section>
  <section class="panel">
    <h2>Nodes <span class="hint">counters since each node started; hot keys: the most recently used keys of each cache</span></h2>
    <div id="nodes" class="cards"></div>
  </section>
  <section class="panel" id="events-panel">
    <h2>Recent changes <span class="hint">peer lists each node applied (with their times); nodes down, back, restarted or judged unhealthy, as this page saw them</span></h2>
    <div class="events-box">
      <table class="events"><tbody id="events-body"></tbody></table>
      <p id="events-empty" class="empty-events">No changes yet.</p>
    </div>
  </section>
</main>
<footer>Polls <code>GET /status/data</code> every second; the API node asks every node's <code>/stats</code> with the peer
secret (the browser never sees it). This page shows key names: start the API node with <code>--status off</code> to turn it off.</footer>
<script>${SCRIPT}</script>
</body>
</html>
`;

/** The page, as served by `GET /status`. */
export const STATUS_PAGE_HTML = `${HTML_HEAD}\n${HTML_BODY}`;

const sha256 = (text: string) => `'sha256-${createHash("sha256").update(text).digest("base64")}'`;

/**
 * Its Content-Security-Policy: only its own inline script and style (by hash), fetches
 * to its own origin only, nothing else from anywhere; no framing.
 */
export const STATUS_PAGE_CSP = [
  "default-src 'none'",
  `script-src ${sha256(SCRIPT)}`,
  `style-src ${sha256(STYLE)}`,
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ");
