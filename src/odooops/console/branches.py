"""Project → Branches: a project's branches in three lanes, Production |
Staging | Development. A branch moves between lanes as the database's stage
rules allow (its refusal is shown in its own words), a build starts with one
click, and Server-Sent Events keep the cards live. Each card says what a
new commit does to its database, the snapshot staging builds clone and
production's last update (console/stages.py); Refresh staging data is asked
from here."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from urllib.parse import quote
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response, StreamingResponse
from markupsafe import Markup

from odooops.console import flash, forms, stages
from odooops.console.environments import page_path, with_environments
from odooops.console.render import error_page, page, templates
from odooops.console.rights import is_admin, is_htmx, may_operate
from odooops.console.session import Seen, Visitor, safe_next
from odooops.console.shell import shell
from odooops.errors import Conflict, InvalidInput, OpsError
from odooops.managers.branches import STAGES, Branches, stage_moves
from odooops.managers.environments import Environments
from odooops.managers.projects import Projects
from odooops.managers.runs import Runs
from odooops.managers.updates import Updates
from odooops.models import BranchIn

router = APIRouter(include_in_schema=False)
router.include_router(stages.router)

TITLES = {"production": "Production", "staging": "Staging", "development": "Development"}
LIVE_TICK_SECONDS = 1.0
LIVE_MAX_SECONDS = 300  # then the browser reconnects, and the session is checked again


def lanes_html(who: Visitor, ref: str, project: dict, rows: list[dict]) -> Markup:
    """The three lanes, as the page shows them and as live updates replace them."""
    lanes = [(stage, TITLES[stage], [b for b in rows if b["stage"] == stage]) for stage in STAGES]
    return Markup(templates.get_template("_lanes.html").render(
        visitor=who, base=f"/p/{ref}", environments_href=page_path(ref), lanes=lanes, role=project["my_role"],
        may_move=is_admin(project["my_role"]), may_build=may_operate, moves=stage_moves(rows, project["my_role"]),
        titles=TITLES))


def signature(rows: list[dict]) -> str:
    """What the lanes show, and the minute: relative times ("3 min ago") are
    refreshed once a minute even when nothing else changes."""
    return hashlib.blake2b(repr((rows, int(time.time() // 60))).encode(), digest_size=8).hexdigest()


async def _read(request: Request, who: Visitor, project_id: UUID) -> tuple[list[dict], list[dict]]:
    """The project's branches and environments: what the live stream polls."""
    db = request.app.state.db
    branches = await Branches(db, who.actor).of_project(project_id)
    return branches, await Environments(db, who.actor).of_project(project_id)


async def _facts(request: Request, who: Visitor, project: dict, branches: list[dict]) -> stages.ProjectFacts:
    return await stages.project_facts(request.app.state.db, who.actor, project["ref"], project["id"], branches)


def _shaped(request: Request, project: dict, read: tuple[list[dict], list[dict]],
            facts: stages.ProjectFacts) -> list[dict]:
    """The branches, each with its environment and its stage facts."""
    branches, envs = read
    return stages.with_facts(project["ref"], project["my_role"],
                             with_environments(request.app.state.settings, branches, envs), envs, facts)


async def _rows(request: Request, who: Visitor, project: dict) -> list[dict]:
    read = await _read(request, who, project["id"])
    return _shaped(request, project, read, await _facts(request, who, project, read[0]))


async def _seen(request: Request, who: Visitor, ref: str) -> tuple[dict, list[dict]]:
    project = await Projects(request.app.state.db, who.actor).seen(ref)  # a stranger's project: NotFound, a 404 page
    project = {**project, "ref": ref}
    return project, await _rows(request, who, project)


async def _page(request: Request, who: Visitor, ref: str, status: int = 200, refused: str = "",
                moved: str = "") -> Response:
    project, rows = await _seen(request, who, ref)
    moved_to = next((TITLES[b["stage"]] for b in rows if b["name"] == moved), None) if moved else None
    return page(request, "branches.html", status=status, project=project, ref=ref,
                shell=shell(ref, project, "branches"),
                lanes=lanes_html(who, ref, project, rows), since=signature(rows), is_admin=is_admin(project["my_role"]),
                refused=refused, moved=moved, moved_to=moved_to)


async def _fragment(request: Request, who: Visitor, ref: str, notice: str) -> Response:
    """The lanes alone, for htmx and drag and drop, with a notice for #flash."""
    project, rows = await _seen(request, who, ref)
    response = Response(lanes_html(who, ref, project, rows), media_type="text/html")
    response.headers["Cache-Control"] = "no-store"
    # after the swap, not on arrival: htmx then tells the body even when the live stream replaced the
    # card whose button asked (the event of a button no longer on the page reaches no one)
    response.headers["HX-Trigger-After-Swap"] = json.dumps({"lanes-notice": {"message": notice, "tone": "ok"}})
    return response


@router.get("/p/{org}/{project}")
async def lanes_page(request: Request, org: str, project: str, who: Seen, moved: str = "") -> Response:
    return await _page(request, who, f"{org}/{project}", moved=moved)


