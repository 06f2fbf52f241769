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
  filters: { status: "", severity: "", kind: "" },
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
  if (route.name === "board" && type !== "action_executed") {
    scheduleRefresh();
  } else if (route.name === "incident") {
    const about = type === "action_executed" ? data.incident_id : data.id;
    if (about === route.id) scheduleRefresh();
  }
}

// Several events in a burst cost one re-read.
function scheduleRefresh() {
  clearTimeout(state.refreshTimer);
  state.refreshTimer = setTimeout(() => attempt(refresh), 150);
}

// ---------------------------------------------------------------------------------------------
// Routing: #/ (board), #/incidents/<id>, #/checks, #/automation.

function parseRoute() {
  const hash = location.hash.replace(/^#/, "") || "/";
  const incident = hash.match(/^\/incidents\/(\d+)$/);
  if (incident) return { name: "incident", id: Number(incident[1]) };
  if (hash === "/checks") return { name: "checks" };
  if (hash === "/automation") return { name: "automation" };
  return { name: "board" };
}

function render() {
  state.route = parseRoute();
  state.previews.clear();
  state.drafts.clear();
  for (const link of document.querySelectorAll("[data-nav]")) {
    link.classList.toggle("current", link.dataset.nav === state.route.name
      || (link.dataset.nav === "board" && state.route.name === "incident"));
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
  if (route.name === "checks") return renderChecks();
  if (route.name === "automation") return renderAutomation();
  return renderBoard();
}

// ---------------------------------------------------------------------------------------------
// The board.

async function renderBoard() {
  const query = new URLSearchParams({ limit: "100" });
  for (const [key, value] of Object.entries(state.filters)) if (value) query.set(key, value);
  const countQuery = new URLSearchParams();
  for (const key of ["severity", "kind"]) if (state.filters[key]) countQuery.set(key, state.filters[key]);
  const [list, counts] = await Promise.all([
    api(`/incidents?${query}`),
    api(`/incidents/counts?${countQuery}`),
  ]);
  if (state.route.name !== "board") return;

  const select = (name, values) => h("label", {}, name,
    h("select", {
      name,
      onchange: (event) => {
        state.filters[name] = event.target.value;
        attempt(renderBoard);
      },
    },
    h("option", { value: "" }, "all"),
    values.map((value) => h("option", { value, selected: state.filters[name] === value }, value))));

  const summary = h("ul", { class: "counts", "aria-label": "Incidents per status" },
    state.me.statuses.map((status) => h("li", { dataset: { status } },
      h("button", {
        class: `count status-${status}`,
        type: "button",
        onclick: () => {
          state.filters.status = state.filters.status === status ? "" : status;
          attempt(renderBoard);
        },
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
      h("form", { class: "filters", onsubmit: (e) => e.preventDefault() },
        select("status", state.me.statuses), select("severity", state.me.severities),
        select("kind", state.me.kinds),
        h("span", { class: "muted" }, `${list.total} matching, newest first`)),
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
  const [incident, timeline, available, history, approvals] = await Promise.all([
    api(`/incidents/${id}`),
    api(`/incidents/${id}/timeline`),
    api(`/playbooks/incidents/${id}/actions`),
    api(`/playbooks/incidents/${id}/actions/history`),
    api(`/playbooks/incidents/${id}/actions/approvals`),
  ]);
  if (state.route.name !== "incident" || state.route.id !== id) return;
  const me = state.me;

  // the verbs that move the status (assign keeps it; the console offers no button for it)
  const verbs = Object.entries(me.transitions)
    .filter(([, { from, to }]) => to !== null && from.includes(incident.status));
  const lifecycle = me.may_transition && verbs.length
    ? h("div", { class: "buttons" }, verbs.map(([verb]) => h("button", {
      type: "button",
      dataset: { verb },
      onclick: () => attempt(async () => {
        const body = verb === "acknowledge" ? { acknowledged_by: me.name } : { actor: me.name };
        await api(`/incidents/${id}/${verb}`, { method: "POST", body });
        await renderIncident(id);
      }),
    }, verb)))
    : null;

  const facts = [
    ["Kind", incident.kind], ["Key", incident.key],
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
        badge("severity", incident.severity), badge("status", incident.status)),
      lifecycle,
      h("div", { class: "columns" },
        h("div", { class: "card" }, h("h2", {}, "Details"),
          h("dl", { class: "facts" }, facts.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])),
          slaTable(incident),
          json(incident.details),
          Object.keys(incident.metadata || {}).length ? json(incident.metadata) : null),
        h("div", { class: "card" }, h("h2", {}, "Timeline"), timelineList(timeline.entries))),
      remediationCard(id, incident.remediation),
      h("div", { class: "card" }, h("h2", {}, "Playbooks"),
        incident.status === "closed"
          ? h("p", { class: "muted" }, "This incident is closed: playbooks no longer run on it. "
            + "If the problem is back, the next check (or alert) opens a new incident.")
          : available.available_actions.length
            ? available.available_actions.map((action) => playbookPanel(id, incident, action))
            : h("p", { class: "muted" }, "No playbook suggested for this incident.")),
      approvalsCard(id, approvals.approvals),
      h("div", { class: "card" }, h("h2", {}, "Action history"), historyTable(id, history.actions)),
    ),
  );
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

function timelineList(entries) {
  if (!entries.length) return h("p", { class: "muted" }, "Nothing yet.");
  return h("ol", { class: "timeline" }, entries.map((entry) => h("li", {},
    when(entry.at), " ",
    h("strong", {}, entry.verb), " ",
    entry.from_status && entry.to_status && entry.from_status !== entry.to_status
      ? h("span", {}, `${entry.from_status} → ${entry.to_status} `) : null,
    h("span", { class: "muted" }, `by ${entry.actor}`),
    entry.notes ? h("div", { class: "notes" }, entry.notes) : null,
  )));
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

function historyTable(incidentId, actions) {
  if (!actions.length) return h("p", { class: "muted" }, "No action yet: dry-run a playbook first.");
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
            h("thead", {}, h("tr", {}, ["ID", "Incident", "Check", "Step", "Action", "Action run"].map((t) => h("th", {}, t)))),
            h("tbody", {}, automation.in_flight.map((a) => h("tr", { dataset: { remediationId: a.id } },
              h("td", {}, a.id), h("td", {}, h("a", { href: `#/incidents/${a.incident_id}` }, `#${a.incident_id}`)),
              h("td", {}, a.check_id), h("td", {}, badge("remediation", a.step)),
              h("td", {}, a.action_type), h("td", {}, ref(a.action_id))))))
          : h("p", { class: "muted" }, "Nothing in flight.")),
    ),
  );
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
