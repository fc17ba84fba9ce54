/**
 * The dashboard page: one HTML document with its CSS and script inline (no CDN, nothing
 * fetched but this server's own endpoints). The first view is embedded so the page shows
 * the pool at once; Server-Sent Events keep it live. The script builds the DOM with
 * textContent only (no innerHTML of data), so a name in the status cannot inject markup.
 */
import type { DashboardView } from "./view.js";

/** JSON that is safe inside a <script> element. */
function scriptJson(value: unknown): string {
  return JSON.stringify(value)
    .replace(/</g, "\\u003c")
    .replace(/\u2028|\u2029/g, "");
}

export function dashboardPage(token: string, initial: DashboardView): string {
  return PAGE.replace("__TOKEN__", token).replace("__INITIAL__", () => scriptJson(initial));
}

const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>hsmpool dashboard</title>
<style>
  :root { --bg:#0f1419; --card:#182029; --line:#2a3542; --text:#e6edf3; --dim:#8b98a5;
          --ok:#3fb950; --warn:#d29922; --bad:#f85149; --accent:#58a6ff; }
  * { box-sizing: border-box; }
  body { margin:0; font:14px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; background:var(--bg); color:var(--text); }
  header { display:flex; flex-wrap:wrap; align-items:center; gap:8px 16px; padding:12px 16px; border-bottom:1px solid var(--line); }
  header h1 { font-size:16px; margin:0; font-weight:600; }
  .badge { display:inline-block; padding:2px 8px; border-radius:10px; font-size:12px; font-weight:600; }
  .healthy, .up, .synced, .ready { background:rgba(63,185,80,.18); color:var(--ok); }
  .degraded, .pending, .down, .open { background:rgba(210,153,34,.18); color:var(--warn); }
  .unavailable, .crash-looping, .failed, .lost { background:rgba(248,81,73,.18); color:var(--bad); }
  .primary { background:rgba(88,166,255,.2); color:var(--accent); }
  .secondary, .learner { background:#223040; color:var(--dim); }
  .meta { color:var(--dim); font-size:12px; }
  main { display:grid; grid-template-columns: minmax(0,3fr) minmax(0,2fr); gap:16px; padding:16px; }
  @media (max-width: 900px) { main { grid-template-columns: minmax(0,1fr); padding:10px; } }
  section { background:var(--card); border:1px solid var(--line); border-radius:8px; padding:12px; min-width:0; }
  section h2 { font-size:13px; text-transform:uppercase; letter-spacing:.06em; color:var(--dim); margin:0 0 10px; }
  .racks { display:grid; grid-template-columns:repeat(auto-fit, minmax(220px, 1fr)); gap:10px; }
  .rack { border:1px solid var(--line); border-radius:6px; padding:8px; }
  .rack h3 { margin:0 0 6px; font-size:13px; }
  .server { border-top:1px dashed var(--line); padding:6px 0; }
  .server:first-of-type { border-top:none; }
  .server-id { color:var(--dim); font-size:12px; }
  .server.is-lost .server-id { text-decoration: line-through; color:var(--bad); }
  .member { margin-top:4px; padding:6px; border-radius:6px; background:#1f2a36; }
  .member .name { font-weight:600; margin-right:6px; }
  .member .facts { font-size:12px; color:var(--dim); word-break:break-all; }
  .member .detail { font-size:12px; color:var(--bad); }
  .buttons { display:flex; flex-wrap:wrap; gap:6px; margin-top:6px; }
  button { font:inherit; font-size:12px; color:var(--text); background:#26323f; border:1px solid var(--line); border-radius:6px; padding:4px 10px; cursor:pointer; min-height:30px; }
  button:hover:not([disabled]) { border-color:var(--accent); }
  button.danger { border-color:rgba(248,81,73,.6); }
  button[disabled] { opacity:.45; cursor:not-allowed; }
  .toolbar { display:flex; flex-wrap:wrap; gap:8px; margin-bottom:10px; }
  .healing { border-top:1px solid var(--line); padding:8px 0; }
  .healing:first-child { border-top:none; }
  .phases { display:flex; flex-wrap:wrap; gap:4px; margin-top:4px; }
  .phase { font-size:11px; padding:2px 6px; border-radius:4px; background:#223040; }
  .phase.current { outline:1px solid var(--warn); }
  .phase.failed { background:rgba(248,81,73,.2); color:var(--bad); }
  .phase.ready { background:rgba(63,185,80,.18); color:var(--ok); }
  .reason { font-size:12px; color:var(--dim); }
  .spark { display:grid; grid-template-columns: 44px minmax(0,1fr) minmax(0,1fr); gap:6px; align-items:center; margin-bottom:6px; }
  .spark svg { width:100%; height:36px; background:#141b22; border-radius:4px; }
  .spark .label { font-size:11px; color:var(--dim); }
  .banner { margin:0 16px; padding:8px 12px; border-radius:6px; background:rgba(248,81,73,.15); color:var(--bad); }
  .banner:empty { display:none; }
  #toast { position:fixed; bottom:16px; left:50%; transform:translateX(-50%); background:#26323f; border:1px solid var(--line);
           padding:8px 14px; border-radius:6px; max-width:90vw; display:none; }
  dialog { background:var(--card); color:var(--text); border:1px solid var(--line); border-radius:8px; max-width:420px; width:90vw; }
  dialog::backdrop { background:rgba(0,0,0,.55); }
  .empty { color:var(--dim); font-size:12px; }
  #audit-token { flex:1 1 160px; min-width:0; font:inherit; font-size:12px; color:var(--text); background:#141b22; border:1px solid var(--line); border-radius:6px; padding:4px 8px; }
  .audit-row { display:grid; grid-template-columns: 70px minmax(0,1fr); gap:2px 8px; font-size:12px; border-top:1px dashed var(--line); padding:4px 0; word-break:break-all; }
  .audit-row .when { color:var(--dim); }
  .audit-row .refused { color:var(--bad); }
</style>
</head>
<body>
<header>
  <h1>hsmpool</h1>
  <span id="pool-id" class="meta"></span>
  <span id="pool-state" class="badge"></span>
  <span id="pool-facts" class="meta"></span>
</header>
<div id="error" class="banner" role="alert"></div>
<main>
  <div>
    <section>
      <h2>Topology</h2>
      <div class="toolbar">
        <button class="danger" id="kill-primary" data-testid="kill-primary">Kill primary</button>
        <button id="pause-primary" data-testid="pause-primary">Pause primary</button>
        <button class="danger" id="partition-primary" data-testid="partition-primary"
          title="Cuts the primary off from its peers (needs a pool started with hsmpool up --test-hooks)">Partition primary</button>
        <button id="heal-partitions" data-testid="heal-partitions">Heal partition</button>
      </div>
      <div id="racks" class="racks" data-testid="racks"></div>
    </section>
    <section style="margin-top:16px">
      <h2>Requests (per second, mean latency)</h2>
      <div id="sparks"></div>
    </section>
  </div>
  <div>
    <section>
      <h2>Healing</h2>
      <div id="healing" data-testid="healing"></div>
    </section>
    <section style="margin-top:16px">
      <h2>Audit trail</h2>
      <form id="audit-form" class="toolbar" autocomplete="off">
        <input id="audit-token" data-testid="audit-token" type="password" placeholder="bearer token: hsmpool token --as &lt;principal&gt;" aria-label="bearer token">
        <button id="audit-show" data-testid="audit-show" type="submit">Show</button>
        <button id="audit-forget" type="button">Forget</button>
      </form>
      <div id="audit-note" class="empty" data-testid="audit-note">The audit trail is the customer's: only a principal allowed to read it (Administrator, Crypto Auditor) sees it, with its own token. The members check the token; the HFC never reads the records; the token stays in this page's memory.</div>
      <div id="audit" data-testid="audit"></div>
    </section>
  </div>
</main>
<dialog id="confirm" data-testid="confirm-dialog">
  <p id="confirm-text"></p>
  <div class="buttons">
    <button id="confirm-cancel">Cancel</button>
    <button id="confirm-ok" class="danger" data-testid="confirm">Confirm</button>
  </div>
</dialog>
<div id="toast" role="status"></div>
<script>
"use strict";
const TOKEN = "__TOKEN__";
let view = __INITIAL__;

function el(tag, props, children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (k === "text") e.textContent = v;
    else if (k === "class") e.className = v;
    else if (k === "onclick") e.addEventListener("click", v);
    else e.setAttribute(k, v);
  }
  for (const c of children || []) if (c) e.appendChild(c);
  return e;
}
const badge = (text, cls) => el("span", { class: "badge " + (cls || text), text: text });
function seconds(ms) { return ms < 1000 ? ms + " ms" : (ms / 1000).toFixed(ms < 10000 ? 2 : 1) + " s"; }
function clock(ms) { return new Date(ms).toLocaleTimeString(); }

function toast(text) {
  const t = document.getElementById("toast");
  t.textContent = text; t.style.display = "block";
  clearTimeout(toast.timer); toast.timer = setTimeout(() => { t.style.display = "none"; }, 5000);
}

let pending = null;
const dialog = document.getElementById("confirm");
function ask(text, action, target) {
  pending = { action: action, target: target };
  document.getElementById("confirm-text").textContent = text;
  dialog.showModal();
}
document.getElementById("confirm-cancel").addEventListener("click", () => { pending = null; dialog.close(); });
document.getElementById("confirm-ok").addEventListener("click", async () => {
  const p = pending; pending = null; dialog.close();
  if (!p) return;
  try {
    const r = await fetch("/api/fault", { method: "POST", headers: { "content-type": "application/json", "x-dashboard-token": TOKEN }, body: JSON.stringify(p) });
    const j = await r.json();
    toast(r.ok ? j.message : "refused: " + j.error);
  } catch (e) { toast("the dashboard server did not answer: " + e); }
});
document.getElementById("kill-primary").addEventListener("click", () => ask("Kill the primary (SIGKILL)? The others elect a new primary and the HFC heals the pool.", "kill", "primary"));
document.getElementById("partition-primary").addEventListener("click", () => ask("Partition the primary from its peers? The others elect a new primary; the old one cannot commit until you heal the partition.", "partition", "primary"));
document.getElementById("heal-partitions").addEventListener("click", () => ask("Heal the partition? Every member cut off rejoins its peers and catches up.", "heal-partitions", "all"));
document.getElementById("pause-primary").addEventListener("click", () => ask("Pause the primary (SIGSTOP)? Past the lost-server window the HFC declares its server lost and replaces it.", "pause", "primary"));

// The audit panel: the token lives only in this variable; every read sends it, nothing stores it.
let auditToken = "";
let auditAfter = {};
let auditRecords = [];
let auditTimer = null;
function auditNote(text) { document.getElementById("audit-note").textContent = text; }
function renderAudit() {
  const root = document.getElementById("audit");
  root.replaceChildren();
  for (const r of auditRecords.slice().reverse()) {
    const key = r.key === "" ? "" : " " + r.key + (r.version > 0 ? " v" + r.version : "");
    root.appendChild(el("div", { class: "audit-row", "data-testid": "audit-record", "data-operation": r.operation, "data-result": r.result }, [
      el("span", { class: "when", text: clock(r.timeMs) }),
      el("span", { class: r.result === "OK" ? "" : "refused", text: (r.principal || "(no valid token)") + " · " + r.operation + key + " · " + r.result + " · " + r.member }),
    ]));
  }
}
async function loadAudit() {
  if (!auditToken) return;
  try {
    const r = await fetch("/api/audit", { method: "POST", headers: { "content-type": "application/json", "x-dashboard-token": TOKEN }, body: JSON.stringify({ token: auditToken, after: auditAfter }) });
    const j = await r.json();
    if (!r.ok) {
      // A refused or expired token is dropped: the page never keeps retrying with it.
      forgetAudit();
      auditNote("refused: " + j.error + " [" + j.code + "]");
      return;
    }
    auditAfter = j.after;
    auditRecords = auditRecords.concat(j.records).slice(-50);
    renderAudit();
    auditNote(auditRecords.length + " recent records, newest first");
    if (j.more) setTimeout(loadAudit, 0);
  } catch (e) { auditNote("the dashboard server did not answer: " + e); }
}
function forgetAudit() {
  auditToken = ""; auditAfter = {}; auditRecords = [];
  clearInterval(auditTimer); auditTimer = null;
  renderAudit();
}
document.getElementById("audit-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const input = document.getElementById("audit-token");
  forgetAudit();
  auditToken = input.value.trim(); input.value = "";
  if (!auditToken) return;
  auditNote("reading the audit trail…");
  loadAudit();
  auditTimer = setInterval(loadAudit, 3000);
});
document.getElementById("audit-forget").addEventListener("click", () => { forgetAudit(); auditNote("token forgotten"); });

function memberCard(m, pool, partitioned) {
  const facts = "term " + m.term + " · svn " + m.svn + " · pid " + (m.pid || "-") + " · " + (m.measurement ? m.measurement.slice(0, 12) + "…" : "not attested yet");
  const buttons = el("div", { class: "buttons" }, [
    el("button", { class: "danger", text: "Kill", "data-testid": "kill-" + m.id, onclick: () => ask("Kill " + m.id + " (SIGKILL)?", "kill", m.id) }),
    el("button", { text: "Pause", onclick: () => ask("Pause " + m.id + " (SIGSTOP)?", "pause", m.id) }),
    el("button", { text: "Resume", onclick: () => ask("Resume " + m.id + " (SIGCONT)?", "resume", m.id) }),
    el("button", { class: "danger", text: "Lose server", onclick: () => ask("Lose server " + m.server + "? " + m.id + " is fenced for good and replaced in another rack.", "lose-server", m.server) }),
  ]);
  return el("div", { class: "member", "data-testid": "member", "data-member": m.id, "data-role": m.role, "data-health": m.health, "data-rack": m.rack, "data-partitioned": partitioned ? "yes" : "no" }, [
    el("div", {}, [el("span", { class: "name", text: m.id }), badge(m.role), document.createTextNode(" "), badge(m.health), document.createTextNode(" "), badge(m.ownership), partitioned ? document.createTextNode(" ") : null, partitioned ? badge("partitioned", "lost") : null]),
    el("div", { class: "facts", text: facts }),
    m.healthDetail ? el("div", { class: "detail", text: m.healthDetail }) : null,
    buttons,
  ]);
}

function renderTopology(v) {
  const root = document.getElementById("racks");
  root.replaceChildren();
  const pool = v.pool;
  const members = pool ? pool.members : [];
  const lost = new Set(pool ? pool.lostServers : []);
  const racks = v.racks.length > 0 ? v.racks : Array.from(new Set(members.map((m) => m.rack))).sort().map((id) => ({ id: id, servers: members.filter((m) => m.rack === id).map((m) => m.server) }));
  for (const rack of racks) {
    const servers = rack.servers.map((s) => {
      const here = members.filter((m) => m.server === s);
      return el("div", { class: "server" + (lost.has(s) ? " is-lost" : ""), "data-server": s }, [
        el("div", { class: "server-id", text: s + (lost.has(s) ? " (lost)" : "") }),
        ...here.map((m) => memberCard(m, pool, v.partitioned.includes(m.id))),
      ]);
    });
    root.appendChild(el("div", { class: "rack", "data-testid": "rack", "data-rack": rack.id }, [el("h3", { text: rack.id }), ...servers]));
  }
}

function renderHealing(v) {
  const root = document.getElementById("healing");
  root.replaceChildren();
  const records = v.pool ? v.pool.healing.slice().reverse() : [];
  if (records.length === 0) { root.appendChild(el("div", { class: "empty", text: "Nothing has needed healing yet." })); return; }
  for (const h of records) {
    const t0 = h.phases.length > 0 ? h.phases[0].atMs : 0;
    const open = h.phase !== "ready" && h.phase !== "failed";
    const chips = h.phases.map((p, i) => {
      const next = h.phases[i + 1];
      const lasted = next ? next.atMs - p.atMs : (open ? v.observedMs - p.atMs : null);
      const text = p.phase.replace("_", " ") + " +" + seconds(p.atMs - t0) + (lasted !== null && next ? " (" + seconds(lasted) + ")" : (open && !next ? " (" + seconds(Math.max(0, lasted)) + "…)" : ""));
      return el("span", { class: "phase " + (p.phase === "failed" ? "failed" : p.phase === "ready" ? "ready" : "") + (open && !next ? " current" : ""), "data-testid": "healing-phase", "data-phase": p.phase, text: text });
    });
    const title = h.id + " " + h.kind + " " + h.memberId + (h.replacementId ? " → " + h.replacementId : "") + " · " + clock(t0);
    root.appendChild(el("div", { class: "healing", "data-testid": "healing-record", "data-kind": h.kind, "data-phase": h.phase }, [
      el("div", {}, [el("span", { text: title + " " }), badge(open ? "open" : h.phase)]),
      el("div", { class: "phases" }, chips),
      h.reason ? el("div", { class: "reason", text: h.reason }) : null,
    ]));
  }
}

function sparkline(points, key, color) {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", "0 0 100 30"); svg.setAttribute("preserveAspectRatio", "none");
  const values = points.map((p) => p[key]).filter((x) => x !== null);
  const max = Math.max(1e-9, ...values);
  const n = points.length;
  const coords = points.map((p, i) => p[key] === null ? null : ((n > 1 ? i / (n - 1) : 1) * 100).toFixed(1) + "," + (28 - (p[key] / max) * 26).toFixed(1)).filter(Boolean);
  const line = document.createElementNS(ns, "polyline");
  line.setAttribute("points", coords.join(" ")); line.setAttribute("fill", "none");
  line.setAttribute("stroke", color); line.setAttribute("stroke-width", "1.5"); line.setAttribute("vector-effect", "non-scaling-stroke");
  svg.appendChild(line);
  return svg;
}

function renderSparks(v) {
  const root = document.getElementById("sparks");
  root.replaceChildren();
  const members = v.pool ? v.pool.members : [];
  if (members.length === 0) { root.appendChild(el("div", { class: "empty", text: "No members." })); return; }
  for (const m of members) {
    const pts = v.rates[m.id] || [];
    const last = pts[pts.length - 1];
    const rate = last ? last.rate.toFixed(1) + "/s" : "–";
    const lat = last && last.latencyMs !== null ? last.latencyMs.toFixed(1) + " ms" : "–";
    root.appendChild(el("div", { class: "spark", "data-testid": "spark", "data-member": m.id }, [
      el("div", { class: "label", text: m.id }),
      el("div", {}, [sparkline(pts, "rate", "#58a6ff"), el("div", { class: "label", text: rate })]),
      el("div", {}, [sparkline(pts, "latencyMs", "#d29922"), el("div", { class: "label", text: lat })]),
    ]));
  }
}

function render(v) {
  view = v;
  const pool = v.pool;
  document.getElementById("error").textContent = v.error ? "HFC not answering: " + v.error : "";
  document.getElementById("pool-id").textContent = pool ? pool.poolId : "";
  const state = document.getElementById("pool-state");
  state.textContent = pool ? pool.state : "no pool";
  state.className = "badge " + (pool ? pool.state : "unavailable");
  state.setAttribute("data-testid", "pool-state");
  document.getElementById("pool-facts").textContent = pool
    ? "primary " + (pool.primary || "(none)") + " · term " + pool.term + (pool.healingPaused ? " · healing PAUSED" : "") + " · " + clock(v.observedMs)
    : "";
  document.getElementById("pool-facts").setAttribute("data-primary", pool ? pool.primary : "");
  renderTopology(v); renderHealing(v); renderSparks(v);
}

render(view);
const events = new EventSource("/events");
events.onmessage = (e) => { try { render(JSON.parse(e.data)); } catch (err) { toast("bad update: " + err); } };
// The server ends each response after one event (see server.ts); an error is only a reconnect unless it persists.
let lastUpdate = Date.now();
events.addEventListener("message", () => { lastUpdate = Date.now(); });
setInterval(() => { if (Date.now() - lastUpdate > 5000) document.getElementById("error").textContent = "dashboard server not answering; retrying…"; }, 1000);
</script>
</body>
</html>
`;
