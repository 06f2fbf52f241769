"use strict";

// The incident's timeline (GET /api/incidents/{id}/timeline): every entry with an icon for its
// kind, and filters by kind that stay as set while live updates redraw the page.

const TIMELINE_KINDS = [
  ["lifecycle", "Status"],
  ["note", "Notes"],
  ["playbook", "Playbooks"],
  ["automation", "Automation"],
  ["signal", "Checks and alerts"],
  ["notification", "Notifications"],
];

// plain symbols that common fonts have (an emoji shows as a box where no emoji font is installed)
const TIMELINE_ICONS = {
  create: "✚", acknowledge: "◉", mitigate: "◐", resolve: "✔", close: "■", reopen: "↺",
  assign: "➔", note: "✎", report_edited: "✍",
  dry_run: "◌", execute: "▶", rollback: "↶", approval_requested: "⚖", approval_approved: "⚖",
  approval_rejected: "⚖", action_success: "✔", action_failed: "✖", action_crashed: "✖",
  action_cancelled: "⊘",
  recur: "↻", check_passing: "✓", related: "⇢", sla_breached: "⌛", silence_ended: "⊙",
  notified: "✉", notify_failed: "⚠",
};

const timelineHidden = new Set(); // kinds unticked, for the whole visit

function timelineKind(verb) {
  if (["create", "acknowledge", "mitigate", "resolve", "close", "reopen", "assign"].includes(verb)) return "lifecycle";
  if (verb === "note" || verb === "report_edited") return "note";
  if (["dry_run", "execute", "rollback"].includes(verb) || /^(action|approval)_/.test(verb)) return "playbook";
  if (verb.startsWith("remediation_")) return "automation";
  if (verb === "notified" || verb === "notify_failed") return "notification";
  return "signal";
}

function timelineIcon(verb, kind) {
  return TIMELINE_ICONS[verb] || { automation: "⚙", playbook: "▶", signal: "•" }[kind] || "•";
}

function timelineCard(entries, footer) {
  const list = h("div", { class: "timeline-entries" });
  const counts = {};
  for (const entry of entries) counts[timelineKind(entry.verb)] = (counts[timelineKind(entry.verb)] || 0) + 1;
  const draw = () => list.replaceChildren(timelineList(entries.filter((e) => !timelineHidden.has(timelineKind(e.verb))),
    entries.length));
  const filters = h("div", { class: "timeline-filters", role: "group", "aria-label": "Show on the timeline" },
    TIMELINE_KINDS.filter(([kind]) => counts[kind]).map(([kind, label]) => {
      const box = h("input", { type: "checkbox", name: `show-${kind}`, dataset: { kind } });
      box.checked = !timelineHidden.has(kind);
      box.addEventListener("change", () => {
        if (box.checked) timelineHidden.delete(kind); else timelineHidden.add(kind);
        draw();
      });
      return h("label", { class: `timeline-filter kind-${kind}` }, box, ` ${label} `,
        h("span", { class: "muted small" }, String(counts[kind])));
    }));
  draw();
  return h("div", { class: "card" }, h("h2", {}, "Timeline"), entries.length ? filters : null, list, footer);
}

function timelineList(entries, total) {
  if (!total) return h("p", { class: "muted" }, "Nothing yet.");
  if (!entries.length) return h("p", { class: "muted" }, "Every entry is filtered out.");
  return h("ol", { class: "timeline" }, entries.map((entry) => {
    const kind = timelineKind(entry.verb);
    const moved = entry.from_status && entry.to_status && entry.from_status !== entry.to_status;
    return h("li", { class: `kind-${kind}`, dataset: { kind, verb: entry.verb } },
      h("span", { class: "timeline-icon", "aria-hidden": "true", title: kind }, timelineIcon(entry.verb, kind)),
      h("div", { class: "timeline-body" },
        when(entry.at), " ",
        h("strong", {}, entry.verb.replace(/_/g, " ")), " ",
        moved ? h("span", {}, `${entry.from_status} → ${entry.to_status} `) : null,
        h("span", { class: "muted" }, `by ${entry.actor}`),
        entry.notes ? h("div", { class: "notes" }, linkified(entry.notes)) : null));
  }));
}

// Text with its http(s) addresses as links (a run's Prefect page, an issue).
function linkified(text) {
  const parts = [];
  let last = 0;
  for (const match of text.matchAll(/https?:\/\/[^\s<>"')]+/g)) {
    parts.push(text.slice(last, match.index));
    parts.push(h("a", { href: match[0], target: "_blank", rel: "noopener" }, match[0]));
    last = match.index + match[0].length;
  }
  parts.push(text.slice(last));
  return parts;
}
