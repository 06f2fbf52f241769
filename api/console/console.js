// The Intervene console: plain JavaScript, no build step.
//
// Everything comes from the REST API under /api, with the token the user gives once (kept in
// sessionStorage, this tab only). The Server-Sent Events stream keeps the open page current:
// each event refreshes what it touches. The stream resumes from the last event id after a
// drop (the browser's own retry sends Last-Event-ID; after a hard failure we reconnect with
// ?last_event_id=), so nothing is missed while the connection was down.
"use strict";

const TOKEN_KEY = "intervene.token";
// Statuses (all, and the active ones), severities, kinds, SLA timers, the incident state machine
// and the final action statuses are the server's: GET /api/me sends them (state.me), so the
// console keeps no copy of its own.

const state = {
  token: sessionStorage.getItem(TOKEN_KEY),
  me: null,
  events: null,
  lastEventId: null,
  reconnectTimer: null,
  filters: { status: "", severity: "", kind: "", q: "" },
  silenceFilter: "", // the silences list: "" (active and pending), or one state
  route: { name: "board" },
  previews: new Map(), // action_type -> the last dry-run of it on this incident page
  drafts: new Map(), // action_type -> {params, open}: what the user typed survives a live refresh
  refreshTimer: null,
};

// ---------------------------------------------------------------------------------------------
// DOM helpers: text goes in as text (textContent), never as HTML.

function h(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

// An SVG element, as h() builds HTML ones (the report's chart, the Stats page's bars).
function svgNode(tag, attrs, ...children) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value !== null && value !== undefined) node.setAttribute(key, String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function badge(kind, value) {
  return h("span", { class: `badge ${kind}-${value}`, dataset: { [kind]: value } }, value);
}

function when(iso) {
  if (!iso) return h("span", { class: "muted" }, "—");
  const date = new Date(iso);
  return h("time", { datetime: iso, title: date.toLocaleString() }, ago(date));
}

function ago(date) {
  const seconds = Math.round((Date.now() - date.getTime()) / 1000);
  const future = seconds < 0;
  const s = Math.abs(seconds);
  const text = s < 60 ? `${s} s` : s < 3600 ? `${Math.round(s / 60)} min`
    : s < 86400 ? `${(s / 3600).toFixed(1)} h` : `${(s / 86400).toFixed(1)} d`;
  return future ? `in ${text}` : `${text} ago`;
}

function json(value) {
  return h("pre", { class: "json" }, JSON.stringify(value, null, 2));
}

// ---------------------------------------------------------------------------------------------
// The API: every failure becomes an ApiError carrying the envelope's message.

class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

async function api(path, options = {}) {
  const init = { method: options.method || "GET", headers: { Accept: "application/json" } };
  if (state.token) init.headers.Authorization = `Bearer ${state.token}`;
  if (options.body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(options.body);
  }
  let response;
  try {
    response = await fetch(`/api${path}`, init);
  } catch (error) {
    throw new ApiError(0, "network_error", `The API cannot be reached (${error.message})`, {});
  }
  const text = await response.text();
  let body = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = null;
  }
  if (!response.ok) {
    const envelope = body && body.error;
    if (response.status === 401) signOut("Your token was not accepted: sign in again.");
    throw new ApiError(
      response.status,
      envelope ? envelope.code : "http_error",
      envelope ? envelope.message : `HTTP ${response.status} ${response.statusText}`,
      envelope ? envelope.details : {},
    );
  }
  return body;
}

function showError(error) {
  let text = error instanceof ApiError && error.code
    ? `${error.message} (${error.code}${error.status ? `, ${error.status}` : ""})`
    : String(error && error.message ? error.message : error);
  const fields = error instanceof ApiError && error.details && Array.isArray(error.details.errors)
    ? error.details.errors : [];
  if (fields.length) { // which field, and what is wrong with it, as the API said
    text += ": " + fields.map((e) => `${e.field}: ${e.message}`).join("; ");
  }
  document.getElementById("error-text").textContent = text;
  document.getElementById("error").hidden = false;
}

function clearError() {
  document.getElementById("error").hidden = true;
  document.getElementById("error-text").textContent = "";
}

// Runs a user action; its failure is shown as the envelope's message, never swallowed.
async function attempt(work) {
  clearError();
  try {
    return await work();
  } catch (error) {
    showError(error);
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// Signing in and out.

async function signIn(token) {
  state.token = token;
  const me = await api("/me");
  sessionStorage.setItem(TOKEN_KEY, token);
  state.me = me;
  document.getElementById("who").textContent = `${me.name} · ${me.role}`;
  document.getElementById("sign-out").hidden = false;
  connectEvents();
  return me;
}

function signOut(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  state.token = null;
  state.me = null;
  if (state.events) state.events.close();
  state.events = null;
  clearTimeout(state.reconnectTimer);
  setLive("off", "offline");
  document.getElementById("who").textContent = "";
  document.getElementById("sign-out").hidden = true;
  document.getElementById("automation").hidden = true;
  renderSignIn();
  if (message) showError(message);
}

function renderSignIn() {
  const view = document.getElementById("view");
  view.replaceChildren(document.getElementById("sign-in").content.cloneNode(true));
  const form = document.getElementById("sign-in-form");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const token = new FormData(form).get("token").trim();
    const ok = await attempt(() => signIn(token));
    if (ok !== undefined || state.me) render();
  });
  form.querySelector("input").focus();
}

// ---------------------------------------------------------------------------------------------
// Live events.

function setLive(kind, text) {
  const live = document.getElementById("live");
  live.className = `live ${kind}`;
  live.textContent = text;
}

function connectEvents() {
  if (state.events) state.events.close();
  clearTimeout(state.reconnectTimer);
  const query = new URLSearchParams({ access_token: state.token });
  if (state.lastEventId) query.set("last_event_id", state.lastEventId);
  const events = new EventSource(`/api/sse/events?${query}`);
  state.events = events;
  let dropped = false;
  const remember = (event) => {
    if (event.lastEventId) state.lastEventId = event.lastEventId;
  };
  events.addEventListener("connected", () => {
    setLive("on", "live");
    if (dropped) scheduleRefresh(); // anything missed came in order; the view re-reads anyway
  });
  events.addEventListener("reset", () => scheduleRefresh());
  for (const type of ["incident_created", "incident_updated", "action_executed"]) {
    events.addEventListener(type, (event) => {
      remember(event);
      onEvent(type, JSON.parse(event.data));
    });
  }
  events.addEventListener("heartbeat", () => setLive("on", "live"));
  events.onerror = () => {
    dropped = true;
    setLive("off", "reconnecting…");
    if (events.readyState === EventSource.CLOSED && state.token) {
      // the browser gave up (a non-200 answer): try again ourselves, from where we were
      state.reconnectTimer = setTimeout(reconnect, 2000);
    }
  };
}

// Reconnects once the token is known to be good: a revoked one signs out (api() does)
// instead of knocking on the stream forever; anything else is tried again a little later.
async function reconnect(delay = 2000) {
  try {
    await api("/me");
    connectEvents();
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) return;
    state.reconnectTimer = setTimeout(() => reconnect(Math.min(delay * 2, 30000)), delay);
  }
}

function onEvent(type, data) {
  const route = state.route;
  // a re-read because something happened elsewhere: an error the user was shown stays shown
  if (route.name === "board" && type !== "action_executed") {
    scheduleRefresh({ quiet: true });
  } else if (route.name === "incident") {
    const about = type === "action_executed" ? data.incident_id : data.id;
    if (about === route.id) scheduleRefresh({ quiet: true });
  } else if (isSilencePage(route) && type === "incident_created") {
    // a held alert released when its silence ended opens an incident: its row links it now
    scheduleRefresh({ quiet: true });
  }
}

// Several events in a burst cost one re-read. A quiet one (a background re-read, not a user's
// action) leaves a shown error alone.
function scheduleRefresh({ quiet = false } = {}) {
  clearTimeout(state.refreshTimer);
  state.refreshTimer = setTimeout(() => (quiet ? refresh().catch(showError) : attempt(refresh)), 150);
}

// ---------------------------------------------------------------------------------------------
// Routing: #/ (board; its filters in the URL: ?status=&severity=&kind=&q=), #/incidents/<id>,
// #/incidents/<id>/report, #/checks, #/automation, #/silences (its form prefilled by
// ?key=&source=&kind=&from=<incident id>), #/silences/<id>, #/schedules, #/stats (its window
// in the URL: ?days=; the page is console/stats.js).

