"""A build's log page: the log as it stands, server-rendered and readable
without JavaScript; its live tail as Server-Sent Events of rendered lines;
and the whole log as a text download."""

from __future__ import annotations

import json
import time
from datetime import UTC
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import Response, StreamingResponse
from markupsafe import Markup, escape

from odooops.api.follow import FINAL, follow
from odooops.console import ansi
from odooops.console.builds import Shown, tests_section
from odooops.console.render import duration, page, run_seconds, templates
from odooops.console.rights import may_operate
from odooops.console.session import Seen
from odooops.console.shell import branch_path, shell
from odooops.managers.projects import Projects
from odooops.managers.runs import Runs
from odooops.models import INT4_MAX, RunId

router = APIRouter(include_in_schema=False)

# a page opens with the last PAGE_LINES lines (quick to render), and shows up to
# MAX_LINES when asked; the download has them all
PAGE_LINES, MAX_LINES = 500, 5000
TEXT_PAGE = 5000
Level = Literal["debug", "info", "warning", "error"]
STATUS_EVERY = 1.0  # seconds between status events while lines stream in
TICK_EVERY = 5.0    # ... and while the run is quiet, so its duration keeps counting
KEEPALIVE = 15.0    # a comment now and then, so proxies keep a quiet stream open


def line_html(e: dict) -> Markup:
    """One log line as the page shows it and the live stream sends it. Plain
    Python, not a template macro: a page has thousands of them."""
    seq, level = e["seq"], escape(e["level"])
    stderr = " stderr" if e["stream"] == "stderr" else ""
    ts = e["ts"].astimezone(UTC)
    return Markup(f'<div id="L{seq}" class="line lvl-{level}{stderr}"><a class="ln" href="#L{seq}" '
                  f'aria-label="Line {seq}">{seq}</a><time datetime="{ts.isoformat()}">{ts:%H:%M:%S}</time>'
                  f'<span class="lvl">{level}</span><span class="msg">{ansi.to_html(e["message"])}</span></div>')




def parts():
    """The macros of one line and one phase, for pages and events alike."""
    return templates.env.get_template("log_parts.html").module


def sections(lines: list[dict], phases: list[dict]) -> list[dict]:
    """Lines in runs of the same phase, each run with its phase's summary and
    its lines' HTML (lines outside any phase are the runner's own)."""
    by_name = {p["name"]: p for p in phases}
    out: list[dict] = []
    for line in lines:
        name = line["phase"] or ""
        if not out or out[-1]["name"] != name:
            out.append({"name": name, "phase": by_name.get(name), "lines": []})
        out[-1]["lines"].append(line_html(line))
    for section in out:
        section["html"] = Markup("".join(section.pop("lines")))
    return out


def _macros() -> Any:  # a template module's macros are its attributes, unknown to a type checker
    return templates.env.get_template("macros.html").module


def status_of(run: dict, phases: list[dict]) -> dict:
    """What the page's header and phase summaries show, for a status event."""
    return {"status": run["status"], "finished": run["status"] in FINAL,
            "badge": str(_macros().status(run["status"])),
            "duration": duration(run_seconds(run)),
            "phases": [{"name": p["name"], "status": p["status"], "duration": duration(p.get("seconds")),
                        "lines": p.get("lines")} for p in phases]}


@router.get("/runs/{run_id}")
async def log_page(run_id: RunId, request: Request, who: Seen, level: Level = "debug",
                   lines: Annotated[int, Query(ge=1, le=MAX_LINES)] = PAGE_LINES) -> Response:
    runs = Runs(request.app.state.db, who.actor)
    run = await runs.place(run_id)
    project = await Projects(request.app.state.db, who.actor).seen(run["project_ref"])
    phases = await runs.phases(run_id)
    tail = await runs.tail(run_id, lines + 1)
    cut = len(tail) > lines
    tail = tail[-lines:]
    last_seq = tail[-1]["seq"] if tail else 0
    shown = Shown(tail[0]["seq"] if tail else 0, last_seq, lines, PAGE_LINES, MAX_LINES, level)
    return page(request, "log.html", run=run, place=run, what=run_word(str(run["kind"])),
                sections=sections(tail, phases), level=level, cut=cut,
                tests=await tests_section(request, who, run_id, shown),
                skipped=[p for p in phases if p["status"] == "skipped"], page_lines=lines, max_lines=MAX_LINES,
                last_seq=last_seq, finished=run["status"] in FINAL,
                can_change=may_operate(run["my_role"], run["stage"]), shell=_shell(run, project))


