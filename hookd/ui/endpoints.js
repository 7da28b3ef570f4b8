// Endpoints: the list (state, success rate, latency, last delivery) and one endpoint's page
// (its stats over a window, its settings, every action the API offers).
"use strict";

import { api, enc } from "./api.js";
import { minuteChart } from "./chart.js";
import {
  badge, cards, details, field, h, link, ms, notice, pct, pretty, refresh, section, select, showError, table, time, fill,
} from "./dom.js";
import { addEndpoint, deleteEndpoint, editEndpoint, replay, rotateSecret } from "./endpoint_forms.js";
import { latency } from "./overview.js";

const YAML_OWNED = "Declared in the YAML, which owns its settings and secret.";

function lastDelivery(t) {
  if (!t) return "—";
  const ok = t.last_success_at;
  const bad = t.last_failure_at;
  if (!ok && !bad) return h("span", { class: "muted", text: "none in 24 h" });
  const good = ok && (!bad || ok >= bad);
  return h("span", {}, time(good ? ok : bad), " ", badge(good ? "succeeded" : "failed"));
}

function state(ep) {
  return ep.enabled ? badge("enabled")
    : h("span", {}, badge("disabled"), ep.disabled_reason ? h("span", { class: "muted", text: " " + ep.disabled_reason }) : null);
}

async function act(method, path, body, message, after) {
  try {
    const answer = await api(method, path, body);
    if (message) notice(typeof message === "function" ? message(answer) : message);
    after();
  } catch (err) {
    showError(err);
  }
}

function toggle(ep, after) {
  const base = "/v1/endpoints/" + enc(ep.id);
  return ep.enabled
    ? h("button", { type: "button", key: "toggle:" + ep.id, text: "Disable", attrs: { "aria-label": `Disable ${ep.id}` },
      onclick: () => act("POST", base + "/disable", {}, `Disabled ${ep.id}.`, after) })
    : h("button", { type: "button", key: "toggle:" + ep.id, text: "Enable", attrs: { "aria-label": `Enable ${ep.id}` },
      onclick: () => act("POST", base + "/enable", {}, `Enabled ${ep.id}.`, after) });
}

function testButton(ep, after) {
  return h("button", {
    type: "button", key: "test:" + ep.id, text: "Send test", disabled: !ep.enabled,
    title: ep.enabled ? "Send a hookd.test event to this endpoint alone" : "Enable the endpoint first",
    attrs: { "aria-label": `Send a test event to ${ep.id}` },
    onclick: () => act("POST", `/v1/endpoints/${enc(ep.id)}/test`, {},
      (a) => `Test event queued for ${ep.id}: delivery ${a.delivery_id}.`, after),
  });
}

async function statsFor(endpoints, ctx) {
  if (!ctx.tenant) {
    const all = await api("GET", "/v1/stats?window=24h");
    return new Map(all.endpoints.map((e) => [e.endpoint, e]));
  }
  const out = new Map();
  for (let i = 0; i < endpoints.length; i += 4) {  // a few at a time
    const page = endpoints.slice(i, i + 4);
    const got = await Promise.all(page.map((e) => api("GET", `/v1/endpoints/${enc(e.id)}/stats?window=24h`)));
    got.forEach((s) => out.set(s.endpoint, s));
  }
  return out;
}

export async function endpointList(main, params, ctx) {
  const tenant = ctx.tenant ? null : params.get("tenant") || "";
  const query = tenant ? "?tenant=" + enc(tenant) : "";
  const endpoints = (await api("GET", "/v1/endpoints" + query)).items;
  const stats = await statsFor(endpoints, ctx);
  const columns = [
    { label: "Endpoint", cell: (e) => link("#/endpoints/" + enc(e.id), e.id) },
    { label: "URL", cell: (e) => h("span", { class: "url", text: e.url }) },
    ctx.tenant ? null : { label: "Tenant", cell: (e) => e.tenant ?? "—" },
    { label: "State", cell: state },
    { label: "Success (24 h)", cell: (e) => pct(stats.get(e.id)?.success_rate ?? null), class: "num" },
    { label: "p50 / p99", cell: (e) => latency(stats.get(e.id)?.latency_ms), class: "num" },
    { label: "Last delivery", cell: (e) => lastDelivery(stats.get(e.id)) },
    { label: "Failures in a row", cell: (e) => String(e.consecutive_failures), class: "num" },
    { label: "Actions", cell: (e) => h("div", { class: "row-actions" }, toggle(e, refresh), testButton(e, refresh)) },
  ].filter(Boolean);
  const filter = ctx.tenant ? null : h("form", { class: "filters", onsubmit: (ev) => {
    ev.preventDefault();
    const v = ev.target.elements.tenant.value.trim();
    location.hash = "#/endpoints" + (v ? "?tenant=" + enc(v) : "");
  } }, field("Tenant", h("input", { name: "tenant", value: tenant, autocomplete: "off" })),
  h("button", { type: "submit", text: "Show" }));
  fill(main, 
    h("div", { class: "title-row" }, h("h1", { text: "Endpoints" }),
      h("button", { type: "button", class: "primary", text: "Add endpoint",
        onclick: () => addEndpoint(!ctx.tenant, (created) => { location.hash = "#/endpoints/" + enc(created.id); }).catch(showError) })),
    filter,
    table({ columns, rows: endpoints, empty: "No endpoints yet: add one.", id: "endpoints" }),
  );
}

