// The slice SLA dashboard. Everything shown comes from the agent's API: the
// catalog and latest KPIs (/api/v1/slices), each new interval from the live
// stream (/api/v1/stream?buckets=true), the history after a reconnect
// (/kpis?since=), the violations (/api/v1/sla), the top sessions, the
// histogram bucket bounds (/api/v1/histograms/geometry), the drill-down's
// diagnosis (diagnosis.js) and security checks (security.js). No number is
// computed here that the agent does not send: the page formats and draws.
"use strict";

const WINDOW_S = 600; // the charts' time span
const STALL_INTERVALS = 3; // no event for this many intervals: reconnect
const RETRY_MIN_MS = 500;
const RETRY_MAX_MS = 5000;
const DASH = "–";

const STATUS = {
  met: { icon: "✓", label: "SLA met" },
  "at risk": { icon: "!", label: "SLA at risk" },
  violated: { icon: "✕", label: "SLA violated" },
  unmeasured: { icon: "–", label: "Not measured yet" },
};

const state = {
  token: sessionStorage.getItem("sauron-token"),
  slices: [], // catalog entries from /api/v1/slices, in catalog order
  cards: new Map(), // slice name -> card view
  series: new Map(), // slice name -> time series held by the page
  latest: new Map(), // slice name -> latest KPI point
  lastTime: null,
  intervalS: 1,
  geometry: null,
  kpis: null, // the KPI table from /api/v1/kpis: which latency KPIs there are
  events: new Map(), // violation key -> violation document
  status: new Map(), // slice name -> SLA status
  detail: null,
  sessionsBy: "teid",
  abort: null,
};

class AuthNeeded extends Error {}

// ---------- the API ----------

function headers() {
  return state.token ? { Authorization: `Bearer ${state.token}` } : {};
}

async function api(path) {
  const response = await fetch(path, { headers: headers(), cache: "no-store" });
  if (response.status === 401) throw new AuthNeeded();
  if (!response.ok) {
    let detail = `HTTP ${response.status}`;
    try {
      detail = (await response.json()).detail || detail;
    } catch (_) { /* not a problem document */ }
    throw new Error(`${path}: ${detail}`);
  }
  return response.json();
}

// ---------- formatting ----------

// Digits by size: three significant figures or more, never a false zero.
function fixed(value) {
  if (value === null || value === undefined || Number.isNaN(value)) return DASH;
  const a = Math.abs(value);
  // below 0.001 (a limit of 0.0001 ms), as many places as three figures need
  const digits = a === 0 ? 0 : a < 0.001 ? Math.min(20, 2 - Math.floor(Math.log10(a)))
    : a < 1 ? 3 : a < 10 ? 2 : a < 100 ? 1 : 0;
  return value.toFixed(digits);
}

function pick(doc, path) {
  let v = doc;
  for (const key of path.split(".")) {
    if (v === null || v === undefined) return null;
    v = v[key];
  }
  return v === undefined ? null : v;
}

function clock(unixS) {
  return new Date(unixS * 1000).toLocaleTimeString([], { hour12: false });
}

function directionWord(d) {
  return d === "uplink" ? "↑" : d === "downlink" ? "↓" : "";
}

// "transit_latency_ms.p99.uplink" -> "Transit p99 ↑"; the latency KPIs'
// targets are added from the KPI table (learnKpis)
const TARGET_NAMES = {
  max_loss_ratio: ["Loss", "%"],
  min_throughput_mbps: ["Throughput", "Mbit/s"],
  max_throughput_mbps: ["Throughput", "Mbit/s"],
  max_energy_j_per_gb: ["Energy", "J/GB"],
  max_security_events_per_s: ["Failed security checks", "frames/s"],
};

function capitalized(text) {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

// a security check's limit: "max_security_events_per_s.unknown_teid" -> "Unknown TEID"
const SECURITY_TARGETS = new Map();

function learnKpis(table) {
  state.kpis = table;
  for (const k of table.latency) TARGET_NAMES[k.sla_key] = [capitalized(k.title), k.unit];
  for (const k of table.security) SECURITY_TARGETS.set(k.sla_key, [capitalized(k.title), `${k.unit}/s`]);
}

// A card's figures for every latency KPI: p99 per direction, or p50 / p99
// for those kept once per slice (the round trips).
function latencyFigures() {
  const figures = [];
  const span = (kpi) => el("span", { "data-kpi": kpi, text: DASH });
  for (const k of state.kpis.latency) {
    const title = capitalized(k.title);
    if (k.per_direction) {
      for (const d of ["uplink", "downlink"]) {
        figures.push(el("div", {}, el("dt", { text: `${title} p99 ${directionWord(d)}` }),
          el("dd", {}, span(`${d}.${k.name}.p99_ms`), ` ${k.unit}`)));
      }
    } else {
      figures.push(el("div", {}, el("dt", { text: `${title} p50 / p99` }),
        el("dd", {}, span(`${k.name}.p50_ms`), " / ", span(`${k.name}.p99_ms`), ` ${k.unit}`)));
    }
  }
  return figures;
}

function describeTarget(target) {
  const security = SECURITY_TARGETS.get(target);
  if (security) return { text: security[0], unit: security[1], percent: false };
  const [kind, ...rest] = target.split(".");
  const [name, unit] = TARGET_NAMES[kind] || [kind, ""];
  const words = rest.map((p) =>
    p === "uplink" || p === "downlink" ? directionWord(p)
      : p === "sequence" ? "(GTP-U seq)" : p === "transit" ? "(transit)" : p);
  return { text: [name, ...words].join(" "), unit, percent: unit === "%" };
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined) continue;
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c);
  return node;
}

