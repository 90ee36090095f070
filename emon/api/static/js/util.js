// Small helpers shared by the pages: DOM building, number and time formats, and the REST client.
// The REST client relies on the session cookie (HttpOnly, SameSite=Strict): the token never lives
// in the page. State-changing requests carry the session's CSRF token.
import { lang, t } from "./i18n.js";

export const $ = (id) => document.getElementById(id);

export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v == null || v === false) continue;
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) if (c != null && c !== false) e.append(c);
  return e;
}

const locale = () => (lang() === "nl" ? "nl-NL" : "en-GB");
export function fmtNumber(value, decimals = 0) {
  return Number(value).toLocaleString(locale(), { maximumFractionDigits: decimals, minimumFractionDigits: 0 });
}
/** Metres as "350 m" or "1,2 km" (Dutch) / "1.2 km" (English). */
export function fmtM(m) {
  if (m == null || !Number.isFinite(Number(m))) return "—";
  const a = Math.abs(m);
  return a >= 1000 ? `${fmtNumber(m / 1000, a >= 10000 ? 0 : 1)} km` : `${fmtNumber(m, a < 10 ? 1 : 0)} m`;
}
export function fmtTime(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? String(iso) : d.toLocaleString(locale());
}
export function fmtClock(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? String(iso ?? "—") : d.toLocaleTimeString(locale());
}
/** A duration in seconds as "42 s", "5 min", "2 u 3 min" / "2 h 3 min", "3 d". */
export function fmtDuration(seconds) {
  const s = Math.max(0, seconds);
  if (!Number.isFinite(s)) return "";
  if (s < 60) return `${Math.floor(s)} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  const h = Math.floor(s / 3600);
  return h < 48 ? `${h} ${lang() === "nl" ? "u" : "h"} ${Math.floor((s % 3600) / 60)} min` : `${Math.floor(h / 24)} d`;
}
export const fmtAge = (iso) => fmtDuration((Date.now() - Date.parse(iso)) / 1000);

export class HttpError extends Error {
  constructor(status, detail) { super(detail || `HTTP ${status}`); this.status = status; }
}

const session = { csrf: null, onSignedOut: () => {} };
// Tabs of this browser tell each other about sign-in and sign-out (same origin only).
const channel = "BroadcastChannel" in window ? new BroadcastChannel("emon-session") : null;

/** A JSON call under api/v1/ (relative to the page). 401 ends the session on this page. */
export async function api(path, options = {}) {
  const method = (options.method || "GET").toUpperCase();
  const headers = { "Content-Type": "application/json", ...(options.headers || {}) };
  if (!["GET", "HEAD"].includes(method) && session.csrf) headers["X-CSRF-Token"] = session.csrf;
  const res = await fetch(`api/v1/${path}`, { ...options, method, headers, cache: "no-store", credentials: "same-origin" });
  if (res.status === 401 && path !== "session") { session.csrf = null; session.onSignedOut(t("login_bad")); }
  if (res.status === 204) return null;
  const body = await res.json().catch(() => null);
  if (!res.ok) {
    const d = body && (body.detail ?? body.message);
    throw new HttpError(res.status, typeof d === "string" ? d : d ? JSON.stringify(d) : "");
  }
  return body;
}

/** Who is signed in in this browser ({name, role, csrf}), or null. */
export async function currentSession() {
  const s = await api("session");
  session.csrf = s && s.signed_in ? s.csrf : null;
  return s && s.signed_in ? s : null;
}
export async function signIn(token) {
  const s = await api("session", { method: "POST", body: JSON.stringify({ token }) });
  session.csrf = s.csrf;
  if (channel) channel.postMessage("signed-in");
  return s;
}
export async function signOut() {
  try { await api("session", { method: "DELETE" }); } finally {
    session.csrf = null;
    if (channel) channel.postMessage("signed-out");
  }
}
export function onSignedOut(callback) { session.onSignedOut = callback; }
/** The server ended this browser's access (e.g. the stream's ``event: end``): forget it, ask to sign in. */
export function signedOut(message) { session.csrf = null; session.onSignedOut(message); }

/**
 * The shared sign-in flow of every page: show the dialog until a session exists; ``ready(who)`` runs
 * once signed in. Another tab signing out is noticed at the next request (401) and on focus.
 */
export function wireLogin({ ready, lost }) {
  const dialog = $("login");
  const error = $("login-error");
  const ask = (message) => {
    error.hidden = !message;
    error.textContent = message || "";
    if (!dialog.open) dialog.showModal();
  };
  onSignedOut((message) => { lost(); ask(message); });
  $("login-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const v = $("token").value.trim();
    $("token").value = "";
    if (!v) return;
    try {
      const who = await signIn(v);
      dialog.close();
      ready(who);
    } catch (e) {
      ask(e.status === 401 || e.status === 422 ? t("login_bad") : `${t("failed")}: ${e.message}`);
    }
  });
  dialog.addEventListener("cancel", (ev) => ev.preventDefault()); // no data without signing in
  $("logout").addEventListener("click", async () => {
    await signOut().catch(() => {});
    lost();
    ask("");
  });
  if (channel) {
    channel.addEventListener("message", async (ev) => {
      if (ev.data === "signed-out") { session.csrf = null; lost(); ask(""); }
      if (ev.data === "signed-in" && dialog.open) {
        const who = await currentSession().catch(() => null);
        if (who) { dialog.close(); ready(who); }
      }
    });
  }
  window.addEventListener("focus", async () => {
    if (dialog.open) {
      const who = await currentSession().catch(() => null);
      if (who) { dialog.close(); ready(who); }
    } else if (!(await currentSession().catch(() => null))) { lost(); ask(""); }
  });
  // A sign-out in another browser ends this session too: notice it within a minute even when idle
  // (an open live stream is only checked when it connects).
  setInterval(async () => {
    if (!dialog.open && !(await currentSession().catch(() => true))) { lost(); ask(""); }
  }, 60000);
  currentSession().then((who) => (who ? ready(who) : ask("")), () => ask(""));
}
