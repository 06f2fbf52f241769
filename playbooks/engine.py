"""What every step of the engine works with: the databases, the settings, the launcher, and
this installation's id (which every flow run's key and tags carry)."""

from models.db import Database, transaction
from models.services.actions import ActionLimit
from models.services.installation import installation_id
from models.settings import Settings
from playbooks.launcher import Launcher


class Engine:
    def __init__(self, database: Database, settings: Settings, launcher: Launcher) -> None:
        self.database = database
        self.settings = settings
        self.launcher = launcher

    async def installation(self) -> str:
        """This installation's id, which every flow run's key and tags carry (read once per
        process by the service, which keeps it)."""
        async with transaction(self.database.writer) as session:
            return await installation_id(session)

    def limit(self, *, dry_run: bool) -> ActionLimit:
        per_hour = (
            self.settings.action_dry_runs_per_hour
            if dry_run
            else self.settings.action_executions_per_hour
        )
        return ActionLimit(limit=per_hour)