// ---------- targets (the SLA's own checks of the interval) ----------

function targetsTable(slice, point) {
  const checks = point ? point.checks : [];
  const table = el("table", { class: "targets" });
  table.append(el("caption", { text: "SLA targets: limit and latest value" }));
  const head = el("tr", {},
    el("th", { scope: "col", text: "Target" }),
    el("th", { scope: "col", text: "Limit" }),
    el("th", { scope: "col", text: "Actual" }),
    el("th", { scope: "col", text: "State" }));
  table.append(el("thead", {}, head));
  const body = el("tbody");
  const checked = new Set();
  for (const c of checks) {
    checked.add(c.target.split(".")[0]);
    const d = describeTarget(c.target);
    const scale = d.percent ? 100 : 1;
    const row = el("tr", { "data-target": c.target, "data-ok": String(c.ok), "data-scale": String(scale) },
      el("th", { scope: "row", text: d.text }),
      el("td", { "data-field": "limit", text: `${c.floor ? "≥" : "≤"} ${fixed(c.limit * scale)} ${d.unit}` }),
      el("td", { "data-field": "value", text: `${fixed(c.value * scale)} ${d.unit}` }),
      el("td", { class: c.ok ? "ok" : "bad", text: c.ok ? "✓ within" : c.floor ? "✕ under" : "✕ over" }));
    body.append(row);
  }
  for (const kind of Object.keys(slice.sla_targets)) {
    if (checked.has(kind)) continue;
    const d = describeTarget(kind);
    body.append(el("tr", { "data-target": kind, "data-ok": "unmeasured" },
      el("th", { scope: "row", text: d.text }),
      el("td", { text: limitText(slice.sla_targets[kind], d) }),
      el("td", { text: DASH }),
      el("td", { class: "unmeasured", text: "– not measured" })));
  }
  if (!body.children.length) {
    body.append(el("tr", {}, el("td", { colspan: "4", text: "This slice has no SLA targets." })));
  }
  table.append(body);
  return table;
}

function limitText(target, d) {
  const scale = d.percent ? 100 : 1;
  if (typeof target === "number") return `${fixed(target * scale)} ${d.unit}`;
  return Object.entries(target).map(([k, v]) => `${k} ${fixed(v * scale)}`).join(", ") + ` ${d.unit}`;
}

// ---------- time series held by the page ----------

function newSeries() {
  return {
    t: [], ulP50: [], ulP99: [], dlP50: [], dlP99: [], ulMbps: [], dlMbps: [],
    heat: { uplink: [], downlink: [] },
    // "p99:<KPI>" for each latency KPI kept once per slice (the detail's chart)
    ...Object.fromEntries(onceKpis().map((k) => [`p99:${k.name}`, []])),
  };
}

function onceKpis() {
  return state.kpis.latency.filter((k) => !k.per_direction);
}

function addPoint(name, point) {
  const s = state.series.get(name) || newSeries();
  state.series.set(name, s);
  if (s.t.length && point.time <= s.t[s.t.length - 1]) return false;
  s.t.push(point.time);
  s.ulP50.push(point.uplink.transit.p50_ms);
  s.ulP99.push(point.uplink.transit.p99_ms);
  s.dlP50.push(point.downlink.transit.p50_ms);
  s.dlP99.push(point.downlink.transit.p99_ms);
  s.ulMbps.push(point.uplink.mbps);
  s.dlMbps.push(point.downlink.mbps);
  for (const k of onceKpis()) s[`p99:${k.name}`].push(point[k.name].p99_ms);
  s.heat.uplink.push(point.uplink.transit.buckets || {});
  s.heat.downlink.push(point.downlink.transit.buckets || {});
  const cut = s.t.findIndex((t) => t >= point.time - WINDOW_S);
  if (cut > 0) {
    for (const key of Object.keys(s)) {
      if (Array.isArray(s[key])) s[key].splice(0, cut);
    }
    s.heat.uplink.splice(0, cut);
    s.heat.downlink.splice(0, cut);
  }
  return true;
}

