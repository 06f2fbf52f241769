"use strict";

// Moving an incident (acknowledge, mitigate, resolve, close, reopen) and assigning it (to a
// person of the on-call file, to anyone by name, or to oneself), each with the notes typed
// above the buttons: they land on the timeline with the step. The notes survive a live redraw.

const lifecycleDrafts = new Map(); // incident id -> notes being typed

function lifecycleCard(incident, oncall, after) {
  const me = state.me;
  if (!me.may_transition) return null;
  const id = incident.id;
  const verbs = Object.entries(me.transitions)
    .filter(([, { from, to }]) => to !== null && from.includes(incident.status))
    .map(([verb]) => verb);
  const mayAssign = (me.transitions.assign?.from || []).includes(incident.status);
  if (!verbs.length && !mayAssign) return null;

  const notes = h("textarea", { name: "lifecycle-notes", rows: 2, maxlength: 10000,
    placeholder: "Notes for the timeline (optional): what you saw, what you did",
    "aria-label": "Notes for this step",
    oninput: (event) => lifecycleDrafts.set(id, event.target.value) });
  notes.value = lifecycleDrafts.get(id) || "";
  const written = () => notes.value.trim() || undefined;
  const done = async () => {
    lifecycleDrafts.delete(id);
    await after();
  };

  const move = (verb) => attempt(async () => {
    const body = verb === "acknowledge" ? { acknowledged_by: me.name } : { actor: me.name };
    body.notes = written();
    await api(`/incidents/${id}/${verb}`, { method: "POST", body });
    await done();
  });
  const assign = (person) => attempt(async () => {
    await api(`/incidents/${id}/assign`, { method: "POST",
      body: { assigned_to: person, actor: me.name, notes: written() } });
    await done();
  });

  return h("div", { class: "card lifecycle", dataset: { incidentId: id } },
    notes,
    verbs.length ? h("div", { class: "buttons" }, verbs.map((verb) =>
      h("button", { type: "button", dataset: { verb }, onclick: () => move(verb) }, verb))) : null,
    mayAssign ? assignControl(incident, oncall, assign) : null);
}

// A list of the on-call file's people (anyone else by typing a name), "Take it", "Unassign".
function assignControl(incident, oncall, assign) {
  const me = state.me;
  const people = oncall.people || [];
  const listId = `people-${incident.id}`;
  const who = h("input", { name: "assigned_to", list: listId, autocomplete: "off", maxlength: 320,
    placeholder: "email or name", "aria-label": "Assign to" });
  const choices = h("datalist", { id: listId }, people.map((p) =>
    h("option", { value: p.email }, `${p.name} (${p.id})`)));
  const form = h("form", { class: "assign", onsubmit: (event) => {
    event.preventDefault();
    const person = who.value.trim();
    if (person) assign(person);
  } },
  h("span", { class: "muted" }, "Assigned to ",
    h("strong", { class: "assignee" }, incident.assigned_to || "nobody"), " · "),
  who, choices,
  h("button", { type: "submit", dataset: { do: "assign" } }, "Assign"),
  incident.assigned_to === me.name ? null
    : h("button", { type: "button", dataset: { do: "take" }, onclick: () => assign(me.name) }, "Take it"),
  incident.assigned_to
    ? h("button", { type: "button", class: "link", dataset: { do: "unassign" }, onclick: () => assign(null) }, "Unassign")
    : null);
  return form;
}
