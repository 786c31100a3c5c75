"""The page a password reset link opens (`odooops user reset-link` prints
one): choose a new password, then be signed in with it. The link works once."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel, Field

from odooops.console import forms
from odooops.console.pages import signed_in
from odooops.console.render import error_page, page
from odooops.db import Actor
from odooops.errors import NotFound, OpsError
from odooops.managers.passwords import Passwords
from odooops.managers.sessions import Sessions
from odooops.managers.users import MIN_PASSWORD
from odooops.web import client_address, same_site

router = APIRouter(include_in_schema=False)
GONE = "This reset link is unknown, used or expired: ask the operator for a new one (odooops user reset-link)."


class ResetIn(BaseModel):
    password: str = Field(min_length=MIN_PASSWORD, max_length=1024)


def _gone(request: Request) -> Response:
    return error_page(request, 404, GONE)


@router.get("/reset")
async def reset_form(request: Request, token: str = "") -> Response:
    email = await Passwords(request.app.state.db, Actor.service()).reset_email(token)
    if email is None:
        return _gone(request)
    return page(request, "reset.html", token=token, email=email, errors={})


@router.post("/reset", dependencies=[Depends(same_site)])
async def reset(request: Request) -> Response:
    values = await forms.fields(request)
    token = values.get("token", "")
    passwords = Passwords(request.app.state.db, Actor.service())
    email = await passwords.reset_email(token)
    if email is None:
        return _gone(request)
    body, errors = forms.read(ResetIn, values)
    if body is not None and values.get("password_again") != body.password:
        errors = {"password_again": "the two passwords differ"}
    if body is None or errors:
        return page(request, "reset.html", status=422, token=token, email=email, errors=errors)
    try:
        await passwords.reset(token, body.password)
    except NotFound:  # used by another request since the check above
        return _gone(request)
    try:
        session = await Sessions(request.app.state.db, Actor.service()).login(
            email, body.password, client_address(request), request.headers.get("user-agent", "")[:500])
    except OpsError:  # a throttled address, say: the password is set all the same
        return RedirectResponse("/login", status_code=303)
    return signed_in(request, session, "/")