@router.post("/p/{org}/{project}/stage")
async def move(request: Request, org: str, project: str, who: Seen) -> Response:
    ref = f"{org}/{project}"
    values = await forms.fields(request)
    branch, stage = values.get("branch", ""), values.get("stage", "")
    try:
        await Branches(request.app.state.db, who.actor).set_stage(ref, branch, stage)
    except (Conflict, InvalidInput) as exc:  # the stage rules said no: say why, where it was tried
        if is_htmx(request):
            return error_page(request, exc.status, exc.message)
        return await _page(request, who, ref, status=exc.status, refused=exc.message)
    if is_htmx(request):
        return await _fragment(request, who, ref, f"{branch} moved to {TITLES[stage]}.")
    return RedirectResponse(safe_next(values.get("next") or f"/p/{ref}?moved={quote(branch, safe='')}"),
                            status_code=303)


@router.post("/p/{org}/{project}/branches")
async def add_branch(request: Request, org: str, project: str, who: Seen) -> Response:
    """Track another branch of the repository (admins), as `POST /api/v1/…/branches` does."""
    ref = f"{org}/{project}"
    body, errors = forms.read(BranchIn, await forms.fields(request))
    status = 422
    if body is not None:
        try:
            await Branches(request.app.state.db, who.actor).add(ref, body.name, body.stage, check=body.check)
        except (Conflict, InvalidInput) as exc:
            errors, status = {"name": exc.message}, exc.status
    if errors or body is None:
        return await _page(request, who, ref, status=status, refused="; ".join(errors.values()))
    return RedirectResponse(f"/p/{ref}?moved={quote(body.name, safe='')}", status_code=303)


@router.post("/p/{org}/{project}/build")
async def build_now(request: Request, org: str, project: str, who: Seen) -> Response:
    ref = f"{org}/{project}"
    values = await forms.fields(request)
    branch = values.get("branch", "")
    run = await Runs(request.app.state.db, who.actor).trigger_build(ref, branch, None, "manual")
    said = f"Build #{run['id']} of {branch} is queued."
    if is_htmx(request):
        return await _fragment(request, who, ref, said)
    back = safe_next(values.get("next") or f"/runs/{run['id']}")
    log = f"/runs/{run['id']}"
    return flash.tell(request, RedirectResponse(back, status_code=303), said, href="" if back == log else log,
                      link="Open its log")


@router.post("/p/{org}/{project}/staging/refresh")
async def refresh_staging(request: Request, org: str, project: str, who: Seen) -> Response:
    """Refresh staging data: a new snapshot of production for staging builds
    to clone (those who may operate production). A refusal is said where it
    was asked: the lanes, or the page `next` names."""
    ref = f"{org}/{project}"
    found = await Projects(request.app.state.db, who.actor).seen(ref)  # a stranger's: 404 before anything
    values = await forms.fields(request)
    back = safe_next(values.get("next") or f"/p/{ref}")
    try:
        run = await Updates(request.app.state.db, who.actor).refresh_snapshot(found["id"])
    except OpsError as exc:
        if exc.status >= 500:
            raise
        if is_htmx(request):
            return error_page(request, exc.status, exc.message)
        if values.get("next"):
            return flash.tell(request, RedirectResponse(back, status_code=303), exc.message, "bad")
        return await _page(request, who, ref, status=exc.status, refused=exc.message)
    said = (f"Snapshot #{run['id']} of production is already running: staging builds clone it once it is taken."
            if run["status"] in ("claimed", "running") else
            f"Refreshing staging data: snapshot #{run['id']} of production is queued (production pauses a few "
            f"seconds while it is taken).")
    if is_htmx(request):
        return await _fragment(request, who, ref, said)
    return flash.tell(request, RedirectResponse(back, status_code=303), said, href=f"/runs/{run['id']}",
                      link="Open its log")


@router.get("/p/{org}/{project}/live", response_class=StreamingResponse)
async def live(request: Request, org: str, project: str, who: Seen, since: str = "") -> Response:
    """The lanes as Server-Sent Events: an `event: lanes` with the whole
    fragment whenever they differ from what the page last showed (`since`,
    the signature it was rendered with). Two queries a second per viewer
    (branches, environments); the stage facts (snapshot, last update,
    staging settings) again when those changed, else every FACTS_SECONDS;
    rendering only when something changed."""
    ref = f"{org}/{project}"
    found, _ = await _seen(request, who, ref)  # 404 before the stream starts, not inside it

    async def events():
        shown, ends = since, time.monotonic() + LIVE_MAX_SECONDS
        facts, read_before, facts_due = None, None, 0.0
        yield "retry: 2000\n\n"
        while time.monotonic() < ends and not await request.is_disconnected():
            try:
                read = await _read(request, who, found["id"])
                if facts is None or read != read_before or time.monotonic() >= facts_due:
                    facts = await _facts(request, who, found, read[0])
                    read_before, facts_due = read, time.monotonic() + stages.FACTS_SECONDS
                rows = _shaped(request, found, read, facts)
            except OpsError:  # the session or the membership ended: the reconnect will say so
                return
            if signature(rows) != shown:
                shown = signature(rows)
                html = lanes_html(who, ref, found, rows)
                yield "event: lanes\n" + "".join(f"data: {line}\n" for line in html.splitlines()) + "\n"
            await asyncio.sleep(LIVE_TICK_SECONDS)

    return StreamingResponse(events(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
