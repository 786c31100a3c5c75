"""Which buttons a page shows, by the rules the database applies (it still
decides: a hidden button is a courtesy, not the check)."""

from __future__ import annotations

from fastapi import Request

ADMINS = frozenset({"admin", "owner"})


def is_admin(role: str | None) -> bool:
    """Admins and owners: they move branches (policy admin_update on
    ops.branches), manage a project's settings, authorize fork builds
    (ops.authorize_run) and create projects in their org."""
    return role in ADMINS


def may_operate(role: str | None, stage: str | None) -> bool:
    """Build, rebuild and cancel, as ops.can_operate_branch answers:
    developers on development branches, admins and owners on every stage."""
    return is_admin(role) or (role == "developer" and stage == "development")


def is_htmx(request: Request) -> bool:
    """Asked by htmx (answer a fragment) rather than by a plain form (answer a page)."""
    return request.headers.get("hx-request") == "true"
