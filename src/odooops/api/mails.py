"""/api/v1: the mails an environment's catcher account caught (the Mails tab)."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response

from odooops.api.deps import ERRORS, Db, Reader
from odooops.mail import views
from odooops.managers.mails import PAGE, PAGE_MAX, SEARCH_MAX, Mails, store_of
from odooops.models import INT8_MAX

router = APIRouter(prefix="/api/v1", responses=ERRORS)
MailId = Annotated[int, Path(ge=1, le=INT8_MAX, description="A caught mail's id.")]
# what a mail carries is never this site's page: not sniffed, not run, saved rather than shown
DOWNLOAD_HEADERS = {"X-Content-Type-Options": "nosniff", "Content-Security-Policy": "default-src 'none'; sandbox",
                    "Cache-Control": "private, max-age=3600"}


def mails(request: Request, db, who) -> Mails:
    return Mails(db, who, store_of(request.app.state.settings))


@router.get("/projects/{org}/{project}/branches/{branch}/environment/mails")
async def list_mails(org: str, project: str, branch: str, request: Request, db: Db, who: Reader,
                     q: Annotated[str | None, Query(max_length=SEARCH_MAX,
                                                    description="In the subject, the sender or a recipient.")] = None,
                     limit: Annotated[int, Query(ge=1, le=PAGE_MAX)] = PAGE,
                     before: Annotated[int | None, Query(ge=1, le=INT8_MAX,
                                                         description="The last id of the page before.")] = None,
                     ) -> list[dict]:
    """The mails the branch's environment sent to the catcher, newest first."""
    found = mails(request, db, who)
    environment_id = await found.environment_of(f"{org}/{project}", branch)
    return [views.summary(r) for r in await found.list_for_environment(environment_id, q, limit, before)]


@router.get("/mails/{mail_id}")
async def get_mail(mail_id: MailId, request: Request, db: Db, who: Reader,
                   remote: Annotated[bool, Query(description="Keep remote images in the HTML.")] = False) -> dict:
    """A mail: its headers, text, HTML (sanitized: no script, no remote
    content unless `remote`) and its attachments by index."""
    return views.detail(await mails(request, db, who).get(mail_id), remote=remote)


@router.get("/mails/{mail_id}/raw", response_class=Response, responses={200: {"content": {"message/rfc822": {}}}})
async def raw_mail(mail_id: MailId, request: Request, db: Db, who: Reader) -> Response:
    """The mail as it arrived, an .eml."""
    raw = await mails(request, db, who).raw(mail_id)
    return Response(raw, media_type="message/rfc822", headers={
        **DOWNLOAD_HEADERS, "Content-Disposition": f'attachment; filename="mail-{mail_id}.eml"'})


@router.get("/mails/{mail_id}/attachments/{index}", response_class=Response,
            responses={200: {"content": {"application/octet-stream": {}}}})
async def mail_attachment(mail_id: MailId, request: Request, db: Db, who: Reader,
                          index: Annotated[int, Path(ge=0, le=10000, description="From 0, as the mail lists them.")],
                          ) -> Response:
    """One attachment (or inline part) of a mail, always as a download."""
    part = await mails(request, db, who).attachment(mail_id, index)
    return Response(part.data, media_type=part.content_type, headers={
        **DOWNLOAD_HEADERS, "Content-Disposition": disposition(part.filename)})


def disposition(filename: str) -> str:
    """`attachment` with the name, ASCII and RFC 5987's UTF-8 form."""
    plain = "".join(c if c.isascii() and c.isprintable() and c not in '"\\' else "_" for c in filename) or "attachment"
    return f"attachment; filename=\"{plain}\"; filename*=UTF-8''{quote(filename, safe='')}"
