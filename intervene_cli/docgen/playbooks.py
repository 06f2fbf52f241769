"""docs/playbooks.md, rendered from playbooks/catalog.py: every action and alias, its params (from
its Params model), approval, rollback, estimates and the exact curl to preview and run it."""

import importlib
import inspect
import json
import re
from collections.abc import Iterator
from typing import Any, TypeVar

from pydantic import BaseModel

from intervene_cli.docgen.examples import APPROVAL_WHEN, EXAMPLES, ROLLBACK_UNDOES, Example
from intervene_cli.docgen.settings import cell
from models.settings import Settings
from playbooks.catalog import ACTIONS, ALIASES, ActionSpec, Alias
from playbooks.estimates import Calibration, Quote

T = TypeVar("T")
BASE = "http://localhost:8000/api/playbooks/incidents/$INCIDENT/actions"
HEADERS = '-H "Authorization: Bearer $TOKEN" -H "Content-Type: application/json"'
APPROVER = "ann@example.com"


def default_quote(spec: ActionSpec) -> Quote:
    """The catalog's estimates for the action's typical run before it has run, with the
    settings' defaults (never the environment's)."""
    return Quote.of(spec.typical, Settings.model_construct(), Calibration())


def entry(table: dict[str, T], name: str, what: str) -> T:
    """A table lookup that says what to add when the registry grew."""
    if name not in table:
        raise KeyError(f"{name} has no {what} in intervene_cli/docgen/examples.py: add one")
    return table[name]


def module_doc(spec: ActionSpec) -> str:
    """The action module's docstring without its `name:` summary line (the page has that)."""
    module = importlib.import_module(f"playbooks.actions.{spec.action_type}")
    doc = inspect.cleandoc(module.__doc__ or "")
    return doc.split("\n\n", 1)[1].strip() if "\n\n" in doc else ""


def schema_type(schema: dict[str, Any]) -> str:
    if "anyOf" in schema:
        kinds = [schema_type(s) for s in schema["anyOf"] if s.get("type") != "null"]
        return " or ".join(kinds) + (" or null" if len(kinds) < len(schema["anyOf"]) else "")
    if "enum" in schema:
        return " or ".join(f"`{json.dumps(v)}`" for v in schema["enum"])
    if schema.get("type") == "array":
        return f"array of {schema_type(schema.get('items', {}))}"
    return str(schema.get("type", "any"))


def constraints(schema: dict[str, Any]) -> list[str]:
    found: list[str] = []
    for option in schema.get("anyOf", [schema]):
        if "minimum" in option or "maximum" in option:
            found.append(f"{option.get('minimum', '')}..{option.get('maximum', '')}")
        if "minLength" in option or "maxLength" in option:
            found.append(f"{option.get('minLength', 0)}-{option.get('maxLength', '')} characters")
        if "pattern" in option:
            found.append(f"pattern `{option['pattern']}`")
        low, high = option.get("minItems"), option.get("maxItems")
        if low is not None and high is not None:
            found.append(f"{low}-{high} items")
        elif low is not None or high is not None:
            found.append(f"at least {low} item(s)" if high is None else f"at most {high} items")
        if option.get("type") == "array" and (each := constraints(option.get("items", {}))):
            found.append(f"each: {', '.join(each)}")
    return found


def doc_note(doc: str | None, default: str) -> str:
    """What the registry's params doc says beyond the type, required and a literal default:
    `array[string] (optional, default: all of the agent's checks)` -> that default's meaning."""
    match = re.fullmatch(r".*?\((.*)\)", doc or "")
    note = match.group(1) if match else ""
    note = re.sub(r"^(required|optional)([;,]\s*)?", "", note)
    return "" if note == f"default: {default}" else note


def params_table(model: type[BaseModel], doc: dict[str, str], fixed: dict[str, Any]) -> str:
    schema = model.model_json_schema()
    lines = [
        "| param | type | required | default | constraints | description |",
        "|---|---|---|---|---|---|",
    ]
    for name, field in model.model_fields.items():
        prop = schema["properties"][name]
        if name in fixed:
            lines.append(
                f"| `{name}` | {schema_type(prop)} | fixed | `{json.dumps(fixed[name])}`"
                " | | set by this playbook; a value sent is overridden |"
            )
            continue
        required = field.is_required()
        value = "" if required else json.dumps(field.get_default(call_default_factory=True))
        note = doc_note(doc.get(name), value)
        described = "; ".join(d for d in (field.description, note) if d)
        default = f"`{value}`" if value else ""
        lines.append(
            f"| `{name}` | {cell(schema_type(prop))} | {'yes' if required else 'no'} | {default}"
            f" | {cell(', '.join(constraints(prop)))} | {cell(described)} |"
        )
    return "\n".join(lines)


