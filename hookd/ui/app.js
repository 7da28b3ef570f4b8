// hookd's web page: one page, two audiences. With an admin token (or none on a loopback hookd
// with no tokens), the operator's pages; with a tenant token (a portal link, /ui/#token=...),
// the same pages confined to that tenant. Routes live in the fragment: #/deliveries?status=failed.
"use strict";

import { ApiError, api, setToken, takeLinkedToken, tenantClaims, token } from "./api.js";
import { catalogPage, filterPage } from "./catalog.js";
import { deliveryList, deliveryPage } from "./deliveries.js";
import { TIME_ZONE, clearError, dialogOpen, field, h, localTime, showError, fill } from "./dom.js";
import { endpointList, endpointPage } from "./endpoints.js";
import { operatorOverview, tenantOverview } from "./overview.js";

const $ = (id) => document.getElementById(id);
const LIVE_EVERY_MS = 5000;

const PAGES = [
  ["overview", "Overview"],
  ["endpoints", "Endpoints"],
  ["deliveries", "Deliveries"],
  ["event-types", "Event types"],
  ["filters", "Filters"],
];

let current = null;  // {render, key}
let lastRender = 0;
let every = LIVE_EVERY_MS;  // how soon the page on show wants a refresh
let busy = false;
let queued = null;  // a show() asked for while one ran: {quiet}

function ctx() {
  const claims = tenantClaims();
  return { tenant: claims ? claims.sub : null, claims };
}

function parse() {
  const hash = location.hash.startsWith("#/") ? location.hash.slice(2) : "";
  const [path, search] = hash.split("?");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  return { parts, params: new URLSearchParams(search || "") };
}

function route() {
  const { parts, params } = parse();
  const c = ctx();
  const [page = "overview", id] = parts;
  const main = $("main");
  if (page === "login") return { page, render: () => loginPage(main) };
  if (page === "endpoints" && id) return { page, render: () => endpointPage(main, id, params, c) };
  if (page === "endpoints") return { page, render: () => endpointList(main, params, c) };
  if (page === "deliveries" && id) return { page, render: () => deliveryPage(main, id, c) };
  if (page === "deliveries") return { page, render: () => deliveryList(main, params, c) };
  if (page === "event-types") return { page, render: () => catalogPage(main) };
  if (page === "filters") return { page, render: () => filterPage(main, params, c) };
  return {
    page: "overview",
    render: () => (c.tenant ? tenantOverview(main, c.tenant) : operatorOverview(main)),
  };
}

function nav(page) {
  const c = ctx();
  $("nav").replaceChildren(h("ul", {}, PAGES.map(([name, label]) => h("li", {},
    h("a", { href: "#/" + name, text: label, attrs: name === page ? { "aria-current": "page" } : {} })))));
  const who = c.claims
    ? [h("span", { class: "badge b-tenant", text: "Tenant " + c.tenant }), " ",
      h("span", { class: "muted", text: "access until " + localTime(new Date(c.claims.exp * 1000).toISOString()) })]
    : token() ? [h("span", { class: "badge", text: "Operator" })] : [];
  fill($("who"), ...who,
    token() ? h("button", { type: "button", class: "quiet", text: "Sign out", onclick: signOut }) : null);
}

function signOut() {
  setToken("");
  location.hash = "#/login";
}

// Render the page the fragment names. ``quiet``: a live refresh (keeps focus where it was).
async function show({ quiet = false } = {}) {
  if (busy) {  // run it after the one under way (a navigation wins over a refresh)
    queued = { quiet: quiet && (!queued || queued.quiet) };
    return;
  }
  busy = true;
  const target = route();
  const focusKey = quiet && document.activeElement ? document.activeElement.dataset.key : null;
  if (!quiet) {
    clearError();
    nav(target.page);
    $("main").setAttribute("aria-busy", "true");
  }
  try {
    const wanted = await target.render();
    every = typeof wanted === "number" ? wanted : LIVE_EVERY_MS;
    current = target;
    lastRender = Date.now();
    if (focusKey) {
      const again = document.querySelector(`[data-key="${CSS.escape(focusKey)}"]`);
      if (again) again.focus();
    }
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      current = { page: "login" };
      loginPage($("main"), err);
    } else {
      showError(err);
    }
  } finally {
    $("main").removeAttribute("aria-busy");
    busy = false;
  }
  if (queued) {
    const next = queued;
    queued = null;
    await show(next);
  }
}

function loginPage(main, err) {
  const input = h("input", { type: "password", name: "token", autocomplete: "off", required: true, value: "" });
  const form = h("form", { class: "form login" },
    h("h1", { text: "Sign in to hookd" }),
    err ? h("p", { class: "form-error", attrs: { role: "alert" }, text: token() ? "The token was refused: " + err.message : "This hookd needs a token." }) : null,
    field("Admin or tenant token", input, "Kept in this tab only (sessionStorage) and sent as Authorization: Bearer."),
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary", text: "Sign in" })));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    setToken(input.value.trim());
    if (!location.hash.startsWith("#/") || location.hash.startsWith("#/login")) location.hash = "#/overview";
    else show();  // back to the page that asked for a token
  });
  fill(main, form);
  nav("login");
  input.focus();
}

function start() {
  takeLinkedToken();
  $("footer").textContent = `Times are shown in your time zone (${TIME_ZONE}).`;
  $("skip").addEventListener("click", (ev) => { ev.preventDefault(); $("main").focus(); });
  $("refresh").addEventListener("click", () => show({ quiet: true }));
  window.addEventListener("hashchange", () => show());
  window.addEventListener("hookd:refresh", () => show({ quiet: true }));
  setInterval(() => {
    const live = $("live").checked && document.visibilityState === "visible";
    const page = current ? current.page : null;
    const focused = document.activeElement;
    const typing = focused && /^(INPUT|SELECT|TEXTAREA)$/.test(focused.tagName) && $("main").contains(focused);
    if (live && page && page !== "login" && page !== "filters" && !dialogOpen() && !typing
        && Date.now() - lastRender >= every) {
      show({ quiet: true });
    }
  }, 500);
  show();
}

start();
