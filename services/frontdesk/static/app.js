// The front desk tablet app. Every report goes into an IndexedDB queue first (with its
// Idempotency-Key and the time it happened) and the queue is sent in order to /api/reports:
// online and offline take the same path, so nothing is lost and a resend doubles nothing.
// Client codes are never put in URLs, storage other than the queue, or the console.
"use strict";

const $ = (sel) => document.querySelector(sel);
const state = { me: null, lang: localStorage.getItem("lang") || "da", board: [], flushing: false };
const API = { "Content-Type": "application/json", "X-Frontdesk": "1" };

// ---- texts ------------------------------------------------------------------------------------
function t(key, vars) {
  const text = (I18N[state.lang] && I18N[state.lang][key]) || I18N.da[key] || key;
  return text.replace(/\{(\w+)\}/g, (_, k) => String((vars || {})[k]));
}
function label(value) {
  const key = "v." + value;
  if (state.lang === "da" && I18N.da[key]) return I18N.da[key];
  return value.charAt(0).toUpperCase() + value.slice(1).replace(/_/g, " ");
}
function applyTexts() {
  document.documentElement.lang = state.lang;
  document.querySelectorAll("[data-t]").forEach((el) => { el.textContent = t(el.dataset.t); });
  document.querySelectorAll("[data-v]").forEach((el) => { el.textContent = label(el.dataset.v); });
  $("#lang").textContent = state.lang === "da" ? "EN" : "DA";
  renderBoard();
  updateQueueCount();
}

// ---- the queue (IndexedDB) --------------------------------------------------------------------
let dbPromise = null;
function db() {
  dbPromise = dbPromise || new Promise((resolve, reject) => {
    const open = indexedDB.open("frontdesk", 1);
    open.onupgradeneeded = () => open.result.createObjectStore("queue", { keyPath: "seq", autoIncrement: true });
    open.onsuccess = () => resolve(open.result);
    open.onerror = () => reject(open.error);
  });
  return dbPromise;
}
async function tx(mode, fn) {
  const d = await db();
  return new Promise((resolve, reject) => {
    const transaction = d.transaction("queue", mode);
    const result = fn(transaction.objectStore("queue"));
    transaction.oncomplete = () => resolve(result && "result" in result ? result.result : undefined);
    transaction.onerror = () => reject(transaction.error);
  });
}
const queued = () => tx("readonly", (s) => s.getAll());
const removeQueued = (seq) => tx("readwrite", (s) => s.delete(seq));

function newKey() {
  return (crypto.randomUUID ? crypto.randomUUID() : String(Date.now()) + Math.random()).replace(/[^A-Za-z0-9-]/g, "");
}

async function report(kind, fields, checkinKey) {
  const entry = {
    facility: state.me.facility,
    report: { kind, key: newKey(), occurred_at: new Date().toISOString(), fields },
  };
  if (checkinKey) entry.report.checkin_key = checkinKey;
  await tx("readwrite", (s) => s.add(entry));
  await updateQueueCount();
  flush();
  return entry.report.key;
}

async function updateQueueCount() {
  if (!state.me) return;
  const n = (await queued()).filter((e) => e.facility === state.me.facility).length;
  const el = $("#queue");
  el.textContent = n ? t("app.waiting", { n }) : "";
  el.dataset.count = String(n);
  el.classList.toggle("waiting", n > 0);
}

const FLUSH_CHUNK = 100;  // reports per request (the desk takes at most 200)

async function flush() {
  if (state.flushing || !state.me) return;
  state.flushing = true;
  try {
    while (await sendChunk()) { /* the next chunk, in order */ }
  } finally {
    state.flushing = false;
    await updateQueueCount();
    refreshBoard();
  }
}

// Send the oldest waiting reports; true when all of them were final and more may wait.
async function sendChunk() {
  const entries = (await queued()).filter((e) => e.facility === state.me.facility).slice(0, FLUSH_CHUNK);
  if (!entries.length) return false;
  let answer;
  try {
    const r = await fetch("/api/reports", {
      method: "POST", headers: API, credentials: "same-origin",
      body: JSON.stringify({ reports: entries.map((e) => e.report) }),
    });
    if (r.status === 401) { showLogin(); return false; }
    if (!r.ok) return false;
    answer = await r.json();
  } catch (e) { return false; }  // the desk itself is unreachable: everything stays queued
  for (let i = 0; i < answer.results.length; i++) {
    const res = answer.results[i];
    if (res.status === 503) return false;  // this one and the rest wait, in order
    await removeQueued(entries[i].seq);
    if (res.status >= 400) toast(t("app.refused") + ": " + describe(res.body), true);
  }
  return entries.length === FLUSH_CHUNK;
}
function describe(body) {
  if (Array.isArray(body)) return body.map((e) => (e.loc || []).slice(-1)[0] + " " + e.msg).join("; ");
  return typeof body === "string" ? body : JSON.stringify(body);
}

