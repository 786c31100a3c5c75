"""Project → Environments: what a successful build of each branch left
running, how it is, where it answers, and what people do to it (start, stop,
restart, Connect as). The same manager as the API's twins; the database
decides, and the page hides only the buttons it would refuse."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from urllib.parse import quote, urlsplit
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from odooops.console import flash, forms
from odooops.console.render import content_security_policy, page
from odooops.console.rights import is_admin, may_operate
from odooops.console.session import Seen, Visitor
from odooops.console.shell import shell
from odooops.environments.routing import described, environment_url
from odooops.errors import OpsError
from odooops.managers.environments import CONNECT_TTL_SECONDS, Environments
from odooops.managers.projects import Projects
from odooops.settings import Settings

router = APIRouter(include_in_schema=False)
CONNECTIONS_SHOWN = 10
ACTIVE = ("running", "starting")
SAID = {"start": "{branch}: its environment is starting.",
        "stop": "{branch}: its environment is stopping.",
        "restart": "{branch}: a new server is starting; the one running now answers until it is healthy."}


def page_path(ref: str, branch: str | None = None) -> str:
    """The Environments page, at one branch's environment when given."""
    return f"/p/{ref}/environments" + (f"#env-{quote(branch, safe='/')}" if branch else "")


def environments_origin(settings: Settings) -> str:
    """Every environment's origin as a Content-Security-Policy source
    (`http://*.localhost:8000`): where a Connect as form leads."""
    parts = urlsplit(environment_url(settings, "x"))
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://*.{settings.environment_domain}{port}"


def may_connect(project: dict, stage: str) -> bool:
    """Connect as, as ops.create_connect_token allows it: project admins, on
    production only where the project setting connect_as_production is true."""
    allowed = stage != "production" or bool((project.get("settings") or {}).get("connect_as_production"))
    return is_admin(project.get("my_role")) and allowed


def briefly(settings: Settings, row: dict | None) -> dict | None:
    """A branch's environment as a card or a branch page mentions it."""
    if row is None:
        return None
    return {"status": str(row["status"]), "url": environment_url(settings, row["label"]),
            "health": row.get("health"), "collected": row.get("collected_at") is not None}


def with_environments(settings: Settings, branches: list[dict], environments: Iterable[dict]) -> list[dict]:
    """The lanes' branch rows, each with its environment (or None)."""
    by_branch = {e["branch_id"]: e for e in environments}
    return [{**b, "environment": briefly(settings, by_branch.get(b["id"]))} for b in branches]


def shaped(settings: Settings, project: dict, row: dict, now: datetime) -> dict:
    """One environment as its card shows it, with what the caller may do to it."""
    env = described(settings, row)
    stage, status = str(row["stage"]), env["status"]
    collected = row.get("collected_at") is not None
    role = project.get("my_role")
    operate = may_operate(role, stage) and not collected and row.get("build_id") is not None
    env.update(
        stage=stage, collected=collected,
        uptime=(now - row["started_at"]).total_seconds() if status == "running" and row.get("started_at") else None,
        can={"start": operate and status not in ACTIVE, "restart": operate and status in ACTIVE,
             "stop": operate and status != "stopped",
             "connect": may_connect(project, stage) and not collected},
        connect_off=is_admin(role) and stage == "production" and not may_connect(project, stage))
    return env


def connection_state(use: dict, now: datetime) -> str:
    """used, waiting (not used yet and still valid) or expired."""
    if use["used_at"] is not None:
        return "used"
    return "waiting" if use["created_at"] + timedelta(seconds=CONNECT_TTL_SECONDS) > now else "expired"


@router.get("/p/{org}/{project}/environments")
async def environments_page(request: Request, who: Seen, org: str, project: str) -> Response:
    ref, db, settings = f"{org}/{project}", request.app.state.db, request.app.state.settings
    found = await Projects(db, who.actor).seen(ref)  # a stranger's project: NotFound, a 404 page
    envs = Environments(db, who.actor)
    now = datetime.now(UTC)
    rows = [shaped(settings, found, e, now) for e in await envs.of_project(found["id"])]
    admin = is_admin(found["my_role"])
    for env in rows if admin else ():
        uses = await envs.connections(env["branch_id"], CONNECTIONS_SHOWN)
        env["connections"] = [{**u, "state": connection_state(u, now)} for u in uses]
    response = page(request, "environments.html", project=found, ref=ref, environments=rows, admin=admin,
                    gc_days=settings.environment_gc_days, idle_minutes=settings.environment_idle_minutes,
                    shell=shell(ref, found, "environments", (("Environments", page_path(ref)),)))
    # a Connect as form leads to the environment's own host
    response.headers["Content-Security-Policy"] = content_security_policy(
        f"'self' {environments_origin(settings)}")
    return response


async def _asked(request: Request, who: Visitor, org: str, project: str) -> tuple[str, dict[str, str]]:
    """The project (a stranger's: 404, before anything) and the form's fields."""
    ref = f"{org}/{project}"
    await Projects(request.app.state.db, who.actor).seen(ref)
    return ref, await forms.fields(request)


def _back(request: Request, ref: str, branch: str, message: str, tone: str = "ok") -> Response:
    return flash.tell(request, RedirectResponse(page_path(ref, branch or None), status_code=303), message, tone)


@router.post("/p/{org}/{project}/environments/control")
async def control(request: Request, who: Seen, org: str, project: str) -> Response:
    """Start, stop or restart a branch's environment; a refusal is said on the page."""
    ref, values = await _asked(request, who, org, project)
    branch, action = values.get("branch", ""), values.get("action", "")
    envs = Environments(request.app.state.db, who.actor)
    try:
        row = await envs.control(await envs.branch_id(ref, branch), action)
    except OpsError as exc:
        return _back(request, ref, branch, exc.message, "bad")
    if action == "start" and str(row["status"]) == "running":
        return _back(request, ref, branch, f"{branch}: its environment is running already.")
    return _back(request, ref, branch, SAID[action].format(branch=branch))


@router.post("/p/{org}/{project}/environments/connect")
async def connect_as(request: Request, who: Seen, org: str, project: str) -> Response:
    """Off to a single-use link that opens the environment as an Odoo user
    (project admins; see may_connect)."""
    ref, values = await _asked(request, who, org, project)
    branch = values.get("branch", "")
    envs = Environments(request.app.state.db, who.actor)
    try:
        branch_id: UUID = await envs.branch_id(ref, branch)
        token = await envs.connect_token(branch_id, values.get("login", ""))
        row = await envs.of_branch(branch_id)
    except OpsError as exc:
        return _back(request, ref, branch, exc.message, "bad")
    if row is None:  # gone between the token and now
        return _back(request, ref, branch, "this branch has no environment any more", "bad")
    link = environment_url(request.app.state.settings, row["label"]) + "odooops/connect?token=" + token
    return RedirectResponse(link, status_code=303, headers={"Cache-Control": "no-store"})
