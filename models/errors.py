"""Domain errors. Services raise these; `api/errors.py` turns them into the contract's envelope.

DomainError
 +-- NotFound              a referenced row does not exist
 +-- InvalidTransition     the state machine refuses the verb in the current status
 +-- Conflict              the change would break a uniqueness rule (two active per key)
 +-- RateLimited           a cap was reached; carries the seconds until it frees up
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


class InvalidTransition(DomainError):
    pass


class Conflict(DomainError):
    pass


class RateLimited(DomainError):
    def __init__(
        self, message: str, *, retry_after: int, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message, details=details)
        self.retry_after = retry_after