function parseRoute() {
  const raw = location.hash.replace(/^#/, "") || "/";
  const mark = raw.indexOf("?");
  const hash = mark < 0 ? raw : raw.slice(0, mark);
  const query = new URLSearchParams(mark < 0 ? "" : raw.slice(mark + 1));
  const incident = hash.match(/^\/incidents\/(\d+)$/);
  if (incident) return { name: "incident", id: Number(incident[1]) };
  const report = hash.match(/^\/incidents\/(\d+)\/report$/);
  if (report) return { name: "report", id: Number(report[1]) };
  const silence = hash.match(/^\/silences\/(\d+)$/);
  if (silence) return { name: "silence", id: Number(silence[1]) };
  if (hash === "/silences") {
    const prefill = {};
    for (const name of ["key", "source", "kind", "from"]) if (query.get(name)) prefill[name] = query.get(name);
    return { name: "silences", prefill: Object.keys(prefill).length ? prefill : null };
  }
  if (hash === "/checks") return { name: "checks" };
  if (hash === "/automation") return { name: "automation" };
  if (hash === "/schedules") return { name: "schedules" };
  if (hash === "/stats") return { name: "stats", days: Number(query.get("days")) || 7 };
  const filters = { status: "", severity: "", kind: "", q: "" };
  for (const name of Object.keys(filters)) filters[name] = query.get(name) || "";
  return { name: "board", filters };
}

// The board's filters live in the URL, so a link reproduces the view: changing one moves the
// hash, and the hash change renders the board with it.
function setFilters(changes) {
  const filters = { ...state.filters, ...changes };
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(filters)) if (value) query.set(name, value);
  const search = query.toString();
  const target = `#/${search ? `?${search}` : ""}`;
  if (location.hash === target || (!location.hash && target === "#/")) {
    state.filters = filters;
    attempt(renderBoard);
  } else {
    location.hash = target;
  }
}

function isSilencePage(route) {
  return route.name === "silences" || route.name === "silence";
}

function render() {
  state.route = parseRoute();
  if (state.route.name === "board") state.filters = state.route.filters;
  state.previews.clear();
  state.drafts.clear();
  for (const link of document.querySelectorAll("[data-nav]")) {
    link.classList.toggle("current", link.dataset.nav === state.route.name
      || (link.dataset.nav === "board" && ["incident", "report"].includes(state.route.name))
      || (link.dataset.nav === "silences" && state.route.name === "silence"));
  }
  if (!state.token) return renderSignIn();
  document.getElementById("view").replaceChildren(h("p", { class: "muted" }, "Loading…"));
  return attempt(refresh);
}

async function refresh() {
  if (!state.token || !state.me) return;
  const route = state.route;
  refreshAutomation().catch(showError); // the header's switch, whatever the page
  if (route.name === "incident") return renderIncident(route.id);
  if (route.name === "report") return renderReport(route.id);
  if (route.name === "checks") return renderChecks();
  if (route.name === "automation") return renderAutomation();
  if (route.name === "schedules") return refreshSchedules();
  if (route.name === "stats") return renderStats(route.days);
  if (isSilencePage(route)) return refreshSilencePage();
  return renderBoard();
}

// ---------------------------------------------------------------------------------------------
// The board.

async function renderBoard() {
  const query = new URLSearchParams({ limit: "100" });
  for (const [key, value] of Object.entries(state.filters)) if (value) query.set(key, value);
  const countQuery = new URLSearchParams();
  for (const key of ["severity", "kind", "q"]) if (state.filters[key]) countQuery.set(key, state.filters[key]);
  const [list, counts] = await Promise.all([
    api(`/incidents?${query}`),
    api(`/incidents/counts?${countQuery}`),
  ]);
  if (state.route.name !== "board") return;

  const select = (name, values) => h("label", {}, name,
    h("select", {
      name,
      onchange: (event) => setFilters({ [name]: event.target.value }),
    },
    h("option", { value: "" }, "all"),
    values.map((value) => h("option", { value, selected: state.filters[name] === value }, value))));

  const summary = h("ul", { class: "counts", "aria-label": "Incidents per status" },
    state.me.statuses.map((status) => h("li", { dataset: { status } },
      h("button", {
        class: `count status-${status}`,
        type: "button",
        onclick: () => setFilters({ status: state.filters.status === status ? "" : status }),
      }, h("strong", {}, String(counts.by_status[status])), " ", status))));

  const rows = list.incidents.map((incident) => h("tr", { dataset: { incidentId: incident.id } },
    h("td", {}, h("a", { href: `#/incidents/${incident.id}` }, `#${incident.id}`)),
    h("td", {}, badge("severity", incident.severity)),
    h("td", {}, badge("status", incident.status)),
    h("td", {}, incident.kind),
    h("td", { class: "summary" }, h("a", { href: `#/incidents/${incident.id}` }, incident.summary),
      h("div", { class: "muted small" }, incident.key)),
    h("td", {}, slaCell(incident)),
    h("td", {}, incident.assigned_to || h("span", { class: "muted" }, "—")),
    h("td", {}, when(incident.created_at)),
  ));

  document.getElementById("view").replaceChildren(
    h("section", { class: "board" },
      h("div", { class: "toolbar" }, h("h1", {}, "Incidents"), summary),
      h("form", {
        class: "filters",
        onsubmit: (event) => {
          event.preventDefault();
          setFilters({ q: event.target.elements.q.value.trim() });
        },
      },
      h("label", {}, "search",
        h("input", { type: "search", name: "q", value: state.filters.q, maxlength: 200,
          placeholder: "key, summary or label", "aria-label": "Search incidents" })),
      select("status", state.me.statuses), select("severity", state.me.severities),
      select("kind", state.me.kinds),
      h("span", { class: "muted matching" }, `${list.total} matching, newest first`)),
      rows.length
        ? h("table", { class: "incidents" },
          h("thead", {}, h("tr", {}, ["ID", "Severity", "Status", "Kind", "Summary", "SLA",
            "Assigned", "Opened"].map((t) => h("th", {}, t)))),
          h("tbody", {}, rows))
        : h("p", { class: "empty" }, "No incidents match. Checks open them when an invariant breaks."),
    ),
  );
}

// The next SLA timer still running, or the first one breached (incident.sla, when present).
function slaCell(incident) {
  if (!incident.sla) return h("span", { class: "muted" }, "—");
  const timers = state.me.sla_timers
    .map((name) => [name, incident.sla[name]]).filter(([, timer]) => timer);
  const breached = timers.find(([, timer]) => timer.state === "breached");
  const finished = !state.me.active_statuses.includes(incident.status);
  if (breached && finished) return h("span", { class: "muted" }, `${breached[0]} missed`);
  if (breached) return h("span", { class: "sla breached" }, `${breached[0]} breached`);
  const pending = timers.find(([, timer]) => timer.state === "pending");
  if (pending) {
    return h("span", { class: "sla pending" }, `${pending[0]} due `, when(pending[1].due_at));
  }
  return h("span", { class: "muted" }, timers.length ? "met" : "—");
}

// ---------------------------------------------------------------------------------------------
// One incident.

async function renderIncident(id) {
  const [incident, timeline, available, history, approvals, paged, oncall] = await Promise.all([
    api(`/incidents/${id}`),
    api(`/incidents/${id}/timeline`),
    api(`/playbooks/incidents/${id}/actions`),
    api(`/playbooks/incidents/${id}/actions/history`),
    api(`/playbooks/incidents/${id}/actions/approvals`),
    api(`/incidents/${id}/notifications`),
    api("/oncall"),
  ]);
  if (state.route.name !== "incident" || state.route.id !== id) return;
  const me = state.me;

  const lifecycle = lifecycleCard(incident, oncall, () => renderIncident(id));

  const metadata = incident.metadata || {};
  const facts = [
    ["Kind", incident.kind], ["Key", incident.key],
    ...alertFacts(metadata),
    ["Occurrences", incident.occurrence_count], ["Assigned to", incident.assigned_to || "—"],
    ["Acknowledged by", incident.acknowledged_by || "—"],
    ["Opened", when(incident.created_at)], ["Last seen", when(incident.last_seen_at)],
  ];
  if (incident.issue_url) facts.push(["Issue", h("a", { href: incident.issue_url }, incident.issue_url)]);

  document.getElementById("view").replaceChildren(
    h("section", { class: "incident", dataset: { incidentId: id, status: incident.status } },
      h("p", {}, h("a", { href: "#/" }, "← all incidents")),
      h("div", { class: "toolbar" },
        h("h1", {}, `#${incident.id} ${incident.summary}`),
        badge("severity", incident.severity), badge("status", incident.status),
        h("a", { class: "button", href: `#/incidents/${id}/report`, dataset: { do: "report" } }, "Report")),
      lifecycle,
      h("div", { class: "columns" },
        h("div", { class: "card" }, h("h2", {}, "Details"),
          h("dl", { class: "facts" }, facts.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])),
          metadata.source && me.may_transition
            ? h("div", { class: "buttons" }, h("a", { class: "button", href: silenceThisAlert(incident),
              dataset: { do: "silence-alert" }, title: "Open the Silences form with this alert's key and source" },
            "Silence this alert"))
            : null,
          slaTable(incident),
          detailsView(incident.details),
          metadataView(incident.metadata)),
        timelineCard(timeline.entries, me.may_transition ? noteForm(id) : null)),
      relatedCard(incident.related),
      peopleCard(paged.notifications, oncall),
      remediationCard(id, incident.remediation),
      h("div", { class: "card" }, h("h2", {}, "Playbooks"),
        incident.status === "closed"
          ? h("p", { class: "muted" }, "This incident is closed: playbooks no longer run on it. "
            + "If the problem is back, the next check (or alert) opens a new incident.")
          : available.available_actions.length
            ? available.available_actions.map((action) => playbookPanel(id, incident, action))
            : h("p", { class: "muted" }, "No playbook suggested for this incident.")),
      approvalsCard(id, approvals.approvals),
      h("div", { class: "card", id: "action-history" }, h("h2", {}, "Action history"),
        historyTable(id, history.actions)),
    ),
  );
}

