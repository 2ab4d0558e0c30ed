// The live page: polls /api/live once a second (only while the tab is visible) and draws
// the last minutes as plain SVG. No libraries, nothing loaded from elsewhere.
"use strict";

const SPAN_MAX_S = 300;      // the charts show up to the last five minutes
const KEEP = 600;            // points kept (the server's ring holds as many)
const SVG = "http://www.w3.org/2000/svg";
const fmt = new Intl.NumberFormat("en-US");
const state = { seq: null, started: null, points: [], timer: null, updates: 0, last: null };

const TILES = {
  produce: [
    ["Received /s", "rate"],
    ["Accepted", "tweetpipe_produce_records_accepted_total"],
    ["Delivered", "tweetpipe_produce_records_delivered_total"],
    ["Waiting", "lag"],
    ["Spilled", "tweetpipe_produce_records_spilled_total"],
    ["Dropped", "tweetpipe_produce_records_dropped_total"],
    ["Last HTTP status", "tweetpipe_produce_stream_last_http_status"],
  ],
  consume: [
    ["Tweets /s", "rate"],
    ["Tweets written", 'tweetpipe_consume_records_written_total{kind="tweet"}'],
    ["Control messages", 'tweetpipe_consume_records_written_total{kind="control"}'],
    ["Errors", 'tweetpipe_consume_records_written_total{kind="error"}'],
    ["Kafka lag", "sum:tweetpipe_consume_lag_records"],
    ["Partitions", "tweetpipe_consume_partitions_owned"],
  ],
};

function $(id) { return document.getElementById(id); }

function number(v) {
  if (v === null || v === undefined || Number.isNaN(v)) return "–";
  if (Math.abs(v) < 100 && !Number.isInteger(v)) return v.toFixed(1);
  return fmt.format(Math.round(v));
}

function metricValue(metrics, key) {
  if (key.startsWith("sum:")) {
    const prefix = key.slice(4) + "{";
    let sum = 0;
    for (const [k, v] of Object.entries(metrics)) if (k.startsWith(prefix)) sum += v;
    return sum;
  }
  return metrics[key];
}

function setup(command) {
  document.body.className = command;
  $("command").textContent = command;
  document.title = "tweetpipe " + command;
  $("rate-title").textContent = command === "produce" ? "Records per second" : "Tweets per second";
  $("lag-title").textContent = command === "produce" ? "Waiting for Kafka (records)" : "Kafka lag (records)";
  $("rate-legend").replaceChildren();
  if (command === "produce") {
    for (const [cls, label] of [["var(--a)", "received"], ["var(--b)", "delivered"]]) {
      const i = document.createElement("i");
      i.style.background = cls;
      $("rate-legend").append(i, label);
    }
  }
  const tiles = $("tiles");
  tiles.replaceChildren();
  for (const [label, key] of TILES[command] || []) {
    const tile = document.createElement("div");
    tile.className = "tile";
    tile.dataset.metric = key;
    const l = document.createElement("div");
    l.className = "label";
    l.textContent = label;
    const v = document.createElement("div");
    v.className = "value";
    v.textContent = "–";
    tile.append(l, v);
    tiles.append(tile);
  }
}

function renderTiles(data) {
  const last = state.points[state.points.length - 1];
  for (const tile of $("tiles").children) {
    const key = tile.dataset.metric;
    let v;
    if (key === "rate") v = last ? last.rate : null;
    else if (key === "lag") v = last ? last.lag : null;
    else v = metricValue(data.metrics, key);
    tile.dataset.value = v === undefined || v === null ? "" : String(v);
    tile.querySelector(".value").textContent = number(v);
  }
}

function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 2.5, 5, 10]) if (v <= m * p) return m * p;
  return 10 * p;
}

