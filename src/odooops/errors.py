"""The project's errors. Each class's docstring is its default message; the
CLI prints the message and exits non-zero, the HTTP layer maps `status`."""

from __future__ import annotations


class OpsError(Exception):
    """Something went wrong."""

    code = "error"
    status = 500

    def __init__(self, message: str | None = None, detail: str | None = None):
        super().__init__(message or (self.__doc__ or "").strip())
        # what the server logs besides the message (the database's own words): never in an answer
        self.detail = detail

    @property
    def message(self) -> str:
        return str(self)

    @property
    def headers(self) -> dict[str, str]:
        """HTTP headers the answer carries besides the error shape."""
        return {}


class InvalidInput(OpsError):
    """The input is not valid."""

    code = "invalid_input"
    status = 422


class Unauthenticated(OpsError):
    """Sign in first: send `Authorization: Bearer <token>`, or the cookie of POST /api/v1/auth/login."""

    code = "unauthenticated"
    status = 401


class BadCredentials(Unauthenticated):
    """Wrong email or password."""

    code = "bad_credentials"


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


class CsrfRejected(Forbidden):
    """Missing or wrong CSRF token: send the session's token as X-CSRF-Token or the csrf_token field."""

    code = "csrf"


class CrossSite(Forbidden):
    """This sign-in came from a page of another site: sign in on this site's own page."""

    code = "cross_site"


class TooManyRequests(OpsError):
    """Too many attempts: wait a while before trying again."""

    code = "too_many_attempts"
    status = 429

    def __init__(self, message: str | None = None, retry_after: int = 60):
        super().__init__(message)
        self.retry_after = retry_after

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class InvalidTransition(Conflict):
    """That change of state is not allowed."""

    code = "invalid_transition"


class RuleViolation(Conflict):
    """That change breaks a rule of the project."""

    code = "rule_violation"


class LeaseLost(Conflict):
    """This worker no longer holds the run: it was canceled, reaped or finished."""

    code = "lease_lost"


class InternalError(OpsError):
    """Internal error: the server logged it."""

    code = "internal_error"


class DatabaseUnavailable(OpsError):
    """The database cannot be reached."""

    code = "database_unavailable"
    status = 503


class MigrationError(OpsError):
    """The database schema cannot be migrated."""

    code = "migration_error"


class SecretUnreadable(OpsError):
    """A project secret cannot be decrypted with this server's ODOOOPS_SECRET_KEY."""

    code = "secret_unreadable"