// ---------- charts ----------

function chartWidth(figure) {
  return Math.max(240, Math.floor(figure.getBoundingClientRect().width || 400));
}

// The y axis runs from zero to the next 1, 2 or 5 times a power of ten above
// the peak, so its top tick is always drawn and labelled: a short chart
// otherwise picks a step wider than its data and labels nothing but 0.
function niceTop(peak) {
  if (!(peak > 0)) return 1;
  const power = 10 ** Math.floor(Math.log10(peak));
  const step = [1, 2, 5, 10].find((m) => m * power >= peak * (1 - 1e-9));
  return step * power;
}

function lineChart(figure, title, unit, series, height = 150) {
  figure.replaceChildren();
  figure.append(el("figcaption", { text: title }));
  const opts = {
    width: chartWidth(figure),
    height,
    legend: { live: false },
    cursor: { drag: { x: false, y: false } },
    scales: {
      x: { time: true },
      y: { range: (u, lo, hi) => [Math.min(0, lo ?? 0), niceTop(hi)] },
    },
    axes: [
      { stroke: "#333", grid: { stroke: "#e3e3e3" } },
      {
        stroke: "#333", grid: { stroke: "#e3e3e3" }, label: unit, size: 56,
        splits: (u) => {
          const top = u.scales.y.max;
          return [0, top / 2, top];
        },
      },
    ],
    series: [{}, ...series],
  };
  const data = [[], ...series.map(() => [])];
  const plot = new uPlot(opts, data, figure);
  plot.root.setAttribute("role", "img");
  plot.root.setAttribute("aria-label", `${title}, over the last ${WINDOW_S / 60} minutes`);
  return plot;
}

// Colour-blind-safe hues; direction also told by the dash, the quantile by width.
const UL = "#0b5cad";
const DL = "#b34700";
const DASHED = [6, 4];

function latencySeries() {
  return [
    { label: "p50 ↑", stroke: UL, width: 1.5 },
    { label: "p99 ↑", stroke: UL, width: 3 },
    { label: "p50 ↓", stroke: DL, width: 1.5, dash: DASHED },
    { label: "p99 ↓", stroke: DL, width: 3, dash: DASHED },
  ];
}

// Sequential scale (dark blue to yellow), readable without hue: darker is more.
const HEAT = ["#fde725", "#b5de2b", "#6ece58", "#35b779", "#1f9e89", "#26828e", "#31688e", "#3e4989", "#482878", "#440154"];

function heatColour(fraction) {
  return HEAT[Math.min(HEAT.length - 1, Math.floor(fraction * HEAT.length))];
}

function drawHeatmap(view, name) {
  const canvas = view.heatCanvas;
  const direction = view.heatDirection;
  const s = state.series.get(name);
  const columns = s ? s.heat[direction] : [];
  const width = chartWidth(canvas.parentElement);
  const height = 132;
  const ratio = window.devicePixelRatio || 1;
  canvas.width = width * ratio;
  canvas.height = height * ratio;
  canvas.style.width = `${width}px`;
  canvas.style.height = `${height}px`;
  const g = canvas.getContext("2d");
  g.setTransform(ratio, 0, 0, ratio, 0, 0);
  g.fillStyle = "#ffffff";
  g.fillRect(0, 0, width, height);
  let lo = Infinity;
  let hi = -Infinity;
  let total = 0;
  for (const col of columns) {
    for (const [k, n] of Object.entries(col)) {
      const i = Number(k);
      if (n > 0) { lo = Math.min(lo, i); hi = Math.max(hi, i); total += n; }
    }
  }
  const axis = 64;
  const plotW = width - axis;
  const summary = view.heatSummary;
  if (!total || !state.geometry) {
    g.fillStyle = "#333";
    g.font = "13px sans-serif";
    g.fillText("no latency samples yet", axis + 8, height / 2);
    canvas.setAttribute("aria-label", `Transit latency histogram, ${direction}: no samples yet`);
    summary.textContent = "";
    return;
  }
  const bounds = state.geometry.latency.buckets;
  lo = Math.max(0, lo - 1);
  hi = Math.min(bounds.length - 1, hi + 1);
  const rows = hi - lo + 1;
  const rowH = height / rows;
  const colW = plotW / Math.max(columns.length, 1);
  columns.forEach((col, x) => {
    const most = Math.max(0, ...Object.values(col));
    if (!most) return;
    for (const [k, n] of Object.entries(col)) {
      const i = Number(k);
      if (i < lo || i > hi || n <= 0) continue;
      // relative to the interval's fullest bucket, square root to show the tails
      g.fillStyle = heatColour(Math.sqrt(n / most));
      g.fillRect(axis + x * colW, height - (i - lo + 1) * rowH, Math.ceil(colW), Math.ceil(rowH));
    }
  });
  g.fillStyle = "#222";
  g.font = "11px sans-serif";
  const step = Math.max(1, Math.ceil(rows / 6));
  for (let i = lo; i <= hi; i += step) {
    g.fillText(`${fixed(bounds[i].lower)} ms`, 2, height - (i - lo) * rowH - 2);
  }
  // the bucket holding the median of the whole window, in words
  const merged = new Map();
  for (const col of columns) {
    for (const [k, n] of Object.entries(col)) merged.set(Number(k), (merged.get(Number(k)) || 0) + n);
  }
  let seen = 0;
  let median = lo;
  for (const i of [...merged.keys()].sort((a, b) => a - b)) {
    seen += merged.get(i);
    if (seen >= total / 2) { median = i; break; }
  }
  const b = bounds[median];
  const upper = b.upper === null ? "∞" : fixed(b.upper);
  const text = `${direction}: ${total} samples over ${columns.length} intervals; half of them below ${upper} ms (bucket ${fixed(b.lower)}–${upper} ms). Darker cells hold more of their interval's packets.`;
  canvas.setAttribute("aria-label", `Transit latency histogram, ${text}`);
  summary.textContent = text;
}

