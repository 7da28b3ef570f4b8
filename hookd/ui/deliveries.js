// Deliveries: the history (filtered, searched, paged, newest first) and one delivery with its
// payload, the headers sent and every attempt, with a retry button.
"use strict";

import { api, enc } from "./api.js";
import {
  badge, details, field, h, link, ms, notice, pretty, refresh, section, select, showError, table, time, fill,
} from "./dom.js";

const FILTERS = ["status", "type", "endpoint", "tenant", "code", "event"];
const PAGE = 25;

// The cursors of the pages before this one (for "Newer"), per filter set.
let trail = { key: "", cursors: [] };

function filterForm(params, ctx, endpoints) {
  const input = (name, label, hint, extra = {}) => field(label,
    h("input", { name, value: params.get(name) || "", autocomplete: "off", ...extra }), hint);
  const endpointChoice = select("endpoint", [["", "any endpoint"], ...endpoints.map((e) => [e.id, e.id])], params.get("endpoint") || "");
  const form = h("form", { class: "filters", attrs: { role: "search", "aria-label": "Filter deliveries" } },
    field("Status", select("status", [["", "any status"], ["pending", "pending"], ["succeeded", "succeeded"], ["failed", "failed"]], params.get("status") || "")),
    input("type", "Event type", "A name, or a pattern like invoice.*"),
    field("Endpoint", endpointChoice),
    ctx.tenant ? null : input("tenant", "Tenant", "The event's tenant"),
    input("code", "HTTP code", "404, or a class: 5xx", { inputMode: "numeric", size: 5 }),
    input("event", "Event or webhook id", "The id receivers see (webhook-id); a delivery id (dlv_…) opens it"),
    h("div", { class: "filter-buttons" },
      h("button", { type: "submit", class: "primary", text: "Apply" }),
      h("button", { type: "button", text: "Clear", onclick: () => { location.hash = "#/deliveries"; } })));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const q = new URLSearchParams();
    for (const name of FILTERS) {
      const el = form.elements[name];
      if (el && el.value.trim()) q.set(name, el.value.trim());
    }
    const search = q.get("event");
    if (search && /^dlv_/.test(search)) {
      location.hash = "#/deliveries/" + enc(search);
      return;
    }
    location.hash = "#/deliveries" + (q.toString() ? "?" + q : "");
  });
  return form;
}

function query(params) {
  const q = new URLSearchParams();
  for (const name of FILTERS) if (params.get(name)) q.set(name, params.get(name));
  return q;
}

function retryButton(d, after) {
  return h("button", {
    type: "button", key: "retry:" + d.id, text: "Retry", attrs: { "aria-label": `Retry delivery ${d.id}` },
    onclick: async () => {
      try {
        await api("POST", `/v1/deliveries/${enc(d.id)}/retry`, {});
        notice(`Delivery ${d.id} queued again.`);
        after();
      } catch (err) { showError(err); }
    },
  });
}

