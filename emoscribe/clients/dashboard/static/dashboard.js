// emoscribe live dashboard: draws the server-sent events of the dashboard server with plotly.js.
// Every stream gets a card with two plots over stream time: the emotion posteriors of each utterance (with
// arousal and valence when the messages carry them, and alerts as markers), and pitch and intensity from the
// rolling and final cues. Everything kept is bounded: points per line, cards on the page, alerts per card.
"use strict";

const COLOURS = {
  neutral: "#7f8c8d", calm: "#16a085", happy: "#e1b000", sad: "#2f6fb5",
  angry: "#c0392b", fearful: "#8e44ad", disgust: "#4d8f2a", surprised: "#e67e22",
};
const ALERTS_LISTED = 20;
const RENDER_EVERY_MS = 200;
const PLOT_OPTIONS = { displayModeBar: false, responsive: true };

let settings = { max_streams: 12, max_points: 600 };
const streams = new Map();
const healthSeries = { time: [], p95: [], queue: [] };
let lastHeartbeat = null;
let heartbeatPeriod = null;
let received = 0;
let unreadable = 0;
let renderPending = false;
let revision = 0;

class Series {
  constructor() { this.x = []; this.y = []; this.text = []; }
  push(x, y, text = "") {
    this.x.push(x); this.y.push(y); this.text.push(text);
    const excess = this.x.length - settings.max_points;
    if (excess > 0) { this.x.splice(0, excess); this.y.splice(0, excess); this.text.splice(0, excess); }
  }
  get length() { return this.x.length; }
}

function finite(value) {
  return typeof value === "number" && Number.isFinite(value) ? value : null;
}

function streamCard(id) {
  let stream = streams.get(id);
  if (stream) { stream.active = Date.now(); return stream; }
  const card = document.getElementById("stream-template").content.firstElementChild.cloneNode(true);
  card.dataset.stream = id;
  card.dataset.state = "open";
  card.dataset.utterances = "0";
  card.querySelector(".stream-id").textContent = id;
  card.querySelector(".stream-state").textContent = "open";
  stream = {
    id, card, active: Date.now(), utterances: 0, dirty: true,
    posteriors: new Map(), arousal: new Series(), valence: new Series(),
    alertEnter: new Series(), alertLeave: new Series(),
    pitch: new Series(), intensity: new Series(), pitchFinal: new Series(), intensityFinal: new Series(),
  };
  streams.set(id, stream);
  document.getElementById("no-streams").hidden = true;
  document.getElementById("streams").prepend(card);
  evictStreams();
  return stream;
}

function dropStream(stream) {
  Plotly.purge(stream.card.querySelector(".emotion-plot"));
  Plotly.purge(stream.card.querySelector(".acoustic-plot"));
  stream.card.remove();
  streams.delete(stream.id);
}

function forgetStreams() {
  for (const stream of [...streams.values()]) dropStream(stream);
}

function evictStreams() {
  // Over the limit: the longest-idle ended stream goes first, else the longest-idle one.
  while (streams.size > settings.max_streams) {
    const ordered = [...streams.values()].sort((a, b) => a.active - b.active);
    dropStream(ordered.find((s) => s.card.dataset.state === "ended") || ordered[0]);
  }
}

function middle(payload) {
  return (finite(payload.start) + finite(payload.end)) / 2;
}

function onUtterance(stream, payload) {
  const at = middle(payload);
  const emotion = payload.emotion;
  stream.utterances += 1;
  stream.card.dataset.utterances = String(stream.utterances);
  stream.card.querySelector(".stream-count").textContent = `${stream.utterances} utterances`;
  if (emotion && emotion.posteriors) {
    for (const [label, p] of Object.entries(emotion.posteriors)) {
      if (!stream.posteriors.has(label)) stream.posteriors.set(label, new Series());
      stream.posteriors.get(label).push(at, finite(p), payload.caption || "");
    }
    if ("arousal" in emotion) stream.arousal.push(at, finite(emotion.arousal));
    if ("valence" in emotion) stream.valence.push(at, finite(emotion.valence));
  }
  const cues = payload.cues || {};
  stream.pitch.push(at, null);  // the rolling lines break between utterances
  stream.intensity.push(at, null);
  stream.pitchFinal.push(at, finite(cues.f0_median_hz), payload.caption || "");
  stream.intensityFinal.push(at, finite(cues.intensity_mean_db), payload.caption || "");
  const reason = payload.abstain_reason ? `no label (${payload.abstain_reason})` : "uncertain";
  const label = payload.policy === "cues_only" ? `cues only (${payload.role})`
    : emotion ? (emotion.label || reason) : "no emotion (engine busy)";
  const confidence = emotion && finite(emotion.confidence) !== null ? ` ${emotion.confidence.toFixed(2)}` : "";
  stream.card.querySelector(".caption").textContent =
    `${payload.end.toFixed(1)} s · ${label}${confidence} · ${payload.caption || ""}`;
}