// ---------- cards ----------

function buildCard(slice) {
  const node = document.getElementById("card-template").content.firstElementChild.cloneNode(true);
  node.dataset.slice = slice.name;
  node.setAttribute("aria-labelledby", `title-${slice.name}`);
  node.querySelector(".card-title").id = `title-${slice.name}`;
  node.querySelector('[data-field="name"]').textContent = slice.name;
  const sd = slice.snssai.sd === null ? "" : `-${slice.snssai.sd}`;
  node.querySelector('[data-field="snssai"]').textContent = `${slice.snssai.sst}${sd}`;
  node.querySelector('[data-field="description"]').textContent = slice.description;
  node.querySelector('[data-part="latency-figures"]').replaceWith(...latencyFigures());
  const view = {
    node,
    heatDirection: "uplink",
    heatCanvas: node.querySelector(".heatmap canvas"),
    heatSummary: node.querySelector(".heat-summary"),
    charts: {},
  };
  node.querySelector('[data-action="detail"]').addEventListener("click", () => {
    location.hash = `#slice=${encodeURIComponent(slice.name)}`;
  });
  for (const button of node.querySelectorAll("[data-direction]")) {
    button.addEventListener("click", () => {
      view.heatDirection = button.dataset.direction;
      for (const b of node.querySelectorAll("[data-direction]")) {
        b.setAttribute("aria-pressed", String(b === button));
      }
      drawHeatmap(view, slice.name);
    });
  }
  return view;
}

function ensureCards() {
  const container = document.getElementById("slices");
  const names = state.slices.map((s) => s.name);
  const same = names.length === state.cards.size && names.every((n) => state.cards.has(n));
  if (same) return;
  container.replaceChildren();
  state.cards.clear();
  for (const slice of state.slices) {
    const view = buildCard(slice);
    container.append(view.node);
    state.cards.set(slice.name, view);
    view.charts.latency = lineChart(
      view.node.querySelector('[data-chart="latency"]'), "Transit latency", "ms", latencySeries());
    view.charts.throughput = lineChart(
      view.node.querySelector('[data-chart="throughput"]'), "Throughput", "Mbit/s", [
        { label: "↑ uplink", stroke: UL, width: 2 },
        { label: "↓ downlink", stroke: DL, width: 2, dash: DASHED },
      ], 120);
  }
}

function setStatus(statusEl, status) {
  const s = STATUS[status] || STATUS.unmeasured;
  statusEl.querySelector(".icon").textContent = s.icon;
  statusEl.querySelector(".label").textContent = s.label;
}