// An alert incident's facts (its metadata): the tool it came from, the routing rule that
// matched it, and when its tool resolved it.
function alertFacts(metadata) {
  const facts = [];
  if (metadata.source) facts.push(["Source", h("span", { class: "badge source", dataset: { source: metadata.source } }, metadata.source)]);
  if (metadata.rule) facts.push(["Rule", h("code", { class: "rule" }, metadata.rule)]);
  if (metadata.resolved_by_source_at) facts.push(["Resolved by source", when(metadata.resolved_by_source_at)]);
  return facts;
}

// The Silences form, prefilled with this incident's key (as a glob matching it alone) and source.
function silenceThisAlert(incident) {
  const query = new URLSearchParams({ key: globEscape(incident.key), source: incident.metadata.source,
    from: String(incident.id) });
  return `#/silences?${query}`;
}

// Failures downstream of this incident's (dbt lineage) that joined it instead of opening their own.
function relatedCard(related) {
  if (!related || !related.length) return null;
  return h("div", { class: "card related" },
    h("h2", {}, "Related failures ", h("span", { class: "badge" }, String(related.length))),
    h("p", { class: "muted small" }, "Downstream of this failure (dbt lineage): listed here instead of "
      + "opening incidents of their own while this one is active."),
    h("table", { class: "related-failures" },
      h("thead", {}, h("tr", {}, ["Key", "Source", "Occurrences", "State", "First seen", "Last seen"]
        .map((t) => h("th", {}, t)))),
      h("tbody", {}, related.map((r) => h("tr", { dataset: { key: r.key, firing: String(r.firing) } },
        h("td", {}, h("code", {}, r.key), h("div", { class: "muted small" }, r.kind)),
        h("td", {}, r.source),
        h("td", {}, String(r.occurrences)),
        h("td", {}, firingBadge(r.firing)),
        h("td", {}, when(r.first_seen_at)),
        h("td", {}, when(r.last_seen_at)))))));
}

function firingBadge(firing) {
  return firing
    ? h("span", { class: "badge firing" }, "still failing")
    : h("span", { class: "badge recovered", title: "Its source's last word: resolved" }, "no longer failing");
}

function slaTable(incident) {
  if (!incident.sla) return null;
  const rows = state.me.sla_timers.map((name) => {
    const timer = incident.sla[name];
    if (!timer) return h("tr", {}, h("td", {}, name), h("td", { colspan: 3, class: "muted" }, "no target"));
    return h("tr", { dataset: { sla: name, state: timer.state } },
      h("td", {}, name), h("td", {}, when(timer.due_at)),
      h("td", {}, h("span", { class: `sla ${timer.state}` }, timer.state)),
      h("td", {}, timer.done_at ? when(timer.done_at) : ""));
  });
  return h("table", { class: "sla-table" },
    h("thead", {}, h("tr", {}, ["SLA", "Due", "State", "Done"].map((t) => h("th", {}, t)))),
    h("tbody", {}, rows));
}

// ---------------------------------------------------------------------------------------------
// The incident report (GET /api/incidents/{id}/report?format=json): the impact window against
// the SLA, the check's measurements as a chart, the actions, who did what, and the root cause
// and follow-ups people write (PUT, with the version they edited: a concurrent save is a 409).

async function renderReport(id) {
  const report = await api(`/incidents/${id}/report?format=json`);
  if (state.route.name !== "report" || state.route.id !== id) return;
  const me = state.me;
  const stages = h("table", { class: "report-stages" },
    h("thead", {}, h("tr", {}, ["Stage", "At", "After opening", "SLA target", "SLA"].map((t) => h("th", {}, t)))),
    h("tbody", {}, report.stages.map((s) => h("tr", { dataset: { stage: s.stage } },
      h("td", {}, s.stage), h("td", {}, s.at ? new Date(s.at).toLocaleString() : "—"),
      h("td", {}, duration(s.after_seconds)), h("td", {}, duration(s.target_seconds)),
      h("td", {}, s.state ? h("span", { class: `sla ${s.state}` }, s.state) : "—")))));
  const actions = report.actions.length
    ? h("ul", { class: "report-actions" }, report.actions.map((a) => h("li", { dataset: { actionId: a.id } },
      h("strong", {}, `#${a.id} ${a.action_type}`), ` ${a.dry_run ? "dry-run" : a.rollback_of ? "rollback" : "run"} `,
      badge("action", a.status), ` requested by ${a.requested_by}`,
      a.approved_by ? `, approved by ${a.approved_by}` : "",
      a.duration_seconds !== null ? `, ${duration(a.duration_seconds)}` : "",
      a.plan.length ? h("ul", { class: "small" }, a.plan.map((c) => h("li", {}, c))) : null)))
    : h("p", { class: "muted" }, "No playbook was run.");
  const steps = h("ol", { class: "timeline" }, report.timeline.map((s) => h("li", {},
    when(s.at), " ", h("strong", {}, s.verb), " ", h("span", { class: "muted" }, `by ${s.actor}`),
    s.notes ? h("div", { class: "notes" }, s.notes) : null)));
  const writing = report.writing;
  const rootCause = h("textarea", { name: "root_cause", rows: 5, maxlength: 50000, "aria-label": "Root cause" });
  const followUps = h("textarea", { name: "follow_ups", rows: 5, maxlength: 50000, "aria-label": "Follow-ups" });
  rootCause.value = writing.root_cause;
  followUps.value = writing.follow_ups;
  const editable = me.may_transition;
  if (!editable) { rootCause.readOnly = true; followUps.readOnly = true; }
  const version = h("span", { class: "muted small report-version" }, writing.version
    ? `Version ${writing.version}, by ${writing.updated_by}` : "Not written yet");
  const save = () => attempt(async () => {
    await api(`/incidents/${id}/report`, { method: "PUT", body: {
      root_cause: rootCause.value, follow_ups: followUps.value, base_version: writing.version } });
    await renderReport(id);
  });
  const download = () => attempt(async () => {
    const response = await fetch(`/api/incidents/${id}/report`, { headers: { Authorization: `Bearer ${state.token}` } });
    if (!response.ok) throw new ApiError(response.status, "report", `The report could not be read (${response.status})`, {});
    const link = h("a", { href: URL.createObjectURL(await response.blob()), download: `incident-${id}-report.md` });
    link.click();
    URL.revokeObjectURL(link.href);
  });
  document.getElementById("view").replaceChildren(
    h("section", { class: "report", dataset: { incidentId: id } },
      h("p", {}, h("a", { href: `#/incidents/${id}` }, `← incident #${id}`)),
      h("div", { class: "toolbar" }, h("h1", {}, `Report: #${id} ${report.summary}`),
        badge("severity", report.severity), badge("status", report.status),
        h("button", { type: "button", dataset: { do: "download-report" }, onclick: download }, "Download Markdown")),
      h("div", { class: "card" }, h("h2", {}, "Impact window"), stages),
      h("div", { class: "card" }, h("h2", {}, "Measurements"), measurementChart(report.measurements)),
      h("div", { class: "card" }, h("h2", {}, "Actions"), actions),
      h("div", { class: "card" }, h("h2", {}, "Who did what"), steps),
      h("div", { class: "card report-writing" }, h("h2", {}, "Root cause"), rootCause,
        h("h2", {}, "Follow-ups"), followUps,
        h("div", { class: "buttons" }, version,
          editable ? h("button", { type: "submit", class: "primary", dataset: { do: "save-report" }, onclick: save }, "Save") : null))));
}

function duration(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, "0")} s`;
  return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, "0")} min`;
}

// The check's value over time against its threshold: a small SVG line chart (no library).
function measurementChart(measurements) {
  const points = measurements.filter((m) => m.value !== null);
  if (!points.length) return h("p", { class: "muted no-measurements" }, "No check measured this incident.");
  const svg = svgNode;
  const width = 640, height = 180, pad = 30;
  const times = points.map((m) => new Date(m.at).getTime());
  const values = [...points.map((m) => m.value), points[0].threshold];
  const [t0, t1] = [Math.min(...times), Math.max(...times)];
  const [v0, v1] = [Math.min(...values), Math.max(...values)];
  const x = (t) => pad + (t1 === t0 ? 0.5 : (t - t0) / (t1 - t0)) * (width - 2 * pad);
  const y = (v) => height - pad - (v1 === v0 ? 0.5 : (v - v0) / (v1 - v0)) * (height - 2 * pad);
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, class: "measurements", role: "img",
    "aria-label": `${points[0].check_id}: ${points.length} measurements against the threshold ${points[0].threshold}` });
  const threshold = points[0].threshold;
  chart.append(svg("line", { x1: pad, x2: width - pad, y1: y(threshold), y2: y(threshold), class: "threshold" }));
  chart.append(svg("polyline", { points: points.map((m, i) => `${x(times[i])},${y(m.value)}`).join(" "), class: "values" }));
  for (const [i, m] of points.entries()) {
    chart.append(svg("circle", { cx: x(times[i]), cy: y(m.value), r: 3, class: m.passed ? "pass" : "fail" },
      svg("title", {}, `${new Date(m.at).toLocaleString()}: ${m.value} (threshold ${m.threshold})`)));
  }
  chart.append(svg("text", { x: width - pad, y: y(threshold) - 4, "text-anchor": "end", class: "threshold-label" },
    `threshold ${threshold}`));
  return h("div", {}, chart, h("p", { class: "muted small" },
    `${points[0].check_id}: ${points.length} measurements, ${points.filter((m) => !m.passed).length} failing`));
}