// Draws `series` (arrays of [t_ms, value|null]) into `svg`; min/max fixed or from the data.
function chart(svg, series, opts = {}) {
  const w = Math.max(svg.clientWidth || 300, 120), h = Math.max(svg.clientHeight || 180, 80);
  const left = 48, right = 8, top = 8, bottom = 20;
  const all = series.flat().filter((p) => p[1] !== null);
  const tEnd = all.length ? Math.max(...all.map((p) => p[0])) : Date.now();
  const tFirst = all.length ? Math.min(...all.map((p) => p[0])) : tEnd;
  // One minute at first, growing by the minute to five as history builds up.
  const SPAN_S = Math.min(SPAN_MAX_S, Math.max(60, Math.ceil((tEnd - tFirst) / 60000) * 60));
  const t0 = tEnd - SPAN_S * 1000;
  let lo = opts.min ?? 0, hi = opts.max;
  if (hi === undefined) hi = niceMax(Math.max(0, ...all.map((p) => p[1])));
  if (opts.symmetric) {
    const m = Math.max(0.1, ...all.map((p) => Math.abs(p[1])));
    hi = Math.ceil(m * 10) / 10;
    lo = -hi;
  }
  const x = (t) => left + ((t - t0) / (SPAN_S * 1000)) * (w - left - right);
  const y = (v) => top + (1 - (v - lo) / (hi - lo || 1)) * (h - top - bottom);
  const parts = [];
  for (const f of [0, 0.5, 1]) {
    const v = lo + f * (hi - lo);
    parts.push(`<line class="grid" x1="${left}" x2="${w - right}" y1="${y(v)}" y2="${y(v)}"/>`);
    parts.push(`<text class="axis" x="${left - 4}" y="${y(v) + 4}" text-anchor="end">${axisLabel(v, hi - lo)}</text>`);
  }
  if (lo < 0) parts.push(`<line class="zero" x1="${left}" x2="${w - right}" y1="${y(0)}" y2="${y(0)}"/>`);
  const ago = (s) => "−" + (s / 60).toLocaleString("en-US") + " min";
  for (const [s, label] of [[0, ago(SPAN_S)], [SPAN_S / 2, ago(SPAN_S / 2)], [SPAN_S, "now"]]) {
    const anchor = s === 0 ? "start" : s === SPAN_S ? "end" : "middle";
    parts.push(`<text class="axis" x="${x(t0 + s * 1000)}" y="${h - 4}" text-anchor="${anchor}">${label}</text>`);
  }
  series.forEach((points, i) => {
    let d = "", prev = null;
    for (const [t, v] of points) {
      if (t < t0 || v === null) { prev = null; continue; }
      // A gap of more than a few seconds (the page was hidden) is not drawn across.
      d += (prev === null || t - prev > 3500 ? "M" : "L") + x(t).toFixed(1) + " " + y(v).toFixed(1);
      prev = t;
    }
    parts.push(`<path class="s${i}" d="${d}"/>`);
  });
  svg.setAttribute("viewBox", `0 0 ${w} ${h}`);
  svg.innerHTML = parts.join("");
  const first = series[0] || [];
  svg.dataset.points = String(first.length);
  svg.dataset.last = first.length ? String(first[first.length - 1][1]) : "";
}

function axisLabel(v, range) {
  if (range <= 2) return v.toFixed(1);
  if (Math.abs(v) >= 1e6) return (v / 1e6).toFixed(1) + "M";
  if (Math.abs(v) >= 1e4) return Math.round(v / 1e3) + "k";
  return fmt.format(Math.round(v));
}

// Mean sentiment over the 10 seconds up to each point, weighted by its tweets.
function sentimentSeries(points) {
  const out = [];
  for (let i = 0; i < points.length; i++) {
    let n = 0, sum = 0;
    for (let j = i; j >= 0 && points[i].t - points[j].t < 10000; j--) {
      const p = points[j];
      if (p.tweets && p.sentiment !== undefined) { n += p.tweets; sum += p.sentiment * p.tweets; }
    }
    out.push([points[i].t, n ? sum / n : null]);
  }
  return out;
}