function renderCard(slice, status) {
  const view = state.cards.get(slice.name);
  const point = state.latest.get(slice.name);
  const node = view.node;
  const before = node.dataset.status;
  node.dataset.status = status;
  setStatus(node.querySelector('[data-field="status"]'), status);
  if (before !== status && before !== undefined && status === "violated") {
    announce(`Slice ${slice.name}: SLA violated.`);
  }
  node.querySelector('[data-part="targets"]').replaceChildren(targetsTable(slice, point));
  for (const span of node.querySelectorAll("[data-kpi]")) {
    const raw = point ? pick(point, span.dataset.kpi) : null;
    const scale = Number(span.dataset.scale || 1);
    span.textContent = raw === null ? DASH
      : Number.isInteger(raw) && scale === 1 ? String(raw) : fixed(raw * scale);
  }
  const t = node.querySelector('[data-field="time"]');
  t.textContent = point ? clock(point.time) : DASH;
  node.dataset.time = point ? String(point.time) : "";
  const s = state.series.get(slice.name);
  if (s) {
    view.charts.latency.setData([s.t, s.ulP50, s.ulP99, s.dlP50, s.dlP99]);
    view.charts.throughput.setData([s.t, s.ulMbps, s.dlMbps]);
    for (const [name, plot] of Object.entries(view.charts)) {
      const figure = node.querySelector(`[data-chart="${name}"]`);
      const values = plot.data.slice(1).flat().filter((v) => v !== null && v !== undefined);
      figure.dataset.top = String(plot.scales.y.max);
      figure.dataset.peak = String(values.length ? Math.max(...values) : 0);
    }
    node.dataset.points = String(s.t.length);
  }
  drawHeatmap(view, slice.name);
}

function renderAll() {
  ensureCards();
  for (const slice of state.slices) {
    renderCard(slice, state.status.get(slice.name) || slice.status);
  }
  const updated = document.getElementById("updated");
  if (state.lastTime !== null) {
    updated.textContent = clock(state.lastTime);
    updated.setAttribute("datetime", new Date(state.lastTime * 1000).toISOString());
  }
  renderTimeline();
  if (state.detail) renderDetail();
}

function announce(text) {
  document.getElementById("announcer").textContent = text;
}

// ---------- node energy ----------

function renderNodeEnergy(energy) {
  const box = document.getElementById("node-energy");
  box.querySelector('[data-node="watts"]').textContent = energy ? fixed(energy.watts) : DASH;
  box.querySelector('[data-node="method"]').textContent = energy
    ? `${energy.method}${energy.profile ? `, profile ${energy.profile}` : ""}` : "not estimated";
}

// ---------- SLA violation timeline ----------

function eventKey(v) {
  return `${v.slice}|${v.target}|${v.started_at}`;
}

function mergeEvents(report) {
  const seen = new Set();
  for (const v of report.events) {
    const key = eventKey(v);
    seen.add(key);
    state.events.set(key, { ...v, interrupted: false });
  }
  // an open violation the agent no longer reports: the agent restarted and
  // forgot it; its end is unknown, and the page says so
  for (const [key, v] of state.events) {
    if (v.open && !seen.has(key)) {
      state.events.set(key, { ...v, open: false, interrupted: true, ended_at: state.lastSeen || v.started_at });
    }
  }
}

function renderTimeline() {
  const box = document.getElementById("timeline");
  const events = [...state.events.values()].sort((a, b) => a.started_at - b.started_at);
  const now = state.lastTime || Date.now() / 1000;
  // the span the page holds, at least a minute, at most the window
  const held = [...state.series.values()].map((s) => s.t[0]).filter((t) => t !== undefined);
  const span = Math.min(WINDOW_S, Math.max(60, now - Math.min(now, ...held) + state.intervalS));
  const start = now - span;
  const names = state.slices.map((s) => s.name);
  const lane = 26;
  const left = 90;
  const width = Math.max(320, Math.floor(box.getBoundingClientRect().width || 800));
  const height = names.length * lane + 24;
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("width", String(width));
  svg.setAttribute("height", String(height));
  svg.setAttribute("role", "img");
  const x = (t) => left + ((Math.max(t, start) - start) / span) * (width - left - 8);
  const shown = events.filter((v) => (v.ended_at || now) >= start);
  svg.setAttribute("aria-label",
    `SLA violations over the last ${Math.round(span)} seconds: ${shown.length}; the table below lists them.`);
  names.forEach((name, i) => {
    const y = i * lane + 4;
    const label = document.createElementNS(ns, "text");
    label.setAttribute("x", "4");
    label.setAttribute("y", String(y + 16));
    label.textContent = name;
    svg.append(label);
    const track = document.createElementNS(ns, "rect");
    track.setAttribute("x", String(left));
    track.setAttribute("y", String(y + 4));
    track.setAttribute("width", String(width - left - 8));
    track.setAttribute("height", "16");
    track.setAttribute("class", "track");
    svg.append(track);
    for (const v of shown.filter((e) => e.slice === name)) {
      const from = v.started_at - state.intervalS;
      const to = v.open ? now : v.ended_at;
      const bar = document.createElementNS(ns, "rect");
      bar.setAttribute("x", String(x(from)));
      bar.setAttribute("y", String(y + 4));
      bar.setAttribute("width", String(Math.max(3, x(to) - x(from))));
      bar.setAttribute("height", "16");
      bar.setAttribute("class", v.open ? "bar open" : "bar closed");
      const title = document.createElementNS(ns, "title");
      title.textContent = `${name} ${describeTarget(v.target).text}: ${v.open ? "open" : `closed${v.end_reason ? ` (${v.end_reason})` : ""}`}`;
      bar.append(title);
      svg.append(bar);
    }
  });
  const axis = document.createElementNS(ns, "text");
  axis.setAttribute("x", String(left));
  axis.setAttribute("y", String(height - 4));
  axis.textContent = `${clock(start)} … ${clock(now)} (open: dashed outline)`;
  svg.append(axis);
  box.replaceChildren(svg);

  const table = el("table", { class: "violations" });
  table.append(el("caption", { text: `Violations (${events.length}), newest first` }));
  table.append(el("thead", {}, el("tr", {},
    ...["Slice", "Target", "Limit", "Worst", "Started", "Ended", "Intervals bad / open", "Latest diagnosis"].map(
      (h) => el("th", { scope: "col", text: h })))));
  const body = el("tbody");
  for (const v of events.slice().reverse()) {
    const d = describeTarget(v.target);
    const scale = d.percent ? 100 : 1;
    // a closed violation says why: recovered, or not measured for a whole window
    const ended = v.open ? "open" : v.interrupted ? "unknown (agent restarted)"
      : v.end_reason ? `${clock(v.ended_at)}, ${v.end_reason}` : clock(v.ended_at);
    body.append(el("tr", { "data-slice": v.slice, "data-target": v.target, "data-open": String(v.open),
      "data-end-reason": v.end_reason },
      el("td", { text: v.slice }),
      el("th", { scope: "row", text: d.text }),
      el("td", { text: `${fixed(v.limit * scale)} ${d.unit}` }),
      el("td", { text: `${fixed(v.worst * scale)} ${d.unit}` }),
      el("td", { text: clock(v.started_at) }),
      el("td", { class: v.open ? "bad" : "", text: ended }),
      el("td", { text: `${v.bad_intervals} / ${v.intervals}` }),
      el("td", { class: "diagnosis-text", "data-field": "diagnosis", text: v.diagnosis || DASH })));
  }
  if (!events.length) body.append(el("tr", {}, el("td", { colspan: "8", text: "No violation so far." })));
  table.append(body);
  document.getElementById("violations").replaceChildren(table);
  if (state.detail && !document.getElementById("diagnosis").hidden) renderOpenViolations(state.detail);
}