def body(action_type: str, params: dict[str, Any], **extra: Any) -> str:
    text = json.dumps({"action_type": action_type, "params": params, **extra})
    assert "'" not in text, f"{action_type}: an example may not hold a single quote (shell)"
    return text


def curl(path: str, data: str) -> str:
    return f"curl -X POST \"{BASE}{path}\" \\\n  {HEADERS} \\\n  -d '{data}'"


def examples(name: str, spec: ActionSpec, example: Example, always_approval: bool) -> Iterator[str]:
    yield "```bash"
    yield "# Preview: the changes, estimates, whether it needs approval (recorded, changes nothing)"
    yield curl("/dry-run", body(name, example.params))
    if not always_approval:
        yield "# Run it (?wait=60: answer once it finished, or after 60 s with its status)"
        yield curl("/execute?wait=60", body(name, example.params))
    if example.approval is not None:
        yield "# With params that need approval. An approver acting alone, only where"
        yield f'# INTERVENE_SELF_APPROVAL lists "{spec.action_type}" (or "*"):'
        yield curl("/execute?wait=60", body(name, example.approval, approved_by=APPROVER))
        yield "# Otherwise ask; another approver approves (it runs exactly these params) or rejects"
        yield curl("/approvals", body(name, example.approval, reason=example.reason))
        yield curl("/approvals/$APPROVAL/approve", json.dumps({"notes": "ok"}))
    if spec.rollback_supported:
        yield "# Undo a successful execute ($ACTION: its action_id)"
        yield curl("/$ACTION/rollback", "{}")
    yield "```"


def approval_text(spec: ActionSpec, alias: Alias | None) -> str:
    rule = entry(APPROVAL_WHEN, spec.action_type, "approval rule")
    if alias is not None and alias.requires_approval:
        rule = "Always (this playbook), whatever the params."
    elif alias is not None:
        rule = f"As `{spec.action_type}`: {rule}"
    if rule.startswith("Never"):
        return rule
    return (
        f"{rule} When approval is needed, an approver may run it alone with `approved_by`"
        " (their own token name) only if `INTERVENE_SELF_APPROVAL` lists"
        f" `{spec.action_type}` (or `*`); otherwise a responder requests approval and a"
        " second approver approves it."
    )


def rollback_text(spec: ActionSpec) -> str:
    if not spec.rollback_supported:
        return "Not supported (a rollback request is a 400). " + (
            "Run it again instead." if spec.action_type == "rerun_dbt" else "Nothing to undo."
        )
    text = "Supported. " + entry(ROLLBACK_UNDOES, spec.action_type, "rollback description")
    text += " A rollback needs approval when the original did."
    if spec.rollback_needs_approval is not None:
        text += " " + " ".join((inspect.getdoc(spec.rollback_needs_approval) or "").split())
    return text + " A rollback cannot itself be rolled back."


def section(name: str, spec: ActionSpec, alias: Alias | None) -> Iterator[str]:
    display = alias.display_name if alias else spec.display_name
    summary = alias.description if alias else spec.description
    yield f"## `{name}`: {display}"
    yield ""
    if alias is not None:
        fixed = ", ".join(f"`{k}: {json.dumps(v)}`" for k, v in alias.fixed.items())
        yield f"A playbook name for `{spec.action_type}` with {fixed}. {summary}."
    else:
        names = sorted(kind.value for kind in spec.applies_to)
        kinds = ", ".join(names[:-1]) + " and " + names[-1] if len(names) > 1 else names[0]
        yield f"{summary}. Offered for {kinds} incidents (and any incident that suggests it)."
        yield ""
        yield module_doc(spec)
    yield ""
    limit = "; one run at a time" if spec.one_at_a_time else ""
    yield (
        f"- **action_type**: `{name}`"
        + (f" (runs `{spec.action_type}`)" if alias else "")
        + f"; Prefect deployment `{spec.deployment}`{limit}"
    )
    yield f"- **Approval**: {approval_text(spec, alias)}"
    yield f"- **Rollback**: {rollback_text(spec)}"
    quote = default_quote(spec)
    yield (
        f"- **Estimates**: {quote.duration}, {quote.cost} {spec.typical.what}, by default;"
        " the dry-run computes them for the given params, scaled by how long the action's"
        " last runs took (its `details.estimate` says which)"
    )
    yield ""
    yield "Params:"
    yield ""
    yield params_table(spec.params_model, spec.params_doc, alias.fixed if alias else {})
    yield ""
    example = entry(EXAMPLES, name, "example")
    yield from examples(name, spec, example, bool(alias and alias.requires_approval))
    yield ""


