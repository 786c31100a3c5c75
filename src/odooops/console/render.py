"""Pages: the Jinja2 templates and the filters every page uses."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from fastapi import Request
from fastapi.responses import HTMLResponse
from starlette.templating import Jinja2Templates

from odooops.console import flash
from odooops.managers.vocabulary import status_label

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")

def badge(status: str | None) -> tuple[str, str, str]:
    """A status's word, icon and colour class: the managers' vocabulary, which the CLI speaks too."""
    label = status_label(status)
    return label.word, label.icon, label.tone


def ago(moment: datetime | None, now: datetime | None = None) -> str:
    """'2 h ago': how long ago, in words a person reads at a glance."""
    if moment is None:
        return "never"
    seconds = ((now or datetime.now(UTC)) - moment).total_seconds()
    if seconds < 0:
        return "just now" if seconds > -60 else "in the future"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{int(seconds // size)} {unit} ago"
    return "just now" if seconds < 10 else f"{int(seconds)} s ago"


def exact(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if moment else ""


def duration(seconds: float | None) -> str:
    """'3 min 12 s', '850 ms', '' when unknown."""
    if seconds is None:
        return ""
    if seconds < 1:
        return f"{int(seconds * 1000)} ms"
    minutes, rest = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min {rest} s" if minutes else f"{rest} s"


def run_seconds(run: dict) -> float | None:
    start = run.get("started_at")
    if start is None:
        return None
    end = run.get("finished_at") or datetime.now(UTC)
    return (end - start).total_seconds()


templates.env.filters.update(ago=ago, exact=exact, duration=duration, short=lambda sha: (sha or "")[:8])
templates.env.globals.update(badge=badge, run_seconds=run_seconds)


def page(request: Request, name: str, status: int = 200, **context) -> HTMLResponse:
    """A whole page (or, for htmx, the same template: it extends the layout)."""
    context.setdefault("visitor", getattr(request.state, "visitor", None))
    whole = request.headers.get("hx-request") != "true"  # a fragment is not where a flash is read
    said = flash.take(request) if whole else None
    context.setdefault("flashed", said)
    response = templates.TemplateResponse(request, name, context, status_code=status)
    response.headers["Cache-Control"] = "no-store"
    if said is not None:
        flash.forget(request, response)
    return response


TITLES = {401: "Sign in needed", 403: "Not allowed", 404: "Not found", 409: "Not possible now",
          422: "Check what you sent", 429: "Too many tries"}


def error_page(request: Request, status: int, message: str, headers: dict | None = None) -> HTMLResponse:
    """The page for an error: what happened, in words, and nothing about
    tenants the visitor cannot see (a stranger's project is simply not found)."""
    title = TITLES.get(status, "Something went wrong" if status >= 500 else "Request refused")
    response = page(request, "error.html", status=status, title=title, message=message)
    response.headers.update(headers or {})
    return response
