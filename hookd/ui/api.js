// Talking to hookd's API: the token, JSON in and out, errors as readable sentences.
"use strict";

const KEY = "hookd-token";
const TIMEOUT_MS = 15000;

export class ApiError extends Error {
  constructor(status, code, message, field) {
    super(message);
    this.status = status;
    this.code = code;
    this.field = field || null;
  }
}

export function token() {
  return sessionStorage.getItem(KEY) || "";
}

export function setToken(value) {
  if (value) sessionStorage.setItem(KEY, value);
  else sessionStorage.removeItem(KEY);
}

// A portal link, /ui/#token=...: keep the token for this tab only, and take it out of the
// address bar (and so out of the history) at once.
export function takeLinkedToken() {
  const match = /^#token=([^&]+)/.exec(location.hash);
  if (!match) return false;
  setToken(decodeURIComponent(match[1]));
  history.replaceState(null, "", location.pathname + location.search + "#/");
  return true;
}

// A tenant token is a JWT whose audience is hookd:tenant; its subject is the tenant. Read for
// display only: hookd decides what the token may do.
export function tenantClaims(value = token()) {
  try {
    const part = value.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const claims = JSON.parse(atob(part));
    return claims.aud === "hookd:tenant" && typeof claims.sub === "string" ? claims : null;
  } catch (e) {
    return null;
  }
}

export async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  const current = token();
  if (current) headers.Authorization = "Bearer " + current;
  const init = { method, headers, cache: "no-store", credentials: "omit" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), TIMEOUT_MS);
  init.signal = abort.signal;
  let resp;
  let text;
  try {
    resp = await fetch(path, init);
    text = await resp.text();
  } catch (e) {
    const why = abort.signal.aborted ? `no answer within ${TIMEOUT_MS / 1000} s` : e.message;
    throw new ApiError(0, "network", `Cannot reach hookd (${method} ${path}): ${why}.`);
  } finally {
    clearTimeout(timer);
  }
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch (e) {
      data = null;
    }
  }
  if (!resp.ok) {
    const err = data && data.error;
    const message = err && err.message ? err.message : `hookd answered HTTP ${resp.status}.`;
    throw new ApiError(resp.status, err ? err.code : "http_" + resp.status, message, err && err.field);
  }
  return data;
}

// A sentence for any error: what went wrong, and what to do when there is something to do.
export function describe(err) {
  if (!(err instanceof ApiError)) return sentence(err && err.message ? err.message : String(err));
  const field = err.field ? ` (field: ${err.field})` : "";
  const text = sentence(err.message) + field;
  if (err.status === 401) return "The token was refused: " + text + " Enter a valid token.";
  if (err.status === 403) return "This token may not do that: " + text;
  if (err.status === 404) return "Not found: " + text;
  if (err.status === 409) return "Refused: " + text;
  if (err.status === 429 || err.status === 503) return "hookd is busy: " + text + " Try again shortly.";
  if (err.status >= 500) return `hookd failed (HTTP ${err.status}): ` + text;
  return text;
}

function sentence(text) {
  const t = String(text || "").trim();
  if (!t) return "";
  const first = t[0].toUpperCase() + t.slice(1);
  return /[.!?]$/.test(first) ? first : first + ".";
}

export const enc = encodeURIComponent;
