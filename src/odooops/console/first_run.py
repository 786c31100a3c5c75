"""First run: while no user exists, a one-time link (printed by `odooops up`)
opens a form that makes the first owner and signs them in."""

from __future__ import annotations

import hashlib
import hmac

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from odooops.console import forms
from odooops.console.pages import signed_in
from odooops.console.render import error_page, page
from odooops.db import Actor
from odooops.errors import OpsError
from odooops.managers.sessions import Sessions
from odooops.managers.users import MIN_PASSWORD, Users
from odooops.web import client_address, same_site

router = APIRouter(include_in_schema=False)


class OwnerIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    email: str = Field(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    password: str = Field(min_length=MIN_PASSWORD, max_length=1024)
    org: str = Field(pattern="^[a-z0-9][a-z0-9-]{0,62}$")


def setup_token(secret_key: str) -> str:
    """Derived from the server key: nothing to store, and useless once a user exists."""
    return hmac.new(secret_key.encode(), b"odooops first-run setup v1", hashlib.sha256).hexdigest()[:32]


def setup_path(secret_key: str) -> str:
    return f"/setup?token={setup_token(secret_key)}"


async def _refusal(request: Request, token: str) -> Response | None:
    """Why this setup request may not go on, as a page; None when it may."""
    if await Users(request.app.state.db, Actor.service()).any_exist():
        return error_page(request, 404, "Setup is done: sign in instead.")
    expected = setup_token(request.app.state.secret_key.reveal())
    if not hmac.compare_digest(expected.encode(), token.encode()):
        return error_page(request, 403, "This setup link is not valid: use the one `odooops up` printed.")
    return None


@router.get("/setup")
async def setup_form(request: Request, token: str = "") -> Response:
    return await _refusal(request, token) or page(request, "setup.html", token=token, form={}, errors={})


@router.post("/setup", dependencies=[Depends(same_site)])
async def setup(request: Request) -> Response:
    values = await forms.fields(request)
    token = values.get("token", "")
    if refused := await _refusal(request, token):
        return refused
    body, errors = forms.read(OwnerIn, values)
    if body is not None and values.get("password_again") != body.password:
        errors = {"password_again": "the two passwords differ"}
    if body is not None and not errors:
        db = request.app.state.db
        try:
            await Users(db, Actor.service()).create_first_owner(body.email, body.name, body.password, body.org,
                                                                 body.org)
            session = await Sessions(db, Actor.service()).login(
                body.email, body.password, client_address(request), request.headers.get("user-agent", "")[:500])
        except OpsError as exc:
            errors = {"form": exc.message}
        else:
            return signed_in(request, session, "/")
    values.pop("password", None), values.pop("password_again", None)
    return page(request, "setup.html", status=422, token=token, form=values, errors=errors)
