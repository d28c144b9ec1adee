// mq's web console: polls mqd's admin API (/api/...) and draws what it
// finds; purge and delete send the admin token typed in the header.
"use strict";

const POLL_MS = 1000;
const WINDOW_MS = 5 * 60 * 1000;

const state = {
  // {t, in, out}: message rates, one point per poll.
  rates: [],
  last: null,             // the previous overview sample: {t, in, out}
  topicLast: new Map(),   // topic -> {t, n}: for per-topic rates
  topicRate: new Map(),   // topic -> msg/s
  armed: null,            // topic whose delete awaits its confirmation
};

const $ = (id) => document.getElementById(id);
const token = () => $("token").value.trim();

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null && v !== false) node.setAttribute(k, v);
  }
  for (const c of children) node.append(c instanceof Node ? c : String(c));
  return node;
}

function say(text, bad) {
  const m = $("message");
  m.textContent = text;
  m.className = bad ? "message bad" : "message";
}

async function api(method, path) {
  const headers = {};
  if (token()) headers["Authorization"] = "Bearer " + token();
  const res = await fetch(path, { method, headers, cache: "no-store" });
  let body = null;
  try { body = await res.json(); } catch (_) { /* not JSON */ }
  if (!res.ok) {
    const why = body && body.error ? body.error : res.status + " " + res.statusText;
    throw new Error(why);
  }
  return body;
}

function fmt(n) {
  if (n >= 1e9) return (n / 1e9).toFixed(1) + "G";
  if (n >= 1e6) return (n / 1e6).toFixed(1) + "M";
  if (n >= 1e4) return (n / 1e3).toFixed(1) + "k";
  return String(n);
}

function rate(r) {
  return r >= 100 ? r.toFixed(0) : r.toFixed(1);
}

// ---------------------------------------------------------------- overview

function overview(o, now) {
  // A rate over less than half a second (a refresh right after another,
  // after a button) says more about timing than about traffic: wait.
  const dt = state.last ? (now - state.last.t) / 1000 : 0;
  if (!state.last || dt >= 0.5) {
    if (state.last) {
      state.rates.push({
        t: now,
        in: Math.max(0, o.messages_in - state.last.in) / dt,
        out: Math.max(0, o.messages_out - state.last.out) / dt,
      });
    }
    state.last = { t: now, in: o.messages_in, out: o.messages_out };
  }
  while (state.rates.length && state.rates[0].t < now - WINDOW_MS) state.rates.shift();
  const latest = state.rates[state.rates.length - 1];
  const cards = [
    ["connections", o.connections], ["sessions", o.sessions], ["topics", o.topics],
    ["subscriptions", o.subscriptions], ["queued", o.queued], ["in flight", o.inflight],
    ["messages in", o.messages_in], ["messages out", o.messages_out],
    ["dead-lettered", o.dead_lettered],
  ];
  $("overview").replaceChildren(...cards.map(([k, v]) =>
    el("div", { class: "card", "data-card": k },
      el("div", { class: "v" }, fmt(v)), el("div", { class: "k" }, k))));
  $("rates-now").textContent = latest
    ? "now: " + rate(latest.in) + " in/s, " + rate(latest.out) + " out/s" : "";
  $("rates").dataset.points = String(state.rates.length);
  plot();
}

function plot() {
  const canvas = $("rates");
  const ctx = canvas.getContext("2d");
  const w = canvas.width, h = canvas.height;
  const pad = { l: 48, r: 10, t: 10, b: 22 };
  ctx.clearRect(0, 0, w, h);
  const pts = state.rates;
  const max = Math.max(1, ...pts.map((p) => Math.max(p.in, p.out)));
  const top = niceCeil(max);
  ctx.font = "11px system-ui, sans-serif";
  ctx.fillStyle = "#6b7385";
  ctx.strokeStyle = "#dde1ea";
  ctx.lineWidth = 1;
  for (let i = 0; i <= 5; i++) {
    const y = pad.t + (h - pad.t - pad.b) * (i / 5);
    ctx.beginPath(); ctx.moveTo(pad.l, y); ctx.lineTo(w - pad.r, y); ctx.stroke();
    const v = top * (1 - i / 5);
    ctx.fillText(top >= 10 ? fmt(Math.round(v)) : String(+v.toFixed(2)), 4, y + 4);
  }
  const now = pts.length ? pts[pts.length - 1].t : Date.now();
  // The last five minutes, or since the page opened when that is shorter.
  const span = Math.max(10000, Math.min(WINDOW_MS, pts.length ? now - pts[0].t : 0));
  ctx.fillText(span >= WINDOW_MS ? "-5 min" : "-" + Math.round(span / 1000) + " s", pad.l, h - 6);
  ctx.fillText("now", w - pad.r - 22, h - 6);
  const x = (t) => pad.l + (w - pad.l - pad.r) * (1 - (now - t) / span);
  const y = (v) => pad.t + (h - pad.t - pad.b) * (1 - v / top);
  // Out wide underneath, in thin on top: both show where they coincide.
  for (const [key, color, width] of [["out", "#1f9d5a", 4], ["in", "#2f6fde", 1.5]]) {
    ctx.strokeStyle = color;
    ctx.lineWidth = width;
    ctx.beginPath();
    pts.forEach((p, i) => (i ? ctx.lineTo(x(p.t), y(p[key])) : ctx.moveTo(x(p.t), y(p[key]))));
    ctx.stroke();
  }
}

function niceCeil(v) {
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 5, 10]) if (v <= m * p) return m * p;
  return 10 * p;
}

// ------------------------------------------------------------------ topics

