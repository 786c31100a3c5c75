"""The project's errors. Each class's docstring is its default message; the
CLI prints the message and exits non-zero, the HTTP layer maps `status`."""

from __future__ import annotations


class OpsError(Exception):
    """Something went wrong."""

    code = "error"
    status = 500

    def __init__(self, message: str | None = None):
        super().__init__(message or (self.__doc__ or "").strip())

    @property
    def message(self) -> str:
        return str(self)


class InvalidInput(OpsError):
    """The input is not valid."""

    code = "invalid_input"
    status = 422


class Unauthenticated(OpsError):
    """Sign in first: send `Authorization: Bearer <token>`."""

    code = "unauthenticated"
    status = 401


class NotFound(OpsError):
    """Not found."""

    code = "not_found"
    status = 404


class Conflict(OpsError):
    """That already exists."""

    code = "conflict"
    status = 409


class Forbidden(OpsError):
    """You do not have permission to do that."""

    code = "forbidden"
    status = 403


class PayloadTooLarge(OpsError):
    """The request is too large."""

    code = "payload_too_large"
    status = 413


class InvalidTransition(Conflict):
    """That change of state is not allowed."""

    code = "invalid_transition"


class RuleViolation(Conflict):
    """That change breaks a rule of the project."""

    code = "rule_violation"


class LeaseLost(Conflict):
    """This worker no longer holds the run: it was canceled, reaped or finished."""

    code = "lease_lost"


class DatabaseUnavailable(OpsError):
    """The database cannot be reached."""

    code = "database_unavailable"
    status = 503


class MigrationError(OpsError):
    """The database schema cannot be migrated."""

    code = "migration_error"
