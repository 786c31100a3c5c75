"""/api/v1: a project's environments; start, stop, restart; Connect as."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from odooops.api.deps import ERRORS, Db, Reader, Writer
from odooops.environments.routing import checked_domain, described, environment_url
from odooops.errors import NotFound
from odooops.managers.environments import CONNECT_TTL_SECONDS, Environments

router = APIRouter(prefix="/api/v1", responses=ERRORS)


class DomainIn(BaseModel):
    domain: str = Field(min_length=1, max_length=253, description="A hostname of the project's, e.g. shop.example.com.")


class ConnectIn(BaseModel):
    login: str = Field("admin", min_length=1, max_length=255, description="The Odoo user to open the environment as.")


@router.get("/projects/{org}/{project}/environments")
async def list_environments(org: str, project: str, request: Request, db: Db, who: Reader) -> list[dict]:
    """The project's environments: status, health, URL, the build each serves."""
    envs = Environments(db, who)
    project_id = await envs.project_id(f"{org}/{project}")
    return [described(request.app.state.settings, e) for e in await envs.of_project(project_id)]


@router.get("/projects/{org}/{project}/branches/{branch}/environment")
async def get_environment(org: str, project: str, branch: str, request: Request, db: Db, who: Reader) -> dict:
    envs = Environments(db, who)
    branch_id = await envs.branch_id(f"{org}/{project}", branch)
    row = await envs.of_branch(branch_id)
    if row is None:
        raise NotFound(f"branch {branch!r} has no environment: a successful build makes one")
    return described(request.app.state.settings, row)


@router.post("/projects/{org}/{project}/branches/{branch}/environment/{action}")
async def control_environment(org: str, project: str, branch: str, action: Literal["start", "stop", "restart"],
                              request: Request, db: Db, who: Writer) -> dict:
    """Start, stop or restart the branch's environment (developers on
    development branches, admins everywhere). A restart starts a new server
    and swaps to it once healthy."""
    envs = Environments(db, who)
    branch_id = await envs.branch_id(f"{org}/{project}", branch)
    await envs.control(branch_id, action)
    row = await envs.of_branch(branch_id)
    return described(request.app.state.settings, row or {})


@router.post("/projects/{org}/{project}/branches/{branch}/environment/connect", status_code=201)
async def connect_as(org: str, project: str, branch: str, request: Request, db: Db, who: Writer,
                     body: ConnectIn | None = None) -> dict:
    """A single-use link, valid for a minute, that opens the environment as
    an Odoo user without its password (project admins; production only where
    the project setting connect_as_production allows it). Each use is recorded."""
    envs = Environments(db, who)
    branch_id = await envs.branch_id(f"{org}/{project}", branch)
    token = await envs.connect_token(branch_id, body.login if body else "admin")
    row = await envs.of_branch(branch_id)
    url = environment_url(request.app.state.settings, row["label"] if row else "")
    return {"url": f"{url}odooops/connect?token={token}", "expires_in": CONNECT_TTL_SECONDS}


@router.get("/projects/{org}/{project}/branches/{branch}/domains")
async def list_domains(org: str, project: str, branch: str, db: Db, who: Reader) -> list[dict]:
    """The branch's custom domains: its environment answers at each too."""
    envs = Environments(db, who)
    return await envs.domains(await envs.branch_id(f"{org}/{project}", branch))


@router.post("/projects/{org}/{project}/branches/{branch}/domains", status_code=201)
async def add_domain(org: str, project: str, branch: str, body: DomainIn, request: Request, db: Db,
                     who: Writer) -> dict:
    """Add a custom domain (project admins). Point its DNS at the router (or
    the proxy in front); a domain another project has is a 409."""
    envs = Environments(db, who)
    branch_id = await envs.branch_id(f"{org}/{project}", branch)
    return await envs.add_domain(branch_id, checked_domain(request.app.state.settings, body.domain))


@router.delete("/projects/{org}/{project}/branches/{branch}/domains/{domain}")
async def remove_domain(org: str, project: str, branch: str, domain: str, request: Request, db: Db,
                        who: Writer) -> dict:
    envs = Environments(db, who)
    branch_id = await envs.branch_id(f"{org}/{project}", branch)
    if not await envs.remove_domain(branch_id, checked_domain(request.app.state.settings, domain)):
        raise NotFound(f"branch {branch!r} has no domain {domain!r}")
    return {"ok": True}
