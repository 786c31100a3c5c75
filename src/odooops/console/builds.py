"""A branch's builds, what people do to a build (rebuild, cancel,
authorize), and the tests a build ran, for its page. The same managers as
the API's twins; the database decides, and the page only hides the buttons
it would refuse."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response

from odooops.console import flash, forms, stages
from odooops.console.environments import briefly, page_path
from odooops.console.render import page
from odooops.console.rights import is_admin, is_htmx, may_operate
from odooops.console.session import Seen, Visitor, safe_next
from odooops.console.shell import shell
from odooops.errors import InvalidInput, NotFound
from odooops.managers.branches import Branches
from odooops.managers.environments import Environments
from odooops.managers.events import Events
from odooops.managers.projects import Projects
from odooops.managers.queue import Queue
from odooops.managers.runs import Runs
from odooops.managers.vocabulary import OUTCOMES, counted, outcome_label, qualified, tally
from odooops.models import INT8_MAX, RunId

router = APIRouter(include_in_schema=False)
PAGE_SIZE = 25
UNFINISHED = {"awaiting_authorization", "queued", "claimed", "running"}


def allowed(role: str | None, branch: dict) -> dict[str, bool]:
    """The buttons to show (see rights)."""
    operate = may_operate(role, branch["stage"])
    return {"build": operate and branch["archived_at"] is None, "cancel": operate, "authorize": is_admin(role),
            "configure": is_admin(role)}


def odoo_settings(settings: dict, form: dict | None = None, errors: dict | None = None) -> dict:
    """The branch's Odoo build settings as the form shows them."""
    modules = settings.get("odoo_modules", "own")
    choice = modules if isinstance(modules, str) else "list"
    names = ", ".join(modules) if isinstance(modules, list) else ""
    tags = settings.get("odoo_test_tags", "")
    summary = {"own": "the project's own modules", "all": "every module of the project and its extra addons"}.get(
        choice, f"{names}") + (f", test tags {tags}" if tags else "")
    return {"choice": choice, "modules": names, "tags": tags, "summary": summary, "form": form or {},
            "errors": errors or {}}


def branch_url(ref: str, branch: str) -> str:
    return f"/p/{ref}/b/{quote(branch, safe='/')}"


async def frame(request: Request, who: Visitor, ref: str, branch_name: str) -> dict:
    """What every part of the page needs: project, branch, the caller's rights."""
    db = request.app.state.db
    project = await Projects(db, who.actor).seen(ref)
    every = await Branches(db, who.actor).list_all(ref, include_archived=True)
    found = [b for b in every if b["name"] == branch_name]
    if not found:
        raise NotFound(f"project has no branch {branch_name!r}")
    base = branch_url(ref, branch_name)
    environments = await Environments(db, who.actor).of_project(project["id"])
    facts = stages.branch_facts(ref, project["my_role"], found[0], {e["branch_id"]: e for e in environments},
                                await stages.project_facts(db, who.actor, ref, project["id"], every))
    environment = briefly(request.app.state.settings, await Environments(db, who.actor).of_branch(found[0]["id"]))
    url = environment["url"] if environment and not environment["collected"] else None
    return {"project": project, "ref": ref, "branch": found[0], "can": allowed(project["my_role"], found[0]),
            "odoo_settings": odoo_settings(await Branches(db, who.actor).settings_of(ref, branch_name)),
            "environment": environment, "environments_href": page_path(ref), "stage_facts": facts,
            "base": base, "shell": shell(ref, project, "builds", ((branch_name, base),), url=url),
            "branches": [b for b in every if b["archived_at"] is None or b["name"] == branch_name]}


async def table(request: Request, who: Visitor, ref: str, branch_name: str, before: int | None) -> dict:
    """The frame and one page of builds, newest first; one more row than
    shown says whether there are older ones."""
    view = await frame(request, who, ref, branch_name)
    rows = await Runs(request.app.state.db, who.actor).builds(ref, branch_name, before, PAGE_SIZE + 1)
    shown = rows[:PAGE_SIZE]
    here = view["base"] + (f"?before={before}" if before else "")
    return {**view, "builds": shown, "before": before, "here": here,
            "older": shown[-1]["id"] if len(rows) > PAGE_SIZE else None,
            "live": any(r["status"] in UNFINISHED for r in shown)}


@router.get("/p/{org}/{project}/b/{branch:path}")
async def branch_builds(request: Request, who: Seen, org: str, project: str, branch: str,
                        before: Annotated[int | None, Query(ge=1, le=INT8_MAX)] = None,
                        part: str | None = None) -> Response:
    """The page; with part=table, only the table, for the live refresh."""
    view = await table(request, who, f"{org}/{project}", branch, before)
    return page(request, "builds_table.html" if part == "table" else "builds.html", **view)


async def row(request: Request, who: Visitor, place: dict, run_id: int, back: str) -> Response:
    """One build's row as it is now, for htmx to swap in."""
    view = await frame(request, who, place["project_ref"], place["branch"])
    found = await Runs(request.app.state.db, who.actor).builds(place["project_ref"], place["branch"], run_id + 1, 1)
    return page(request, "builds_row.html", r=found[0], here=back, **view)


async def placed(request: Request, who: Visitor, run_id: int) -> tuple[dict, dict]:
    """The run's place (404 for runs the caller cannot see, before anything
    changes) and the form's fields."""
    place = await Runs(request.app.state.db, who.actor).place(run_id)
    return place, await forms.fields(request)


