"""Signing in and out, and the projects page."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import RedirectResponse, Response

from odooops.console import flash, forms
from odooops.console.render import page
from odooops.console.session import Seen, safe_next
from odooops.db import Actor
from odooops.errors import OpsError, Unauthenticated
from odooops.managers.orgs import Orgs
from odooops.managers.projects import Projects
from odooops.managers.sessions import COOKIE, LIFETIME_SECONDS, Sessions
from odooops.managers.users import Users
from odooops.models import ProjectIn
from odooops.web import client_address, same_site, secure_cookie

router = APIRouter(include_in_schema=False)


def signed_in(request: Request, session: dict, to: str) -> Response:
    """Off to `to`, with the new session's cookie."""
    response = RedirectResponse(safe_next(to), status_code=303)
    response.set_cookie(COOKIE, session["token"], max_age=LIFETIME_SECONDS, path="/", httponly=True,
                        samesite="lax", secure=secure_cookie(request))
    return response


@router.get("/login")
async def login_form(request: Request, next: str = "/") -> Response:
    if not await Users(request.app.state.db, Actor.service()).any_exist():
        return page(request, "login.html", no_users=True, next=safe_next(next))
    return page(request, "login.html", next=safe_next(next))


@router.post("/login", dependencies=[Depends(same_site)])
async def login(request: Request) -> Response:
    values = await forms.fields(request)
    target = safe_next(values.get("next"))
    try:
        session = await Sessions(request.app.state.db, Actor.service()).login(
            values.get("email", ""), values.get("password", ""), client_address(request),
            request.headers.get("user-agent", "")[:500])
    except OpsError as exc:
        refused = page(request, "login.html", status=exc.status, error=exc.message, email=values.get("email", ""),
                       next=target)
        refused.headers.update(exc.headers or {})
        return refused
    return signed_in(request, session, target)


@router.post("/logout")
async def logout(request: Request, who: Seen) -> Response:
    try:
        await Sessions(request.app.state.db, who.actor).end(request.state.session["id"])
    except Unauthenticated:
        pass
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="lax", secure=secure_cookie(request))
    return response


PER_PAGE = 50


async def _projects_page(request: Request, who, status: int = 200, q: str = "", number: int = 1,
                         **form) -> Response:
    db = request.app.state.db
    q = q.strip()[:100]
    projects, total = await Projects(db, who.actor).page(q, PER_PAGE, (number - 1) * PER_PAGE)
    orgs = await Orgs(db, who.actor).administered()  # the visitor's own org first: the form preselects it
    pages = max(1, -(-total // PER_PAGE))
    return page(request, "projects.html", status=status, projects=projects, orgs=orgs, q=q, total=total,
                number=number, pages=pages, first=(number - 1) * PER_PAGE + 1,
                form=form.get("values", {}), errors=form.get("errors", {}))


@router.get("/")
async def projects(request: Request, who: Seen, q: str = "", page: Annotated[int, Query(ge=1, le=10**6)] = 1
                   ) -> Response:
    return await _projects_page(request, who, q=q, number=page)


@router.post("/projects")
async def create_project(request: Request, who: Seen) -> Response:
    values = await forms.fields(request)
    body, errors = forms.read(ProjectIn, values)
    if body is not None:
        try:
            await Projects(request.app.state.db, who.actor).create(
                f"{body.org}/{body.slug}", body.repo_url, name=body.name, default_branch=body.default_branch,
                odoo_version=body.odoo_version, check=body.check)
        except OpsError as exc:
            errors = {"form": exc.message}
    if errors or body is None:
        return await _projects_page(request, who, status=422, values=values, errors=errors)
    ref = f"{body.org}/{body.slug}"
    return flash.tell(request, RedirectResponse(f"/p/{ref}", status_code=303),
                      f"Project {ref} created: its {body.default_branch} branch is production. "
                      "Push a commit, or use Build now.")
