// Endpoint dialogs: add, edit, rotate the secret, replay, delete.
"use strict";

import { ApiError, api, enc, tenantClaims } from "./api.js";
import { confirmDialog, field, formDialog, h, jsonOf, notice, pretty, secretDialog, select } from "./dom.js";

// The catalog's event types, or null when this hookd has no GET /v1/event-types: 404 (or
// 403 for a tenant token, as for any route hookd does not have).
export async function eventTypes() {
  try {
    return (await api("GET", "/v1/event-types")).items;
  } catch (err) {
    if (missing(err)) return null;
    throw err;
  }
}

export function missing(err) {
  return err instanceof ApiError && (err.status === 404 || (err.status === 403 && tenantClaims() !== null));
}

function patterns(text) {
  return text.split(/[\s,]+/).map((p) => p.trim()).filter(Boolean);
}

function eventsField(types, current) {
  const chosen = new Set(current || ["*"]);
  const other = h("input", {
    name: "patterns", value: [...chosen].filter((p) => !(types || []).some((t) => t.name === p)).join(", "),
    placeholder: "*, invoice.*", autocomplete: "off",
  });
  if (!types || !types.length) {
    return [field("Event types", other, "Comma-separated names or patterns such as invoice.* (* is every event).")];
  }
  const boxes = types.map((t) => {
    const box = h("input", { type: "checkbox", name: "type", value: t.name, checked: chosen.has(t.name) });
    return h("label", { class: "check" }, box, " ", h("code", { text: t.name }),
      t.deprecated ? h("span", { class: "badge", text: "deprecated" }) : null,
      t.description ? h("span", { class: "muted", text: " — " + t.description }) : null);
  });
  return [
    h("fieldset", { class: "types" }, h("legend", { text: "Event types from the catalog" }), boxes),
    field("More patterns", other, "Comma-separated, e.g. * (every event) or invoice.*; used with the boxes ticked above."),
  ];
}

function chosenEvents(form) {
  const ticked = [...form.querySelectorAll("input[name=type]:checked")].map((b) => b.value);
  const all = [...ticked, ...patterns(form.elements.patterns.value)];
  if (!all.length) throw new Error("Choose at least one event type (or * for every event).");
  return [...new Set(all)];
}

function filterField(current) {
  const area = h("textarea", { name: "filter", rows: 4, class: "mono", value: current ? pretty(current) : "",
    placeholder: '{"data.amount": {"$gte": 100}}' });
  return field("Payload filter (JSON, optional)", area, "Only events that match are delivered. Try one on the Filters page.");
}

function extraField() {
  const area = h("textarea", { name: "extra", rows: 2, class: "mono", placeholder: '{"policy": "standard", "rate_limit": "10/s"}' });
  return field("Other settings (JSON object, optional)", area, "Any endpoint setting the API takes: policy, body, signing, headers, rate_limit…");
}

export async function addEndpoint(operator, done) {
  const types = await eventTypes();
  const body = [
    field("URL", h("input", { name: "url", type: "url", required: true, placeholder: "https://example.com/webhooks", autocomplete: "off" }),
      "Where hookd POSTs each event (http or https)."),
    ...eventsField(types, ["*"]),
    filterField(null),
    operator ? field("Id (optional)", h("input", { name: "id", autocomplete: "off" }), "Letters, digits, . _ : -; hookd picks one when empty.") : null,
    operator ? field("Tenant (optional)", h("input", { name: "tenant", autocomplete: "off" }), "A tenant id, * for every tenant's events, empty for none.") : null,
    extraField(),
  ];
  formDialog("Add an endpoint", body, "Add endpoint", async (form) => {
    const e = form.elements;
    const spec = { ...(jsonOf("Other settings", e.extra.value, { optional: true }) || {}) };
    spec.url = e.url.value.trim();
    spec.events = chosenEvents(form);
    const filter = jsonOf("Payload filter", e.filter.value, { optional: true });
    if (filter !== undefined) spec.filter = filter;
    if (operator && e.id.value.trim()) spec.id = e.id.value.trim();
    if (operator && e.tenant.value.trim()) spec.tenant = e.tenant.value.trim();
    const created = await api("POST", "/v1/endpoints", spec);
    return () => { secretDialog(`Endpoint ${created.id} added`, created); done(created); };
  });
}

export async function editEndpoint(ep, done) {
  const types = await eventTypes();
  const body = [
    field("URL", h("input", { name: "url", type: "url", required: true, value: ep.url, autocomplete: "off" })),
    ...eventsField(types, ep.events),
    filterField(ep.filter),
    extraField(),
  ];
  formDialog(`Edit ${ep.id}`, body, "Save", async (form) => {
    const e = form.elements;
    const patch = { ...(jsonOf("Other settings", e.extra.value, { optional: true }) || {}) };
    if (e.url.value.trim() !== ep.url) patch.url = e.url.value.trim();
    const events = chosenEvents(form);
    if (events.join("\n") !== (ep.events || []).join("\n")) patch.events = events;
    const filter = jsonOf("Payload filter", e.filter.value, { optional: true }) ?? null;
    if (JSON.stringify(filter) !== JSON.stringify(ep.filter ?? null)) patch.filter = filter;
    if (!Object.keys(patch).length) return () => notice("Nothing changed.");
    const saved = await api("PATCH", "/v1/endpoints/" + enc(ep.id), patch);
    return () => { notice(`Saved ${saved.id}.`); done(saved); };
  });
}

export function rotateSecret(ep, done) {
  const grace = select("grace", [["0", "at once"], ["1h", "after 1 hour"], ["24h", "after 24 hours"]], "0");
  formDialog(`Rotate the secret of ${ep.id}`, [
    h("p", { text: "hookd makes a new signing secret and shows it once." }),
    field("The old secret stops", grace, "Until then hookd signs with both, so receivers can switch over."),
  ], "Rotate secret", async () => {
    const answer = await api("POST", `/v1/endpoints/${enc(ep.id)}/rotate-secret`,
      grace.value === "0" ? {} : { grace: grace.value });
    return () => { secretDialog(`New secret for ${ep.id}`, answer); done(answer); };
  });
}

export function replay(ep, done) {
  const since = select("since", [["1h", "the last hour"], ["24h", "the last 24 hours"], ["7d", "the last 7 days"], ["", "all kept history"]], "24h");
  const status = select("status", [["failed", "failed deliveries"], ["all", "every finished delivery"]], "failed");
  formDialog(`Replay deliveries to ${ep.id}`, [
    field("Since", since),
    field("Which", status, "Events it missed while disabled are delivered too."),
  ], "Replay", async () => {
    const body = { status: status.value };
    if (since.value) body.since = since.value;
    const answer = await api("POST", `/v1/endpoints/${enc(ep.id)}/replay`, body);
    return () => { notice(`Queued ${answer.queued} deliveries to ${ep.id}.`); done(answer); };
  });
}

export async function deleteEndpoint(ep) {
  const sure = await confirmDialog(`Delete ${ep.id}?`,
    `This removes the endpoint ${ep.id} (${ep.url}) and all of its delivery history. It cannot be undone.`,
    "Delete endpoint");
  if (!sure) return false;
  await api("DELETE", "/v1/endpoints/" + enc(ep.id));
  notice(`Deleted ${ep.id}.`);
  return true;
}
