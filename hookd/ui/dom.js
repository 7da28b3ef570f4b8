// Building the page: elements, tables, times in the viewer's time zone, messages, dialogs.
"use strict";

import { describe } from "./api.js";

let uid = 0;

// h("button", {class: "x", onclick: fn, key: "k", attrs: {"aria-label": "..."}}, "text", node)
export function h(tag, props = {}, ...children) {
  const el = tag === "svg" || props.svg ? document.createElementNS("http://www.w3.org/2000/svg", tag)
    : document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false || name === "svg") continue;
    if (name === "class") el.setAttribute("class", value);
    else if (name === "text") el.textContent = value;
    else if (name === "key") el.dataset.key = value;
    else if (name === "attrs") for (const [a, v] of Object.entries(value)) el.setAttribute(a, v);
    else if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else if (name in el && !(el instanceof SVGElement)) el[name] = value;
    else el.setAttribute(name, value === true ? "" : value);
  }
  append(el, children);
  return el;
}

export function s(tag, attrs = {}, ...children) {
  return h(tag, { svg: true, attrs }, ...children);
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

// Replace an element's content (null, false and undefined children are left out).
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

export function newId(prefix = "f") {
  uid += 1;
  return `${prefix}-${uid}`;
}

// ---------------------------------------------------------------- formatting

const LOCAL = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });
const CLOCK = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
export const TIME_ZONE = Intl.DateTimeFormat().resolvedOptions().timeZone || "local time";

export function localTime(iso) {
  return iso ? LOCAL.format(new Date(iso)) : "";
}

export function clock(date) {
  return CLOCK.format(date);
}

export function time(iso, empty = "—") {
  if (!iso) return h("span", { class: "muted", text: empty });
  return h("time", { dateTime: iso, title: iso + " (UTC)", text: localTime(iso) });
}

export function pct(rate) {
  return rate === null || rate === undefined ? "—" : (rate * 100).toFixed(rate === 1 ? 0 : 1) + "%";
}

export function ms(value) {
  if (value === null || value === undefined) return "—";
  const digits = value < 10 ? 2 : value < 100 ? 1 : 0;
  return value.toFixed(digits) + " ms";
}

export function bytes(n) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
  return (i ? n.toFixed(1) : String(n)) + " " + units[i];
}

export function pretty(value) {
  return JSON.stringify(value, null, 2);
}

export function badge(status) {
  const known = ["succeeded", "failed", "pending", "enabled", "disabled"].includes(status);
  return h("span", { class: "badge" + (known ? " b-" + status : ""), text: status });
}

export function link(href, text, props = {}) {
  return h("a", { href, ...props }, text);
}

// ---------------------------------------------------------------- layout

// columns: [{label, cell(row) -> node|string, class}]
export function table({ caption, columns, rows, empty = "Nothing to show.", id }) {
  const head = h("tr", {}, columns.map((c) => h("th", { scope: "col", class: c.class, text: c.label })));
  const body = rows.length
    ? rows.map((row) => h("tr", {}, columns.map((c) => h("td", { class: c.class }, c.cell(row)))))
    : [h("tr", {}, h("td", { colSpan: columns.length, class: "muted", text: empty }))];
  const cap = caption ? h("caption", { text: caption }) : null;
  return h("div", { class: "table-wrap", id },
    h("table", {}, cap, h("thead", {}, head), h("tbody", {}, body)));
}

export function cards(items) {
  return h("dl", { class: "cards" },
    items.map(([label, value, cls]) => h("div", { class: "card " + (cls || "") },
      h("dt", { text: label }), h("dd", {}, value))));
}

export function section(title, ...children) {
  const id = newId("h");
  return h("section", { attrs: { "aria-labelledby": id } }, h("h2", { id, text: title }), children);
}

export function details(pairs) {
  return h("dl", { class: "pairs" }, pairs.map(([k, v]) => [h("dt", { text: k }), h("dd", {}, v)]));
}

// A labelled control: <label for> pointing at the input, a hint tied by aria-describedby.
export function field(label, input, hint) {
  input.id = input.id || newId();
  const parts = [h("label", { htmlFor: input.id, text: label }), input];
  if (hint) {
    const hintId = newId("hint");
    input.setAttribute("aria-describedby", hintId);
    parts.push(h("small", { id: hintId, class: "muted", text: hint }));
  }
  return h("div", { class: "field" }, parts);
}

