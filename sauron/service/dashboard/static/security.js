// The drill-down's security panel, from /api/v1/slices/{name}/security (the
// same report as `sauron security --slice NAME`): the slice's uplink G-PDUs
// that failed each check over the last minute with their rate, and its
// detections (TEID scans, spoofing UEs) over the charts' window. Asked again
// after each interval of the stream while the drill-down is open. Uses the
// helpers of dashboard.js (api, el, fixed, clock, capitalized, state).
"use strict";

const SECURITY_COUNT_S = 60; // the counts' window
const DETECTION_NAMES = { teid_scan: "TEID scan", spoofing_ue: "Spoofing UE" };

const securityView = {
  asked: 0, // the newest request: an older answer arriving late is dropped
  shown: null, // the slice and reports shown: redrawn only when they moved
};

function checksLine(report) {
  const c = report.checks;
  if (!report.enabled || !c) return `Security checks off: ${report.missing}.`;
  const peers = c.peers_checked
    ? `unknown peers counted (${c.peers_configured.length} configured, ${c.peers_learned.length} learned)`
    : "unknown peers not counted (no gNB or peer UPF configured or learned)";
  return `Checks on every uplink G-PDU: ${peers}; ${c.protected.length} protected prefixes. `
    + `A TEID scan from ${c.scan_threshold} unknown TEIDs a second, a spoofing UE from `
    + `${c.spoof_threshold} sources a second.`;
}

function countsTable(report) {
  const table = el("table", { class: "security-counts" });
  table.append(el("caption", {
    text: `Uplink G-PDUs that failed each check over the last ${fixed(report.seconds)} s`,
  }));
  table.append(el("thead", {}, el("tr", {},
    ...["Check", "Frames", "Per second", "What it means"].map((h) => el("th", { scope: "col", text: h })))));
  const body = el("tbody");
  for (const k of state.kpis.security) {
    const frames = report.frames ? report.frames[k.name] : null;
    const rate = report.per_s ? report.per_s[k.name] : null;
    body.append(el("tr", { "data-kind": k.name, "data-frames": frames === null ? "" : String(frames) },
      el("th", { scope: "row", text: capitalized(k.title) }),
      el("td", { "data-field": "frames", class: frames ? "bad" : "", text: frames === null ? DASH : String(frames) }),
      el("td", { "data-field": "per-s", text: rate === null ? DASH : `${fixed(rate)}/s` }),
      el("td", { class: "help", text: k.help })));
  }
  table.append(body);
  return table;
}

function detectionsTable(report) {
  const table = el("table", { class: "detections" });
  table.append(el("caption", {
    text: `Detections over the last ${Math.round(WINDOW_S / 60)} minutes (${report.events.length}), newest first`,
  }));
  table.append(el("thead", {}, el("tr", {},
    ...["Detection", "Peer", "TEIDs", "Frames", "Distinct", "First seen", "Last seen", "State"].map(
      (h) => el("th", { scope: "col", text: h })))));
  const body = el("tbody");
  for (const e of report.events.slice().reverse()) {
    body.append(el("tr", { "data-id": String(e.id), "data-kind": e.kind, "data-ongoing": String(e.ongoing) },
      el("th", { scope: "row", text: DETECTION_NAMES[e.kind] || e.kind }),
      el("td", { "data-field": "peer", text: e.peer }),
      el("td", { "data-field": "teids" }, el("code", { text: e.teids.join(" ") })),
      el("td", { "data-field": "count", text: String(e.count) }),
      el("td", { "data-field": "distinct", text: String(e.distinct) }),
      el("td", { "data-field": "first-seen", text: clock(e.first_seen) }),
      el("td", { "data-field": "last-seen", text: clock(e.last_seen) }),
      el("td", { "data-field": "state", class: e.ongoing ? "bad" : "", text: e.ongoing ? "ongoing" : "ended" })));
  }
  if (!report.events.length) body.append(el("tr", {}, el("td", { colspan: "8", text: "No detection." })));
  table.append(body);
  return table;
}

function showSecurity(counts, detections) {
  const section = document.getElementById("security");
  section.dataset.enabled = String(counts.enabled);
  section.querySelector('[data-part="security-state"]').textContent = checksLine(counts);
  section.querySelector('[data-part="security-counts"]').replaceChildren(
    counts.since === null ? el("p", { text: "No interval measured in the last minute." }) : countsTable(counts));
  section.querySelector('[data-part="security-events"]').replaceChildren(detectionsTable(detections));
}

// Asked after every interval while the drill-down is open, and when it opens.
async function renderSecurity(name) {
  const asked = ++securityView.asked;
  const section = document.getElementById("security");
  if (section.dataset.slice !== name) {
    section.dataset.slice = name;
    section.dataset.answers = "0";
    securityView.shown = null;
    for (const part of section.querySelectorAll('[data-part^="security-"]')) part.replaceChildren();
  }
  if (state.lastTime === null) return;
  const route = `/api/v1/slices/${encodeURIComponent(name)}/security?since=`;
  let counts, detections;
  try {
    [counts, detections] = await Promise.all([
      // the intervals that ended in the last minute
      api(route + String(state.lastTime - SECURITY_COUNT_S + 1e-3)),
      api(route + String(state.lastTime - WINDOW_S)),
    ]);
  } catch (err) {
    // a missing token is asked for by the stream's loop (run)
    if (err instanceof AuthNeeded || asked !== securityView.asked || state.detail !== name) return;
    for (const part of section.querySelectorAll('[data-part^="security-"]')) part.replaceChildren();
    section.querySelector('[data-part="security-state"]').textContent = `Security report unavailable: ${err.message}`;
    securityView.shown = null;
    return;
  }
  if (asked !== securityView.asked || state.detail !== name) return;
  section.dataset.answers = String(Number(section.dataset.answers || 0) + 1);
  // the windows slide every interval: redrawn only when what they hold moved
  const text = `${name}\n${JSON.stringify([counts.frames, counts.per_s, counts.checks, detections.events])}`;
  if (text === securityView.shown) return;
  securityView.shown = text;
  showSecurity(counts, detections);
}
