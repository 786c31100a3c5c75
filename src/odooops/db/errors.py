"""Database errors translated into the project's errors, in this one place."""

from __future__ import annotations

import psycopg
from psycopg import errors as pg

from odooops.errors import (
    Conflict,
    DatabaseUnavailable,
    Forbidden,
    InternalError,
    InvalidInput,
    InvalidTransition,
    LeaseLost,
    NotFound,
    OpsError,
    RuleViolation,
)

# Messages for constraints a person can break with ordinary input.
CONSTRAINT_MESSAGES = {
    "orgs_slug_key": "an org with that slug already exists",
    "orgs_slug_check": "an org slug is 1-63 lowercase letters, digits and dashes, starting with a letter or digit",
    "orgs_name_check": "an org name is 1 to 200 characters",
    "users_email_key": "a user with that email already exists",
    "users_email_check": "that is not a valid email address",
    "projects_org_slug_key": "that org already has a project with that slug",
    "projects_slug_check":
        "a project slug is 1-63 lowercase letters, digits and dashes, starting with a letter or digit",
    "projects_name_check": "a project name is 1 to 200 characters",
    "projects_repo_url_check": "a project needs a repository URL",
    "projects_odoo_version_check": "an Odoo version looks like 17.0",
    "projects_odoo_version_supported": "OdooOps builds Odoo 16.0, 17.0, 18.0 and 19.0",
    "branches_project_name_key": "that project already has a branch with that name",
    "branches_name_check": "that is not a valid git branch name",
    "branches_one_production": "a project has exactly one production branch; it already has one",
    "org_members_pkey": "that user is already a member of the org",
    "project_members_pkey": "that user is already a member of the project",
    "runs_commit_sha_check": "a commit is 7 to 64 hexadecimal characters",
    "runs_pr_number_check": "a pull request number is a positive whole number",
    "runs_attempts_check": "a run may be attempted 1 to 5 times",
    "api_tokens_scopes_check": "token scopes are read and write",
    "ingest_tokens_name_check": "an ingest token name is 1 to 200 characters",
}

_BY_SQLSTATE: dict[str, type[OpsError]] = {
    "OP001": InvalidTransition,
    "OP002": NotFound,
    "OP003": RuleViolation,
    "OP004": LeaseLost,
    "42501": Forbidden,
}


def translate(exc: psycopg.Error) -> OpsError:
    """The project error that says what a database error means to a person."""
    diag = exc.diag
    constraint = diag.constraint_name
    if constraint in CONSTRAINT_MESSAGES:
        kind = Conflict if isinstance(exc, pg.UniqueViolation) else InvalidInput
        return kind(CONSTRAINT_MESSAGES[constraint])
    sqlstate = exc.sqlstate or ""
    if sqlstate in _BY_SQLSTATE:
        cls = _BY_SQLSTATE[sqlstate]
        if isinstance(exc, pg.InsufficientPrivilege) and _is_generic(diag.message_primary):
            return Forbidden()
        return cls(diag.message_primary)
    if isinstance(exc, pg.UniqueViolation):
        return Conflict()
    if isinstance(exc, pg.ForeignKeyViolation):
        return NotFound("something it refers to does not exist")
    # past this point the database's own words (SQL, types, hosts) are for the server's log only
    detail = diag.message_primary or _first_line(exc)
    if isinstance(exc, (pg.IntegrityError, pg.DataError)):
        return InvalidInput("a value is out of range, too long or of the wrong form", detail)
    if isinstance(exc, psycopg.OperationalError):
        return DatabaseUnavailable("the database cannot be reached", detail)
    return InternalError(detail=detail)


def _is_generic(message: str | None) -> bool:
    """PostgreSQL's own privilege messages name tables and policies: not for people."""
    return not message or message.startswith(("permission denied", "new row violates"))


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or ["unknown error"])[0]
