// The first page: the operator's overview of the whole daemon, or a tenant's of its own
// endpoints.
"use strict";

import { api, enc } from "./api.js";
import { minuteChart } from "./chart.js";
import { badge, bytes, cards, h, link, pct, section, table, time, fill } from "./dom.js";

export async function operatorOverview(main) {
  const [status, stats, tenants] = await Promise.all([
    api("GET", "/v1/status"),
    api("GET", "/v1/stats?window=1h"),
    api("GET", "/v1/tenants?limit=100"),
  ]);
  const c = status.deliveries;
  const disabled = status.endpoints.filter((e) => !e.enabled);
  const rates = new Map(stats.tenants.map((t) => [t.tenant, t]));
  fill(main, 
    h("h1", { text: "Overview" }),
    section("Deliveries",
      cards([
        ["Pending", link("#/deliveries?status=pending", String(c.pending))],
        ["Succeeded", link("#/deliveries?status=succeeded", String(c.succeeded)), "ok"],
        ["Failed", link("#/deliveries?status=failed", String(c.failed)), c.failed ? "bad" : ""],
        ["Queue depth (due now)", String(status.due ?? 0)],
        ["Retries scheduled", String(status.retrying ?? 0)],
        ["In flight", String(status.in_flight)],
        ["Success rate (1 h)", pct(stats.success_rate)],
        ["Latency p50 / p99 (1 h)", latency(stats.latency_ms)],
      ])),
    section("Delivery attempts per minute, last hour",
      minuteChart(stats.by_minute, "Delivery attempts per minute over the last hour")),
    section("Disabled endpoints",
      table({
        caption: disabled.length ? `${disabled.length} disabled` : "",
        columns: [
          { label: "Endpoint", cell: (e) => link("#/endpoints/" + enc(e.id), e.id) },
          { label: "Why", cell: (e) => e.disabled_reason || "disabled" },
          { label: "Consecutive failures", cell: (e) => String(e.consecutive_failures), class: "num" },
        ],
        rows: disabled,
        empty: "Every endpoint is enabled.",
        id: "disabled-endpoints",
      })),
    section("Tenants",
      table({
        columns: [
          { label: "Tenant", cell: (t) => link("#/deliveries?tenant=" + enc(t.tenant), t.tenant) },
          { label: "Endpoints", cell: (t) => String(t.endpoints), class: "num" },
          { label: "Pending", cell: (t) => String(t.deliveries.pending), class: "num" },
          { label: "Failed (kept)", cell: (t) => String(t.deliveries.failed), class: "num" },
          { label: "Attempts (1 h)", cell: (t) => String(rates.get(t.tenant)?.attempts ?? 0), class: "num" },
          { label: "Failure rate (1 h)", cell: (t) => rate(rates.get(t.tenant)?.failure_rate), class: "num" },
        ],
        rows: tenants.items,
        empty: "No tenants: no endpoint or event names one.",
        id: "tenants",
      }),
      tenants.next_cursor ? h("p", { class: "muted", text: "The first 100 tenants are shown." }) : null),
    section("Daemon",
      cards([
        ["Version", status.version],
        ["Up for", duration(status.uptime_s)],
        ["Endpoints", `${status.endpoints.length} (${disabled.length} disabled)`],
        ["Database", bytes(status.db_bytes)],
        ["State", status.draining ? badge("draining") : "serving"],
      ])),
  );
}

export async function tenantOverview(main, tenant) {
  const endpoints = (await api("GET", "/v1/endpoints")).items;
  const stats = await Promise.all(
    endpoints.map((e) => api("GET", `/v1/endpoints/${enc(e.id)}/stats?window=1h`)));
  const byMinute = sumMinutes(stats.map((s) => s.by_minute));
  const ok = stats.reduce((n, s) => n + s.succeeded, 0);
  const bad = stats.reduce((n, s) => n + s.failed, 0);
  const disabled = endpoints.filter((e) => !e.enabled);
  const failed = await api("GET", "/v1/deliveries?status=failed&limit=5");
  fill(main, 
    h("h1", { text: `Webhooks of ${tenant}` }),
    section("Last hour",
      cards([
        ["Endpoints", link("#/endpoints", String(endpoints.length))],
        ["Disabled", String(disabled.length), disabled.length ? "bad" : ""],
        ["Attempts", String(ok + bad)],
        ["Succeeded", String(ok), "ok"],
        ["Failed", String(bad), bad ? "bad" : ""],
        ["Success rate", pct(ok + bad ? ok / (ok + bad) : null)],
      ]),
      minuteChart(byMinute, "Delivery attempts per minute over the last hour")),
    section("Disabled endpoints",
      table({
        columns: [
          { label: "Endpoint", cell: (e) => link("#/endpoints/" + enc(e.id), e.id) },
          { label: "Why", cell: (e) => e.disabled_reason || "disabled" },
        ],
        rows: disabled,
        empty: "Every endpoint is enabled.",
      })),
    section("Latest failed deliveries",
      table({
        columns: [
          { label: "Created", cell: (d) => time(d.created_at) },
          { label: "Delivery", cell: (d) => link("#/deliveries/" + enc(d.id), d.id) },
          { label: "Event type", cell: (d) => d.event_type },
          { label: "Endpoint", cell: (d) => d.endpoint },
          { label: "Last HTTP code", cell: (d) => String(d.last_status_code ?? "—") },
        ],
        rows: failed.items,
        empty: "No failed deliveries.",
      }),
      h("p", {}, link("#/deliveries?status=failed", "All failed deliveries"))),
  );
}

export function latency(l) {
  const f = (v) => (v === null || v === undefined ? "—" : v < 10 ? v.toFixed(2) : v.toFixed(v < 100 ? 1 : 0));
  return !l || l.p50 === null ? "—" : `${f(l.p50)} / ${f(l.p99)} ms`;
}

function rate(r) {
  return r === null || r === undefined ? "—" : pct(r);
}

function duration(seconds) {
  const s = Math.floor(seconds);
  const d = Math.floor(s / 86400);
  const hh = Math.floor((s % 86400) / 3600);
  const mm = Math.floor((s % 3600) / 60);
  return d ? `${d} d ${hh} h` : hh ? `${hh} h ${mm} min` : `${mm} min ${s % 60} s`;
}

function sumMinutes(series) {
  const out = new Map();
  for (const list of series) {
    for (const m of list || []) {
      const prev = out.get(m.minute) || { minute: m.minute, succeeded: 0, failed: 0 };
      prev.succeeded += m.succeeded;
      prev.failed += m.failed;
      out.set(m.minute, prev);
    }
  }
  return [...out.values()].sort((a, b) => (a.minute < b.minute ? -1 : 1));
}