// A plain comment on the timeline (POST /api/incidents/{id}/notes), any status.
function noteForm(incidentId) {
  const text = h("textarea", { name: "notes", rows: 2, maxlength: 10000, required: true,
    placeholder: "Add a note to the timeline", "aria-label": "Note" });
  return h("form", {
    class: "note-form",
    onsubmit: (event) => {
      event.preventDefault();
      const notes = text.value.trim();
      if (!notes) return;
      attempt(async () => {
        await api(`/incidents/${incidentId}/notes`, { method: "POST", body: { notes } });
        text.value = "";
        await renderIncident(incidentId);
      });
    },
  }, text, h("div", { class: "buttons" },
    h("button", { type: "submit", dataset: { do: "add-note" } }, "Add note")));
}

function playbookPanel(incidentId, incident, action) {
  const me = state.me;
  const required = Object.entries(action.params || {})
    .filter(([, doc]) => doc.includes("(required)")).map(([name]) => name);
  const suggested = (incident.playbooks || []).includes(action.action_type);
  const draft = state.drafts.get(action.action_type) || { params: "", open: suggested };
  state.drafts.set(action.action_type, draft);
  const params = h("textarea", { name: "params", rows: 3, spellcheck: "false",
    placeholder: required.length ? `required: ${required.join(", ")} (where the incident does not preset them)` : "{}",
    oninput: (event) => { draft.params = event.target.value; } });
  params.value = draft.params;
  const preview = h("div", { class: "preview", "aria-live": "polite" });
  if (state.previews.has(action.action_type)) preview.append(planView(state.previews.get(action.action_type)));
  const readParams = () => {
    const text = params.value.trim() || "{}";
    try {
      return JSON.parse(text);
    } catch (error) {
      throw new ApiError(0, "bad_params", `Params are not valid JSON: ${error.message}`, {});
    }
  };

  const dryRun = () => attempt(async () => {
    const plan = await api(`/playbooks/incidents/${incidentId}/actions/dry-run`, {
      method: "POST",
      body: { action_type: action.action_type, params: readParams(), requested_by: me.name },
    });
    state.previews.set(action.action_type, plan);
    preview.replaceChildren(planView(plan));
    renderExecuteButtons();
    await refreshHistory(incidentId); // the dry-run is in the history from now on
  });

  const execute = (approvedBy) => attempt(async () => {
    const body = { action_type: action.action_type, params: readParams(), requested_by: me.name };
    if (approvedBy) body.approved_by = approvedBy;
    await api(`/playbooks/incidents/${incidentId}/actions/execute`, { method: "POST", body });
    await renderIncident(incidentId);
  });

  const requestApproval = () => attempt(async () => {
    await api(`/playbooks/incidents/${incidentId}/actions/approvals`, {
      method: "POST", body: { action_type: action.action_type, params: readParams() },
    });
    await renderIncident(incidentId);
  });

  const buttons = h("div", { class: "buttons" });
  function renderExecuteButtons() {
    const plan = state.previews.get(action.action_type);
    if (!me.may_transition) { // a viewer reads; previews and runs need the responder role
      buttons.replaceChildren(h("p", { class: "muted small" }, "Previewing and running need the responder role."));
      return;
    }
    const controls = [h("button", { type: "button", dataset: { do: "dry-run" }, onclick: dryRun }, "Dry-run")];
    if (plan && plan.status !== "dry_run_failed") {
      if (!plan.requires_approval) {
        controls.push(h("button", { type: "button", class: "primary", dataset: { do: "execute" },
          onclick: () => execute(null) }, "Execute"));
      } else {
        if (me.may_approve) { // the server still decides whether this action allows it alone
          controls.push(h("button", { type: "button", class: "primary", dataset: { do: "execute-approved" },
            onclick: () => execute(me.name), title: "Approve and run it yourself, where the action allows it" },
          "Approve & execute"));
        }
        controls.push(h("button", { type: "button", dataset: { do: "request-approval" },
          onclick: requestApproval }, "Request approval"));
      }
    }
    buttons.replaceChildren(...controls);
  }
  renderExecuteButtons();

  // the incident's own playbooks start open; the rest of the library is one click away
  return h("details", { class: "playbook", open: draft.open, dataset: { actionType: action.action_type },
    ontoggle: (event) => { draft.open = event.target.open; } },
    h("summary", {}, h("strong", {}, action.display_name), " ", h("code", {}, action.action_type),
      suggested ? h("span", { class: "badge suggested" }, "suggested") : null,
      action.requires_approval ? h("span", { class: "badge approval" }, "needs approval") : null),
    h("p", {}, action.description),
    h("p", { class: "muted small", title: `Estimates: ${action.estimate_basis}` },
      `~${action.estimated_duration}, ${action.estimated_cost}`,
      action.rollback_supported ? " · can be rolled back" : " · no rollback"),
    Object.keys(action.params || {}).length
      ? h("dl", { class: "params" }, Object.entries(action.params).map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]))
      : null,
    me.may_transition ? h("label", { class: "small" }, "Params (JSON)", params) : null,
    buttons,
    preview);
}

// a learned estimate can be a fraction of a cent: shown, not rounded away to $0.00
function estimatedCost(usd) {
  const value = Number(usd);
  return value > 0 && value < 0.01 ? String(Number(value.toFixed(4))) : value.toFixed(2);
}

function planView(plan) {
  return h("div", { class: `plan ${plan.status}` },
    h("p", {}, h("strong", {}, plan.status === "dry_run_failed" ? "Dry-run failed: " : "Plan: "), plan.message),
    plan.changes && plan.changes.length
      ? h("ul", { class: "changes" }, plan.changes.map((change) => h("li", {}, change)))
      : h("p", { class: "muted" }, "No change would be made."),
    h("p", { class: "small" },
      `Estimated ${plan.estimated_duration} s, $${estimatedCost(plan.estimated_cost)}`,
      plan.details && plan.details.estimate ? ` (${plan.details.estimate.basis})` : "", ". ",
      plan.requires_approval ? h("strong", {}, "Requires approval.") : "No approval needed.",
      plan.rollback_available ? " Can be rolled back." : ""));
}

function approvalsCard(incidentId, approvals) {
  if (!approvals.length) return null;
  const me = state.me;
  const decide = (approval, verdict) => attempt(async () => {
    await api(`/playbooks/incidents/${incidentId}/actions/approvals/${approval.id}/${verdict}`, {
      method: "POST", body: {},
    });
    await renderIncident(incidentId);
  });
  return h("div", { class: "card" }, h("h2", {}, "Approval requests"),
    h("table", {},
      h("thead", {}, h("tr", {}, ["ID", "Action", "Params", "Asked by", "Status", "Expires", ""].map((t) => h("th", {}, t)))),
      h("tbody", {}, approvals.map((approval) => h("tr", { dataset: { approvalId: approval.id } },
        h("td", {}, approval.id),
        h("td", {}, approval.rollback_of ? `rollback of #${approval.rollback_of}` : approval.action_type),
        h("td", {}, h("code", {}, JSON.stringify(approval.params))),
        h("td", {}, approval.requested_by),
        h("td", {}, badge("approval", approval.status)),
        h("td", {}, when(approval.expires_at)),
        h("td", {}, approval.status === "pending" && me.may_approve
          ? h("span", { class: "buttons" },
            h("button", { type: "button", onclick: () => decide(approval, "approve") }, "Approve"),
            h("button", { type: "button", onclick: () => decide(approval, "reject") }, "Reject"))
          : approval.decided_by ? `by ${approval.decided_by}` : ""))))));
}

async function refreshHistory(incidentId) {
  const history = await api(`/playbooks/incidents/${incidentId}/actions/history`);
  const card = document.getElementById("action-history");
  if (card && state.route.name === "incident" && state.route.id === incidentId) {
    card.replaceChildren(h("h2", {}, "Action history"), historyTable(incidentId, history.actions));
  }
}

function historyTable(incidentId, actions) {
  if (!actions.length) return h("p", { class: "muted no-actions" }, "No action yet.");
  const me = state.me;
  const rollback = (action) => attempt(async () => {
    const body = { requested_by: me.name };
    if (action.requires_approval && me.may_approve) body.approved_by = me.name;
    await api(`/playbooks/incidents/${incidentId}/actions/${action.id}/rollback`, { method: "POST", body });
    await renderIncident(incidentId);
  });
  return h("table", { class: "history" },
    h("thead", {}, h("tr", {}, ["ID", "Action", "Kind", "Status", "By", "Approved by", "Started", "Took", "Flow run", ""]
      .map((t) => h("th", {}, t)))),
    h("tbody", {}, actions.map((action) => h("tr", { dataset: { actionId: action.id, status: action.status } },
      h("td", {}, action.id),
      h("td", {}, action.action_type, action.rollback_of ? ` (rollback of #${action.rollback_of})` : ""),
      h("td", {}, action.dry_run ? "dry-run" : "execute"),
      h("td", { title: action.message || "" }, badge("action", action.status),
        state.me.final_action_statuses.includes(action.status) || action.dry_run ? null : h("span", { class: "spinner", "aria-hidden": "true" })),
      h("td", {}, action.requested_by),
      h("td", {}, action.approved_by || "—"),
      h("td", {}, when(action.started_at || action.created_at)),
      h("td", {}, action.actual_duration != null ? `${action.actual_duration.toFixed(1)} s` : "—"),
      h("td", {}, action.flow_run_url
        ? h("a", { href: action.flow_run_url, target: "_blank", rel: "noopener" }, "Prefect UI ↗")
        : "—"),
      // the server's rollback_available already says whether a rollback would be accepted now
      // (it ran, its type has one, no rollback in flight or done)
      h("td", {}, action.rollback_available && me.may_transition
        ? h("button", { type: "button", class: "small", onclick: () => rollback(action) }, "Roll back")
        : null)))));
}

