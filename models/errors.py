"""Domain errors. Services raise these; `api/errors.py` turns them into the contract's envelope.

DomainError
 +-- NotFound              a referenced row does not exist
 +-- BadRequest            the request names something that cannot be done (unknown action type)
 |    +-- InvalidTransition   the state machine refuses the verb in the current status
 +-- Unauthorized          no valid token
 +-- Forbidden             the token's role, or the approval rules, do not allow it
 +-- Conflict              the change would break a uniqueness rule (two active per key)
 +-- RateLimited           a cap was reached; carries the seconds until it frees up
 +-- Unavailable           something the request needs is not reachable (Prefect, the dbt manifest)
 +-- InvalidParams         an action's params are refused (422 with the fields, as a body's are)

ParamsError (a ValueError) is an action's params that parse but do not make sense; the
playbook service turns it into a 422 naming the field.
"""

from typing import Any


class DomainError(Exception):
    """Base of every error a service raises on purpose."""

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}


class NotFound(DomainError):
    pass


class BadRequest(DomainError):
    pass


class InvalidTransition(BadRequest):
    pass


class Unauthorized(DomainError):
    pass


class Forbidden(DomainError):
    pass


class Unavailable(DomainError):
    pass


class Conflict(DomainError):
    pass


class RateLimited(DomainError):
    def __init__(
        self,
        message: str,
        *,
        retry_after: int,
        details: dict[str, Any] | None = None,
        limit: str = "other",
    ) -> None:
        super().__init__(message, details=details)
        self.retry_after = retry_after
        self.limit = limit  # which limit refused (the `limit` label of the refusals metric)


class ParamsError(ValueError):
    """Parameters that parse but do not make sense (e.g. a model the project does not have).

    `field` names the parameter, as in `params.models`, for the 422's field list.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class InvalidParams(DomainError):
    """An action's params refused: `errors` as pydantic words them (`loc`, `msg`, `type`), each
    `loc` from the request body's root (`("body", "params", "models")`), so the API answers
    exactly as for a body that fails its schema."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__("Invalid params")
        self.errors = errors
