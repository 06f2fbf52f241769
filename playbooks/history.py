"""An incident's actions as the API lists them, each with its `rollback_available`."""

from models.action import Action
from models.db import transaction
from models.services import actions as service
from models.services import rollbacks as rollback_service
from playbooks import rollbacks
from playbooks.engine import Engine


async def history(engine: Engine, incident_id: int) -> list[tuple[Action, bool]]:
    """The incident's actions, oldest first, each with its `rollback_available`."""
    async with transaction(engine.database.reader) as session:
        actions = await service.list_actions(session, incident_id=incident_id)
    undone = rollback_service.undone_among(actions)
    return [(a, rollbacks.available(a, undone=a.id in undone)) for a in actions]


async def rollback_available(engine: Engine, action: Action) -> bool:
    if not rollbacks.available(action, undone=False):
        return False
    async with transaction(engine.database.reader) as session:
        undone = await rollback_service.has_rollback(session, action_id=action.id)
    return not undone