// ---------------------------------------------------------------------------------------------
// Automatic remediation: an incident's attempts, and the switch (header and #/automation).

// "#12" for an id, "—" for none
function ref(id) {
  return id === null || id === undefined ? h("span", { class: "muted" }, "—") : `#${id}`;
}

function remediationCard(incidentId, remediation) {
  if (!remediation) return null; // no policy, and automation never tried
  const me = state.me;
  const policy = remediation.policy;
  const latest = remediation.attempts_history[remediation.attempts_history.length - 1];
  const retry = () => attempt(async () => {
    await api(`/incidents/${incidentId}/remediation/retry`, { method: "POST" });
    await renderIncident(incidentId);
  });
  const verification = remediation.verification;
  const released = latest && latest.released_at ? latest : null;
  const facts = [
    ["Policy", policy
      ? h("span", {}, h("code", {}, policy.action), " ", h("code", {}, JSON.stringify(policy.params)),
        h("span", { class: "muted" }, policy.verify ? " · verified by the check" : " · not verified",
          policy.rollback_on_failed_verification ? " · rolled back if the check still fails" : "",
          policy.resolve_on_verify ? " · resolves when verified" : " · mitigates when verified"))
      : h("span", { class: "muted" }, "none declared now")],
    ["Attempts", remediation.max_attempts
      ? `${remediation.attempts} of ${remediation.max_attempts}` : String(remediation.attempts)],
    ["Step", remediation.step
      ? h("span", {}, badge("remediation", remediation.step),
        remediation.in_flight ? h("span", { class: "spinner", "aria-hidden": "true" }) : null)
      : h("span", { class: "muted" }, "no attempt yet")],
    ["Verification", verification
      ? h("span", { class: `verification ${verification.passed ? "passed" : "failed"}` },
        "check run ", ref(verification.check_run_id), verification.passed ? " passed" : " still fails")
      : h("span", { class: "muted" }, "—")],
    ["Automation", remediation.held
      ? h("strong", { class: "held" }, "held: it gave up, a person must release it")
      : released
        ? h("span", {}, `released by ${released.released_by} `, when(released.released_at))
        : h("span", { class: "muted" }, "free to act")],
  ];
  const rows = remediation.attempts_history.map((a) => h("tr", { dataset: { remediationId: a.id, step: a.step } },
    h("td", {}, a.id), h("td", {}, a.attempt), h("td", {}, badge("remediation", a.step)),
    h("td", {}, a.action_type),
    h("td", {}, ref(a.dry_run_action_id)), h("td", {}, ref(a.approval_id)), h("td", {}, ref(a.action_id)),
    h("td", {}, ref(a.verify_check_run_id)), h("td", {}, ref(a.rollback_action_id)),
    h("td", { class: "notes" }, a.outcome || ""),
    h("td", {}, when(a.detected_at)), h("td", {}, when(a.finished_at)),
    h("td", {}, a.gave_up ? (a.released_at ? `released by ${a.released_by}` : h("strong", { class: "held" }, "held")) : "")));
  return h("div", { class: "card remediation", dataset: { held: String(remediation.held), mode: remediation.mode || "" } },
    h("h2", {}, "Remediation ", remediation.mode ? h("span", { class: `badge mode-${remediation.mode}` }, remediation.mode) : null),
    h("dl", { class: "facts" }, facts.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])),
    remediation.held && me.may_transition
      ? h("div", { class: "buttons" }, h("button", { type: "button", class: "primary", dataset: { do: "retry-remediation" },
        onclick: retry, title: "Release the hold: automation may try again at the check's next failure" }, "Retry automation"))
      : null,
    rows.length
      ? h("table", { class: "attempts" },
        h("thead", {}, h("tr", {}, ["ID", "Attempt", "Step", "Action", "Dry-run", "Approval", "Action run",
          "Check run", "Rollback", "Outcome", "Detected", "Finished", "Hold"].map((t) => h("th", {}, t)))),
        h("tbody", {}, rows))
      : h("p", { class: "muted" }, "No attempt yet: automation acts at the check's next failure."));
}

function switchText(automation) {
  if (!automation.paused) return "automation running";
  return `automation paused${automation.changed_by ? ` by ${automation.changed_by}` : ""}`;
}

function showAutomation(automation) {
  const badgeNode = document.getElementById("automation");
  badgeNode.textContent = switchText(automation);
  badgeNode.className = `automation ${automation.paused ? "paused" : "running"}`;
  badgeNode.dataset.paused = String(automation.paused);
  badgeNode.title = automation.paused && automation.changed_at
    ? `Paused ${ago(new Date(automation.changed_at))}${automation.reason ? `: ${automation.reason}` : ""}`
    : "Automatic remediation runs";
  badgeNode.hidden = false;
}

async function refreshAutomation() {
  showAutomation(await api("/automation"));
}

async function renderAutomation() {
  const automation = await api("/automation");
  if (state.route.name !== "automation") return;
  showAutomation(automation);
  const me = state.me;
  const reason = h("input", { name: "reason", maxlength: 500, size: 40, placeholder: "Why (optional)" });
  const flip = (verb) => attempt(async () => {
    const text = reason.value.trim();
    await api(`/automation/${verb}`, { method: "POST", body: text ? { reason: text } : {} });
    await renderAutomation();
  });
  const budgets = automation.budgets;
  const budgetRow = (name, budget) => h("tr", { dataset: { budget: name } },
    h("td", {}, name), h("td", {}, budget.per_hour), h("td", { class: budget.left ? "" : "sla breached" }, budget.left));
  document.getElementById("view").replaceChildren(
    h("section", { class: "automation-page", dataset: { paused: String(automation.paused) } },
      h("div", { class: "toolbar" }, h("h1", {}, "Automation"),
        h("span", { class: `badge ${automation.paused ? "switch-paused" : "switch-running"}` },
          automation.paused ? "paused" : "running")),
      h("div", { class: "card" }, h("h2", {}, "Automatic remediation"),
        h("dl", { class: "facts" },
          h("dt", {}, "State"), h("dd", { class: "switch-state" }, automation.paused
            ? "Paused: no attempt starts or executes until it is resumed"
            : "Running: checks with an auto policy are fixed within the budgets"),
          h("dt", {}, "Changed by"), h("dd", { class: "changed-by" }, automation.changed_by || "—"),
          h("dt", {}, "Changed"), h("dd", {}, when(automation.changed_at)),
          h("dt", {}, "Reason"), h("dd", {}, automation.reason || "—")),
        me.may_admin
          ? h("form", { class: "buttons", onsubmit: (e) => e.preventDefault() }, reason,
            automation.paused
              ? h("button", { type: "button", class: "primary", dataset: { do: "resume" }, onclick: () => flip("resume") }, "Resume")
              : h("button", { type: "button", class: "primary", dataset: { do: "pause" }, onclick: () => flip("pause") }, "Pause"))
          : h("p", { class: "muted small" }, "Pausing and resuming need the admin role.")),
      h("div", { class: "card" }, h("h2", {}, "Budgets left this hour"),
        h("table", { class: "budgets" },
          h("thead", {}, h("tr", {}, ["Executions of", "Per hour", "Left"].map((t) => h("th", {}, t)))),
          h("tbody", {}, budgetRow("all actions", budgets),
            Object.entries(budgets.actions).map(([name, budget]) => budgetRow(name, budget))))),
      h("div", { class: "card" }, h("h2", {}, "In flight"),
        automation.in_flight.length
          ? h("table", { class: "in-flight" },
            h("thead", {}, h("tr", {}, ["ID", "Incident", "Check or rule", "Step", "Action", "Action run"].map((t) => h("th", {}, t)))),
            h("tbody", {}, automation.in_flight.map((a) => h("tr", { dataset: { remediationId: a.id } },
              h("td", {}, a.id), h("td", {}, h("a", { href: `#/incidents/${a.incident_id}` }, `#${a.incident_id}`)),
              h("td", {}, a.check_id || `rule ${a.rule}`), h("td", {}, badge("remediation", a.step)),
              h("td", {}, a.action_type), h("td", {}, ref(a.action_id))))))
          : h("p", { class: "muted" }, "Nothing in flight.")),
    ),
  );
}

// ---------------------------------------------------------------------------------------------
// Silences: maintenance windows over alerts from other tools. An alert a silence matches is
// held (counted, visible here) and opens nothing; one still firing when its silence ends opens
// its incident then.

// The sources a silence may name (models/alert.py Source). GET /api/me does not send them (yet):
// where it does, as `alert_sources`, its list is taken instead.
const ALERT_SOURCES = ["alertmanager", "grafana", "pagerduty", "dbt"];
const SILENCE_FILTERS = [["", "active and pending"], ["active", "active"], ["pending", "pending (scheduled)"],
  ["expired", "expired"]];
