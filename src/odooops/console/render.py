"""Pages: the Jinja2 templates and the filters every page uses."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from fastapi import Request
from fastapi.responses import HTMLResponse
from starlette.templating import Jinja2Templates

from odooops.console import flash
from odooops.managers.vocabulary import Label, environment_label, health_label, status_label

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")


def content_security_policy(form_action: str = "'self'") -> str:
    """Every page's: only this site's own scripts, styles and connections (the
    console has no inline script or style), never inside another site's frame.
    `form_action`: where its forms may lead (a redirect included)."""
    return ("default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
            f"form-action {form_action}; frame-ancestors 'none'")


def _shown(label: Label) -> tuple[str, str, str]:
    return label.word, label.icon, label.tone


def badge(status: str | None) -> tuple[str, str, str]:
    """A status's word, icon and colour class: the managers' vocabulary, which the CLI speaks too."""
    return _shown(status_label(status))


def environment_badge(status: str | None) -> tuple[str, str, str]:
    return _shown(environment_label(status))


def health_badge(health: str | None) -> tuple[str, str, str]:
    return _shown(health_label(health))


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


def size(n: int | None) -> str:
    """'512 MB', '1.2 GB': a number of bytes a person reads at a glance; '' when unknown."""
    if n is None:
        return ""
    value = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            break
        value /= 1024
    if unit == "B":
        return f"{int(value)} B"
    return f"{value:.1f} {unit}" if value < 10 else f"{value:.0f} {unit}"


def day(moment: datetime | None) -> str:
    """'2026-12-03': the day of a moment, in UTC."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d") if moment else ""


def run_seconds(run: dict) -> float | None:
    start = run.get("started_at")
    if start is None:
        return None
    end = run.get("finished_at") or datetime.now(UTC)
    return (end - start).total_seconds()


templates.env.filters.update(ago=ago, exact=exact, duration=duration, size=size, day=day,
                             short=lambda sha: (sha or "")[:8])
templates.env.globals.update(badge=badge, environment_badge=environment_badge, health_badge=health_badge,
                             run_seconds=run_seconds)


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
