// The event-type catalog (GET /v1/event-types) and the filter editor (POST /v1/filters/test).
// A hookd without these routes answers 404: the page says they are not available.
"use strict";

import { ApiError, api, describe, enc } from "./api.js";
import { eventTypes, missing } from "./endpoint_forms.js";
import { field, h, jsonOf, notice, pretty, section, select, showError, table, fill } from "./dom.js";

function unavailable(what, route) {
  return h("div", { class: "unavailable", attrs: { role: "status" } },
    h("p", {}, h("strong", { text: `${what} is not available on this hookd.` })),
    h("p", { class: "muted", text: `hookd has no ${route}: this version does not offer it yet.` }));
}

export async function catalogPage(main) {
  const types = await eventTypes();
  if (types === null) {
    fill(main, h("h1", { text: "Event types" }), unavailable("The event-type catalog", "GET /v1/event-types"));
    return;
  }
  fill(main, 
    h("h1", { text: "Event types" }),
    h("p", { class: "muted", text: "The types of events this hookd knows, with the JSON Schema their data must match." }),
    table({
      columns: [
        { label: "Name", cell: (t) => h("code", { text: t.name }) },
        { label: "Description", cell: (t) => t.description || "—" },
        { label: "State", cell: (t) => (t.deprecated ? h("span", { class: "badge b-failed", text: "deprecated" }) : "current") },
        { label: "Schema", cell: (t) => (t.schema ? h("details", {}, h("summary", { text: "Show schema" }), h("pre", { text: pretty(t.schema) })) : h("span", { class: "muted", text: "any data" })) },
      ],
      rows: types,
      empty: "The catalog lists no event types.",
      id: "event-types",
    }),
  );
}

export async function filterPage(main, params, ctx) {
  const [types, endpoints] = await Promise.all([
    eventTypes().catch(() => null),
    api("GET", "/v1/endpoints").then((r) => r.items.filter((e) => e.source === "api")),
  ]);
  const listId = "event-type-names";
  const datalist = h("datalist", { id: listId }, (types || []).map((t) => h("option", { value: t.name })));
  const filter = h("textarea", { name: "filter", rows: 8, class: "mono", value: params.get("filter") || '{\n  "data.amount": {"$gte": 100}\n}' });
  const type = h("input", { name: "type", value: "invoice.paid", autocomplete: "off", attrs: { list: listId } });
  const tenant = ctx.tenant ? null : h("input", { name: "tenant", autocomplete: "off" });
  const data = h("textarea", { name: "data", rows: 8, class: "mono", value: '{\n  "amount": 250\n}' });
  const result = h("div", { id: "filter-result", class: "result", attrs: { role: "status", "aria-live": "polite" } });
  const target = select("endpoint", [["", "choose an endpoint"], ...endpoints.map((e) => [e.id, e.id])], "");
  const form = h("form", { class: "form two" },
    h("div", {}, field("Filter", filter, 'A filter document: {"data.path": value or {"$op": operand}}, with $and, $or, $not.')),
    h("div", {},
      field("Sample event type", type, types ? "From the catalog, or any name." : undefined),
      tenant ? field("Sample tenant (optional)", tenant) : null,
      field("Sample data (JSON)", data)),
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary", text: "Test filter" })),
    result);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    result.replaceChildren();
    try {
      const event = { type: type.value.trim(), data: jsonOf("Sample data", data.value) };
      if (tenant && tenant.value.trim()) event.tenant = tenant.value.trim();
      const answer = await api("POST", "/v1/filters/test", { filter: jsonOf("The filter", filter.value), event });
      result.replaceChildren(answer.matches
        ? h("p", { class: "match", text: "✓ The sample event matches: it would be delivered." })
        : h("p", { class: "no-match", text: "✗ The sample event does not match: it would not be delivered." }));
    } catch (err) {
      if (missing(err) && !err.field) {
        result.replaceChildren(unavailable("Trying filters", "POST /v1/filters/test"));
      } else {
        result.replaceChildren(h("p", { class: "form-error", text: errorText(err) }));
      }
    }
  });
  const apply = h("form", { class: "filters" }, field("Use this filter on", target),
    h("button", { type: "submit", text: "Save filter to endpoint" }));
  apply.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    if (!target.value) return;
    try {
      const text = filter.value.trim();
      await api("PATCH", "/v1/endpoints/" + enc(target.value), { filter: text ? jsonOf("The filter", text) : null });
      notice(`Saved the filter of ${target.value}.`);
    } catch (err) { showError(err); }
  });
  fill(main, 
    h("h1", { text: "Filters" }),
    h("p", { class: "muted", text: "Try a payload filter against a sample event before you put it on an endpoint." }),
    datalist, form,
    endpoints.length ? section("Put it on an endpoint", apply) : null);
}

function errorText(err) {
  if (err instanceof ApiError && err.status === 400) {
    return `The filter is not valid: ${err.message}${err.field ? ` (at ${err.field})` : ""}`;
  }
  return describe(err);
}