export function select(name, options, value) {
  return h("select", { name },
    options.map(([v, label]) => h("option", { value: v, selected: v === value, text: label })));
}

// ---------------------------------------------------------------- messages

export function showError(err) {
  const region = document.getElementById("messages");
  const text = typeof err === "string" ? err : describe(err);
  region.replaceChildren(h("div", { class: "alert" },
    h("p", { text }),
    h("button", { type: "button", class: "quiet", text: "Dismiss", onclick: () => region.replaceChildren() })));
}

// Ask the page to fetch its data again (after an action), keeping focus where it was.
export function refresh() {
  window.dispatchEvent(new Event("hookd:refresh"));
}

export function clearError() {
  document.getElementById("messages").replaceChildren();
}

export function notice(text) {
  const region = document.getElementById("notice");
  region.textContent = text;
}

// ---------------------------------------------------------------- dialogs

const dialog = () => document.getElementById("dialog");

export function dialogOpen() {
  return dialog().open;
}

// Show a modal dialog; ``build(close)`` gives its body. Esc or Close closes it.
export function openDialog(title, build) {
  const d = dialog();
  const titleId = newId("dlg");
  const close = () => d.open && d.close();
  d.setAttribute("aria-labelledby", titleId);
  d.replaceChildren(h("h2", { id: titleId, text: title }), build(close));
  d.showModal();
  const first = d.querySelector("input, select, textarea, button.primary, button");
  if (first) first.focus();
  return close;
}

export function confirmDialog(title, text, confirmLabel) {
  return new Promise((resolve) => {
    let answered = false;
    const done = (value, close) => { answered = true; close(); resolve(value); };
    openDialog(title, (close) => h("div", {},
      h("p", { text }),
      h("div", { class: "actions" },
        h("button", { type: "button", class: "danger", text: confirmLabel, onclick: () => done(true, close) }),
        h("button", { type: "button", text: "Cancel", onclick: () => done(false, close) }))));
    dialog().addEventListener("close", () => { if (!answered) resolve(false); }, { once: true });
  });
}

// A form in a dialog: ``submit(form)`` may throw (an API error is shown inside the dialog and
// the dialog stays open); it returns a follow-up (or nothing) when it succeeds.
export function formDialog(title, body, submitLabel, submit) {
  openDialog(title, (close) => {
    const error = h("p", { class: "form-error", attrs: { role: "alert" } });
    const button = h("button", { type: "submit", class: "primary", text: submitLabel });
    const form = h("form", { class: "form", novalidate: true }, body, error,
      h("div", { class: "actions" }, button,
        h("button", { type: "button", text: "Cancel", onclick: close })));
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      error.textContent = "";
      button.disabled = true;
      try {
        const after = await submit(form);
        close();
        if (after) after();
      } catch (err) {
        error.textContent = describe(err);
      } finally {
        button.disabled = false;
      }
    });
    return form;
  });
}

// A secret shown once (create, rotate): selectable, with a reminder that it will not be shown again.
export function secretDialog(title, answer) {
  openDialog(title, (close) => h("div", {},
    h("p", { text: "Copy it now: hookd does not show it again." }),
    answer.secret ? field("Signing secret", h("input", { readOnly: true, value: answer.secret, class: "mono", attrs: { "data-secret": "" } })) : null,
    answer.public_key ? field("Public key (receivers verify with it)", h("textarea", { readOnly: true, rows: 4, class: "mono", value: answer.public_key })) : null,
    !answer.secret && !answer.public_key ? h("p", { class: "muted", text: "This signing scheme keeps its key on hookd's side; nothing to copy." }) : null,
    h("div", { class: "actions" }, h("button", { type: "button", class: "primary", text: "Done", onclick: close }))));
}

// Parse a JSON text field; an error names the field.
export function jsonOf(label, text, { optional = false } = {}) {
  const trimmed = text.trim();
  if (!trimmed && optional) return undefined;
  try {
    return JSON.parse(trimmed);
  } catch (e) {
    throw new Error(`${label} is not valid JSON: ${e.message}`);
  }
}
