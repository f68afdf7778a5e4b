// The drill-down's diagnosis: why the slice is late or lossy, from
// /api/v1/slices/{name}/diagnosis (the same report as `sauron diagnose`).
// Asked again after each interval of the stream while the drill-down is
// open; shown only while the slice has an episode or diagnoses. Uses the
// helpers of dashboard.js (api, el, fixed, clock, describeTarget, state).
"use strict";

const diagnosisView = {
  asked: 0, // the newest request: an older answer arriving late is dropped
  shown: null, // the slice and report text shown: redrawn only when it moved
  report: null,
};

function figureText(value, unit, percent) {
  return `${fixed(percent ? value * 100 : value)} ${unit}`;
}

function heldText(held) {
  if (!held || typeof held !== "object") return DASH;
  const share = typeof held.share_of_wait === "number" ? `, ${fixed(held.share_of_wait * 100)} % of the wait` : "";
  return `${held.comm} (pid ${held.pid}) on CPU ${held.cpu}${share}`;
}

function factorsTable(d) {
  const table = el("table", { class: "factors" });
  table.append(el("caption", { text: "Factors, by their share of the failing figure" }));
  table.append(el("thead", {}, el("tr", {},
    ...["Factor", "Share", "Figure", "Held the CPU", "Method"].map((h) => el("th", { scope: "col", text: h })))));
  const body = el("tbody");
  for (const f of d.factors) {
    const held = f.evidence ? f.evidence.held_by : null;
    body.append(el("tr", { "data-factor": f.name, "data-share": String(f.share) },
      el("th", { scope: "row" }, el("code", { text: f.name })),
      el("td", { "data-field": "share", text: `${(f.share * 100).toFixed(1)} %` }),
      el("td", { "data-field": "figure", text: f.figure }),
      el("td", held && typeof held === "object" ? {
        "data-field": "held-by", "data-comm": String(held.comm), "data-pid": String(held.pid), "data-cpu": String(held.cpu),
        text: heldText(held),
      } : { text: DASH }),
      el("td", { class: "method", text: f.method })));
  }
  if (!d.factors.length) body.append(el("tr", {}, el("td", { colspan: "5", text: "No factor measured." })));
  table.append(body);
  return table;
}

// One diagnosis: its sentence, the failing figure and its limit, the
// factors, a neighbour whose load rose, and what could not be measured.
function diagnosisBlock(d) {
  const target = describeTarget(d.target);
  const box = el("div", { class: "diagnosed", "data-time": String(d.time), "data-target": d.target });
  box.append(el("p", { class: "diag-summary", "data-field": "summary", text: d.summary }));
  box.append(el("p", { "data-field": "failing" },
    `${target.text}: `, el("strong", { text: figureText(d.value, target.unit, target.percent) }),
    `, limit ${figureText(d.limit, target.unit, target.percent)} (interval ending ${clock(d.time)})`));
  box.append(factorsTable(d));
  if (d.neighbour) {
    box.append(el("p", { "data-field": "neighbour",
      text: `Meanwhile ${d.neighbour.name} carried ${fixed(d.neighbour.mbps)} Mbit/s (before: ${fixed(d.neighbour.baseline_mbps)}).` }));
  }
  if (d.unmeasured.length) {
    box.append(el("ul", { class: "unmeasured", "aria-label": "Not measured" },
      ...d.unmeasured.map((what) => el("li", { text: `Not measured: ${what}` }))));
  }
  return box;
}

function probeText(report) {
  const p = report.probe;
  if (!p) return "";
  if (!p.available) return `Probe unavailable: ${p.missing}`;
  return p.attached ? "Probe attached" : "Probe detached";
}

function stateLine(report) {
  const e = report.episode;
  const line = el("p", { "data-part": "diagnosis-state", "data-degraded": String(Boolean(e)) });
  if (!report.enabled) {
    line.textContent = "No diagnosis: it is off in the agent's configuration (diagnosis.enabled is false).";
    return line;
  }
  if (e) {
    line.append(el("strong", { text: `Degraded since ${clock(e.began_at)}` }),
      ` (interval ${e.began_interval}): `,
      ...e.targets.flatMap((t, i) => [i ? ", " : "", el("span", { "data-target": t, text: describeTarget(t).text })]),
      ". ");
  } else {
    line.append("Not degraded now. ");
  }
  line.append(el("span", { "data-field": "probe", "data-attached": String(Boolean(report.probe && report.probe.attached)),
    text: `${probeText(report)}.` }));
  return line;
}

