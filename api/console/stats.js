"use strict";

// The Stats page (#/stats?days=N), from GET /api/stats: how fast each severity's incidents were
// acknowledged and resolved, how often their SLA timers held, and the keys that keep coming
// back, so a team sees what to fix for good. The charts are inline SVG drawn here (no library).
// Loaded before console.js (it only defines functions); it uses console.js's globals (h, api,
// state, badge, when, duration, svgNode) when a page is drawn;
// console.js's refresh calls renderStats.

const STATS_WINDOWS = [1, 7, 30, 90]; // days

async function renderStats(days) {
  const stats = await api(`/stats?days=${days}`);
  if (state.route.name !== "stats" || state.route.days !== days) return; // left, or re-chosen
  const period = days === 1 ? "the last 24 hours" : `the last ${days} days`;
  const total = Object.values(stats.by_severity).reduce((sum, count) => sum + count, 0);
  const toolbar = h("div", { class: "toolbar" }, h("h1", {}, "Stats"), statsWindowChooser(days),
    total ? h("span", { class: "muted stats-total" },
      `${total} incident${total === 1 ? "" : "s"} created in ${period}`) : null);
  const body = total === 0
    ? h("p", { class: "empty stats-empty" }, `No incident in ${period}.`)
    : [
      statsSummary(stats),
      h("div", { class: "columns" },
        h("div", { class: "card" }, h("h2", {}, "Mean time to acknowledge (MTTA)"),
          statsTimeChart(stats.times, "mtta", "acknowledged")),
        h("div", { class: "card" }, h("h2", {}, "Mean time to resolve (MTTR)"),
          statsTimeChart(stats.times, "mttr", "resolved"))),
      h("div", { class: "card" }, h("h2", {}, "SLA compliance"),
        h("p", { class: "muted small" }, "Share of the decided timers (met or breached) that were met; "
          + "pending timers are still running."),
        statsSlaTable(stats.sla)),
      h("div", { class: "columns" },
        h("div", { class: "card" }, h("h2", {}, "Most occurrences"),
          statsNoisyTable(stats.noisiest.by_occurrences, "occurrences",
            `No key came back in ${period}.`)),
        h("div", { class: "card" }, h("h2", {}, "Most reopened"),
          statsNoisyTable(stats.noisiest.by_reopens, "reopens",
            `No incident was reopened in ${period}.`))),
    ];
  document.getElementById("view").replaceChildren(
    h("section", { class: "stats-page", dataset: { days } }, toolbar, body));
}

// The window lives in the URL, so a link reproduces the view: choosing one moves the hash.
function statsWindowChooser(days) {
  const choices = STATS_WINDOWS.includes(days) ? STATS_WINDOWS
    : [...STATS_WINDOWS, days].sort((a, b) => a - b);
  return h("div", { class: "stats-windows", role: "group", "aria-label": "Window" },
    choices.map((n) => h("button", {
      type: "button",
      class: n === days ? "small current" : "small",
      "aria-pressed": String(n === days),
      dataset: { days: n },
      onclick: () => { location.hash = `#/stats?days=${n}`; },
    }, n === 1 ? "24 hours" : `${n} days`)));
}

function statsSummary(stats) {
  const acknowledged = Object.values(stats.times).reduce((sum, t) => sum + t.acknowledged, 0);
  const resolved = Object.values(stats.times).reduce((sum, t) => sum + t.resolved, 0);
  return h("div", { class: "card stats-summary" },
    h("dl", { class: "facts" },
      h("dt", {}, "By severity"),
      h("dd", {}, h("ul", { class: "counts" }, state.me.severities.map((severity) =>
        h("li", { dataset: { severity } }, badge("severity", severity), " ",
          String(stats.by_severity[severity] ?? 0))))),
      h("dt", {}, "By status"),
      h("dd", {}, h("ul", { class: "counts" }, state.me.statuses.map((status) =>
        h("li", { dataset: { status } }, badge("status", status), " ",
          String(stats.by_status[status] ?? 0))))),
      h("dt", {}, "MTTA"),
      h("dd", { class: "stats-mtta" }, duration(stats.mtta_seconds),
        h("span", { class: "muted" }, ` over ${acknowledged} acknowledged`)),
      h("dt", {}, "MTTR"),
      h("dd", { class: "stats-mttr" }, duration(stats.mttr_seconds),
        h("span", { class: "muted" }, ` over ${resolved} resolved`))));
}

