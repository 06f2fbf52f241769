"""Who the caller is: the console asks once, to show only the buttons its role allows."""

from fastapi import APIRouter
from pydantic import BaseModel

from api.auth import PrincipalDep
from api.deps import SettingsDep
from api.launcher import prefect_ui_url
from models.enums import Role

router = APIRouter(tags=["session"])


class Me(BaseModel):
    name: str
    role: Role
    may_transition: bool  # responder and up: acknowledge, mitigate, execute, dry-run
    may_approve: bool
    may_admin: bool
    prefect_ui_url: str | None  # where the console links flow runs


@router.get("/me")
async def read_me(principal: PrincipalDep, settings: SettingsDep) -> Me:
    """The authenticated principal, its role and what that role may do."""
    return Me(
        name=principal.name,
        role=principal.role,
        may_transition=principal.allows(Role.RESPONDER),
        may_approve=principal.allows(Role.APPROVER),
        may_admin=principal.allows(Role.ADMIN),
        prefect_ui_url=prefect_ui_url(settings.prefect_ui_url),
    )
