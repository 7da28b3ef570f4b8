// Attempts per minute as an inline SVG: stacked bars (succeeded below, failed above), with a
// text summary for screen readers and a <title> on every bar.
"use strict";

import { clock, h, s } from "./dom.js";

const W = 640;
const H = 180;
const PAD = { left: 40, right: 8, top: 10, bottom: 24 };
const MAX_BARS = 120;

// by_minute: [{minute, succeeded, failed}] oldest first; wider series are summed into groups.
export function minuteChart(byMinute, title) {
  const groups = group(byMinute || []);
  const total = groups.reduce((n, g) => n + g.succeeded + g.failed, 0);
  const failed = groups.reduce((n, g) => n + g.failed, 0);
  const peak = Math.max(1, ...groups.map((g) => g.succeeded + g.failed));
  const per = groups.length ? groups[0].minutes : 1;
  const unit = per === 1 ? "minute" : `${per} minutes`;
  const summary = `${total} attempts: ${total - failed} succeeded, ${failed} failed; ` +
    `at most ${peak === 1 && total === 0 ? 0 : peak} in one ${unit}.`;
  const titleId = "chart-title-" + Math.random().toString(36).slice(2);
  const descId = titleId + "-desc";
  const svg = s("svg", {
    viewBox: `0 0 ${W} ${H}`, role: "img", class: "chart",
    "aria-labelledby": `${titleId} ${descId}`,
    "data-total": total, "data-failed": failed,
  }, s("title", { id: titleId }, title), s("desc", { id: descId }, summary));
  const plotW = W - PAD.left - PAD.right;
  const plotH = H - PAD.top - PAD.bottom;
  const scale = plotH / peak;
  svg.append(s("line", { x1: PAD.left, x2: W - PAD.right, y1: PAD.top + plotH, y2: PAD.top + plotH, class: "axis" }));
  svg.append(s("text", { x: PAD.left - 6, y: PAD.top + 8, class: "tick", "text-anchor": "end" }, String(peak)));
  svg.append(s("text", { x: PAD.left - 6, y: PAD.top + plotH, class: "tick", "text-anchor": "end" }, "0"));
  const width = groups.length ? plotW / groups.length : plotW;
  groups.forEach((g, i) => {
    const x = PAD.left + i * width;
    const okH = g.succeeded * scale;
    const badH = g.failed * scale;
    const at = new Date(g.minute);
    const label = `${clock(at)}: ${g.succeeded} succeeded, ${g.failed} failed`;
    const bar = s("g", { class: "bar", "data-minute": g.minute, "data-succeeded": g.succeeded, "data-failed": g.failed },
      s("title", {}, label),
      s("rect", { x: x + 0.5, width: Math.max(1, width - 1), y: PAD.top + plotH - okH, height: okH, class: "ok" }),
      s("rect", { x: x + 0.5, width: Math.max(1, width - 1), y: PAD.top + plotH - okH - badH, height: badH, class: "bad" }));
    svg.append(bar);
  });
  const marks = ticks(groups.length);
  for (const i of marks) {
    const first = i === 0;
    const last = i === groups.length - 1 && groups.length > 1;
    const x = first ? PAD.left : last ? W - PAD.right : PAD.left + (i + 0.5) * width;
    const anchor = first ? "start" : last ? "end" : "middle";
    svg.append(s("text", { x, y: H - 6, class: "tick", "text-anchor": anchor }, clock(new Date(groups[i].minute))));
  }
  const legend = h("p", { class: "legend" },
    h("span", { class: "key ok" }), " succeeded ", h("span", { class: "key bad" }), " failed · ",
    h("span", { class: "muted", text: summary }));
  return h("figure", { class: "chart-box" }, svg, legend);
}

const STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 240];

function group(series) {
  const per = STEPS.find((n) => series.length / n <= MAX_BARS) || STEPS[STEPS.length - 1];
  const out = [];
  for (let i = 0; i < series.length; i += per) {
    const chunk = series.slice(i, i + per);
    out.push({
      minute: chunk[0].minute,
      minutes: per,
      succeeded: chunk.reduce((n, m) => n + m.succeeded, 0),
      failed: chunk.reduce((n, m) => n + m.failed, 0),
    });
  }
  return out;
}

function ticks(n) {
  if (n === 0) return [];
  const want = Math.min(n, 5);
  const out = new Set();
  for (let k = 0; k < want; k += 1) out.add(Math.round((k * (n - 1)) / Math.max(1, want - 1)));
  return [...out];
}