// One horizontal bar per severity, its length the mean against the longest; a severity with
// nothing acknowledged (or resolved) has no bar, only "no data".
function statsTimeChart(times, measure, counted) {
  const field = `${measure}_seconds`;
  const severities = state.me.severities;
  const longest = Math.max(0, ...severities.map((s) => times[s]?.[field] ?? 0));
  const width = 640, row = 30, labelWidth = 56, valueWidth = 150;
  const room = width - labelWidth - valueWidth;
  const chart = svgNode("svg", {
    class: `stats-bars ${measure}`, viewBox: `0 0 ${width} ${severities.length * row}`,
    role: "img", "aria-label": `${measure.toUpperCase()} per severity`,
  });
  for (const [i, severity] of severities.entries()) {
    const seconds = times[severity]?.[field] ?? null;
    const count = times[severity]?.[counted] ?? 0;
    const y = i * row;
    const said = seconds === null
      ? `${severity}: none ${counted}`
      : `${severity}: ${duration(seconds)} on average over ${count} ${counted}`;
    const length = seconds === null || longest === 0 ? 0 : Math.max(2, (seconds / longest) * room);
    chart.append(svgNode("g", { "data-severity": severity, "data-seconds": seconds ?? "",
      class: seconds === null ? "bar-row no-data" : "bar-row" },
    svgNode("title", {}, said),
    svgNode("text", { x: 0, y: y + row / 2, class: "label", "dominant-baseline": "middle" }, severity),
    seconds === null ? null : svgNode("rect", { x: labelWidth, y: y + 5, width: length.toFixed(1),
      height: row - 10, rx: 3, class: `bar ${severity}` }),
    svgNode("text", { x: labelWidth + length + 6, y: y + row / 2, "dominant-baseline": "middle",
      class: seconds === null ? "value muted" : "value" },
    seconds === null ? "no data" : `${duration(seconds)} (${count})`)));
  }
  return h("div", {}, chart,
    h("p", { class: "muted small" }, `In brackets: how many incidents were ${counted}.`));
}

// Severities down, timers across; each cell a percentage bar of met among the decided.
function statsSlaTable(sla) {
  const timers = state.me.sla_timers;
  return h("table", { class: "stats-sla" },
    h("thead", {}, h("tr", {}, h("th", {}, "Severity"), timers.map((timer) => h("th", {}, timer)))),
    h("tbody", {}, state.me.severities.map((severity) => h("tr", { dataset: { severity } },
      h("td", {}, badge("severity", severity)),
      timers.map((timer) => statsSlaCell(severity, timer, sla[severity]?.[timer] ?? null))))));
}

function statsSlaCell(severity, timer, tally) {
  if (!tally) {
    return h("td", { dataset: { timer, compliance: "" }, class: "muted" }, "no target");
  }
  const none = tally.met + tally.breached + tally.pending === 0;
  const counts = none ? "no incident"
    : `${tally.met} met, ${tally.breached} breached, ${tally.pending} pending`;
  const percent = tally.compliance === null ? null : Math.round(tally.compliance * 100);
  const title = `${severity} ${timer}: ${counts}`
    + (percent === null ? " (none decided yet)" : ` (${percent}% met)`);
  const width = 160, height = 14;
  const met = percent === null ? 0 : (tally.compliance * width);
  const bar = svgNode("svg", { class: "stats-percent", viewBox: `0 0 ${width} ${height}`,
    width, height, role: "img", "aria-label": title },
  svgNode("title", {}, title),
  svgNode("rect", { x: 0, y: 0, width, height, rx: 3,
    class: percent === null ? "track" : "breached" }),
  percent === null ? null : svgNode("rect", { x: 0, y: 0, width: met.toFixed(1), height, rx: 3,
    class: "met" }));
  return h("td", { dataset: { timer, compliance: tally.compliance ?? "" }, title },
    h("div", { class: "stats-percent-row" }, bar,
      h("strong", { class: "percent" }, percent === null ? "—" : `${percent}%`)),
    h("div", { class: "muted small counts-said" }, counts));
}

// The keys most listed by `measure`; each links to the board filtered by it and to its newest
// incident.
function statsNoisyTable(keys, measure, empty) {
  if (!keys.length) return h("p", { class: "empty" }, empty);
  const board = (key) => `#/?${new URLSearchParams({ q: key })}`;
  return h("table", { class: `stats-noisy by-${measure}` },
    h("thead", {}, h("tr", {}, ["Key", "Kind", "Incidents", "Occurrences", "Reopens", "Last"]
      .map((t) => h("th", {}, t)))),
    h("tbody", {}, keys.map((noisy) => h("tr", { dataset: { key: noisy.key, kind: noisy.kind } },
      h("td", { class: "key" }, h("a", { href: board(noisy.key), title: `Incidents matching ${noisy.key}` },
        noisy.key)),
      h("td", {}, noisy.kind),
      h("td", { class: "incidents" }, String(noisy.incidents)),
      h("td", { class: measure === "occurrences" ? "occurrences sorted" : "occurrences" },
        String(noisy.occurrences)),
      h("td", { class: measure === "reopens" ? "reopens sorted" : "reopens" },
        String(noisy.reopens)),
      h("td", { class: "last" }, h("a", { href: `#/incidents/${noisy.last_incident_id}` },
        `#${noisy.last_incident_id}`), " ", when(noisy.last_seen_at))))));
}