// ---------- drill-down ----------

let detailChart = null;

function lossTable(point) {
  const table = el("table", { class: "loss" });
  table.append(el("caption", { text: "Lost / measured, and the ratio, per direction" }));
  table.append(el("thead", {}, el("tr", {},
    ...["Source", "Direction", "Lost", "Measured", "Ratio"].map((h) => el("th", { scope: "col", text: h })))));
  const body = el("tbody");
  for (const d of ["uplink", "downlink"]) {
    const l = point[d].loss;
    const rows = [
      ["UPF transit (sampled)", l.transit_lost, l.transit_resolved, l.transit_ratio],
      ["GTP-U sequence", l.sequence_lost, l.sequence_lost + l.sequence_received, l.sequence_ratio],
      ["TCP retransmissions", l.tcp_retransmissions, l.tcp_segments, l.tcp_retransmission_ratio],
    ];
    for (const [source, lost, measured, ratio] of rows) {
      body.append(el("tr", {},
        el("th", { scope: "row", text: source }),
        el("td", { text: d }),
        el("td", { text: String(lost) }),
        el("td", { text: String(measured) }),
        el("td", { text: ratio === null ? DASH : `${fixed(ratio * 100)} %` })));
    }
  }
  table.append(body);
  return table;
}

function energyList(point) {
  const e = point.energy;
  if (!e) return el("p", { text: "No energy estimate (the agent says why at /api/v1/energy)." });
  const dl = el("dl", { class: "figures" });
  const items = [
    ["Power", `${fixed(e.watts)} W`],
    ["Energy per GB", e.joules_per_gb === null ? DASH : `${fixed(e.joules_per_gb)} J/GB`],
    ["Energy per packet", e.microjoules_per_packet === null ? DASH : `${fixed(e.microjoules_per_packet)} µJ`],
    ["This interval", `${fixed(e.joules)} J`],
    ["Since the agent started", `${fixed(e.cumulative_joules)} J`],
  ];
  for (const [k, v] of items) dl.append(el("div", {}, el("dt", { text: k }), el("dd", { text: v })));
  return dl;
}