function bars(list, items, total) {
  list.replaceChildren();
  if (!items.length) {
    const li = document.createElement("li");
    li.className = "empty";
    li.textContent = "no tweets in the window yet";
    list.append(li);
    return;
  }
  const max = Math.max(...items.map((e) => e[1]));
  for (const [name, n] of items) {
    const li = document.createElement("li");
    const a = document.createElement("span");
    a.className = "name";
    a.textContent = name;
    a.title = name;
    const bar = document.createElement("span");
    bar.className = "bar";
    bar.style.width = (100 * n / max).toFixed(1) + "%";
    const c = document.createElement("span");
    c.className = "n";
    c.textContent = total ? (100 * n / total).toFixed(0) + "%" : fmt.format(n);
    li.append(a, bar, c);
    list.append(li);
  }
}

function renderHealth(h) {
  const status = $("status");
  status.textContent = h.ready ? "live · ready" : h.live ? "live · not ready" : "stalled";
  status.className = "pill " + (h.ready ? "ok" : "bad");
  const ul = $("health");
  ul.replaceChildren();
  for (const l of h.loops) {
    const li = document.createElement("li");
    li.textContent = `loop ${l.name}: ${l.retired ? "finished" : l.overdue_s !== null ? "stalled" : "ok"} (${l.age_s.toFixed(1)} s ago)`;
    if (l.overdue_s !== null && !l.retired) li.className = "bad";
    ul.append(li);
  }
  if (!h.loops.length && !h.checks.length) {
    const li = document.createElement("li");
    li.textContent = "no loops or conditions reported";
    ul.append(li);
  }
  for (const [name, s] of h.checks) {
    const li = document.createElement("li");
    li.textContent = `${name.replaceAll("_", " ")}: ${s}`;
    if (s !== "ok") li.className = "bad";
    ul.append(li);
  }
}

function render(data) {
  renderTiles(data);
  const pts = state.points;
  const rate = [pts.map((p) => [p.t, p.rate])];
  if (data.command === "produce") rate.push(pts.map((p) => [p.t, p.rate2 ?? null]));
  chart($("rate-chart"), rate);
  chart($("lag-chart"), [pts.map((p) => [p.t, p.lag])]);
  if (data.command === "consume") {
    chart($("sentiment-chart"), [sentimentSeries(pts)], { symmetric: true });
    const w = data.window;
    $("window-note").textContent = `(last minute, ${fmt.format(w.tweets)} tweets)`;
    bars($("langs"), w.langs, w.tweets);
    bars($("hashtags"), w.hashtags, 0);
  }
  renderHealth(data.health);
}

async function poll() {
  state.timer = null;
  try {
    const q = state.seq === null ? "" : "?after=" + state.seq;
    const r = await fetch("/api/live" + q, { cache: "no-store" });
    if (!r.ok) throw new Error("HTTP " + r.status);
    const data = await r.json();
    if (data.started_ms !== state.started) {
      // First answer, or the process restarted: start over with its history.
      state.started = data.started_ms;
      state.points = [];
      setup(data.command);
      if (state.seq !== null) { state.seq = null; return schedule(0); }
    }
    state.points.push(...data.points);
    if (state.points.length > KEEP) state.points.splice(0, state.points.length - KEEP);
    if (data.seq !== null) state.seq = data.seq;
    state.last = data;
    render(data);
    state.updates++;
    document.body.dataset.updates = String(state.updates);
  } catch (e) {
    const status = $("status");
    status.textContent = "disconnected";
    status.className = "pill bad";
  }
  schedule(1000);
}

function schedule(ms) {
  // Nobody looking: no requests at all until the tab is visible again.
  if (document.hidden || state.timer !== null) return;
  state.timer = setTimeout(poll, ms);
}

document.addEventListener("visibilitychange", () => schedule(0));
window.addEventListener("resize", () => { if (state.last) render(state.last); });
schedule(0);
