// anomalia live dashboard: no build step, no dependencies. Reads the service's JSON routes and its
// server-sent events (/v1/events); draws each stream's scores with the threshold and the flags.
"use strict";

const state = { model: null, threshold: null, streams: new Map(), alertsTimer: null, respond: true };
const $ = (sel) => document.querySelector(sel);

async function api(path, options) {
  const res = await fetch(path, Object.assign({ credentials: "same-origin" }, options || {}));
  const body = await res.json().catch(() => ({}));
  if (!res.ok) { const err = new Error(body.error || res.statusText); err.status = res.status; throw err; }
  return body;
}

function text(tag, value, cls) {
  const el = document.createElement(tag);
  if (cls) el.className = cls;
  el.textContent = value == null ? "—" : String(value);
  return el;
}

function fmt(x, digits) {
  if (x == null || Number.isNaN(x)) return "—";
  if (typeof x !== "number") return String(x);
  return Math.abs(x) >= 1000 || (Math.abs(x) < 1e-3 && x !== 0) ? x.toExponential(2) : x.toFixed(digits == null ? 3 : digits);
}

// ------------------------------------------------------------------------------------ models and manifest
async function loadModels() {
  const { models } = await api("/v1/models");
  const select = $("#model");
  select.replaceChildren(...models.map((m) => { const o = text("option", m.name); o.value = m.name; return o; }));
  if (models.length) await selectModel(models[0].name);
  select.addEventListener("change", () => selectModel(select.value));
}

async function selectModel(name) {
  state.model = name;
  state.streams.clear();
  $("#streams").replaceChildren();
  const m = await api(`/v1/models/${encodeURIComponent(name)}`);
  state.threshold = m.threshold ? m.threshold.value : null;
  $("#threshold").textContent = state.threshold == null ? "" : `threshold ${fmt(state.threshold)} (${m.threshold.name})`;
  const rows = [["name", m.name], ["version", m.version], ["previous version", m.previous_version],
    ["detector", m.detector], ["input", m.input_kind], ["threshold", m.threshold && `${m.threshold.name} = ${fmt(m.threshold.value)}`]];
  if (m.calibration) rows.push(["calibration", `${m.calibration.n} held-out scores · median ${fmt(m.calibration.median)} · q99 ${fmt(m.calibration.q99)} · max ${fmt(m.calibration.max)}`]);
  if (m.training) rows.push(["training", `${m.training.epochs} epochs · val loss ${fmt(m.training.final_val_loss)}`]);
  if (Array.isArray(m.schema)) rows.push(["schema", m.schema.map((c) => `${c.name} (${c.type})`).join(", ")]);
  const dl = $("#manifest");
  dl.replaceChildren();
  for (const [k, v] of rows) { dl.append(text("dt", k), text("dd", v)); }
  const { streams } = await api(`/v1/models/${encodeURIComponent(name)}/streams?points=600`);
  for (const s of streams) addPoints(s.key, s.points);
  if (!streams.length) $("#streams").append(text("p", "No points yet.", "empty"));
}

// ------------------------------------------------------------------------------------ streams
function streamBox(key) {
  let s = state.streams.get(key);
  if (s) return s;
  const empty = $("#streams .empty");
  if (empty) empty.remove();
  const box = document.createElement("div");
  box.className = "stream";
  box.dataset.key = key;
  const title = text("h3", key);
  const canvas = document.createElement("canvas");
  box.append(title, canvas);
  $("#streams").append(box);
  s = { key, points: [], canvas, title, pending: false };
  state.streams.set(key, s);
  return s;
}

function addPoints(key, points) {
  const s = streamBox(key);
  for (const p of points) s.points.push(p);
  if (s.points.length > 600) s.points.splice(0, s.points.length - 600);
  const flags = s.points.filter((p) => p[2]).length;
  s.title.textContent = `${key} · ${s.points.length} points · ${flags} flagged`;
  s.box = s.canvas.parentElement;
  s.box.dataset.points = String(s.points.length);
  s.box.dataset.flags = String(flags);
  if (!s.pending) { s.pending = true; requestAnimationFrame(() => { s.pending = false; draw(s); }); }
}