// The open violations of the slice and their sentence, from /api/v1/sla
// (state.events, refreshed after each interval).
function renderOpenViolations(name) {
  const part = document.querySelector('#diagnosis [data-part="diagnosis-open"]');
  const open = [...state.events.values()].filter((v) => v.slice === name && v.open);
  part.replaceChildren(...open.map((v) => el("p", { class: "open-violation", "data-target": v.target },
    el("strong", { text: `Open violation of ${describeTarget(v.target).text} since ${clock(v.started_at)}: ` }),
    v.diagnosis || "no diagnosis of it yet.")));
}

// Each violation's pcapng of the slice's frame heads: a file on the agent's
// host, named here for tshark or `sauron replay`.
function evidenceList(report) {
  const e = report.evidence;
  if (!e) return [];
  if (!e.available) return [el("p", { class: "evidence-missing", text: `No frame heads kept: ${e.missing}` })];
  if (!e.files.length) return [];
  return [el("h4", { text: "Evidence: the frames' heads (pcapng, on the agent's host)" }),
    el("ul", { class: "evidence" }, ...e.files.map((f) => el("li", { "data-path": f.path },
      el("code", { text: f.path }),
      ` ${describeTarget(f.target).text}, since ${clock(f.started_at)}: ${f.frames} frames, `
        + `${(f.bytes / 1e6).toFixed(2)} MB${f.capped ? " (size cap reached)" : ""}`)))];
}

function showDiagnosis(name, report) {
  const section = document.getElementById("diagnosis");
  // diagnosis turned off: said only where the operator would look for one
  const off = !report.enabled && ["at risk", "violated"].includes(state.status.get(name));
  const shown = report.episode !== null || report.diagnoses.length > 0 || off;
  section.hidden = !shown;
  section.dataset.degraded = String(report.episode !== null || off);
  if (!shown) return;
  section.querySelector('[data-part="diagnosis-state"]').replaceWith(stateLine(report));
  renderOpenViolations(name);
  section.querySelector('[data-part="diagnosis-evidence"]').replaceChildren(...evidenceList(report));
  const [latest, ...past] = report.diagnoses;
  const latestPart = section.querySelector('[data-part="diagnosis-latest"]');
  latestPart.replaceChildren(...(latest
    ? [el("h4", { text: "Latest diagnosis" }), diagnosisBlock(latest)]
    : [el("p", { text: "No diagnosis yet: the first comes at the end of the interval the probe was attached in." })]));
  // a past diagnosis the operator opened stays open when a new one arrives
  const pastPart = section.querySelector('[data-part="diagnosis-past"]');
  const opened = new Set([...pastPart.querySelectorAll("details[open]")].map((d) => d.dataset.time));
  pastPart.replaceChildren(...(past.length ? [el("h4", { text: `Earlier diagnoses (${past.length}), newest first` }),
    ...past.map((d) => {
      const details = el("details", { "data-time": String(d.time) },
        el("summary", { text: `${clock(d.time)}: ${d.summary}` }), diagnosisBlock(d));
      details.open = opened.has(String(d.time));
      return details;
    })] : []));
  section.dataset.diagnoses = String(report.diagnoses.length);
}

// Asked after every interval while the drill-down is open, and when it opens.
async function renderDiagnosis(name) {
  const asked = ++diagnosisView.asked;
  const section = document.getElementById("diagnosis");
  if (section.dataset.slice !== name) {
    section.hidden = true; // another slice's diagnosis is never shown under this one
    section.dataset.slice = name;
    diagnosisView.shown = null;
  }
  let report;
  try {
    report = await api(`/api/v1/slices/${encodeURIComponent(name)}/diagnosis`);
  } catch (err) {
    // a missing token is asked for by the stream's loop (run)
    if (err instanceof AuthNeeded || asked !== diagnosisView.asked || state.detail !== name) return;
    for (const part of section.querySelectorAll('[data-part^="diagnosis-"]')) part.replaceChildren();
    section.querySelector('[data-part="diagnosis-state"]').textContent = `Diagnosis unavailable: ${err.message}`;
    section.hidden = false;
    diagnosisView.shown = null;
    return;
  }
  if (asked !== diagnosisView.asked || state.detail !== name) return;
  section.dataset.answers = String(Number(section.dataset.answers || 0) + 1);
  const text = `${name}\n${JSON.stringify(report)}`;
  diagnosisView.report = report;
  if (text === diagnosisView.shown) return;
  diagnosisView.shown = text;
  showDiagnosis(name, report);
}