export async function endpointPage(main, id, params, ctx) {
  const windowText = params.get("window") || "24h";
  const [ep, stats] = await Promise.all([
    api("GET", "/v1/endpoints/" + enc(id)),
    api("GET", `/v1/endpoints/${enc(id)}/stats?window=${enc(windowText)}`),
  ]);
  const owned = ep.source === "api";
  const ownedOnly = (label, key, onclick, cls) => h("button", {
    type: "button", key, text: label, class: cls, disabled: !owned, title: owned ? undefined : YAML_OWNED, onclick,
  });
  const windowSelect = select("window", [["1h", "last hour"], ["24h", "last 24 hours"], ["7d", "last 7 days"], ["30d", "last 30 days"]], windowText);
  windowSelect.addEventListener("change", () => {
    location.hash = `#/endpoints/${enc(id)}?window=${enc(windowSelect.value)}`;
  });
  fill(main, 
    h("p", { class: "crumbs" }, link("#/endpoints", "Endpoints"), " / "),
    h("div", { class: "title-row" }, h("h1", {}, ep.id, " ", state(ep))),
    h("div", { class: "actions", attrs: { role: "group", "aria-label": "Endpoint actions" } },
      toggle(ep, refresh),
      testButton(ep, refresh),
      ownedOnly("Edit", "edit", () => editEndpoint(ep, refresh).catch(showError)),
      ownedOnly("Rotate secret", "rotate", () => rotateSecret(ep, refresh)),
      h("button", { type: "button", key: "replay", text: "Replay…", onclick: () => replay(ep, refresh) }),
      link("#/deliveries?endpoint=" + enc(ep.id), "Deliveries", { class: "button" }),
      ownedOnly("Delete", "delete", async () => {
        try {
          if (await deleteEndpoint(ep)) location.hash = "#/endpoints";
        } catch (err) { showError(err); }
      }, "danger")),
    owned ? null : h("p", { class: "muted", text: YAML_OWNED + " Enable, disable, test and replay work here." }),
    section("Stats",
      h("div", { class: "filters" }, field("Window", windowSelect)),
      cards([
        ["Attempts", String(stats.attempts)],
        ["Succeeded", String(stats.succeeded), "ok"],
        ["Failed", String(stats.failed), stats.failed ? "bad" : ""],
        ["Success rate", pct(stats.success_rate)],
        ["Latency p50", ms(stats.latency_ms.p50)],
        ["Latency p99", ms(stats.latency_ms.p99)],
        ["Last success", time(stats.last_success_at)],
        ["Last failure", time(stats.last_failure_at)],
      ]),
      stats.by_minute ? minuteChart(stats.by_minute, `Attempts to ${ep.id} per minute, ${windowSelect.selectedOptions[0].textContent}`)
        : h("p", { class: "muted", text: "Per-minute figures are kept for windows up to 24 hours." })),
    section("Settings",
      details([
        ["URL", h("span", { class: "url", text: ep.url })],
        ["Event types", (ep.events || []).join(", ")],
        ["Payload filter", ep.filter ? h("pre", { text: pretty(ep.filter) }) : "none"],
        ["Tenant", ep.tenant ?? "—"],
        ["Source", owned ? "API" : "YAML"],
        ["Retry policy", ep.policy],
        ["Body format", ep.body ?? "standard"],
        ["Signing", ep.signing ? ep.signing.scheme : "—"],
        ["Failures in a row", String(ep.consecutive_failures)],
        ["Other settings", h("pre", { text: pretty(rest(ep)) })],
      ])),
  );
}

function rest(ep) {
  const shown = ["id", "url", "events", "filter", "tenant", "source", "policy", "body", "signing",
    "enabled", "disabled_reason", "consecutive_failures"];
  return Object.fromEntries(Object.entries(ep).filter(([k]) => !shown.includes(k)));
}