// ---- board ------------------------------------------------------------------------------------
async function refreshBoard() {
  if (!state.me) return;
  try {
    const r = await fetch("/api/board", { credentials: "same-origin" });
    if (r.status === 401) { showLogin(); return; }
    $("#board-status").hidden = r.ok;
    if (!r.ok) return;
    const booths = (await r.json()).booths;
    if (JSON.stringify(booths) === JSON.stringify(state.board)) return;  // no churn, no flicker
    state.board = booths;
    renderBoard();
  } catch (e) { $("#board-status").hidden = false; /* keep the last board */ }
}
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  Object.entries(attrs || {}).forEach(([k, v]) => {
    if (k === "onclick") node.addEventListener("click", v); else node.setAttribute(k, v);
  });
  children.forEach((c) => node.append(c));
  return node;
}
function renderBoard() {
  const root = $("#board");
  if (!root) return;
  root.replaceChildren(...state.board.map((b) => {
    if (b.free) {
      return el("div", { class: "booth free", "data-booth": b.booth },
        el("div", { class: "num" }, String(b.booth)), el("div", {}, t("board.free")));
    }
    const card = el("div", { class: "booth" + (b.warning ? " warning" : ""), "data-booth": b.booth },
      el("div", { class: "num" }, String(b.booth)),
      el("div", { class: "code" }, b.client_code || "—"),
      el("div", { class: "minutes" }, t("board.minutes", { n: b.minutes }) + (b.sent ? "" : " · " + t("board.pending"))),
      b.warning ? el("div", { class: "alarm", role: "alert" }, t("board.check_on")) : "",
      el("button", { type: "button", class: "checkout", onclick: () => checkOut(b) }, t("board.checkout")),
      el("button", { type: "button", class: "secondary", onclick: () => incidentFor(b) }, t("board.incident")));
    return card;
  }));
  fillBoothSelects();
}
async function checkOut(b) {
  state.board = state.board.map((x) => (x.booth === b.booth ? { booth: b.booth, free: true } : x));
  renderBoard();
  await report("checkout", {}, b.checkin_key);
}
function incidentFor(b) {
  showTab("incident");
  $("#incident-booth").value = b.checkin_key;
}
function fillBoothSelects() {
  // Without a board from the desk (unreachable), every booth may be chosen: staff can see them.
  const free = state.board.length ? state.board.filter((b) => b.free).map((b) => b.booth)
    : Array.from({ length: state.me ? state.me.booths : 0 }, (_, i) => i + 1);
  const sel = $("#booth");
  const keep = sel.value;
  sel.replaceChildren(...free.map((n) => el("option", { value: n }, String(n))));
  if (free.includes(Number(keep))) sel.value = keep;
  const inc = $("#incident-booth");
  const keepInc = inc.value;
  inc.replaceChildren(el("option", { value: "" }, t("incident.none")),
    ...state.board.filter((b) => !b.free).map((b) => el("option", { value: b.checkin_key }, String(b.booth))));
  inc.value = keepInc && [...inc.options].some((o) => o.value === keepInc) ? keepInc : "";
}

// ---- forms ------------------------------------------------------------------------------------
function chips(container, name, values, type) {
  $(container).replaceChildren(...values.map((v) => el("label", { class: "chip" },
    el("input", { type, name, value: v }), el("span", { "data-v": v }, label(v)))));
}
function buttons(container, values, onTap) {
  $(container).replaceChildren(...values.map((v) =>
    el("button", { type: "button", class: "secondary", "data-value": v, onclick: () => onTap(v) },
      el("span", { "data-v": v }, label(v)))));
}
function options(sel, values, empty) {
  $(sel).replaceChildren(...(empty ? [el("option", { value: "" }, "—")] : []),
    ...values.map((v) => el("option", { value: v, "data-v": v }, label(v))));
}
const checked = (name) => [...document.querySelectorAll(`input[name="${name}"]:checked`)].map((i) => i.value);