function topics(list, now) {
  const seen = new Set();
  for (const t of list) {
    seen.add(t.name);
    const prev = state.topicLast.get(t.name);
    if (prev && now > prev.t) {
      state.topicRate.set(t.name, Math.max(0, t.messages_in - prev.n) / ((now - prev.t) / 1000));
    }
    state.topicLast.set(t.name, { t: now, n: t.messages_in });
  }
  for (const name of [...state.topicLast.keys()]) {
    if (!seen.has(name)) { state.topicLast.delete(name); state.topicRate.delete(name); }
  }
  const body = $("topics").tBodies[0];
  // Keep a row whose purge field is being typed in.
  const typing = document.activeElement && document.activeElement.dataset.purgeFor;
  if (typing) return;
  const rows = list.map((t) => {
    const seqs = t.last_seq === 0 ? "none yet"
      : (t.first_seq ? t.first_seq : "-") + " \u2026 " + t.last_seq;
    return el("tr", { "data-topic": t.name },
      el("td", { class: "name" }, t.name),
      el("td", { class: "seqs" }, seqs),
      el("td", { class: "n kept" }, fmt(t.retained)),
      el("td", { class: "n" }, fmt(t.retained_bytes)),
      el("td", { class: "n subs" }, t.subscribers),
      el("td", { class: "n in" }, fmt(t.messages_in)),
      el("td", { class: "n rate" }, rate(state.topicRate.get(t.name) || 0)),
      manage(t));
  });
  if (!rows.length) rows.push(el("tr", {}, el("td", { class: "empty", colspan: 8 }, "no topics yet")));
  body.replaceChildren(...rows);
  $("topics-count").textContent = "(" + list.length + ")";
}

function manage(t) {
  const locked = !token();
  const why = locked ? "type an admin token above first" : undefined;
  const before = el("input", {
    type: "number", min: 0, placeholder: "before seq", "data-purge-for": t.name,
    value: undefined, disabled: locked, title: why,
  });
  const purge = el("button", {
    class: "purge", disabled: locked, title: why || "drop the messages below this sequence",
    onclick: () => doPurge(t.name, before.value),
  }, "Purge");
  const armed = state.armed === t.name;
  const del = el("button", {
    class: armed ? "danger armed delete" : "danger delete", disabled: locked,
    title: why || "delete the topic with its messages and numbering",
    onclick: () => doDelete(t.name),
  }, armed ? "Confirm delete" : "Delete");
  return el("td", { class: "manage" }, before, purge, del);
}

async function doPurge(name, before) {
  if (before === "" || !(Number(before) >= 0)) {
    say("purge " + name + ": say below which sequence number to purge", true);
    return;
  }
  try {
    const r = await api("POST", "/api/topics/" + encodeURIComponent(name) +
      "/purge?before=" + encodeURIComponent(before));
    say("purged " + name + " below " + before + ": " + r.purged.retained +
      " kept messages, " + r.purged.queued + " queued copies");
  } catch (e) {
    say("purge " + name + " refused: " + e.message, true);
  }
  refresh();
}

async function doDelete(name) {
  if (state.armed !== name) {
    state.armed = name;
    setTimeout(() => { if (state.armed === name) { state.armed = null; refresh(); } }, 5000);
    refresh();
    return;
  }
  state.armed = null;
  try {
    const r = await api("DELETE", "/api/topics/" + encodeURIComponent(name));
    say("deleted " + name + ": " + r.deleted.retained + " kept messages, " +
      r.deleted.queued + " queued copies");
  } catch (e) {
    say("delete " + name + " refused: " + e.message, true);
  }
  refresh();
}

// ---------------------------------------------------------------- sessions

function sessions(list) {
  const rows = [];
  for (const s of list) {
    const st = (s.connected ? "connected" : "away") + (s.persistent ? ", persistent" : "");
    const subs = s.subscriptions.length ? s.subscriptions : [null];
    for (const sub of subs) {
      rows.push(el("tr", { "data-client": s.client },
        el("td", { class: "client" }, s.client),
        el("td", { class: "state" }, st),
        el("td", { class: "n" }, sub ? sub.id : ""),
        el("td", { class: "filter" }, sub ? sub.filter : "-"),
        el("td", {}, sub && sub.group ? sub.group : ""),
        el("td", { class: "n waiting" }, sub ? fmt(sub.waiting) : ""),
        el("td", { class: "n inflight" }, sub ? fmt(sub.inflight) : ""),
        el("td", { class: "n dead" }, sub ? fmt(sub.dead_lettered) : "")));
    }
  }
  if (!rows.length) rows.push(el("tr", {}, el("td", { class: "empty", colspan: 8 }, "no sessions")));
  $("sessions").tBodies[0].replaceChildren(...rows);
  $("sessions-count").textContent = "(" + list.length + ")";
}

// ------------------------------------------------------------------- polls

let polling = false;

async function refresh() {
  if (polling) return;
  polling = true;
  try {
    const [o, t, s] = await Promise.all([
      api("GET", "/api/overview"), api("GET", "/api/topics"), api("GET", "/api/sessions"),
    ]);
    const now = Date.now();
    overview(o, now);
    topics(t.topics, now);
    sessions(s.sessions);
    const status = $("status");
    status.textContent = "live \u00b7 updated " + new Date(now).toLocaleTimeString();
    status.className = "status";
  } catch (e) {
    const status = $("status");
    status.textContent = "cannot reach mqd: " + e.message;
    status.className = "status down";
  } finally {
    polling = false;
  }
}

$("token").value = sessionStorage.getItem("mq-token") || "";
$("token").addEventListener("input", () => {
  sessionStorage.setItem("mq-token", token());
  refresh();
});
refresh();
setInterval(refresh, POLL_MS);