async function renderSessions(name) {
  const part = document.querySelector('#detail [data-part="sessions"]');
  const summary = document.querySelector('#detail [data-part="sessions-summary"]');
  let doc;
  try {
    doc = await api(`/api/v1/slices/${encodeURIComponent(name)}/sessions?by=${state.sessionsBy}&limit=20`);
  } catch (err) {
    summary.textContent = `Top sessions unavailable: ${err.message}`;
    return;
  }
  if (state.detail !== name) return;
  summary.textContent = `${doc.active} active ${state.sessionsBy === "teid" ? "TEIDs" : "UE addresses"} in the interval; the busiest ${doc.sessions.length}:`;
  const table = el("table", { class: "sessions" });
  table.append(el("caption", { text: "Bytes and packets per direction in the latest interval" }));
  table.append(el("thead", {}, el("tr", {},
    ...["TEID", "UE address", "QFI", "SUPI", "DNN", "Bytes ↑", "Bytes ↓", "Packets ↑", "Packets ↓"].map(
      (h) => el("th", { scope: "col", text: h })))));
  const body = el("tbody");
  for (const s of doc.sessions) {
    const pdu = s.pdu_session || {};
    body.append(el("tr", { "data-teid": s.teid || "", "data-ue": s.ue_address || "" },
      el("th", { scope: "row", text: s.teid || DASH }),
      el("td", { text: s.ue_address || DASH }),
      el("td", { text: s.qfi === null ? DASH : String(s.qfi) }),
      el("td", { text: pdu.supi || DASH }),
      el("td", { text: pdu.dnn || DASH }),
      el("td", { text: String(s.uplink_bytes) }),
      el("td", { text: String(s.downlink_bytes) }),
      el("td", { text: String(s.uplink_packets) }),
      el("td", { text: String(s.downlink_packets) })));
  }
  if (!doc.sessions.length) body.append(el("tr", {}, el("td", { colspan: "9", text: "No traffic in the interval." })));
  table.append(body);
  part.replaceChildren(table);
}

function renderDetail() {
  const name = state.detail;
  const slice = state.slices.find((s) => s.name === name);
  const section = document.getElementById("detail");
  if (!slice) { section.hidden = true; return; }
  section.hidden = false;
  section.dataset.slice = name;
  document.getElementById("detail-title").textContent = `Slice ${name} in detail`;
  const point = state.latest.get(name);
  section.querySelector('[data-part="targets"]').replaceChildren(targetsTable(slice, point));
  section.querySelector('[data-part="loss"]').replaceChildren(point ? lossTable(point) : el("p", { text: DASH }));
  section.querySelector('[data-part="energy"]').replaceChildren(point ? energyList(point) : el("p", { text: DASH }));
  const figure = section.querySelector('[data-chart="rtt"]');
  if (!detailChart || detailChart.sliceName !== name) {
    if (detailChart) detailChart.destroy();
    const once = onceKpis();
    detailChart = lineChart(figure, `${once.map((k) => k.title).join(" and ")}, p99`, "ms",
      once.map((k, i) => ({ label: `${k.title} p99`, stroke: i % 2 ? DL : UL, width: 2, dash: i % 2 ? DASHED : undefined })));
    detailChart.sliceName = name;
  }
  const s = state.series.get(name);
  if (s) detailChart.setData([s.t, ...onceKpis().map((k) => s[`p99:${k.name}`])]);
  renderDiagnosis(name);
  renderSecurity(name);
  renderSessions(name);
}

function followHash() {
  const m = /^#slice=(.+)$/.exec(location.hash);
  const name = m ? decodeURIComponent(m[1]) : null;
  state.detail = name;
  if (!name) {
    document.getElementById("detail").hidden = true;
    return;
  }
  renderDetail();
  if (!document.getElementById("detail").hidden) document.getElementById("detail-title").focus();
}

// ---------- connection ----------

function setConnection(kind, text) {
  const p = document.getElementById("connection");
  p.dataset.state = kind;
  p.querySelector(".text").textContent = text;
}

function showProblem(text) {
  const p = document.getElementById("problem");
  p.hidden = !text;
  p.textContent = text || "";
}

async function refreshSla() {
  const report = await api("/api/v1/sla");
  mergeEvents(report);
}

// The catalog, the bucket bounds, what the page missed while away, and the
// violations: run on every (re)connection.
async function catchUp() {
  if (!state.kpis) learnKpis(await api("/api/v1/kpis"));
  const list = await api("/api/v1/slices");
  state.slices = list.slices;
  state.geometry = await api("/api/v1/histograms/geometry");
  const since = state.lastTime === null ? Date.now() / 1000 - WINDOW_S : state.lastTime + 1e-3;
  for (const slice of state.slices) {
    const series = await api(`/api/v1/slices/${encodeURIComponent(slice.name)}/kpis?since=${since}&buckets=true`);
    for (const point of series.points) {
      if (addPoint(slice.name, point)) state.latest.set(slice.name, point);
      state.lastTime = Math.max(state.lastTime ?? 0, point.time);
      state.intervalS = point.interval_s;
    }
  }
  for (const slice of state.slices) state.status.set(slice.name, slice.status);
  await refreshSla();
  renderAll();
}

