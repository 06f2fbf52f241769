"""A failing check whose query reads a dbt model downstream of a failing one joins that
model's incident instead of opening its own (issue 19: lineage grouping).

A check declares what it watches (`watches:` in warehouse/checks.yml); checks/runner.py turns
that into dbt node ids and hands the lineage in. A run that fails while an active incident about
an upstream node (a stale source, a failing dbt test: `metadata.dbt_nodes`) is open is recorded
as usual, holds its key as related to that incident (listed on it, notifying no one) and opens
nothing. Once the upstream incident is over, the next failing run opens its own incident; a
passing run ends the hold.
"""

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from models.alert_hold import AlertHold, HoldReason
from models.check_run import CheckRun
from models.incident import Incident
from models.services import alert_holds as holds
from models.services.incidents import NewIncident

Downstream = holds.Downstream
SOURCE = "check"


@dataclass(frozen=True)
class Watching:
    """A check run's incident and the dbt nodes its query reads."""

    run: CheckRun
    new: NewIncident
    nodes: tuple[str, ...]

    @property
    def key(self) -> tuple[str, str]:
        return (self.new.kind.value, self.new.key)


async def join_upstream(
    session: AsyncSession, failing: list[Watching], downstream: Downstream
) -> list[Watching]:
    """Hold each failing run whose nodes are downstream of an active dbt incident as related to
    it; those left over (nothing upstream is failing) open or count as usual."""
    if not failing:
        return []
    upstream = await holds.upstream_incidents(session)
    kept = await holds.unreleased(session, [item.key for item in failing])
    rest: list[Watching] = []
    for item in failing:
        at = item.run.started_at
        held = kept.get(item.key)
        target = _upstream_of(upstream, item, downstream, held)
        if held is not None and held.reason != HoldReason.RELATED.value:
            rest.append(item)  # held for another reason (a silence): not ours to move
            continue
        if held is not None and (target is None or held.incident_id != target.id):
            held.released_at, held.firing = at, False  # its upstream incident is over
            await session.flush()  # released before the key is held again
            held = None
        if target is None:
            rest.append(item)
            continue
        if held is None:
            held = await holds.hold(
                session,
                new=item.new,
                source=SOURCE,
                reason=HoldReason.RELATED,
                at=at,
                incident_id=target.id,
            )
            kept[item.key] = held
            joined = held.occurrences == 1  # else a racing process held it first: counted on
        else:
            held.occurrences += 1
            held.last_seen_at, held.firing = at, True
            joined = False
        if joined:
            check_id = item.new.metadata.get("check_id", item.new.key)
            target.note(
                actor=f"check:{check_id}",
                verb="related",
                notes=f"{item.new.key} failed downstream (check {check_id} reads"
                f" {', '.join(item.nodes)}): listed here, not opened on its own",
                at=at,
            )
        item.run.context = item.run.context | {"related_to": target.id}
    return rest


async def settle(session: AsyncSession, passing: list[Watching]) -> None:
    """A passing run ends its key's related hold: the failure is over downstream too."""
    if not passing:
        return
    kept = await holds.unreleased(session, [item.key for item in passing])
    for item in passing:
        held: AlertHold | None = kept.get(item.key)
        if held is not None and held.reason == HoldReason.RELATED.value:
            at = item.run.started_at
            held.released_at, held.last_seen_at, held.firing = at, at, False


def _upstream_of(
    upstream: list[Incident], item: Watching, downstream: Downstream, held: AlertHold | None
) -> Incident | None:
    """The active incident upstream of `item`: the one it joined already, if it still is."""
    if held is not None:
        upstream = sorted(upstream, key=lambda incident: incident.id != held.incident_id)
    return holds.upstream_of(upstream, item.new.key, item.nodes, downstream)