const SILENCE_DURATIONS = [["1800", "30 min"], ["3600", "1 h"], ["14400", "4 h"]];
const SILENCE_POLL_MS = 10000; // held counts grow, and states change, with no event to say so

function alertSources(extra) {
  const sources = [...(state.me.alert_sources || ALERT_SOURCES)];
  if (extra && !sources.includes(extra)) sources.push(extra); // a prefill is never dropped
  return sources;
}

// `text` as a glob that matches only itself (fnmatch: a metacharacter inside [ ] is literal).
function globEscape(text) {
  return text.replace(/[*?[]/g, (c) => `[${c}]`);
}

function isGlob(text) {
  return /[*?[]/.test(text);
}

function localTime(iso) {
  const date = new Date(iso);
  return h("span", { class: "local-time", title: iso },
    date.toLocaleString([], { dateStyle: "medium", timeStyle: "short" }));
}

// A silence's matchers as words: `key matches DiskFull:*`, `source is alertmanager`, ...
function matcherList(matchers) {
  const item = (name, value) => h("li", { class: "matcher", dataset: { matcher: name } },
    h("span", { class: "muted" }, name), isGlob(value) ? " matches " : " is ", h("code", {}, value));
  const items = [];
  if (matchers.key) items.push(item("key", matchers.key));
  if (matchers.source) items.push(item("source", matchers.source));
  if (matchers.kind) items.push(item("kind", matchers.kind));
  for (const [name, value] of Object.entries(matchers.labels || {})) items.push(item(`label ${name}`, value));
  return items.length ? h("ul", { class: "matchers" }, items) : h("span", { class: "muted" }, "—");
}

// Its window in local time, each end with how far it is: "ends in 25 min", "ended 3 min ago".
function silenceWindow(silence) {
  const started = silence.state !== "pending";
  const ended = silence.state === "expired";
  return h("div", { class: "window" },
    h("div", { class: "starts" }, localTime(silence.starts_at), " ",
      h("span", { class: "muted" }, started ? "started " : "starts ", when(silence.starts_at))),
    h("div", { class: "ends" }, "→ ", localTime(silence.ends_at), " ",
      h("span", { class: ended ? "muted" : null }, ended ? "ended " : "ends ", when(silence.ends_at))));
}

// End a silence now, once the user confirms; what it held that still fires opens then.
function endSilence(silence, after) {
  return attempt(async () => {
    if (!confirm(`End silence #${silence.id} now? Alerts it holds that still fire open their incidents.`)) return;
    await api(`/silences/${silence.id}`, { method: "DELETE" });
    await after();
  });
}

function endButton(silence, after) {
  if (silence.state === "expired" || !state.me.may_transition) return null;
  return h("button", { type: "button", class: "small", dataset: { do: "end-silence" },
    onclick: () => endSilence(silence, after) }, "End now");
}

async function refreshSilencePage() {
  const route = state.route;
  if (route.name === "silence") return renderSilence(route.id);
  if (route.name !== "silences") return undefined;
  // a re-read keeps the page (and what the form holds): only the list is drawn again
  return document.getElementById("silence-list") ? refreshSilenceList() : renderSilences();
}

async function readSilences(filter) {
  const query = new URLSearchParams({ limit: "100" });
  if (filter) query.set("state", filter);
  return api(`/silences?${query}`);
}

async function renderSilences() {
  const list = await readSilences(state.silenceFilter);
  if (state.route.name !== "silences") return;
  const prefill = state.route.prefill;
  const form = state.me.may_transition
    ? silenceForm(prefill || {})
    : h("p", { class: "muted small" }, "Adding and ending silences need the responder role.");
  document.getElementById("view").replaceChildren(
    h("section", { class: "silences-page" },
      h("div", { class: "toolbar" }, h("h1", {}, "Silences"),
        h("span", { class: "muted" }, "Alerts a silence matches are held and counted: they open nothing and notify no one.")),
      h("div", { class: "card" }, h("h2", {}, "New silence"), form),
      h("div", { class: "card", id: "silence-list" }, silenceListContent(list))));
  if (prefill && state.me.may_transition) {
    const reason = document.querySelector("#silence-form [name=reason]");
    reason.scrollIntoView({ block: "center" });
    reason.focus();
  }
}

async function refreshSilenceList() {
  const filter = state.silenceFilter;
  const list = await readSilences(filter);
  const container = document.getElementById("silence-list");
  if (state.route.name !== "silences" || !container || filter !== state.silenceFilter) return;
  container.replaceChildren(...silenceListContent(list));
}

function silenceListContent(list) {
  const filter = h("label", {}, "Show ",
    h("select", { name: "state", onchange: (event) => {
      state.silenceFilter = event.target.value;
      attempt(refreshSilenceList);
    } },
    SILENCE_FILTERS.map(([value, text]) => h("option", { value, selected: state.silenceFilter === value }, text))));
  const shown = list.silences.length < list.total ? `newest ${list.silences.length} of ${list.total}` : `${list.total}`;
  const header = h("div", { class: "toolbar" }, h("h2", {}, "Silences"),
    h("form", { class: "filters", onsubmit: (e) => e.preventDefault() }, filter,
      h("span", { class: "muted count-shown" }, shown)));
  if (!list.silences.length) {
    return [header, h("p", { class: "empty" }, state.silenceFilter === "expired"
      ? "No expired silence." : state.silenceFilter ? `No ${state.silenceFilter} silence.`
        : "No silence is active or scheduled.")];
  }
  const rows = list.silences.map((silence) => h("tr", { dataset: { silenceId: silence.id, state: silence.state } },
    h("td", {}, h("a", { href: `#/silences/${silence.id}` }, `#${silence.id}`)),
    h("td", {}, badge("silence", silence.state)),
    h("td", {}, matcherList(silence.matchers)),
    h("td", {}, silenceWindow(silence)),
    h("td", { class: "reason" }, silence.reason),
    h("td", {}, silence.created_by,
      silence.ended_by ? h("div", { class: "muted small ended-by" }, `ended by ${silence.ended_by}`) : null),
    h("td", { class: "held-alerts", dataset: { count: silence.held_alerts } },
      silence.held_alerts ? h("a", { href: `#/silences/${silence.id}` }, String(silence.held_alerts)) : "0"),
    h("td", { class: "suppressed", dataset: { count: silence.suppressed } }, String(silence.suppressed)),
    h("td", {}, endButton(silence, refreshSilenceList))));
  return [header, h("table", { class: "silences" },
    h("thead", {}, h("tr", {}, ["ID", "State", "Matchers", "Window", "Reason", "Created by", "Held alerts",
      "Suppressed", ""].map((t) => h("th", {}, t)))),
    h("tbody", {}, rows))];
}

// Who was told about the incident (its escalation's notifications) and who is on call now.
function peopleCard(notifications, oncall) {
  const onCall = oncall.schedules.map((s) => h("li", { dataset: { schedule: s.name } },
    h("span", { class: "muted" }, `${s.name}: `), personLabel(s.now.person)));
  const rows = notifications.map((n) => h("tr", { dataset: { notificationId: n.id, status: n.status } },
    h("td", {}, `${n.policy} · step ${n.step + 1}${n.round ? ` · round ${n.round + 1}` : ""}`),
    h("td", { class: "recipient" }, n.recipient.replace(/^(person|channel):/, "")),
    h("td", {}, `${n.medium} ${n.address}`),
    h("td", {}, badge("notification", n.status),
      n.last_error ? h("div", { class: "muted small last-error" }, n.last_error) : null),
    h("td", {}, when(n.delivered_at || n.created_at))));
  return h("div", { class: "card people" }, h("h2", {}, "People"),
    onCall.length ? h("ul", { class: "on-call" }, onCall) : null,
    rows.length
      ? h("table", { class: "notifications" },
        h("thead", {}, h("tr", {}, ["Step", "To", "By", "Status", "When"].map((t) => h("th", {}, t)))),
        h("tbody", {}, rows))
      : h("p", { class: "muted small no-notifications" }, "No one has been notified."));
}

// ---------------------------------------------------------------------------------------------
// Schedules: who is on call now and next (GET /api/oncall, the on-call file with the overrides
// applied), the overrides to come or under way, and a form to add one (responders and up).

const OVERRIDE_DURATIONS = [["3600", "1 h"], ["14400", "4 h"], ["28800", "8 h"], ["86400", "1 day"]];

function personLabel(person) {
  return h("span", { class: "person", dataset: { person: person.id } }, person.name,
    person.email ? h("span", { class: "muted small" }, ` <${person.email}>`) : null);
}

function dutyCell(duty, which) {
  const edge = which === "now" ? ["until ", duty.ends_at] : ["from ", duty.starts_at];
  return h("div", { class: `duty ${which}`, dataset: { overrideId: duty.override_id ?? "" } },
    personLabel(duty.person),
    duty.override_id ? h("span", { class: "badge override" }, `override #${duty.override_id}`) : null,
    h("div", { class: "muted small" }, edge[0], localTime(edge[1]), " ", when(edge[1])));
}

async function refreshSchedules() {
  const [oncall, overrides] = await Promise.all([api("/oncall"), api("/oncall/overrides?limit=100")]);
  if (state.route.name !== "schedules") return;
  const table = h("table", { class: "schedules" },
    h("thead", {}, h("tr", {}, ["Schedule", "On call now", "Next"].map((t) => h("th", {}, t)))),
    h("tbody", {}, oncall.schedules.map((schedule) => h("tr", { dataset: { schedule: schedule.name } },
      h("td", {}, h("strong", {}, schedule.name), h("div", { class: "muted small" }, schedule.time_zone)),
      h("td", {}, dutyCell(schedule.now, "now")),
      h("td", {}, dutyCell(schedule.next, "next"))))));
  const list = document.getElementById("override-list");
  if (list) { // a re-read keeps the form and what it holds
    document.getElementById("schedule-table").replaceChildren(table);
    list.replaceChildren(...overrideListContent(overrides));
    return;
  }
  const form = state.me.may_transition
    ? overrideForm(oncall)
    : h("p", { class: "muted small" }, "Adding and cancelling overrides need the responder role.");
  document.getElementById("view").replaceChildren(
    h("section", { class: "schedules-page" },
      h("div", { class: "toolbar" }, h("h1", {}, "Schedules"),
        h("span", { class: "muted" }, "Who is on call, from the on-call file and its overrides.")),
      oncall.schedules.length
        ? h("div", { class: "card", id: "schedule-table" }, table)
        : h("p", { class: "empty" }, "No schedules: no one is on call (INTERVENE_ONCALL_FILE)."),
      h("div", { class: "card" }, h("h2", {}, "New override"), form),
      h("div", { class: "card", id: "override-list" }, overrideListContent(overrides))));
}

function overrideListContent(list) {
  const header = h("h2", {}, "Overrides to come or under way");
  if (!list.overrides.length) return [header, h("p", { class: "empty" }, "No override.")];
  const rows = list.overrides.map((o) => h("tr", { dataset: { overrideId: o.id, state: o.state } },
    h("td", {}, `#${o.id}`),
    h("td", {}, badge("override", o.state)),
    h("td", {}, o.schedule),
    h("td", { class: "covering" }, personLabel(o.person)),
    h("td", { class: "covered" }, o.covers ? personLabel(o.covers) : "—"),
    h("td", {}, h("div", {}, localTime(o.starts_at)), h("div", {}, "→ ", localTime(o.ends_at))),
    h("td", { class: "reason" }, o.reason),
    h("td", { class: "created-by" }, o.created_by),
    h("td", {}, state.me.may_transition
      ? h("button", { type: "button", class: "small", dataset: { do: "cancel-override" },
        onclick: () => cancelOverride(o) }, "Cancel")
      : null)));
  return [header, h("table", { class: "overrides" },
    h("thead", {}, h("tr", {}, ["ID", "State", "Schedule", "On call", "Covers", "Window", "Reason",
      "Made by", ""].map((t) => h("th", {}, t)))),
    h("tbody", {}, rows))];
}

function cancelOverride(override) {
  return attempt(async () => {
    if (!confirm(`Cancel override #${override.id}? ${override.covers ? override.covers.name : "The rotation"} is on call again for its window.`)) return;
    await api(`/oncall/overrides/${override.id}`, { method: "DELETE" });
    await refreshSchedules();
  });
}

function overrideForm(oncall) {
  const errors = h("div", { class: "form-errors", role: "alert", hidden: true });
  const done = h("p", { class: "form-done", "aria-live": "polite", hidden: true });
  const schedule = h("select", { name: "schedule" },
    oncall.schedules.map((s) => h("option", { value: s.name }, s.name)));
  const person = h("select", { name: "person" },
    oncall.people.map((p) => h("option", { value: p.id }, `${p.name} (${p.id})`)));
  const reason = h("input", { name: "reason", size: 50, maxlength: 2000, placeholder: "Why: a flight, a day off" });
  const radio = (value, text, checked) => h("label", { class: "choice" },
    h("input", { type: "radio", name: "duration", value, checked }), text);
  const form = h("form", { id: "override-form", class: "override-form" },
    h("label", {}, "Schedule", schedule), h("label", {}, "On call", person),
    h("div", { class: "choices" }, h("span", { class: "muted" }, "From now, for"),
      OVERRIDE_DURATIONS.map(([value, text]) => radio(value, text, value === "28800"))),
    h("label", { class: "reason-field" }, "Reason", reason),
    errors,
    h("div", { class: "buttons" }, h("button", { type: "submit", class: "primary", dataset: { do: "add-override" } },
      "Add override")),
    done);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearError();
    showFormErrors(form, errors, null);
    done.hidden = true;
    const body = { schedule: schedule.value, person: person.value, reason: reason.value,
      duration_seconds: Number(form.elements.duration.value) };
    let created;
    try {
      created = await api("/oncall/overrides", { method: "POST", body });
    } catch (error) {
      showFormErrors(form, errors, error);
      return;
    }
    reason.value = "";
    done.replaceChildren(`Added override #${created.id}: ${created.person.name} covers `
      + `${created.covers ? created.covers.name : "the rotation"} on ${created.schedule}.`);
    done.hidden = false;
    await attempt(refreshSchedules);
  });
  return form;
}