function onSnapshot(doc) {
  state.intervalS = doc.interval_s;
  state.lastSeen = doc.time;
  for (const slice of state.slices) {
    const kpis = doc.slices[slice.name];
    if (!kpis) continue;
    const point = { time: doc.time, interval_s: doc.interval_s, ...kpis };
    if (addPoint(slice.name, point)) state.latest.set(slice.name, point);
    state.status.set(slice.name, kpis.sla);
  }
  state.lastTime = Math.max(state.lastTime ?? 0, doc.time);
  renderNodeEnergy(doc.energy);
  renderAll();
  document.body.dataset.snapshots = String(Number(document.body.dataset.snapshots || 0) + 1);
  refreshSla().then(() => renderTimeline()).catch(() => { /* the stream's own errors reconnect */ });
}

function parseEvents(buffer, handle) {
  let cut;
  while ((cut = buffer.indexOf("\n\n")) >= 0) {
    const block = buffer.slice(0, cut);
    buffer = buffer.slice(cut + 2);
    const lines = block.split("\n");
    if (!lines.includes("event: snapshot")) continue;
    const data = lines.filter((l) => l.startsWith("data: ")).map((l) => l.slice(6)).join("");
    handle(JSON.parse(data));
  }
  return buffer;
}

// fetch() rather than EventSource: it can send the token, and the page
// decides when and how often to reconnect.
async function readStream() {
  const controller = new AbortController();
  state.abort = controller;
  let watchdog = null;
  const arm = () => {
    clearTimeout(watchdog);
    watchdog = setTimeout(() => controller.abort(), (STALL_INTERVALS * state.intervalS + 5) * 1000);
  };
  arm();
  try {
    const response = await fetch("/api/v1/stream?buckets=true", {
      headers: headers(), cache: "no-store", signal: controller.signal,
    });
    if (response.status === 401) throw new AuthNeeded();
    if (!response.ok) throw new Error(`stream: HTTP ${response.status}`);
    setConnection("live", "Live");
    document.body.dataset.connected = String(Number(document.body.dataset.connected || 0) + 1);
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      arm();
      buffer = parseEvents(buffer + value, onSnapshot);
    }
  } finally {
    clearTimeout(watchdog);
  }
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function askToken() {
  const dialog = document.getElementById("token-dialog");
  if (!dialog.open) dialog.showModal();
  return new Promise((resolve) => {
    document.getElementById("token-form").addEventListener("submit", () => {
      state.token = document.getElementById("token").value;
      sessionStorage.setItem("sauron-token", state.token);
      resolve();
    }, { once: true });
  });
}

async function run() {
  let wait = RETRY_MIN_MS;
  for (;;) {
    try {
      await catchUp();
      showProblem("");
      await readStream();
      wait = RETRY_MIN_MS;
      setConnection("reconnecting", "The agent ended the stream; reconnecting…");
    } catch (err) {
      if (err instanceof AuthNeeded) {
        setConnection("auth", "Token needed");
        await askToken();
        continue;
      }
      const why = err.name === "AbortError" ? "no interval arrived in time" : err.message;
      setConnection("reconnecting", `Agent unreachable (${why}); retrying…`);
    }
    await sleep(wait);
    wait = Math.min(wait * 2, RETRY_MAX_MS);
  }
}

// ---------- page setup ----------

function setWall(on) {
  document.body.classList.toggle("wall", on);
  document.getElementById("wall").setAttribute("aria-pressed", String(on));
  localStorage.setItem("sauron-wall", on ? "1" : "0");
  resizeCharts();
}

function resizeCharts() {
  for (const view of state.cards.values()) {
    for (const chart of Object.values(view.charts)) {
      chart.setSize({ width: chartWidth(chart.root.parentElement), height: chart.height });
    }
  }
  renderAll();
}

window.addEventListener("DOMContentLoaded", () => {
  const params = new URLSearchParams(location.search);
  setWall(params.get("wall") === "1" || localStorage.getItem("sauron-wall") === "1");
  document.getElementById("wall").addEventListener("click", () => {
    setWall(!document.body.classList.contains("wall"));
  });
  document.getElementById("detail-close").addEventListener("click", () => {
    history.pushState("", document.title, location.pathname + location.search);
    followHash();
  });
  for (const radio of document.querySelectorAll('input[name="sessions-by"]')) {
    radio.addEventListener("change", () => {
      state.sessionsBy = radio.value;
      if (state.detail) renderSessions(state.detail);
    });
  }
  window.addEventListener("hashchange", followHash);
  let resizing = null;
  window.addEventListener("resize", () => {
    clearTimeout(resizing);
    resizing = setTimeout(resizeCharts, 150);
  });
  followHash();
  run();
});