function onCues(stream, payload) {
  const cues = payload.cues || {};
  stream.pitch.push(finite(payload.end), finite(cues.f0_median_hz));
  stream.intensity.push(finite(payload.end), finite(cues.intensity_mean_db));
}

function onStream(stream, payload) {
  const ended = payload.event === "end";
  stream.card.dataset.state = ended ? "ended" : "open";
  stream.card.querySelector(".stream-state").textContent =
    ended ? `ended${payload.reason ? ` (${payload.reason})` : ""}` : "open";
}

function onAlert(stream, payload) {
  const entering = payload.state === "enter";
  const score = finite(payload.score);
  const text = `${payload.text} (${score === null ? "–" : score.toFixed(2)})`;
  (entering ? stream.alertEnter : stream.alertLeave).push(middle(payload), 1.08, text);
  const item = document.createElement("li");
  item.dataset.state = payload.state;
  item.dataset.query = payload.query_id;
  item.textContent = `${payload.end.toFixed(1)} s ${entering ? "▲" : "▽"} ${text}`;
  const list = stream.card.querySelector(".alerts");
  list.prepend(item);
  while (list.children.length > ALERTS_LISTED) list.lastElementChild.remove();
}

function onHeartbeat(payload) {
  const now = Date.now();
  if (lastHeartbeat !== null) heartbeatPeriod = now - lastHeartbeat;
  lastHeartbeat = now;
  text("health-active", payload.active_streams);
  if ("queue_depth" in payload) text("health-queue", payload.queue_depth);
  showHeartbeatAge();
}

function onMessage(event) {
  let message;
  try { message = JSON.parse(event.data); } catch (error) { unreadable += 1; return; }
  received += 1;
  document.body.dataset.received = String(received);
  const kind = message.topic.split(".", 1)[0];
  const payload = message.payload;
  if (kind === "heartbeat") { onHeartbeat(payload); return; }
  const handler = { utterance: onUtterance, cues: onCues, stream: onStream, alert: onAlert }[kind];
  if (!handler) return;
  const stream = streamCard(payload.stream || message.topic.slice(kind.length + 1));
  handler(stream, payload);
  stream.dirty = true;
  scheduleRender();
}

function line(series, name, extra = {}) {
  return { x: series.x, y: series.y, text: series.text, name, type: "scatter", mode: "lines+markers",
    marker: { size: 5 }, hovertemplate: "%{y:.2f} @ %{x:.1f} s<br>%{text}<extra>%{fullData.name}</extra>",
    ...extra };
}

function emotionTraces(stream) {
  const traces = [...stream.posteriors.entries()].map(([label, series]) =>
    line(series, label, { line: { color: COLOURS[label], width: 1.5 } }));
  const axis2 = { yaxis: "y2", line: { dash: "dot", width: 2 } };
  if (stream.arousal.length) traces.push(line(stream.arousal, "arousal", { ...axis2, line: { ...axis2.line, color: "#222" } }));
  if (stream.valence.length) traces.push(line(stream.valence, "valence", { ...axis2, line: { ...axis2.line, color: "#999" } }));
  const marker = (series, name, symbol, colour) => ({
    x: series.x, y: series.y, text: series.text, name, type: "scatter", mode: "markers", cliponaxis: false,
    marker: { symbol, size: 12, color: colour }, hovertemplate: "%{text} @ %{x:.1f} s<extra>%{fullData.name}</extra>",
  });
  if (stream.alertEnter.length) traces.push(marker(stream.alertEnter, "alert", "triangle-up", "#c0392b"));
  if (stream.alertLeave.length) traces.push(marker(stream.alertLeave, "alert end", "triangle-down", "#7f8c8d"));
  return traces;
}

function acousticTraces(stream) {
  return [
    line(stream.pitch, "pitch (rolling)", { line: { color: "#2f6fb5", width: 1 }, marker: { size: 3 } }),
    line(stream.pitchFinal, "pitch", { mode: "markers", marker: { size: 9, color: "#2f6fb5", symbol: "diamond" } }),
    line(stream.intensity, "intensity (rolling)", { yaxis: "y2", line: { color: "#c77c02", width: 1 }, marker: { size: 3 } }),
    line(stream.intensityFinal, "intensity", { yaxis: "y2", mode: "markers", marker: { size: 9, color: "#c77c02", symbol: "diamond" } }),
  ];
}

function layout(yTitle, y2Title, extra = {}) {
  return {
    datarevision: revision, uirevision: "keep", margin: { l: 48, r: 48, t: 8, b: 30 },
    xaxis: { title: { text: "stream time (s)", standoff: 4 }, zeroline: false },
    yaxis: { title: { text: yTitle } }, legend: { orientation: "h", y: -0.28, font: { size: 10 } },
    yaxis2: { title: { text: y2Title }, overlaying: "y", side: "right", showgrid: false },
    font: { size: 10 }, ...extra,
  };
}