// A problem the form finds before asking the API, named by the API's field path.
class FormProblem extends Error {
  constructor(field, message) {
    super(message);
    this.field = field;
  }
}

// "name=value" lines (the value a glob) as {name: value}.
function parseLabels(text) {
  const labels = {};
  text.split("\n").forEach((line, index) => {
    const trimmed = line.trim();
    if (!trimmed) return;
    const at = trimmed.indexOf("=");
    const name = at < 0 ? "" : trimmed.slice(0, at).trim();
    const value = at < 0 ? "" : trimmed.slice(at + 1).trim();
    if (!name || !value) {
      throw new FormProblem("body.matchers.labels",
        `Labels, line ${index + 1}: write name=value (the value may be a glob), one a line`);
    }
    labels[name] = value;
  });
  return labels;
}

// A datetime-local input's value (the browser's local time) as an ISO instant.
function localInstant(value, field, what) {
  if (!value) throw new FormProblem(field, `Pick when the silence ${what}`);
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) throw new FormProblem(field, `Not a time: ${value}`);
  return date.toISOString();
}

function silenceForm(prefill) {
  const me = state.me;
  const errors = h("div", { class: "form-errors", role: "alert", hidden: true });
  const done = h("p", { class: "form-done", "aria-live": "polite", hidden: true });
  const key = h("input", { name: "key", size: 34, maxlength: 200, spellcheck: "false", autocomplete: "off",
    placeholder: "DiskFull:* (a glob: * ? [...])" });
  const source = h("select", { name: "source" }, h("option", { value: "" }, "any"),
    alertSources(prefill.source).map((value) => h("option", { value }, value)));
  const kind = h("select", { name: "kind" }, h("option", { value: "" }, "any"),
    me.kinds.map((value) => h("option", { value }, value)));
  // a prefill is the controls' value, not their default: the form's reset clears it
  key.value = prefill.key || "";
  source.value = prefill.source || "";
  kind.value = me.kinds.includes(prefill.kind) ? prefill.kind : "";
  const labels = h("textarea", { name: "labels", rows: 3, spellcheck: "false",
    placeholder: "team=data\ninstance=db-*" });
  const startsAt = h("input", { type: "datetime-local", name: "starts_at" });
  const endsAt = h("input", { type: "datetime-local", name: "ends_at" });
  const reason = h("input", { name: "reason", size: 60, maxlength: 2000, required: true,
    placeholder: "Why: the change, the ticket" });
  const radio = (name, value, text, checked) => h("label", { class: "choice" },
    h("input", { type: "radio", name, value, checked }), text);
  const startNow = radio("start", "now", "now", true);
  const startLater = radio("start", "at", "at", false);
  const custom = radio("duration", "custom", "until", false);
  // typing a time chooses it
  startsAt.addEventListener("input", () => { startLater.querySelector("input").checked = true; });
  endsAt.addEventListener("input", () => { custom.querySelector("input").checked = true; });

  const form = h("form", { id: "silence-form", class: "silence-form" },
    /^\d+$/.test(prefill.from || "")
      ? h("p", { class: "muted small prefilled" }, "Prefilled from ",
        h("a", { href: `#/incidents/${encodeURIComponent(prefill.from)}` }, `incident #${prefill.from}`),
        ": its key and source.")
      : null,
    h("fieldset", { name: "matchers" }, h("legend", {}, "Matchers (every one given must match)"),
      h("label", {}, "Key", key), h("label", {}, "Source", source), h("label", {}, "Kind", kind),
      h("label", { class: "wide" }, "Labels (name=value lines)", labels)),
    h("fieldset", { name: "window" }, h("legend", {}, "Window"),
      h("div", { class: "choices" }, h("span", { class: "muted" }, "Starts"), startNow, startLater, startsAt),
      h("div", { class: "choices" }, h("span", { class: "muted" }, "Lasts"),
        SILENCE_DURATIONS.map(([value, text]) => radio("duration", value, text, value === "3600")),
        custom, endsAt)),
    h("label", { class: "reason-field" }, "Reason", reason),
    errors,
    h("div", { class: "buttons" }, h("button", { type: "submit", class: "primary", dataset: { do: "add-silence" } },
      "Add silence")),
    done);

  const read = () => {
    const matchers = {};
    if (key.value.trim()) matchers.key = key.value.trim();
    if (source.value) matchers.source = source.value;
    if (kind.value) matchers.kind = kind.value;
    const parsed = parseLabels(labels.value);
    if (Object.keys(parsed).length) matchers.labels = parsed;
    const body = { matchers, reason: reason.value };
    if (form.elements.start.value === "at") body.starts_at = localInstant(startsAt.value, "body.starts_at", "starts");
    const duration = form.elements.duration.value;
    if (duration === "custom") body.ends_at = localInstant(endsAt.value, "body.ends_at", "ends");
    else body.duration_seconds = Number(duration);
    return body;
  };

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearError();
    showFormErrors(form, errors, null);
    done.hidden = true;
    let created;
    try {
      created = await api("/silences", { method: "POST", body: read() });
    } catch (error) {
      showFormErrors(form, errors, error);
      return;
    }
    form.reset();
    if (state.route.prefill) { // the prefill is used: the address is the plain list's again
      history.replaceState(null, "", "#/silences");
      state.route = parseRoute();
      form.querySelector(".prefilled")?.remove();
    }
    if (state.silenceFilter === "expired") state.silenceFilter = "";
    done.replaceChildren("Added ", h("a", { href: `#/silences/${created.id}` }, `silence #${created.id}`),
      ` (${created.state}).`);
    done.hidden = false;
    await attempt(refreshSilenceList);
  });
  return form;
}

