"""The web page at ``/ui``: status, endpoints and deliveries, over the API.

One static page with no build step and no third-party assets. The page itself needs no token;
every call it makes goes through the API with the token the operator types in, kept in
``sessionStorage`` for the tab only. A tenant's portal link, ``/ui/#token=<tenant token>``,
puts the token there instead: the page takes it from the fragment (which never reaches a server
or a Referer), removes it from the address bar, and shows what that token may see and do — the
tenant's own endpoints and deliveries, no operator status.
"""

from __future__ import annotations

from aiohttp import web

from hookd.api.access import OPEN, route

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>hookd</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:1.5rem;color:#222;background:#fafafa}
h1{font-size:1.3rem;margin:0 0 .5rem} h2{font-size:1.05rem;margin:1.5rem 0 .4rem}
table{border-collapse:collapse;width:100%;background:#fff}
th,td{border-bottom:1px solid #e3e3e3;padding:.3rem .5rem;text-align:left;vertical-align:top}
th{background:#f0f0f0;font-weight:600} code,pre{font:12px ui-monospace,monospace}
pre{background:#fff;border:1px solid #e3e3e3;padding:.5rem;overflow:auto;max-height:20rem}
.ok{color:#17702c}.bad{color:#b3261e}.muted{color:#777} button{margin-right:.25rem}
#err{color:#b3261e;white-space:pre-wrap} .bar>*{margin-right:.5rem}
</style></head><body>
<h1>hookd <span id="version" class="muted"></span></h1>
<div id="who" class="muted"></div>
<div class="bar"><label>Token <input id="token" type="password" size="30"></label>
<button id="save">Use</button><label><input id="auto" type="checkbox" checked> refresh</label>
<span id="summary"></span></div>
<div id="err"></div>
<h2>Endpoints</h2><table id="endpoints"><thead><tr><th>id</th><th>url</th><th>state</th>
<th>failures</th><th>source</th><th></th></tr></thead><tbody></tbody></table>
<h2>Deliveries</h2><div class="bar"><select id="status"><option value="">any status</option>
<option>pending</option><option>succeeded</option><option>failed</option></select>
<input id="endpoint" placeholder="endpoint id"><input id="type" placeholder="event type (glob)">
<input id="event" placeholder="event / webhook id"><button id="filter">Filter</button></div>
<table id="deliveries"><thead><tr><th>created</th><th>id</th><th>endpoint</th><th>type</th>
<th>status</th><th>attempts</th><th>last code</th><th>next attempt</th><th></th></tr></thead>
<tbody></tbody></table>
<h2 id="detail-title" hidden>Delivery</h2><pre id="detail" hidden></pre>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
const linked = new URLSearchParams(location.hash.slice(1)).get("token");
if (linked) {  // a portal link: keep the token for this tab, take it out of the address bar
  sessionStorage.setItem("hookd-token", linked);
  history.replaceState(null, "", location.pathname + location.search);
}
$("token").value = sessionStorage.getItem("hookd-token") || "";
function tenantOf(token) {  // a tenant token is a JWT: its subject is the tenant (display only)
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const claims = JSON.parse(atob(part));
    return claims.aud === "hookd:tenant" ? claims : null;
  } catch (e) { return null; }
}
$("save").onclick = () => { sessionStorage.setItem("hookd-token", $("token").value); refresh(); };
$("filter").onclick = () => refresh();
function cell(text, cls) { const td = document.createElement("td");
  td.textContent = text == null ? "" : String(text); if (cls) td.className = cls; return td; }
function button(label, fn) { const b = document.createElement("button");
  b.textContent = label; b.onclick = fn; return b; }
async function api(method, path) {
  const token = sessionStorage.getItem("hookd-token");
  const headers = token ? {"Authorization": "Bearer " + token} : {};
  const resp = await fetch(path, {method, headers});
  const body = resp.status === 204 ? null : await resp.json();
  if (!resp.ok) throw new Error(body && body.error ? body.error.message : resp.statusText);
  return body;
}
async function act(method, path) {
  try { await api(method, path); await refresh(); } catch (e) { $("err").textContent = e.message; }
}
async function showDelivery(id) {
  const d = await api("GET", "/v1/deliveries/" + encodeURIComponent(id));
  $("detail-title").hidden = false; $("detail").hidden = false;
  $("detail").textContent = JSON.stringify(d, null, 2);
}
async function refresh() {
  try {
    const tenant = tenantOf(sessionStorage.getItem("hookd-token") || "");
    $("who").textContent = tenant ? `Tenant ${tenant.sub} · this page shows its endpoints and ` +
      `deliveries only · access until ${new Date(tenant.exp * 1000).toLocaleString()}` : "";
    if (!tenant) {
      const s = await api("GET", "/v1/status");
      $("version").textContent = "v" + s.version;
      const c = s.deliveries;
      $("summary").textContent = `pending ${c.pending} · succeeded ${c.succeeded} · ` +
        `failed ${c.failed} · scheduled ${s.scheduled} · in flight ${s.in_flight}`;
    } else { $("summary").textContent = ""; }
    const eps = await api("GET", "/v1/endpoints");
    const etb = $("endpoints").tBodies[0]; etb.replaceChildren();
    for (const ep of eps.items) {
      const tr = document.createElement("tr");
      tr.append(cell(ep.id), cell(ep.url),
        cell(ep.enabled ? "enabled" : "disabled" + (ep.disabled_reason ? ": " +
          ep.disabled_reason : ""), ep.enabled ? "ok" : "bad"),
        cell(ep.consecutive_failures), cell(ep.source));
      const td = document.createElement("td");
      const base = "/v1/endpoints/" + encodeURIComponent(ep.id);
      td.append(ep.enabled ? button("Disable", () => act("POST", base + "/disable"))
                           : button("Enable", () => act("POST", base + "/enable")),
                button("Send test", () => act("POST", base + "/test")));
      tr.append(td); etb.append(tr);
    }
    const q = new URLSearchParams();
    for (const k of ["status", "endpoint", "type", "event"]) if ($(k).value) q.set(k, $(k).value);
    q.set("limit", "50");
    const ds = await api("GET", "/v1/deliveries?" + q);
    const dtb = $("deliveries").tBodies[0]; dtb.replaceChildren();
    for (const d of ds.items) {
      const tr = document.createElement("tr");
      const cls = d.status === "succeeded" ? "ok" : d.status === "failed" ? "bad" : "";
      tr.append(cell(d.created_at), cell(d.id), cell(d.endpoint), cell(d.event_type),
        cell(d.status, cls), cell(d.attempt_count), cell(d.last_status_code),
        cell(d.next_attempt_at));
      const td = document.createElement("td");
      td.append(button("Show", () => showDelivery(d.id).catch(e => {
        $("err").textContent = e.message; })));
      if (d.status === "failed") {
        td.append(button("Retry", () =>
          act("POST", "/v1/deliveries/" + encodeURIComponent(d.id) + "/retry")));
      }
      tr.append(td); dtb.append(tr);
    }
    $("err").textContent = "";
  } catch (e) { $("err").textContent = e.message; }
}
refresh();
setInterval(() => { if ($("auto").checked) refresh(); }, 2000);
</script></body></html>
"""

_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


async def page(request: web.Request) -> web.Response:
    return web.Response(text=PAGE, content_type="text/html", headers=_HEADERS)


async def root(request: web.Request) -> web.Response:
    raise web.HTTPFound("/ui")


def add_routes(app: web.Application) -> None:
    route(app, "GET", "/ui", page, OPEN)
    route(app, "GET", "/ui/", page, OPEN)  # the portal link: /ui/#token=...
    route(app, "GET", "/", root, OPEN)
