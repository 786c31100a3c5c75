"""The settings pages: your account and password, your API tokens and the
members of your orgs here; a project's webhook and ingest tokens in
project_settings; the page a password reset link opens in reset. Each form
calls the manager its /api/v1 twin calls, with the same model."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel, Field

from odooops.console import forms, project_settings, reset
from odooops.console.render import page
from odooops.console.session import Seen, Visitor
from odooops.db import Actor
from odooops.errors import BadCredentials, InvalidInput, OpsError
from odooops.managers.orgs import ROLES, Orgs
from odooops.managers.passwords import Passwords
from odooops.managers.tokens import Tokens
from odooops.managers.users import MIN_PASSWORD
from odooops.models import MemberIn, RoleIn, TokenIn
from odooops.web import client_address

router = APIRouter(include_in_schema=False)
router.include_router(project_settings.router)
router.include_router(reset.router)
# the scope choices of the form: `write` implies `read`, as the API says
SCOPE_CHOICES = {"read": ["read"], "write": ["read", "write"]}


def manageable(my_role: str | None, their_role: str) -> bool:
    """Whether the visitor may change or remove a member: owners anyone, admins those below owner."""
    return my_role == "owner" or (my_role == "admin" and their_role != "owner")


def grantable(my_role: str | None) -> list[str]:
    """The roles the visitor may give: only owners make owners."""
    return list(ROLES) if my_role == "owner" else [r for r in ROLES if r != "owner"]


async def _teams(request: Request, who: Visitor) -> list[dict]:
    """The orgs the visitor is a member of, each with its members."""
    orgs = Orgs(request.app.state.db, who.actor)
    return [{**o, "members": await orgs.members(o["slug"])} for o in await orgs.mine() if o["role"]]


async def _settings_page(request: Request, who: Visitor, status: int = 200, **context) -> Response:
    tokens = await Tokens(request.app.state.db, who.actor).list_all(who.actor.me())
    context.setdefault("form", {})
    context.setdefault("errors", {})
    return page(request, "settings.html", status=status, tokens=tokens, teams=await _teams(request, who),
                manageable=manageable, grantable=grantable, now=datetime.now(UTC), **context)


@router.get("/settings")
async def settings(request: Request, who: Seen) -> Response:
    return await _settings_page(request, who)


class PasswordIn(BaseModel):
    current_password: str = Field(min_length=1, max_length=1024)
    new_password: str = Field(min_length=MIN_PASSWORD, max_length=1024)


def _password_errors(values: dict[str, str]) -> tuple[PasswordIn | None, dict[str, str]]:
    body, errors = forms.read(PasswordIn, values)
    if body is not None and values.get("new_password_again") != body.new_password:
        return None, {"new_password_again": "the two new passwords differ"}
    return body, errors


@router.post("/settings/password")
async def change_password(request: Request, who: Seen) -> Response:
    """A new password for the visitor: their other sessions end, this one stays."""
    body, errors = _password_errors(await forms.fields(request))
    if body is None:
        return await _settings_page(request, who, status=422, password_errors=errors)
    try:
        await Passwords(request.app.state.db, Actor.service()).change(
            who.user["email"], body.current_password, body.new_password, request.state.session["id"],
            client_address(request))
    except BadCredentials as exc:
        return await _settings_page(request, who, status=422, password_errors={"current_password": exc.message})
    except OpsError as exc:
        refused = await _settings_page(request, who, status=exc.status, password_errors={"form": exc.message})
        refused.headers.update(exc.headers)
        return refused
    return await _settings_page(request, who, password_changed=True)


@router.post("/settings/tokens")
async def create_token(request: Request, who: Seen) -> Response:
    """A new token, shown in this answer only: never in a URL, never cached."""
    values = await forms.fields(request)
    body, errors = forms.read(TokenIn, {**values, "scopes": SCOPE_CHOICES.get(values.get("scopes", "read"),
                                                                             [values.get("scopes")])})
    if body is None:
        return await _settings_page(request, who, status=422, form=values, errors=errors)
    try:
        row, token = await Tokens(request.app.state.db, who.actor).create(
            None, body.name, sorted(set(body.scopes) | {"read"}), body.expires_in_days)
    except OpsError as exc:
        return await _settings_page(request, who, status=exc.status, form=values, errors={"form": exc.message})
    return await _settings_page(request, who, revealed={"name": row["name"], "value": token})


@router.post("/settings/tokens/{token_id}/revoke")
async def revoke_token(token_id: UUID, request: Request, who: Seen) -> Response:
    await Tokens(request.app.state.db, who.actor).revoke(who.actor.me(), token_id)
    return RedirectResponse("/settings#tokens", status_code=303)


async def _member_change(request: Request, who: Visitor, org: str,
                         change: Callable[[Orgs], Awaitable[object]], values: dict | None = None) -> Response:
    """Make the change and go back to the org's members, or say why not."""
    try:
        await change(Orgs(request.app.state.db, who.actor))
    except OpsError as exc:
        return await _refused(request, who, org, exc, values)
    return RedirectResponse(f"/settings#members-{org}", status_code=303)


async def _refused(request: Request, who: Visitor, org: str, exc: OpsError, values: dict | None = None) -> Response:
    """A refusal (the last owner, a role too high, a bad address) is said next
    to the org's members. An org the visitor is not a member of gets the plain
    error page instead: nothing about it shows."""
    if org not in {t["slug"] for t in await _teams(request, who)}:
        raise exc
    return await _settings_page(request, who, status=exc.status, member_errors={org: exc.message},
                                member_form={org: values or {}})


def _invalid(errors: dict[str, str]) -> InvalidInput:
    return InvalidInput("; ".join(f"{name.replace('_', ' ')}: {text}" for name, text in errors.items()))


@router.post("/settings/orgs/{org}/members")
async def add_member(org: str, request: Request, who: Seen) -> Response:
    values = await forms.fields(request)
    body, errors = forms.read(MemberIn, values)
    if body is None:
        return await _refused(request, who, org, _invalid(errors), values)
    return await _member_change(request, who, org, lambda orgs: orgs.invite(org, body.email, body.role), values)


@router.post("/settings/orgs/{org}/members/{user_id}/role")
async def change_role(org: str, user_id: UUID, request: Request, who: Seen) -> Response:
    body, errors = forms.read(RoleIn, await forms.fields(request))
    if body is None:
        return await _refused(request, who, org, _invalid(errors))
    return await _member_change(request, who, org, lambda orgs: orgs.set_role(org, user_id, body.role))


@router.post("/settings/orgs/{org}/members/{user_id}/remove")
async def remove_member(org: str, user_id: UUID, request: Request, who: Seen) -> Response:
    return await _member_change(request, who, org, lambda orgs: orgs.remove(org, user_id))