def is_build(place: dict) -> bool:
    return place["kind"] == "build" and place["branch"] is not None


@router.post("/p/{org}/{project}/branch-settings")
async def branch_settings(request: Request, who: Seen, org: str, project: str) -> Response:
    """Which modules a branch's Odoo builds install and test (admins); a bad
    value shows the form again, saying why, with nothing saved."""
    ref, values = f"{org}/{project}", await forms.fields(request)
    name = values.get("branch", "")
    choice = values.get("odoo_modules", "own")
    listed = [m.strip() for m in values.get("modules", "").split(",") if m.strip()]
    wanted = {"odoo_modules": listed if choice == "list" else choice,
              "odoo_test_tags": values.get("odoo_test_tags", "").strip() or None}  # empty: the default
    try:
        if choice == "list" and not listed:
            raise InvalidInput("name the modules, or choose the project's own")
        await Branches(request.app.state.db, who.actor).set_settings(ref, name, wanted)
    except InvalidInput as exc:
        view = await table(request, who, ref, name, None)
        view["odoo_settings"] = odoo_settings(
            await Branches(request.app.state.db, who.actor).settings_of(ref, name), values, {"form": exc.message})
        return page(request, "builds.html", status=422, **view)
    return flash.tell(request, RedirectResponse(branch_url(ref, name) + "#odoo-settings", status_code=303),
                      "Saved: the next build of the branch uses these settings.")


@router.post("/runs/{run_id}/cancel")
async def cancel(request: Request, who: Seen, run_id: RunId) -> Response:
    place, values = await placed(request, who, run_id)
    await Runs(request.app.state.db, who.actor).cancel(run_id)
    return await after(request, who, place, run_id, values)


@router.post("/runs/{run_id}/authorize")
async def authorize(request: Request, who: Seen, run_id: RunId) -> Response:
    place, values = await placed(request, who, run_id)
    await Queue(request.app.state.db, who.actor).authorize(run_id)
    return await after(request, who, place, run_id, values)


async def after(request: Request, who: Visitor, place: dict, run_id: int, values: dict) -> Response:
    back = safe_next(values.get("next") or f"/runs/{run_id}")
    if is_htmx(request) and is_build(place):
        return await row(request, who, place, run_id, back)
    if is_htmx(request):  # not a row of a builds table: show wherever it was asked from, afresh
        return Response(status_code=204, headers={"HX-Redirect": back})
    return RedirectResponse(back, status_code=303)


@router.post("/runs/{run_id}/rebuild")
async def rebuild(request: Request, who: Seen, run_id: RunId) -> Response:
    """No JavaScript: off to the new build's page (or `next`). With htmx: the
    first page of the branch's builds, the new one on top, and a word in #flash."""
    place, values = await placed(request, who, run_id)
    new = await Runs(request.app.state.db, who.actor).rebuild(run_id)
    if not is_htmx(request):
        said = f"Build #{new['id']} is queued: the same commit again."
        return flash.tell(request, RedirectResponse(safe_next(values.get("next") or f"/runs/{new['id']}"),
                                                    status_code=303), said)
    view = await table(request, who, place["project_ref"], place["branch"], None)
    answer = page(request, "builds_table.html", queued=new, **view)
    answer.headers["HX-Push-Url"] = view["base"]  # the first page is what it now shows
    return answer


@dataclass(frozen=True)
class Shown:
    """The lines of the log a build's page shows: seqs `first` to
    `last_seq` (the run's last), `lines` of them at most (a page opens with
    `default_lines` and shows up to `max_lines`), filtered to `level` and above."""

    first: int
    last_seq: int
    lines: int
    default_lines: int
    max_lines: int
    level: str


def line_href(run_id: int, seq: int | None, shown: Shown) -> str | None:
    """A link to a log line: on this page when it shows it (#L42), else the
    page asked for enough lines to hold it; none past what a page can show
    (the download has it). A page filtered by level may hide the line: the
    link is then to the whole page."""
    if seq is None:
        return None
    if shown.first <= seq <= shown.last_seq and shown.level == "debug":
        return f"#L{seq}"
    needed = max(shown.last_seq - seq + 1, shown.lines)
    if needed > shown.max_lines:
        return None
    query = "" if needed == shown.default_lines else f"?lines={needed}"
    return f"/runs/{run_id}{query}#L{seq}"


async def tests_section(request: Request, who: Visitor, run_id: int, shown: Shown) -> dict | None:
    """A build's tests for its page, none when it ran none: the count of
    each outcome, the failures and errors (in log order, each with a link
    to its log line), then skips and passes, and whether it has a JUnit report."""
    db = request.app.state.db
    tests = await Runs(db, who.actor).tests(run_id)
    if not tests:
        return None
    shaped = [{**t, "name": qualified(t), "label": outcome_label(t["outcome"]),
               "href": line_href(run_id, t["log_seq"], shown)} for t in tests]
    counts = tally(tests)
    artifacts = await Events(db, who.actor).artifacts(run_id)
    # every outcome is counted; one that no test had is said in grey
    return {"summary": [{"outcome": o, "label": label if counts[o] else replace(label, tone="none"),
                         "text": counted(o, counts[o])} for o, label in OUTCOMES.items()],
            "failed": [t for t in shaped if t["outcome"] in ("fail", "error")],
            "folded": [{"outcome": o, "text": counted(o, counts[o]), "tests": [t for t in shaped if t["outcome"] == o]}
                       for o in ("skip", "pass") if counts[o]],
            "junit": any(a["name"] == "junit.xml" for a in artifacts)}
