"""The catalog: the actions an incident is offered, its suggested playbooks first (aliases such
as reduce_traffic included), then the other actions for its kind, each with the estimates of a
typical run, scaled by the action's recent runs (playbooks/estimates.py)."""

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from models.incident import Incident
from models.settings import Settings
from playbooks import estimates
from playbooks.catalog import ACTIONS, ALIASES, ActionSpec, Alias, actions_for
from playbooks.estimates import Quote


@dataclass(frozen=True)
class Offer:
    name: str  # the action's, or an alias's
    spec: ActionSpec
    alias: Alias | None
    quote: Quote  # its estimates as the catalog words them


def offered(incident: Incident) -> list[tuple[str, ActionSpec, Alias | None]]:
    found: list[tuple[str, ActionSpec, Alias | None]] = []
    for name in incident.playbooks:
        alias = ALIASES.get(name)
        if alias is not None:
            found.append((name, ACTIONS[alias.action_type], alias))
    found += [(s.action_type, s, None) for s in actions_for(incident.kind, incident.playbooks)]
    first = {name: i for i, name in enumerate(incident.playbooks)}
    return sorted(found, key=lambda item: first.get(item[0], len(first)))


async def offers(session: AsyncSession, incident: Incident, settings: Settings) -> list[Offer]:
    found = offered(incident)
    learned = await estimates.calibrations(session, {spec.action_type for _, spec, _ in found})
    return [
        Offer(name, spec, alias, Quote.of(spec.typical, settings, learned[spec.action_type]))
        for name, spec, alias in found
    ]
