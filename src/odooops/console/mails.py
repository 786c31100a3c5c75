"""Project → Environments → Mails: what a non-production environment sent,
caught by the mail catcher (Odoo.sh's Mails tab). A list with search, and
the mail chosen: its text, its HTML sanitized in a sandboxed frame (no
script, remote content only on request), headers and attachments. The same
manager and views as the API's twins."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from odooops.console.environments import page_path
from odooops.console.render import content_security_policy, page
from odooops.console.session import Seen
from odooops.console.shell import shell
from odooops.errors import NotFound
from odooops.mail import views
from odooops.mail.sanitize import framed, inline_images
from odooops.managers.mails import PAGE, SEARCH_MAX, Mails, store_of
from odooops.managers.projects import Projects
from odooops.models import INT8_MAX

router = APIRouter(include_in_schema=False)
Id = Annotated[int | None, Query(ge=1, le=INT8_MAX)]


def mails_path(ref: str, branch: str) -> str:
    return f"/p/{ref}/mails/{quote(branch, safe='/')}"


def page_policy(remote: bool) -> str:
    """The console's policy, with what the mail's frame needs: it inherits
    its parent's, so the mail's own styles, and remote images when asked."""
    policy = content_security_policy() + "; style-src 'self' 'unsafe-inline'"
    return policy.replace("img-src 'self' data:", "img-src 'self' data: http: https:") if remote else policy


@router.get("/p/{org}/{project}/mails/{branch:path}")
async def mails_page(request: Request, who: Seen, org: str, project: str, branch: str,
                     q: Annotated[str, Query(max_length=SEARCH_MAX)] = "", before: Id = None, mail: Id = None,
                     remote: bool = False) -> Response:
    ref, db = f"{org}/{project}", request.app.state.db
    found = await Projects(db, who.actor).seen(ref)  # a stranger's project: a 404 page
    caught = Mails(db, who.actor, store_of(request.app.state.settings))
    environment_id = await caught.environment_of(ref, branch)
    rows = await caught.list_for_environment(environment_id, q or None, PAGE, before)
    chosen = None
    if mail is not None:
        shown = await caught.get(mail)
        if shown.row["environment_id"] != environment_id:
            raise NotFound(f"no mail {mail}")
        chosen = views.detail(shown, remote=remote)
        if shown.message.html is not None:
            chosen["frame"] = framed(shown.message.html, remote=remote, inline=inline_images(shown.message.parts))
    here = mails_path(ref, branch)
    response = page(request, "mails.html", project=found, ref=ref, branch=branch, q=q, here=here,
                    mails=[views.summary(r) for r in rows], chosen=chosen, remote=remote, before=before,
                    more=rows[-1]["id"] if len(rows) == PAGE else None, total=await caught.count(environment_id),
                    shell=shell(ref, found, "environments", (("Environments", page_path(ref, branch)),
                                                             (f"Mails of {branch}", here))))
    response.headers["Content-Security-Policy"] = page_policy(remote)
    return response


@router.get("/p/{org}/{project}/mail-count/{branch:path}")
async def mail_count(request: Request, who: Seen, org: str, project: str, branch: str) -> Response:
    """'Mails (N)', for the environment's card (fetched by htmx once it shows)."""
    ref = f"{org}/{project}"
    caught = Mails(request.app.state.db, who.actor, store_of(request.app.state.settings))
    count = await caught.count(await caught.environment_of(ref, branch))
    return HTMLResponse(f"Mails ({count})", headers={"Cache-Control": "no-store"})