function draw(s) {
  const c = s.canvas, dpr = window.devicePixelRatio || 1;
  const w = c.clientWidth || 600, h = c.clientHeight || 140;
  c.width = w * dpr; c.height = h * dpr;
  const g = c.getContext("2d");
  g.scale(dpr, dpr);
  g.clearRect(0, 0, w, h);
  const pts = s.points;
  if (!pts.length) return;
  const scores = pts.map((p) => p[1]);
  let hi = Math.max(...scores, state.threshold == null ? -Infinity : state.threshold);
  let lo = Math.min(...scores, 0);
  if (hi === lo) hi = lo + 1;
  const pad = 6, x = (i) => pad + (i * (w - 2 * pad)) / Math.max(1, pts.length - 1);
  const y = (v) => h - pad - ((v - lo) * (h - 2 * pad)) / (hi - lo);
  if (state.threshold != null) {
    g.strokeStyle = "#b3261e"; g.setLineDash([4, 3]); g.lineWidth = 1;
    g.beginPath(); g.moveTo(pad, y(state.threshold)); g.lineTo(w - pad, y(state.threshold)); g.stroke();
    g.setLineDash([]);
  }
  g.strokeStyle = "#2f5d8a"; g.lineWidth = 1.2; g.beginPath();
  pts.forEach((p, i) => (i ? g.lineTo(x(i), y(p[1])) : g.moveTo(x(i), y(p[1]))));
  g.stroke();
  g.fillStyle = "#b3261e";
  pts.forEach((p, i) => { if (p[2]) { g.beginPath(); g.arc(x(i), y(p[1]), 3, 0, 2 * Math.PI); g.fill(); } });
}

// ------------------------------------------------------------------------------------ alerts
function why(a) {
  const parts = a.contributions || a.top_features || a.top || [];
  const box = document.createElement("div");
  box.className = "why";
  if (a.summary) box.append(text("div", a.summary));
  for (const f of parts.slice(0, 3)) {
    const line = document.createElement("div");
    const name = f.feature || f.name || f.channel;
    line.append(text("b", name));
    const obs = f.observed !== undefined ? f.observed : f.value;
    line.append(document.createTextNode(` observed ${fmt(obs)} · expected ${fmt(f.expected)}` +
      (f.share != null ? ` · ${(100 * f.share).toFixed(0)}%` : "")));
    box.append(line);
  }
  return box;
}

const ACTIONS = [["ack", "ack"], ["resolve", "resolve"], ["false-positive", "false +"], ["new-normal", "new normal"]];

function alertRow(a) {
  const tr = document.createElement("tr");
  tr.dataset.alertId = a.id;
  tr.dataset.status = a.status;
  const started = a.starts_at ? new Date(a.starts_at).toLocaleTimeString() : "—";
  const cells = [text("td", started), text("td", a.severity, `sev ${a.severity}`), text("td", a.status, "status"),
    text("td", a.entity), text("td", `${fmt(a.score)} · ${fmt(a.p_value)}`)];
  const whyCell = document.createElement("td"); whyCell.append(why(a));
  const act = document.createElement("td");
  act.className = "act";
  for (const [action, label] of ACTIONS) {
    const b = text("button", label);
    b.dataset.action = action;
    b.addEventListener("click", () => feedback(a.id, action, b));
    act.append(b);
  }
  tr.append(...cells, whyCell, act);
  return tr;
}

async function loadAlerts() {
  const q = new URLSearchParams({ limit: "200" });
  if ($("#f-status").value) q.set("status", $("#f-status").value);
  if ($("#f-severity").value) q.set("severity", $("#f-severity").value);
  try {
    const { alerts } = await api(`/v1/alerts?${q}`);
    $("#alerts tbody").replaceChildren(...alerts.map(alertRow));
    $("#alert-count").textContent = `${alerts.length} shown`;
    $("#alerts-note").textContent = alerts.length ? "" : "No alerts.";
  } catch (err) {
    $("#alerts-note").textContent = err.status === 404 ? "No response engine (start with --respond response.yaml)." : `Alerts: ${err.message}`;
  }
}

function scheduleAlerts() {
  if (state.alertsTimer) return;
  state.alertsTimer = setTimeout(() => { state.alertsTimer = null; loadAlerts(); }, 150);
}

async function feedback(id, action, button) {
  button.disabled = true;
  try {
    await api(`/v1/alerts/${encodeURIComponent(id)}/${action}`, {
      method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ who: "dashboard" }) });
  } catch (err) {
    $("#alerts-note").textContent = `${action}: ${err.message}`;
  } finally {
    button.disabled = false;
    loadAlerts();
  }
}

// ------------------------------------------------------------------------------------ live events
function connect() {
  const es = new EventSource("/v1/events");
  const live = $("#live");
  es.addEventListener("hello", () => { live.textContent = "live"; live.className = "pill on"; });
  es.onerror = () => { live.textContent = "reconnecting"; live.className = "pill off"; };
  es.addEventListener("points", (e) => {
    const d = JSON.parse(e.data);
    if (d.model === state.model) addPoints(d.key, d.points);
  });
  es.addEventListener("alerts", scheduleAlerts);
  es.addEventListener("feedback", scheduleAlerts);
}

$("#f-status").addEventListener("change", loadAlerts);
$("#f-severity").addEventListener("change", loadAlerts);
loadModels().then(loadAlerts).then(connect).catch((err) => { $("#alerts-note").textContent = err.message; });