export async function deliveryList(main, params, ctx) {
  const q = query(params);
  const key = q.toString();
  if (trail.key !== key) trail = { key, cursors: [] };
  const cursor = params.get("cursor");
  const page = new URLSearchParams(q);
  page.set("limit", String(PAGE));
  if (cursor) page.set("cursor", cursor);
  const [list, endpoints] = await Promise.all([
    api("GET", "/v1/deliveries?" + page),
    api("GET", "/v1/endpoints").then((r) => r.items),
  ]);
  const columns = [
    { label: "Status", cell: (d) => badge(d.status) },
    { label: "Delivery", cell: (d) => link("#/deliveries/" + enc(d.id), d.id) },
    { label: "Created", cell: (d) => time(d.created_at) },
    { label: "Event type", cell: (d) => h("code", { text: d.event_type }) },
    { label: "Endpoint", cell: (d) => link("#/endpoints/" + enc(d.endpoint), d.endpoint) },
    ctx.tenant ? null : { label: "Tenant", cell: (d) => d.tenant ?? "—" },
    { label: "Attempts", cell: (d) => String(d.attempt_count), class: "num" },
    { label: "Last HTTP code", cell: (d) => String(d.last_status_code ?? "—"), class: "num" },
    { label: "Next attempt", cell: (d) => time(d.next_attempt_at, "") },
    { label: "Actions", cell: (d) => (d.status === "failed" ? retryButton(d, refresh) : "") },
  ].filter(Boolean);
  const go = (c) => {
    const next = new URLSearchParams(q);
    if (c) next.set("cursor", c);
    location.hash = "#/deliveries" + (next.toString() ? "?" + next : "");
  };
  // the trail holds the cursor of each page before this one ("" for the first page)
  const newer = cursor && trail.cursors.length
    ? h("button", { type: "button", text: "← Newer", onclick: () => go(trail.cursors.pop() || null) })
    : null;
  const older = list.next_cursor
    ? h("button", { type: "button", text: "Older →", onclick: () => { trail.cursors.push(cursor || ""); go(list.next_cursor); } })
    : null;
  fill(main, 
    h("h1", { text: "Deliveries" }),
    filterForm(params, ctx, endpoints),
    table({
      caption: `${list.items.length} deliveries, newest first${cursor ? " (an older page)" : ""}`,
      columns, rows: list.items, empty: "No delivery matches.", id: "deliveries",
    }),
    h("nav", { class: "pager", attrs: { "aria-label": "Pages" } }, newer, older),
  );
}

export async function deliveryPage(main, id, ctx) {
  const d = await api("GET", "/v1/deliveries/" + enc(id));
  const headers = Object.entries(d.request_headers || {});
  fill(main, 
    h("p", { class: "crumbs" }, link("#/deliveries", "Deliveries"), " / "),
    h("div", { class: "title-row" }, h("h1", {}, "Delivery ", h("code", { text: d.id }), " ", badge(d.status))),
    h("div", { class: "actions" },
      d.status === "failed" ? retryButton(d, refresh) : null,
      link("#/deliveries?event=" + enc(d.event_id), "Every delivery of this event", { class: "button" })),
    details([
      ["Status", h("span", { id: "delivery-status" }, badge(d.status))],
      ["Event type", h("code", { text: d.event_type })],
      ["Event (webhook) id", h("code", { text: d.event_id })],
      ["Endpoint", link("#/endpoints/" + enc(d.endpoint), d.endpoint)],
      ctx.tenant ? null : ["Tenant", d.tenant ?? "—"],
      ["Created", time(d.created_at)],
      ["Updated", time(d.updated_at)],
      ["Attempts", String(d.attempt_count)],
      ["Next attempt", time(d.next_attempt_at, d.status === "pending" ? "now" : "none")],
      ["Last HTTP code", String(d.last_status_code ?? "—")],
      ["Last error", d.last_error ?? "—"],
      ["Origin", d.origin ?? "ingest"],
    ].filter(Boolean)),
    section("Attempts",
      table({
        columns: [
          { label: "#", cell: (a) => String(a.n), class: "num" },
          { label: "Started", cell: (a) => time(a.started_at) },
          { label: "HTTP code", cell: (a) => (a.status_code === null ? "—" : String(a.status_code)), class: "num" },
          { label: "Latency", cell: (a) => ms(a.latency_ms), class: "num" },
          { label: "Error", cell: (a) => a.error ?? "—" },
          { label: "Response (first 4 KiB)", cell: (a) => (a.response_body ? h("details", {}, h("summary", { text: `${a.response_body.length} characters` }), h("pre", { text: a.response_body })) : "—") },
        ],
        rows: d.attempts,
        empty: "Not attempted yet.",
        id: "attempts",
      })),
    section("Payload", h("pre", { class: "payload", tabIndex: 0, text: d.payload === null ? "(not available)" : pretty(d.payload) })),
    section("Headers sent",
      table({
        columns: [
          { label: "Header", cell: ([k]) => h("code", { text: k }) },
          { label: "Value", cell: ([, v]) => h("code", { class: "wrap", text: v }) },
        ],
        rows: headers,
        empty: "None recorded yet.",
      }),
      h("p", { class: "muted", text: "Signatures and secret header values are redacted." })),
  );
  return d.status === "pending" ? 1000 : undefined;  // a pending delivery is watched closely
}