function buildForms(v) {
  chips("#substances", "substance", v.substance, "checkbox");
  chips("#routes", "route", v.route, "radio");
  chips("#found", "found", v.substance, "checkbox");
  buttons("#refusals", v.refusal_reason, (reason) => report("refusal", { reason }).then(() => toast(t("app.sent"))));
  buttons("#referrals", v.referral, (referral_to) => report("referral", { referral_to }).then(() => toast(t("app.sent"))));
  buttons("#services", v.service, (service) => report("service", { service }).then(() => toast(t("app.sent"))));
  options("#incident-kind", v.incident_kind);
  options("#severity", v.severity);
  options("#outcome", v.outcome);
  options("#suspected", v.substance, true);
  options("#expected", v.substance);
  $("#items").replaceChildren(...v.supply_item.map((item) => el("label", {},
    el("span", { "data-v": item }, label(item)),
    el("input", { type: "number", min: "0", max: "10000", inputmode: "numeric", name: "item", "data-item": item }))));
}

async function onCheckIn(ev) {
  ev.preventDefault();
  const code = $("#client-code").value.trim().toUpperCase();
  if (!new RegExp(state.me.client_code_pattern).test(code)) return toast(t("checkin.bad_code"), true);
  if (code !== $("#client-code-again").value.trim().toUpperCase()) return toast(t("checkin.mismatch"), true);
  const substances = checked("substance");
  const route = checked("route")[0];
  if (!substances.length || !route) return toast(t("checkin.pick"), true);
  const booth = Number($("#booth").value);
  if (!booth) return toast(t("checkin.no_booth"), true);
  const key = await report("checkin", {
    client_code: code, booth, substances, route,
    first_visit: $("#first-visit").checked, assisted_injection: $("#assisted").checked,
  });
  state.board = state.board.map((b) => (b.booth === booth
    ? { booth, free: false, checkin_key: key, client_code: code, minutes: 0, warning: false, sent: false } : b));
  ev.target.reset();
  renderBoard();
  showTab("board");
}
async function onIncident(ev) {
  ev.preventDefault();
  const fields = {
    kind: $("#incident-kind").value, severity: $("#severity").value,
    life_threatening: $("#life-threatening").checked, outcome: $("#outcome").value,
    interventions: {
      naloxone_doses: Number($("#naloxone").value), oxygen: $("#oxygen").checked,
      rescue_breathing: $("#rescue-breathing").checked, cpr: $("#cpr").checked,
      ambulance_called: $("#ambulance").checked,
    },
  };
  if ($("#suspected").value) fields.suspected_substance = $("#suspected").value;
  await report("incident", fields, $("#incident-booth").value || null);
  ev.target.reset();
  $("#naloxone").value = "0";
  toast(t("app.sent"));
}
async function onDrugCheck(ev) {
  ev.preventDefault();
  const found = checked("found");
  if (!found.length) return;
  await report("drug_check", { expected: $("#expected").value, found });
  ev.target.reset();
  toast(t("app.sent"));
}
async function onItems(kind) {
  const items = {};
  document.querySelectorAll("#items input").forEach((i) => {
    if (i.value !== "" && (kind === "count" || Number(i.value) > 0)) items[i.dataset.item] = Number(i.value);
  });
  if (!Object.keys(items).length) return toast(t("supplies.empty"), true);
  await report(kind, { items });
  $("#supplies-form").reset();
  toast(t("app.sent"));
}
async function onSharps(ev) {
  ev.preventDefault();
  const count = Number($("#sharps-count").value);
  if (!count) return;
  await report("sharps", { count });
  ev.target.reset();
  toast(t("app.sent"));
}

// ---- today's figures, stock, alerts -------------------------------------------------------------
async function refreshRoom() {
  if (!state.me) return;
  let room;
  try {
    const r = await fetch("/api/room", { credentials: "same-origin" });
    if (!r.ok) return;
    room = await r.json();
  } catch (e) { return; }
  const alerts = $("#alerts");
  if (room.alerts === null) alerts.replaceChildren(el("li", {}, t("room.unavailable")));
  else if (!room.alerts.length) alerts.replaceChildren(el("li", {}, t("room.no_alerts")));
  else alerts.replaceChildren(...room.alerts.map((a) => el("li", { class: "alert" },
    `${new Date(a.raised_at).toLocaleString(state.lang)} · ${label(a.reason)}` + (a.substance ? ` · ${label(a.substance)}` : ""))));
  const live = room.live;
  $("#figures").replaceChildren(...(live ? [
    el("dt", {}, t("room.visits")), el("dd", { id: "fig-visits" }, String(live.visits_today)),
    el("dt", {}, t("room.refusals")), el("dd", { id: "fig-refusals" }, String(live.refusals_today)),
    el("dt", {}, t("room.in_use")), el("dd", {}, `${live.booths_in_use} / ${live.booths_total}`),
  ] : [el("dd", {}, t("room.unavailable"))]));
  $("#stock tbody").replaceChildren(...(room.stock || []).map((s) => el("tr", { class: s.days_of_cover !== null && s.days_of_cover < 3 ? "low" : "" },
    el("td", {}, label(s.item)), el("td", {}, String(s.on_hand)),
    el("td", {}, s.days_of_cover === null ? "—" : String(Math.max(0, s.days_of_cover))))));
}