function render() {
  renderPending = false;
  revision += 1;
  for (const stream of streams.values()) {
    if (!stream.dirty) continue;
    stream.dirty = false;
    const emotion = stream.card.querySelector(".emotion-plot");
    const acoustic = stream.card.querySelector(".acoustic-plot");
    Plotly.react(emotion, emotionTraces(stream),
      layout("posterior", "arousal / valence", { yaxis: { title: { text: "posterior" }, range: [0, 1.12] } }),
      PLOT_OPTIONS);
    Plotly.react(acoustic, acousticTraces(stream), layout("pitch (Hz)", "intensity (dB)"), PLOT_OPTIONS);
  }
}

function scheduleRender() {
  if (renderPending) return;
  renderPending = true;
  setTimeout(render, RENDER_EVERY_MS);
}

function text(id, value) {
  document.getElementById(id).textContent = value === null || value === undefined ? "–" : String(value);
}

function tally(counts) {
  const entries = Object.entries(counts || {}).filter(([, n]) => n > 0);
  return entries.length ? entries.map(([reason, n]) => `${reason} ${n}`).join(", ") : "0";
}

function ms(value) {
  return value === null || value === undefined ? "–" : value.toFixed(1);
}

function onHealth(event) {
  const health = JSON.parse(event.data);
  const state = document.getElementById("health-state");
  state.dataset.state = health.up === true ? "up" : health.up === false ? "down" : "unknown";
  state.textContent = health.up === true ? "up" : health.up === false ? "down" : "metrics not watched";
  state.title = health.error || "";
  text("health-lost", (health.lost || 0) + (health.dashboard_dropped || 0));
  if (health.up !== true) return;
  text("health-active", health.active_streams);
  text("health-queue", health.queue_depth);
  const rate = health.utterance_rate === null ? "" : ` (${health.utterance_rate.toFixed(2)}/s)`;
  text("health-utterances", `${health.utterances}${rate}`);
  const l = health.latency_ms;
  text("health-latency", `${ms(l.p50)} / ${ms(l.p95)} / ${ms(l.p99)} ms ${health.latency_scope === "window" ? "(last minute)" : "(since start)"}`);
  text("health-batch", health.batch_mean === null ? null : health.batch_mean.toFixed(2));
  text("health-drops", tally(health.drops));
  text("health-errors", tally(health.errors));
  text("health-rejected", health.source_rejected);
  healthSeries.time.push(new Date());
  healthSeries.p95.push(l.p95);
  healthSeries.queue.push(health.queue_depth);
  for (const values of Object.values(healthSeries)) if (values.length > settings.max_points) values.shift();
  const queueTop = Math.max(4, ...healthSeries.queue);  // whole utterances: integer ticks
  Plotly.react("health-plot", [
    { x: healthSeries.time, y: healthSeries.p95, name: "p95 end → publish (ms)", type: "scatter", mode: "lines" },
    { x: healthSeries.time, y: healthSeries.queue, name: "engine queue", type: "scatter", mode: "lines", yaxis: "y2" },
  ], {
    datarevision: healthSeries.time.length, margin: { l: 40, r: 40, t: 8, b: 24 }, font: { size: 10 },
    legend: { orientation: "h", y: 1.15 }, yaxis: { title: { text: "ms" }, rangemode: "tozero" },
    yaxis2: { overlaying: "y", side: "right", showgrid: false, range: [0, 1.1 * queueTop], dtick: Math.ceil(queueTop / 4) },
  }, PLOT_OPTIONS);
}

function showHeartbeatAge() {
  const element = document.getElementById("health-heartbeat");
  if (lastHeartbeat === null) { element.textContent = "none yet"; return; }
  const age = (Date.now() - lastHeartbeat) / 1000;
  const limit = Math.max(3 * (heartbeatPeriod || 5000) / 1000, 10);
  element.textContent = `${age.toFixed(0)} s ago`;
  element.dataset.stale = String(age > limit);
}

async function start() {
  try {
    settings = { ...settings, ...(await (await fetch("config.json")).json()) };
  } catch (error) { /* the defaults serve */ }
  text("endpoint", `daemon ${settings.endpoint || ""}`);
  const connection = document.getElementById("connection");
  const events = new EventSource("events");
  let opened = false;
  events.onopen = () => {
    if (opened) forgetStreams();  // the server replays its history to every new connection
    opened = true;
    connection.dataset.state = "live";
    connection.textContent = "live";
  };
  events.onerror = () => { connection.dataset.state = "lost"; connection.textContent = "reconnecting…"; };
  events.onmessage = onMessage;
  events.addEventListener("health", onHealth);
  setInterval(showHeartbeatAge, 1000);
}

start();
