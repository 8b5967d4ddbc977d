// oshmon control-room board. Renders the snapshot pushed by /api/stream (server-sent events).
// Every text that comes from devices or the network is written with textContent, never as HTML.
"use strict";

(function () {
  const body = document.body;
  const T = JSON.parse(body.dataset.ui || "{}");
  const LANG = body.dataset.lang || "en";
  const CSRF = body.dataset.csrf || "";
  const ROLE = body.dataset.role || "";
  const RANK = { critical: 0, alarm: 1, warning: 2, malfunction: 3 };
  let snap = null;
  let ackTarget = null;
  const seenCritical = new Set();
  let soundOn = localStorage.getItem("oshmon.sound") === "on";
  let audio = null;

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function tr(key, fallback) { return T[key] || fallback || key; }
  function num(x) {
    if (x === null || x === undefined || !isFinite(x)) return "–";
    const a = Math.abs(x);
    const digits = a === 0 ? 0 : Math.max(0, Math.min(3, 2 - Math.floor(Math.log10(a))));
    return new Intl.NumberFormat(LANG, { maximumFractionDigits: digits }).format(x);
  }
  function siteTz(site) {
    const s = (snap && snap.sites || []).find(function (x) { return x.site === site; });
    return s ? s.tz : "UTC";
  }
  function when(iso, site) {
    if (!iso) return "–";
    const d = new Date(iso);
    try {
      return new Intl.DateTimeFormat(LANG, { timeZone: siteTz(site), dateStyle: "short", timeStyle: "medium" }).format(d);
    } catch (e) { return d.toISOString(); }
  }
  function duration(seconds) {
    const s = Math.max(0, Math.floor(seconds));
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
    return (h ? h + " h " : "") + (h || m ? m + " min " : "") + (h ? "" : r + " s");
  }
  function ruleLabel(rule) { return tr("rule_" + rule, rule); }
  function where(x) {
    return [x.site, x.zone, x.device].filter(Boolean).join(" / ") + (x.worker ? " · " + tr("worker") + " " + x.worker : "");
  }

  // -- alarms ---------------------------------------------------------------------------------
  function renderAlarms() {
    const box = document.getElementById("alarms");
    const alarms = (snap.alarms || []).slice().sort(function (a, b) {
      return (RANK[a.severity] ?? 9) - (RANK[b.severity] ?? 9) || String(b.since).localeCompare(String(a.since));
    });
    document.getElementById("alarm-count").textContent = alarms.length ? "(" + alarms.length + ")" : "";
    box.replaceChildren();
    if (!alarms.length) { box.append(el("p", "empty", tr("no_alarms"))); return; }
    for (const a of alarms) box.append(alarmCard(a));
  }

  function alarmCard(a) {
    const acked = !!a.acknowledged_by;
    const card = el("article", "alarm sev-" + a.severity + (acked ? " acked" : " unacked"));
    card.dataset.alertId = a.alert_id;
    card.dataset.severity = a.severity;
    card.dataset.device = a.device || "";
    card.dataset.since = a.since || "";
    const head = el("div", "alarm-head");
    head.append(el("span", "sev", tr("sev_" + a.severity, a.severity)));
    head.append(el("span", "what", (a.hazard || "").toUpperCase() + " · " + ruleLabel(a.rule)));
    head.append(el("span", "where", where(a)));
    card.append(head);
    const fig = el("div", "figures");
    if (a.value !== null && a.value !== undefined) {
      fig.append(el("span", "value", tr("value") + ": " + num(a.value) + " " + (a.unit || "")));
      if (a.threshold !== null && a.threshold !== undefined) fig.append(el("span", "limit", tr("limit") + ": " + num(a.threshold) + " " + (a.unit || "")));
    }
    const age = el("span", "age");
    age.dataset.since = a.since || "";
    fig.append(age);
    fig.append(el("span", "since", tr("since") + " " + when(a.since, a.site)));
    card.append(fig);
    if (a.message) card.append(el("p", "message", a.message));
    if (a.action) {
      const p = el("p", "action");
      p.append(el("b", null, tr("action") + ": "), document.createTextNode(a.action));
      card.append(p);
    }
    if (a.limit_source) card.append(el("p", "source", tr("source") + ": " + a.limit_source));
    const foot = el("div", "alarm-foot");
    if (a.state === "escalated" || (a.escalations || 0) > 0) foot.append(el("span", "badge escalated", tr("escalated")));
    if (acked) {
      const who = el("span", "badge ackd", tr("acknowledged_by") + " " + a.acknowledged_by);
      foot.append(who);
      if (a.ack_note) foot.append(el("span", "note", "“" + a.ack_note + "”"));
    } else if (ROLE === "officer") {
      const b = el("button", "ack", tr("acknowledge"));
      b.type = "button";
      b.addEventListener("click", function () { openAck(a); });
      foot.append(b);
    } else if (ROLE === "viewer") {
      foot.append(el("span", "hint", tr("viewer_note")));
    }
    card.append(foot);
    return card;
  }

  function tickAges() {
    const now = Date.now();
    for (const e of document.querySelectorAll(".age[data-since]")) {
      const since = Date.parse(e.dataset.since);
      if (!isNaN(since)) e.textContent = tr("open_for") + " " + duration((now - since) / 1000);
    }
  }

  // -- zones, monitors, events ----------------------------------------------------------------
  function healthOf(site, zone, device) {
    const st = (snap.statuses || []).find(function (s) { return s.site === site && s.zone === zone && s.device === device; });
    const chips = [];
    chips.push(st ? { cls: st.state === "offline" ? "bad" : "good", text: tr(st.state, st.state) } : { cls: "unknown", text: tr("unknown") });
    for (const a of snap.alarms || []) {
      if (a.severity === "malfunction" && a.site === site && a.zone === zone && a.device === device) {
        chips.push({ cls: "bad", text: ruleLabel(a.rule) });
      }
    }
    return chips;
  }

  function renderZones() {
    const box = document.getElementById("zones");
    box.replaceChildren();
    if (snap.store_error) box.append(el("p", "warn", tr("store_error") + " (" + snap.store_error + ")"));
    const groups = new Map();
    for (const c of snap.channels || []) {
      const key = c.site + "\u0000" + c.zone;
      if (!groups.has(key)) groups.set(key, []);
      groups.get(key).push(c);
    }
    for (const s of snap.statuses || []) {
      const key = s.site + "\u0000" + s.zone;
      if (!groups.has(key)) groups.set(key, []);
    }
    for (const key of Array.from(groups.keys()).sort()) {
      const [site, zone] = key.split("\u0000");
      const zoneBox = el("div", "zone");
      zoneBox.append(el("h3", null, site + " / " + zone));
      const table = el("table", "devices");
      const devices = new Map();
      for (const c of groups.get(key)) {
        if (!devices.has(c.device)) devices.set(c.device, []);
        devices.get(c.device).push(c);
      }
      for (const s of snap.statuses || []) if (s.site === site && s.zone === zone && !devices.has(s.device)) devices.set(s.device, []);
      for (const dev of Array.from(devices.keys()).sort()) {
        const row = el("tr");
        const name = el("th", null, dev);
        row.append(name);
        const health = el("td", "health");
        for (const chip of healthOf(site, zone, dev)) health.append(el("span", "chip " + chip.cls, chip.text));
        row.append(health);
        const vals = el("td", "values");
        const chans = devices.get(dev).slice().sort(function (a, b) { return a.hazard.localeCompare(b.hazard); });
        if (!chans.length) vals.append(el("span", "chip unknown", tr("no_recent")));
        for (const c of chans) vals.append(channelChip(c));
        row.append(vals);
        table.append(row);
      }
      zoneBox.append(table);
      box.append(zoneBox);
    }
  }

  function channelChip(c) {
    const chip = el("span", "reading st-" + c.state);
    chip.append(el("b", null, c.hazard.toUpperCase() + (c.worker ? " (" + c.worker + ")" : "")));
    chip.append(document.createTextNode(" " + num(c.value) + " " + (c.unit || "")));
    if (c.state === "not_judged") {
      chip.append(el("small", null, " " + tr("not_judged") + " " + c.profile));
    } else if (c.limit !== null && c.limit !== undefined) {
      chip.append(el("small", null, " / " + num(c.limit) + " " + (c.limit_label || "") + (c.state === "averaged" ? " · " + tr("averaged") : "")));
    }
    chip.title = (c.limit_source || "") + " · " + when(c.t, c.site);
    return chip;
  }

  function renderMonitors() {
    const box = document.getElementById("monitors");
    box.replaceChildren();
    const rows = snap.monitors || [];
    if (!rows.length) { box.append(el("p", "empty", "–")); return; }
    const table = el("table", "monitors");
    const head = el("tr");
    for (const h of [tr("worker"), tr("hazard"), tr("device"), tr("shift"), tr("twa_so_far") + " / " + tr("lex_so_far"), tr("projected"), tr("limit")]) head.append(el("th", null, h));
    table.append(head);
    for (const m of rows) {
      const tr_ = el("tr");
      const noise = m.hazard === "noise";
      const now = noise ? m.lex8h : m.twa8, proj = noise ? m.lex8h_projected : m.twa8_projected;
      const over = m.limit !== null && proj !== null && proj >= m.limit;
      if (over) tr_.className = "over";
      if (!m.judged) tr_.className = "unjudged";
      const limitText = m.judged ? num(m.limit) + (m.averaging === "shift" ? " (" + tr("rule_twa") + ")" : "") : tr("not_judged");
      for (const v of [m.worker, m.hazard.toUpperCase(), m.site + " / " + m.zone + " / " + m.device, m.shift, num(now), num(proj), limitText]) tr_.append(el("td", null, v));
      table.append(tr_);
    }
    box.append(table);
  }

  function renderEvents() {
    const box = document.getElementById("events");
    box.replaceChildren();
    const rows = snap.events || [];
    if (!rows.length) { box.append(el("p", "empty", tr("no_events"))); return; }
    const table = el("table", "events");
    const head = el("tr");
    for (const h of [tr("time"), tr("event"), tr("hazard"), tr("site") + " / " + tr("zone") + " / " + tr("device"), tr("value"), ""]) head.append(el("th", null, h));
    table.append(head);
    for (const e of rows) {
      const r = el("tr", "sev-" + e.severity + (e.signed === false ? " unsigned" : ""));
      r.append(el("td", null, when(e.t, e.site)));
      r.append(el("td", null, tr("ev_" + e.event, e.event) + " · " + tr("sev_" + e.severity, e.severity)));
      r.append(el("td", null, (e.hazard || "").toUpperCase() + " · " + ruleLabel(e.rule)));
      r.append(el("td", null, where(e)));
      r.append(el("td", null, e.value === null || e.value === undefined ? "" : num(e.value) + " " + (e.unit || "")));
      const last = el("td", null, e.by ? e.by + (e.note ? ": " + e.note : "") : (e.message || ""));
      if (e.signed === false) {
        const chip = el("span", "chip bad", tr("unverified"));
        if (e.unsigned_reason) chip.title = e.unsigned_reason;
        last.prepend(chip);
      }
      r.append(last);
      table.append(r);
    }
    box.append(table);
  }

  function renderBanner() {
    const b = document.getElementById("banner");
    if (snap.connected) { b.hidden = true; return; }
    const since = snap.disconnected_since_s ? new Date(snap.disconnected_since_s * 1000).toLocaleTimeString(LANG) : "";
    b.textContent = tr("broker_lost") + " " + since + ": " + tr("broker_lost_tail");
    b.hidden = false;
  }

  function render(s) {
    snap = s;
    renderBanner();
    renderAlarms();
    renderZones();
    renderMonitors();
    renderEvents();
    tickAges();
    alertSound();
  }

  // -- acknowledgement ------------------------------------------------------------------------
  function openAck(a) {
    ackTarget = a;
    document.getElementById("ack-what").textContent = (a.hazard || "").toUpperCase() + " · " + where(a);
    document.getElementById("ack-note").value = "";
    document.getElementById("ack-dialog").showModal();
  }

  async function sendAck(a, note) {
    const r = await fetch("/api/alarms/" + encodeURIComponent(a.alert_id) + "/ack", {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": CSRF },
      body: JSON.stringify({ note: note }),
    });
    const body = await r.json().catch(function () { return {}; });
    toast(r.status === 202 ? tr("ack_sent") : tr("ack_failed") + ": " + (body.error || r.status), r.status !== 202);
  }

  function toast(text, bad) {
    const t = document.getElementById("toast");
    t.textContent = text;
    t.className = bad ? "bad" : "good";
    t.hidden = false;
    setTimeout(function () { t.hidden = true; }, 5000);
  }

  // -- sound: a repeating tone while an unacknowledged critical alarm is on the board ------------
  function alertSound() {
    const critical = (snap.alarms || []).filter(function (a) { return a.severity === "critical" && !a.acknowledged_by; });
    for (const a of critical) seenCritical.add(a.alert_id);
    if (!soundOn || !critical.length) return;
    beep();
  }
  function beep() {
    try {
      audio = audio || new (window.AudioContext || window.webkitAudioContext)();
      const o = audio.createOscillator(), g = audio.createGain();
      o.frequency.value = 880; g.gain.value = 0.2;
      o.connect(g); g.connect(audio.destination);
      o.start(); o.stop(audio.currentTime + 0.4);
    } catch (e) { /* no audio device */ }
  }
  function setSound(on) {
    soundOn = on;
    localStorage.setItem("oshmon.sound", on ? "on" : "off");
    const b = document.getElementById("sound");
    b.setAttribute("aria-pressed", on ? "true" : "false");
    b.querySelector("span").textContent = on ? tr("sound_on") : tr("sound_off");
  }

  // -- live connection ------------------------------------------------------------------------
  function connect() {
    const es = new EventSource("/api/stream");
    es.addEventListener("board", function (m) { render(JSON.parse(m.data)); });
    es.addEventListener("alarms", function (m) {  // alarms alone, ahead of the rest: render them first
      if (!snap) return;
      Object.assign(snap, JSON.parse(m.data));
      renderBanner();
      renderAlarms();
      tickAges();
      alertSound();
    });
    es.onerror = function () {
      const b = document.getElementById("banner");
      b.textContent = tr("board_lost");
      b.hidden = false;
      if (es.readyState === EventSource.CLOSED) setTimeout(connect, 2000);
    };
  }

  document.addEventListener("DOMContentLoaded", function () {
    setSound(soundOn);
    document.getElementById("sound").addEventListener("click", function () { setSound(!soundOn); if (soundOn) beep(); });
    document.getElementById("ack-form").addEventListener("submit", function (ev) {
      const send = ev.submitter && ev.submitter.value === "send";
      if (send && ackTarget) sendAck(ackTarget, document.getElementById("ack-note").value);
      ackTarget = null;
    });
    setInterval(tickAges, 1000);
    setInterval(function () { if (soundOn && snap && (snap.alarms || []).some(function (a) { return a.severity === "critical" && !a.acknowledged_by; })) beep(); }, 3000);
    connect();
  });
})();