// What the API (or the form itself) refused, next to the form: the message, then each field
// and what is wrong with it; the fields it names are marked.
function showFormErrors(form, box, error) {
  for (const node of form.querySelectorAll("[aria-invalid]")) node.removeAttribute("aria-invalid");
  if (!error) {
    box.hidden = true;
    box.replaceChildren();
    return;
  }
  const fields = error instanceof ApiError && error.details && Array.isArray(error.details.errors)
    ? error.details.errors : [];
  const head = error instanceof ApiError && error.code
    ? `${error.message} (${error.code}${error.status ? `, ${error.status}` : ""})`
    : String(error && error.message ? error.message : error);
  box.replaceChildren(h("strong", {}, head));
  if (fields.length) {
    box.append(h("ul", {}, fields.map((e) => h("li", { dataset: { field: e.field } },
      h("code", {}, String(e.field).replace(/^body\./, "")), `: ${e.message}`))));
  }
  box.hidden = false;
  const named = error instanceof FormProblem ? [error.field] : fields.map((e) => String(e.field));
  for (const field of named) {
    const control = formControl(form, field);
    if (control) control.setAttribute("aria-invalid", "true");
  }
}

// The control of the form an API field path names: body.matchers.key -> key, body.matchers ->
// the matchers fieldset, body.duration_seconds / body.ends_at -> the window.
function formControl(form, field) {
  const path = field.replace(/^body\.?/, "").split(".");
  let name = path[0] === "matchers" ? (path[1] || "matchers") : path[0];
  if (name === "duration_seconds" || (name === "" && path.length === 1)) name = "window";
  const control = name ? form.elements.namedItem(name) : null;
  return control instanceof Element ? control : null;
}

// One silence, with the alerts it holds or held.
async function renderSilence(id) {
  const silence = await api(`/silences/${id}`);
  if (state.route.name !== "silence" || state.route.id !== id) return;
  const held = silence.held || [];
  const facts = [
    ["State", badge("silence", silence.state)],
    ["Matchers", matcherList(silence.matchers)],
    ["Window", silenceWindow(silence)],
    ["Reason", h("span", { class: "reason" }, silence.reason)],
    ["Created by", h("span", {}, `${silence.created_by} `, when(silence.created_at))],
    ["Ended early by", silence.ended_by || h("span", { class: "muted" }, "—")],
    ["Held alerts", h("span", { class: "held-alerts" }, String(silence.held_alerts))],
    ["Suppressed", h("span", { class: "suppressed" }, `${silence.suppressed} occurrences`)],
  ];
  const rows = held.map((alert) => h("tr", { dataset: { key: alert.key, firing: String(alert.firing) } },
    h("td", {}, h("code", {}, alert.key), h("div", { class: "muted small" }, alert.kind)),
    h("td", {}, alert.source),
    h("td", { class: "occurrences" }, String(alert.occurrences)),
    h("td", {}, alert.firing ? h("span", { class: "badge firing" }, "firing")
      : h("span", { class: "badge recovered" }, "resolved")),
    h("td", {}, when(alert.first_seen_at)),
    h("td", {}, when(alert.last_seen_at)),
    h("td", {}, alert.released_at ? when(alert.released_at) : h("span", { class: "muted" }, "held")),
    h("td", { class: "opened" }, alert.opened_incident_id
      ? h("a", { href: `#/incidents/${alert.opened_incident_id}` }, `#${alert.opened_incident_id}`)
      : h("span", { class: "muted" }, "—"))));
  document.getElementById("view").replaceChildren(
    h("section", { class: "silence-page", dataset: { silenceId: id, state: silence.state } },
      h("p", {}, h("a", { href: "#/silences" }, "← all silences")),
      h("div", { class: "toolbar" }, h("h1", {}, `Silence #${silence.id}`), badge("silence", silence.state),
        endButton(silence, () => renderSilence(id))),
      h("div", { class: "card" }, h("h2", {}, "Details"),
        h("dl", { class: "facts" }, facts.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]))),
      h("div", { class: "card" }, h("h2", {}, "Held alerts"),
        rows.length
          ? [h("table", { class: "held-alerts" },
            h("thead", {}, h("tr", {}, ["Key", "Source", "Occurrences", "Last word", "First seen", "Last seen",
              "Released", "Opened incident"].map((t) => h("th", {}, t)))),
            h("tbody", {}, rows)),
          held.length < silence.held_alerts
            ? h("p", { class: "muted small" }, `The newest ${held.length} of ${silence.held_alerts}.`) : null]
          : h("p", { class: "muted" }, "Nothing held: no alert has matched it."))));
}

// ---------------------------------------------------------------------------------------------
// Checks.

async function renderChecks() {
  const { checks } = await api("/checks");
  if (state.route.name !== "checks") return;
  const me = state.me;
  const runNow = (check) => attempt(async () => {
    await api(`/checks/${encodeURIComponent(check.id)}/run`, { method: "POST" });
    await renderChecks();
  });
  const result = (check) => {
    const last = check.last_run;
    if (!last) return h("span", { class: "muted" }, "not run yet");
    if (last.error) return h("span", { class: "badge check-error", title: last.error }, "error");
    return last.passed ? h("span", { class: "badge check-pass" }, "pass") : h("span", { class: "badge check-fail" }, "fail");
  };
  document.getElementById("view").replaceChildren(
    h("section", { class: "checks" },
      h("div", { class: "toolbar" }, h("h1", {}, "Checks"),
        h("span", { class: "muted" }, `${checks.length} declared`)),
      h("table", {},
        h("thead", {}, h("tr", {}, ["Check", "Kind", "Agent", "Last value", "Threshold", "Result", "Stale", "Last run", "Next run", ""]
          .map((t) => h("th", {}, t)))),
        h("tbody", {}, checks.map((check) => h("tr", { dataset: { checkId: check.id } },
          h("td", { title: check.description }, check.id),
          h("td", {}, check.kind),
          h("td", {}, check.agent),
          h("td", {}, check.last_run && check.last_run.value != null ? formatNumber(check.last_run.value) : "—"),
          h("td", {}, `${check.comparison} ${formatNumber(check.threshold)}`),
          h("td", {}, result(check)),
          h("td", {}, check.stale ? h("span", { class: "badge stale" }, "stale") : "no"),
          h("td", {}, when(check.last_run && check.last_run.started_at),
            check.last_run && check.last_run.trigger !== "schedule"
              ? h("span", { class: "muted", title: "not started by the schedule" }, ` (${check.last_run.trigger})`)
              : null,
            check.last_run && check.last_run.flow_run_url
              ? [" ", h("a", { href: check.last_run.flow_run_url, target: "_blank", rel: "noopener", class: "flow-run" }, "Prefect UI ↗")]
              : null),
          h("td", {}, when(check.next_run_at)),
          h("td", {}, me.may_transition
            ? h("button", { type: "button", class: "small", onclick: () => runNow(check) }, "Run now")
            : null)))))));
}

function formatNumber(value) {
  return Number.isInteger(value) ? String(value) : Number(value).toFixed(2);
}

// ---------------------------------------------------------------------------------------------
// Start.

document.getElementById("error-close").addEventListener("click", clearError);
document.getElementById("sign-out").addEventListener("click", () => signOut());
window.addEventListener("hashchange", () => {
  clearError();
  render();
});
setInterval(() => { // a silence's held counts and state change with no event to tell
  if (!document.hidden && state.me && isSilencePage(state.route)) refreshSilencePage().catch(showError);
}, SILENCE_POLL_MS);
setInterval(() => { // relative times stay true without a reload
  for (const node of document.querySelectorAll("time[datetime]")) {
    node.textContent = ago(new Date(node.getAttribute("datetime")));
  }
}, 15000);

(async () => {
  if (state.token) {
    const ok = await attempt(() => signIn(state.token));
    if (ok === undefined && !state.me) return; // signIn failed: signOut showed the form
  }
  render();
})();
