"""A project's settings page: its webhook (the URL for each git host and a
secret shown once) with how to set it up on GitHub, GitLab and Gitea, what was
delivered to it, and the ingest tokens of its metrics agents. Admins and
owners manage these, as in the API; other members see the project's basics."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from odooops import repos
from odooops.console import forms
from odooops.console.render import page
from odooops.console.rights import is_admin
from odooops.console.session import Seen, Visitor
from odooops.console.shell import shell
from odooops.errors import NotFound, OpsError
from odooops.managers.hooks import Hooks
from odooops.managers.ingest_tokens import IngestTokens
from odooops.managers.projects import Projects
from odooops.models import IngestTokenIn
from odooops.odoo import sources
from odooops.web import described, public_base, secret_of

router = APIRouter(include_in_schema=False)
DELIVERIES_SHOWN = 20


async def _hook(request: Request, who: Visitor, ref: str) -> dict | None:
    """The hook with its URLs, or None when the project has none yet."""
    try:
        return described(request, await Hooks(request.app.state.db, who.actor).get(ref))
    except NotFound:
        return None


async def _project_page(request: Request, who: Visitor, org: str, name: str, status: int = 200,
                        **context) -> Response:
    db, ref = request.app.state.db, f"{org}/{name}"
    project = await Projects(db, who.actor).seen(ref)  # a stranger's project: 404 here
    admin = is_admin(project["my_role"])
    if admin:
        context.setdefault("hook", await _hook(request, who, ref))
        context["deliveries"] = await Hooks(db, who.actor).deliveries(ref, DELIVERIES_SHOWN)
        context["ingest_tokens"] = await IngestTokens(db, who.actor).list_all(ref)
    context.setdefault("form", {})
    context.setdefault("errors", {})
    odoo_sources = [{"name": s.name, "url": repos.display(s.url), "ref": s.ref}
                    for s in sources.specs(project["settings"] or {}, project["odoo_version"])] \
        if project["odoo_version"] in sources.SUPPORTED_VERSIONS else []
    return page(request, "project_settings.html", status=status, project=project, org=org, slug=name,
                admin=admin, base=public_base(request), odoo_sources=odoo_sources,
                shell=shell(ref, project, "settings", (("Settings", f"/p/{ref}/settings"),)), **context)


@router.get("/p/{org}/{project}/settings")
async def project_settings(org: str, project: str, request: Request, who: Seen) -> Response:
    return await _project_page(request, who, org, project)


@router.post("/p/{org}/{project}/settings/hook")
async def rotate_hook(org: str, project: str, request: Request, who: Seen) -> Response:
    """Create the hook or give it a new secret, shown in this answer only."""
    hook = await Hooks(request.app.state.db, who.actor).rotate(f"{org}/{project}")
    return await _project_page(request, who, org, project, hook=described(request, hook),
                               revealed_hook=secret_of(request, hook))


@router.post("/p/{org}/{project}/settings/ingest-tokens")
async def create_ingest_token(org: str, project: str, request: Request, who: Seen) -> Response:
    """A token for the project's metrics agents, shown in this answer only."""
    values = await forms.fields(request)
    body, errors = forms.read(IngestTokenIn, values)
    if body is None:
        return await _project_page(request, who, org, project, status=422, form=values, errors=errors)
    try:
        row, token = await IngestTokens(request.app.state.db, who.actor).create(f"{org}/{project}", body.name)
    except OpsError as exc:
        if exc.status == 422:
            return await _project_page(request, who, org, project, status=422, form=values,
                                       errors={"form": exc.message})
        raise  # not an admin (403) or not theirs (404): the error page
    return await _project_page(request, who, org, project, revealed_ingest={"name": row["name"], "value": token})


@router.post("/p/{org}/{project}/settings/ingest-tokens/{token_id}/revoke")
async def revoke_ingest_token(org: str, project: str, token_id: UUID, request: Request, who: Seen) -> Response:
    await IngestTokens(request.app.state.db, who.actor).revoke(f"{org}/{project}", token_id)
    return RedirectResponse(f"/p/{org}/{project}/settings#ingest", status_code=303)
