// What every page shares: API calls with the CSRF token, local times, badges, confirmation.
"use strict";

const jn = (() => {
  const ICONS = {
    succeeded: "✓", failed: "✗", running: "▶", queued: "…", pending: "○",
    upstream_failed: "⊘", cancelled: "■", skipped: "↷", "never run": "·",
  };

  function csrf() {
    const meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : "";
  }

  function esc(text) {
    return String(text).replace(/[&<>"']/g, (c) => ({
      "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;",
    })[c]);
  }

  // One API call: {ok, status, data} where data is the JSON body (or text, or null).
  async function api(method, url, body, extraHeaders = {}) {
    const headers = { Accept: "application/json", ...extraHeaders };
    if (method !== "GET") headers["X-CSRF-Token"] = csrf();
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const response = await fetch(url, {
      method, headers, credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (response.status === 401) {
      location.assign("/login?next=" + encodeURIComponent(location.pathname + location.search));
    }
    const type = response.headers.get("content-type") || "";
    let data = null;
    if (type.includes("json")) data = await response.json();
    else if (response.status !== 204) data = await response.text();
    return { ok: response.ok, status: response.status, data, headers: response.headers };
  }

  // Start a run of the job. Every try carries the job's Idempotency-Key until one starts a
  // run, so a double click or a retried request starts one run; the next intent gets a new
  // key. (getRandomValues, unlike randomUUID, works on plain http:// pages too.)
  const startKeys = new Map();

  async function startRun(job) {
    if (!startKeys.has(job)) {
      const bytes = crypto.getRandomValues(new Uint8Array(16));
      startKeys.set(job, Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join(""));
    }
    const result = await api("POST", `/api/jobs/${path(job)}/runs`, undefined, { "Idempotency-Key": startKeys.get(job) });
    if (result.ok) startKeys.delete(job);
    return result;
  }

  function message(result) {
    if (result.data && typeof result.data === "object" && result.data.error) return result.data.error;
    return `the server answered ${result.status}`;
  }

  function path(...parts) {
    return parts.map((part) => String(part).split("/").map(encodeURIComponent).join("/")).join("/");
  }

  function badge(status) {
    const key = String(status).replace(/ /g, "_");
    return `<span class="badge status-${esc(key)}" data-status="${esc(status)}">` +
      `<span aria-hidden="true">${ICONS[status] || "·"}</span> ${esc(String(status).replace(/_/g, " "))}</span>`;
  }

  function duration(seconds) {
    if (seconds == null || !isFinite(seconds)) return "";
    seconds = Math.max(0, seconds);
    if (seconds < 10) return seconds.toFixed(1) + " s";
    const total = Math.round(seconds);
    const h = Math.floor(total / 3600), m = Math.floor((total % 3600) / 60), s = total % 60;
    if (h) return `${h} h ${String(m).padStart(2, "0")} m`;
    return m ? `${m} m ${String(s).padStart(2, "0")} s` : `${s} s`;
  }

  function between(start, end) {
    if (!start) return "";
    const until = end ? new Date(end) : new Date();
    return duration((until - new Date(start)) / 1000);
  }

  const stamp = new Intl.DateTimeFormat(undefined, {
    weekday: "short", day: "numeric", month: "short", hour: "2-digit", minute: "2-digit",
  });
  const relative = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });

  function fromNow(date) {
    const seconds = (date - new Date()) / 1000;
    const units = [["day", 86400], ["hour", 3600], ["minute", 60]];
    for (const [unit, size] of units) {
      if (Math.abs(seconds) >= size) return relative.format(Math.round(seconds / size), unit);
    }
    return relative.format(Math.round(seconds), "second");
  }

  // Every <time datetime> in the viewer's own zone; data-relative adds "in 5 hours".
  function localTimes(root = document) {
    for (const el of root.querySelectorAll("time[datetime]")) {
      const date = new Date(el.getAttribute("datetime"));
      if (isNaN(date)) continue;
      el.title = date.toString();
      el.textContent = stamp.format(date) + (el.hasAttribute("data-relative") ? ` (${fromNow(date)})` : "");
    }
    const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    for (const el of root.querySelectorAll("[data-local-zone]")) el.textContent = `(your time, ${zone})`;
  }

  const clock = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit" });

  function formatTime(iso) {
    return iso ? stamp.format(new Date(iso)) : "";
  }

  function formatClock(iso) {
    return iso ? clock.format(new Date(iso)) : "";
  }

  // A promise of whether the user confirmed, asked in the page's <dialog>.
  function confirm(text, okLabel = "Delete") {
    const dialog = document.getElementById("confirm");
    dialog.querySelector("#confirm-text").textContent = text;
    dialog.querySelector("#confirm-ok").textContent = okLabel;
    dialog.returnValue = "";
    dialog.showModal();
    return new Promise((resolve) => {
      dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
    });
  }

  function show(el, text) {
    el.textContent = text || "";
    el.hidden = !text;
  }

  function json(id) {
    return JSON.parse(document.getElementById(id).textContent);
  }

  document.addEventListener("DOMContentLoaded", () => localTimes());
  return { api, startRun, message, path, esc, badge, duration, between, localTimes, formatTime, formatClock, confirm, show, json, ICONS };
})();