// ---- shell --------------------------------------------------------------------------------------
let toastTimer = null;
function toast(text, bad) {
  const n = $("#toast");
  n.textContent = text;
  n.className = bad ? "bad" : "good";
  n.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { n.hidden = true; }, 4000);
}
function showTab(name) {
  document.querySelectorAll(".tab").forEach((s) => { s.hidden = s.id !== "tab-" + name; });
  document.querySelectorAll("[data-tab]").forEach((b) => b.setAttribute("aria-selected", String(b.dataset.tab === name)));
  if (name === "room") refreshRoom();
}
function showLogin() {
  state.me = null;
  $("#login-view").hidden = false;
  $("#app-view").hidden = true;
  $("#logout").hidden = true;
  $("#who").textContent = "";
}
async function start() {
  // Who is signed in; when the desk is unreachable, the last answer (room, vocabularies; no
  // client data) so the app still opens and reports queue. The session itself is the cookie.
  let me = null;
  try {
    const r = await fetch("/api/me", { credentials: "same-origin" });
    if (r.status === 401) { localStorage.removeItem("me"); return showLogin(); }
    if (r.ok) { me = await r.json(); localStorage.setItem("me", JSON.stringify(me)); }
  } catch (e) { /* the desk is unreachable */ }
  me = me || JSON.parse(localStorage.getItem("me") || "null");
  if (!me) return showLogin();
  state.me = me;
  buildForms(state.me.vocabularies);
  $("#login-view").hidden = true;
  $("#app-view").hidden = false;
  $("#logout").hidden = false;
  $("#who").textContent = `${state.me.name} · ${state.me.username}`;
  applyTexts();
  fillBoothSelects();
  showTab("board");
  refreshBoard();
  flush();
}

document.addEventListener("DOMContentLoaded", () => {
  $("#login-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const r = await fetch("/api/login", {
      method: "POST", headers: API, credentials: "same-origin",
      body: JSON.stringify({ username: $("#username").value, password: $("#password").value }),
    }).catch(() => null);
    if (!r || !r.ok) { $("#login-error").textContent = t("login.failed"); return; }
    ev.target.reset();
    $("#login-error").textContent = "";
    start();
  });
  $("#logout").addEventListener("click", async () => {
    await fetch("/api/logout", { method: "POST", headers: API, credentials: "same-origin" }).catch(() => null);
    localStorage.removeItem("me");
    showLogin();
  });
  $("#lang").addEventListener("click", () => {
    state.lang = state.lang === "da" ? "en" : "da";
    localStorage.setItem("lang", state.lang);
    applyTexts();
  });
  document.querySelectorAll("[data-tab]").forEach((b) => b.addEventListener("click", () => showTab(b.dataset.tab)));
  $("#checkin-form").addEventListener("submit", onCheckIn);
  $("#incident-form").addEventListener("submit", onIncident);
  $("#drugcheck-form").addEventListener("submit", onDrugCheck);
  $("#sharps-form").addEventListener("submit", onSharps);
  $("#dispensed-submit").addEventListener("click", () => onItems("dispensed"));
  $("#delivery-submit").addEventListener("click", () => onItems("delivery"));
  $("#count-submit").addEventListener("click", () => onItems("count"));
  $("#naloxone-plus").addEventListener("click", () => { $("#naloxone").value = String(Math.min(20, Number($("#naloxone").value) + 1)); });
  $("#naloxone-minus").addEventListener("click", () => { $("#naloxone").value = String(Math.max(0, Number($("#naloxone").value) - 1)); });
  applyTexts();
  start();
  setInterval(refreshBoard, 500);    // the same board on every tablet within a second
  setInterval(flush, 3000);          // waiting reports go as soon as the platform is back
  setInterval(refreshRoom, 15000);
  window.addEventListener("online", flush);
  if ("serviceWorker" in navigator) navigator.serviceWorker.register("/sw.js").catch(() => null);
});