def index_rows() -> Iterator[str]:
    yield "| playbook | display name | approval | rollback | estimates (typical run, by default) |"
    yield "|---|---|---|---|---|"
    for name, spec, alias in playbooks():
        approval = entry(APPROVAL_WHEN, spec.action_type, "approval rule")
        if alias is not None:
            approval = "Always." if alias.requires_approval else f"As `{spec.action_type}`."
        display = alias.display_name if alias else spec.display_name
        quote = default_quote(spec)
        yield (
            f"| [`{name}`](#{name}) | {display} | {cell(approval)} | "
            f"{'yes' if spec.rollback_supported else 'no'} | {quote.duration}, "
            f"{quote.cost} |"
        )


def playbooks() -> list[tuple[str, ActionSpec, Alias | None]]:
    """Every action (in the registry's order), then every alias."""
    rows: list[tuple[str, ActionSpec, Alias | None]] = [(n, s, None) for n, s in ACTIONS.items()]
    return rows + [(n, ACTIONS[a.action_type], a) for n, a in ALIASES.items()]


INTRO = """\
Every playbook action is listed in `playbooks/catalog.py`, its params and plan in
`playbooks/actions/<action>.py`, and runs as a Prefect flow (`flows/<action>.py`).
The API validates its params, plans it (the dry-run and the execute share one `plan()`), gates
it on approval and per-incident limits, records it in the incident's action history, and only
then triggers its deployment, which `intervene worker` (or a Prefect work pool) runs. How to use
them during an incident: [interventions.md](interventions.md); `GET
/api/playbooks/incidents/{id}/actions` lists what an incident is offered, its suggested
playbooks first.

The examples assume a token and an incident:

```bash
TOKEN=$(cat .intervene/dev-token)   # or: intervene tokens create --name you --role responder
INCIDENT=1
```

`$ACTION` in a rollback is the `action_id` an execute answered; `$APPROVAL` is the `id` an
approval request answered.

Params an incident implies are preset and may be overridden: `task_id` for `rerun_dbt`, the
agent (`rerun_eval`) from its metadata, the planner version (`rollback_planner`,
`adjust_canary_split` and its aliases) from its details or its `PLANNER_<version>` key. Whether
a run needs approval depends on its params and the live state, so the dry-run's
`requires_approval` is the answer for a given request; executing what needs approval without it
is a 403 that says what to do. Limits: `INTERVENE_ACTION_EXECUTIONS_PER_HOUR` executions
(rollbacks included) and `INTERVENE_ACTION_DRY_RUNS_PER_HOUR` dry-runs per incident (429 with
`Retry-After`); dry-runs and executions say what is left in `X-Incident-RateLimit-Limit`,
`-Remaining` and `-Reset` (`X-RateLimit-*` are the per-address budget)."""


def render_playbooks() -> str:
    lines = [
        "<!-- Generated by `intervene docs generate` from playbooks/catalog.py; do not edit. -->",
        "",
        "# Playbooks",
        "",
        "*Generated by `intervene docs generate` from `playbooks/catalog.py`, the action modules"
        " and `intervene_cli/docgen/examples.py`: do not edit; change those and run it again"
        " (`intervene docs check` fails while this file is stale).*",
        "",
        INTRO,
        "",
        *index_rows(),
        "",
    ]
    for name, spec, alias in playbooks():
        lines += section(name, spec, alias)
    return "\n".join(lines).rstrip("\n") + "\n"