def run_word(kind: str) -> str:
    """What a run of this kind is called on its page: a build, an environment's server, …"""
    return {"build": "Build", "serve": "Server"}.get(kind, kind.capitalize())


def _shell(run: dict, project: dict) -> dict:
    """The project's frame, with the run's branch and the run in the breadcrumbs;
    an environment's server is under Environments."""
    trail: list[tuple[str, str]] = [(run["branch"], f"/p/{run['project_ref']}" + branch_path(run["branch"]))
                                    ] if run["branch"] else []
    trail.append((f"{run_word(str(run['kind']))} #{run['id']}", f"/runs/{run['id']}"))
    current = {"build": "builds", "serve": "environments"}.get(str(run["kind"]), "")
    return shell(run["project_ref"], project, current, tuple(trail))


@router.get("/runs/{run_id}/live")
async def live(run_id: RunId, request: Request, who: Seen, after: Annotated[int, Query(ge=0, le=INT4_MAX)] = 0,
               last_event_id: Annotated[int | None, Header(ge=0, le=INT4_MAX)] = None) -> StreamingResponse:
    """New lines as `line` events (id: seq; data: the phase and the line's
    HTML), the run's status as `status` events when it changes, and `end`
    when the run is finished. A reconnecting browser resumes after its
    Last-Event-ID; a fresh one after the last line its page showed."""
    runs = Runs(request.app.state.db, who.actor)
    await runs.get(run_id)  # 404 before the stream starts, not inside it
    start = last_event_id if last_event_id is not None else after
    return StreamingResponse(_live_events(runs, run_id, start, request), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


def _event(kind: str, data: dict, event_id: int | None = None) -> str:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {kind}\ndata: {json.dumps(data)}\n\n"


async def _live_events(runs: Runs, run_id: int, after: int, request: Request):
    told: dict[str, Any] = {}
    told_at, sent_at, fresh = 0.0, time.monotonic(), False
    async for run, lines in follow(runs, run_id, after, request.is_disconnected):
        for e in lines:
            yield _event("line", {"phase": e["phase"] or "", "html": str(line_html(e))}, e["seq"])
        if lines:
            fresh, sent_at = True, time.monotonic()
            continue
        # the end of a poll: say how the run stands, if that may have changed
        now, finished = time.monotonic(), run["status"] in FINAL
        changed = told.get("status") != run["status"]
        if finished or changed or (fresh and now - told_at >= STATUS_EVERY) or now - told_at >= TICK_EVERY:
            status = status_of(run, await runs.phases(run_id))
            if status != told:
                yield _event("status", status)
                sent_at = now
            told, told_at, fresh = status, now, False
        if finished:
            yield _event("end", {"status": run["status"], "result": run["result"], "badge": told["badge"]})
        elif now - sent_at >= KEEPALIVE:
            yield ": keepalive\n\n"
            sent_at = now


@router.get("/runs/{run_id}/log.txt")
async def download(run_id: RunId, request: Request, who: Seen) -> StreamingResponse:
    """The whole log as plain text, a page of lines at a time: one line per
    event with its time, level and phase, and terminal colours taken out."""
    runs = Runs(request.app.state.db, who.actor)
    await runs.get(run_id)

    async def text():
        after = 0
        while lines := await runs.logs(run_id, after, TEXT_PAGE):
            yield "".join(map(text_line, lines))
            after = lines[-1]["seq"]

    return StreamingResponse(text(), media_type="text/plain; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="build-{run_id}.log"', "Cache-Control": "no-store"})


def text_line(e: dict) -> str:
    ts = e["ts"].astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    message = ansi.strip(e["message"]).replace("\n", "\n\t")  # a line that has lines stays one event
    return f"{ts} {e['level'].upper():<8} [{e['phase'] or '-'}] {message}\n"
