/**
 * report.html: one self-contained page (inline CSS, SVG and a few lines of JS; no
 * network) showing the verdict per checker, a timeline of faults against operations
 * coloured by outcome, the primary and each member's role/health over time, latency
 * over time, healing durations, unavailable windows and any linearizability witness.
 * Pure: data in, HTML text out.
 */

import type { UnavailableWindow } from "../checkers/availability.js";
import type { FaultHealing } from "../checkers/healing.js";
import type { KeyVerdict } from "../checkers/linearizability.js";
import { type ClientEvent, type HistoryEvent, type Operation, pairOperations } from "../history.js";
import type { RunResults } from "../results.js";
import { type Fault, faultsOf, type StatusSample } from "../timeline.js";

export interface ReportInput {
  results: RunResults;
  events: readonly HistoryEvent[];
  samples: readonly StatusSample[];
}

const esc = (s: unknown): string =>
  String(s).replace(
    /[&<>"']/g,
    (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c] ?? c,
  );

const WIDTH = 1320;
const LEFT = 150;
const RIGHT = 20;
const LANE = 16;

const COLORS = {
  ok: "#2e9d4f",
  answered: "#7cc48f",
  fail: "#f0a030",
  unknown: "#d23c3c",
  fault: "rgba(210,60,60,0.10)",
  faultBar: "#d23c3c",
  primary: "#2f6fdb",
  secondary: "#9bb8e8",
  learner: "#9b6fd6",
  candidate: "#e0c050",
  down: "#444",
  pending: "#e8c85a",
  healthy: "#2e9d4f",
  degraded: "#f0a030",
  unavailable: "#d23c3c",
  unreachable: "#888",
};

type Outcome = "ok" | "answered" | "fail" | "unknown";

function outcomeOf(op: Operation): Outcome {
  const c = op.complete;
  if (!c) return "unknown";
  if (c.type === "ok") return "ok";
  if (c.type === "fail" && c.error?.code === "KeyNotFound") return "answered";
  return c.type === "unknown" ? "unknown" : "fail";
}

function describeOp(op: Operation): string {
  const c = op.complete;
  const what = `${op.invoke.f}${op.invoke.key ? ` ${op.invoke.key}` : ""}`;
  if (!c) return `${what}: no completion`;
  const v = c.value;
  const result =
    c.type === "ok"
      ? v?.version !== undefined
        ? `ok v${v.version}${v.servedBy ? ` by ${v.servedBy}` : ""}`
        : v?.valid !== undefined
          ? `ok valid=${v.valid}`
          : v?.keys
            ? `ok ${Object.keys(v.keys).length} keys`
            : "ok"
      : `${c.type} ${c.error?.code ?? ""}`;
  return `#${op.invoke.index} p${op.invoke.process} ${what} → ${result} (${c.latencyMs ?? "?"} ms at ${(op.invoke.timeMs / 1000).toFixed(2)} s)`;
}

class Scale {
  constructor(
    readonly endMs: number,
    readonly width = WIDTH,
  ) {}
  x(ms: number): number {
    const span = Math.max(1, this.endMs);
    return LEFT + (Math.max(0, Math.min(ms, span)) / span) * (this.width - LEFT - RIGHT);
  }
}

function axis(scale: Scale, y: number, height: number): string {
  const out: string[] = [];
  const stepS = niceStep(scale.endMs / 1000);
  for (let s = 0; s * 1000 <= scale.endMs; s += stepS) {
    const x = scale.x(s * 1000).toFixed(1);
    out.push(`<line x1="${x}" x2="${x}" y1="${y}" y2="${y + height}" class="grid"/>`);
    out.push(`<text x="${x}" y="${y + height + 12}" class="tick" text-anchor="middle">${s}s</text>`);
  }
  return out.join("");
}

function niceStep(spanS: number): number {
  for (const s of [1, 2, 5, 10, 15, 30, 60, 120, 300]) if (spanS / s <= 14) return s;
  return 600;
}

function faultBands(
  scale: Scale,
  faults: readonly Fault[],
  y: number,
  height: number,
  endMs: number,
): string {
  return faults
    .filter((f) => f.error === undefined)
    .map((f) => {
      const x1 = scale.x(f.startMs);
      const x2 = scale.x(f.healMs ?? endMs);
      return `<rect x="${x1.toFixed(1)}" y="${y}" width="${Math.max(1, x2 - x1).toFixed(1)}" height="${height}" fill="${COLORS.fault}"/>`;
    })
    .join("");
}

function timelineSvg(input: ReportInput, ops: Operation[], faults: readonly Fault[], endMs: number): string {
  const scale = new Scale(endMs);
  const processes = [...new Set(ops.map((o) => o.invoke.process))].sort((a, b) => a - b);
  const memberIds = [...new Set(input.samples.flatMap((s) => s.members.map((m) => m.id)))].sort(
    (a, b) => Number(a.slice(1)) - Number(b.slice(1)) || a.localeCompare(b),
  );
  const rows: string[] = [];
  let y = 10;
  // Faults lane.
  rows.push(`<text x="8" y="${y + 12}" class="lane">faults</text>`);
  faults.forEach((f, i) => {
    const x1 = scale.x(f.startMs);
    const x2 = scale.x(f.healMs ?? endMs);
    const fy = y + (i % 2) * 9;
    const label = `#${f.id} ${f.detail}${f.error ? ` — not injected: ${f.error}` : ""}${f.healMs !== undefined ? `; healed at ${(f.healMs / 1000).toFixed(1)} s` : ""}`;
    rows.push(
      `<rect x="${x1.toFixed(1)}" y="${fy}" width="${Math.max(3, x2 - x1).toFixed(1)}" height="8" fill="${f.error ? "#aaa" : COLORS.faultBar}" rx="2"><title>${esc(label)}</title></rect>`,
    );
  });
  y += 26;
  // Pool state lane.
  rows.push(`<text x="8" y="${y + 11}" class="lane">pool state</text>`);
  rows.push(
    segments(
      scale,
      input.samples,
      endMs,
      y,
      (s) => s.state,
      (v) => COLORS[v as keyof typeof COLORS] ?? "#888",
    ),
  );
  y += LANE + 4;
  // Primary lane: who was primary, as labelled segments.
  rows.push(`<text x="8" y="${y + 11}" class="lane">primary</text>`);
  rows.push(
    segments(
      scale,
      input.samples,
      endMs,
      y,
      (s) => s.primary || "none",
      (v) => (v === "none" ? COLORS.unavailable : COLORS.primary),
      true,
    ),
  );
  y += LANE + 4;
  for (const id of memberIds) {
    rows.push(`<text x="8" y="${y + 11}" class="lane">${esc(id)}</text>`);
    rows.push(
      segments(
        scale,
        input.samples,
        endMs,
        y,
        (s) => {
          const m = s.members.find((x) => x.id === id);
          if (!m) return "absent";
          if (m.health !== "up") return "down";
          if (s.primary === id) return "primary";
          if (m.ownership !== "synced") return "pending";
          return m.role || "secondary";
        },
        (v) => (v === "absent" ? "transparent" : (COLORS[v as keyof typeof COLORS] ?? COLORS.secondary)),
      ),
    );
    y += LANE + 2;
  }
  y += 6;
  const opsTop = y;
  for (const p of processes) {
    rows.push(`<text x="8" y="${y + 11}" class="lane">client ${p}</text>`);
    for (const o of ops.filter((x) => x.invoke.process === p)) {
      const x1 = scale.x(o.invoke.timeMs);
      const x2 = scale.x(o.complete?.timeMs ?? endMs);
      const outcome = outcomeOf(o);
      rows.push(
        `<rect class="op ${outcome}" x="${x1.toFixed(1)}" y="${y + 2}" width="${Math.max(2, x2 - x1).toFixed(1)}" height="${LANE - 4}" fill="${COLORS[outcome]}"><title>${esc(describeOp(o))}</title></rect>`,
      );
    }
    y += LANE;
  }
  const height = y + 20;
  const bands = faultBands(scale, faults, 0, y, endMs);
  return `<svg id="timeline" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" xmlns="http://www.w3.org/2000/svg">${bands}${axis(scale, 0, y)}${rows.join("")}<line x1="${LEFT}" x2="${WIDTH - RIGHT}" y1="${opsTop - 3}" y2="${opsTop - 3}" class="sep"/></svg>`;
}

/** Coloured segments of a lane from consecutive status samples with the same value. */
function segments(
  scale: Scale,
  samples: readonly StatusSample[],
  endMs: number,
  y: number,
  laneValue: (s: StatusSample) => string,
  colorOf: (v: string) => string,
  label = false,
): string {
  const out: string[] = [];
  let i = 0;
  while (i < samples.length) {
    const s = samples[i] as StatusSample;
    const v = laneValue(s);
    let j = i + 1;
    while (j < samples.length && laneValue(samples[j] as StatusSample) === v) j++;
    const t1 = s.timeMs;
    const t2 = j < samples.length ? (samples[j] as StatusSample).timeMs : endMs;
    const x1 = scale.x(t1);
    const w = Math.max(1, scale.x(t2) - x1);
    const color = colorOf(v);
    out.push(
      `<rect x="${x1.toFixed(1)}" y="${y}" width="${w.toFixed(1)}" height="${LANE - 2}" fill="${color}"><title>${esc(`${v} from ${(t1 / 1000).toFixed(1)} s to ${(t2 / 1000).toFixed(1)} s`)}</title></rect>`,
    );
    if (label && w > 24)
      out.push(`<text x="${(x1 + 4).toFixed(1)}" y="${y + 11}" class="seg">${esc(v)}</text>`);
    i = j;
  }
  return out.join("");
}

function latencySvg(ops: Operation[], faults: readonly Fault[], endMs: number): string {
  const scale = new Scale(endMs);
  const height = 240;
  const top = 10;
  const plotH = height - 40;
  const lat = ops
    .filter((o) => o.complete?.latencyMs !== undefined)
    .map((o) => o.complete?.latencyMs as number);
  const maxMs = Math.max(10, ...lat);
  const logMax = Math.log10(maxMs * 1.2);
  const logMin = 0; // 1 ms
  const yOf = (ms: number) =>
    top + plotH - ((Math.log10(Math.max(1, ms)) - logMin) / (logMax - logMin)) * plotH;
  const dots = ops
    .filter((o) => o.complete?.latencyMs !== undefined)
    .map((o) => {
      const c = o.complete as ClientEvent;
      const outcome = outcomeOf(o);
      return `<circle class="op ${outcome}" cx="${scale.x(c.timeMs).toFixed(1)}" cy="${yOf(c.latencyMs as number).toFixed(1)}" r="2.2" fill="${COLORS[outcome]}"><title>${esc(describeOp(o))}</title></circle>`;
    })
    .join("");
  const ticks: string[] = [];
  for (const ms of [1, 10, 100, 1000, 10_000, 100_000]) {
    if (ms > maxMs * 1.2) break;
    const y = yOf(ms).toFixed(1);
    ticks.push(`<line x1="${LEFT}" x2="${WIDTH - RIGHT}" y1="${y}" y2="${y}" class="grid"/>`);
    ticks.push(
      `<text x="${LEFT - 6}" y="${y}" class="tick" text-anchor="end" dominant-baseline="middle">${ms >= 1000 ? `${ms / 1000} s` : `${ms} ms`}</text>`,
    );
  }
  return `<svg width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" xmlns="http://www.w3.org/2000/svg">${faultBands(scale, faults, top, plotH, endMs)}${axis(scale, top, plotH)}${ticks.join("")}<text x="8" y="${top + 12}" class="lane">latency (log)</text>${dots}</svg>`;
}

function healingSvg(healing: readonly FaultHealing[]): string {
  if (healing.length === 0) return "<p>No faults were injected.</p>";
  const maxMs = Math.max(
    1000,
    ...healing.map((h) => (h.healingMs ?? 0) + 500),
    ...healing.map((h) => (h.healMs ?? h.startMs) - h.startMs + 500),
  );
  const scale = new Scale(maxMs, 900);
  const rowH = 22;
  const height = healing.length * rowH + 30;
  const rows = healing.map((h, i) => {
    const y = 8 + i * rowH;
    const label = `#${h.faultId} ${h.kind} ${h.targets.join(",")}`;
    const parts = [`<text x="8" y="${y + 12}" class="lane">${esc(label)}</text>`];
    if (h.healingMs !== undefined) {
      parts.push(
        `<rect x="${LEFT}" y="${y}" width="${(scale.x(h.healingMs) - LEFT).toFixed(1)}" height="14" fill="${COLORS.secondary}"><title>${esc(`${(h.healingMs / 1000).toFixed(2)} s from the fault to three healthy, synced members`)}</title></rect>`,
      );
      parts.push(
        `<text x="${(scale.x(h.healingMs) + 4).toFixed(1)}" y="${y + 11}" class="seg dark">${(h.healingMs / 1000).toFixed(1)} s</text>`,
      );
    } else {
      parts.push(`<text x="${LEFT + 4}" y="${y + 11}" class="seg dark">${esc(h.outcome)}</text>`);
    }
    if (h.healMs !== undefined) {
      const x = scale.x(h.healMs - h.startMs).toFixed(1);
      parts.push(
        `<line x1="${x}" x2="${x}" y1="${y - 2}" y2="${y + 16}" stroke="${COLORS.faultBar}" stroke-width="2"><title>fault undone by the harness</title></line>`,
      );
    }
    if (h.failoverMs !== undefined) {
      const x = scale.x(h.failoverMs).toFixed(1);
      parts.push(
        `<circle cx="${x}" cy="${y + 7}" r="4" fill="${COLORS.primary}"><title>${esc(`new primary after ${(h.failoverMs / 1000).toFixed(2)} s`)}</title></circle>`,
      );
    }
    return parts.join("");
  });
  return `<svg width="900" height="${height}" viewBox="0 0 900 ${height}" xmlns="http://www.w3.org/2000/svg">${axis(scale, 4, healing.length * rowH)}${rows.join("")}</svg>`;
}

function verdictBadge(v: unknown): string {
  const [cls, text] =
    v === true ? ["valid", "VALID"] : v === false ? ["invalid", "INVALID"] : ["unknown", "UNKNOWN"];
  return `<span class="badge ${cls}">${text}</span>`;
}

export function renderReport(input: ReportInput): string {
  const r = input.results;
  const ops = pairOperations(input.events);
  const faults = faultsOf(input.events);
  const endMs = Math.max(
    r.phases.endMs,
    ...input.samples.map((s) => s.timeMs),
    ...input.events.map((e) => e.timeMs),
    1000,
  );
  const healing = ((r.checkers.healing?.details as { faults?: FaultHealing[] } | undefined)?.faults ??
    []) as FaultHealing[];
  const windows = ((r.checkers.availability?.details as { windows?: UnavailableWindow[] } | undefined)
    ?.windows ?? []) as UnavailableWindow[];
  const keyVerdicts = ((r.checkers.linearizability?.details as { keys?: KeyVerdict[] } | undefined)?.keys ??
    []) as KeyVerdict[];
  const byIndex = new Map(ops.map((o) => [o.invoke.index, o]));
  const checkerRows = Object.values(r.checkers)
    .map((c) => `<tr><td>${esc(c.name)}</td><td>${verdictBadge(c.valid)}</td><td>${esc(c.summary)}</td></tr>`)
    .join("");
  const windowRows = windows
    .map(
      (w) =>
        `<tr><td>${(w.startMs / 1000).toFixed(2)} s</td><td>${(w.durationMs / 1000).toFixed(2)} s</td><td>${w.attempts}</td><td>${
          w.faults.length === 0
            ? '<span class="badge invalid">no fault</span>'
            : esc(w.faults.map((id) => `#${id} ${faults.find((f) => f.id === id)?.detail ?? ""}`).join("; "))
        }</td></tr>`,
    )
    .join("");
  const witnesses = keyVerdicts
    .filter((k) => k.verdict !== true)
    .map(
      (k) =>
        `<h3>${esc(k.key)}: ${verdictBadge(k.verdict)}</h3><p>${esc(k.explanation ?? "")}</p>${
          k.witness && k.witness.length > 0
            ? `<ol class="mono">${k.witness.map((i) => `<li>${esc(byIndex.get(i) ? describeOp(byIndex.get(i) as Operation) : `#${i}`)}</li>`).join("")}</ol>`
            : ""
        }`,
    )
    .join("");
  const notes = [...(r.harnessError ? [`harness error: ${r.harnessError}`] : []), ...r.notes];
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>chaos ${esc(r.scenario.name)} — ${r.valid === true ? "valid" : r.valid === false ? "INVALID" : "unknown"}</title>
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:">
<style>
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif;margin:20px 28px;color:#1d2330;background:#fbfbfd}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:26px 0 8px;border-bottom:1px solid #dde;padding-bottom:4px}h3{font-size:14px;margin:12px 0 4px}
.meta{color:#556;margin-bottom:10px}.mono{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px}
table{border-collapse:collapse;margin:6px 0}td,th{border:1px solid #dde;padding:4px 8px;text-align:left;vertical-align:top}th{background:#eef0f6}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-weight:600;font-size:12px;color:#fff}
.badge.valid{background:${COLORS.ok}}.badge.invalid{background:${COLORS.unknown}}.badge.unknown{background:#888}
svg{background:#fff;border:1px solid #e3e5ee;border-radius:4px;display:block;margin:6px 0}
.grid{stroke:#eceef4;stroke-width:1}.sep{stroke:#c8ccd8;stroke-dasharray:3 3}.tick{font-size:10px;fill:#778}
.lane{font-size:11px;fill:#334}.seg{font-size:10px;fill:#fff}.seg.dark{fill:#334}
.legend span{display:inline-block;margin-right:14px;font-size:12px}.legend i{display:inline-block;width:12px;height:12px;margin-right:4px;vertical-align:-2px;border-radius:2px}
body.only-bad .op.ok,body.only-bad .op.answered{display:none}
.notes li{color:#844}
</style></head><body>
<h1>${esc(r.scenario.name)} ${verdictBadge(r.valid)}</h1>
<div class="meta">${esc(r.scenario.description)}<br>seed ${r.scenario.seed} · workload ${(r.scenario.durationMs / 1000).toFixed(0)} s · run ${(r.elapsedMs / 1000).toFixed(1)} s · started ${esc(r.startedAt)} · <span class="mono">${esc(r.runDir)}</span></div>
${notes.length > 0 ? `<ul class="notes">${notes.map((n) => `<li>${esc(n)}</li>`).join("")}</ul>` : ""}
<h2>Checkers</h2>
<table><tr><th>checker</th><th>verdict</th><th>summary</th></tr>${checkerRows}</table>
<h2>Timeline: faults, pool, members and operations</h2>
<div class="legend">
<span><i style="background:${COLORS.ok}"></i>ok</span><span><i style="background:${COLORS.answered}"></i>KeyNotFound (answered)</span><span><i style="background:${COLORS.fail}"></i>fail</span><span><i style="background:${COLORS.unknown}"></i>unknown</span>
<span><i style="background:${COLORS.fault}; border:1px solid ${COLORS.faultBar}"></i>fault active</span>
<span><i style="background:${COLORS.primary}"></i>primary</span><span><i style="background:${COLORS.secondary}"></i>secondary</span><span><i style="background:${COLORS.pending}"></i>ownership pending</span><span><i style="background:${COLORS.learner}"></i>learner</span><span><i style="background:${COLORS.down}"></i>down</span>
<label><input type="checkbox" id="onlyBad"> only failed / unknown operations</label>
</div>
${timelineSvg(input, ops, faults, endMs)}
<h2>Latency over time</h2>
${latencySvg(ops, faults, endMs)}
<h2>Healing</h2>
<p>Bar: from the fault to three healthy, synced members. Red line: the harness undid the fault. Blue dot: a new primary.</p>
${healingSvg(healing)}
<h2>Unavailable windows</h2>
${windows.length === 0 ? "<p>None: every stretch of failed attempts was shorter than the reporting threshold.</p>" : `<table><tr><th>from</th><th>length</th><th>failed attempts</th><th>attributed to</th></tr>${windowRows}</table>`}
${witnesses ? `<h2>Linearizability</h2>${witnesses}` : ""}
<script>
document.getElementById("onlyBad").addEventListener("change",function(e){document.body.classList.toggle("only-bad",e.target.checked)});
</script>
</body></html>
`;
}
