"""Git host webhooks: a project's hook (its secret shown once), what was
delivered to it, and the endpoint the hosts post to."""

from __future__ import annotations

import asyncio
import hashlib
from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Query, Request

from odooops.api.deps import ERRORS, Db, Reader, Writer, read_body
from odooops.db import Actor
from odooops.errors import InvalidInput, NotFound
from odooops.hooks.events import load
from odooops.hooks.verify import delivery_id, event_name, verify
from odooops.managers.hooks import Hooks
from odooops.web import described, secret_of

router = APIRouter(prefix="/api/v1", responses=ERRORS)
Host = Literal["github", "gitlab", "gitea"]
MAX_BODY = 25 * 1024 * 1024  # GitHub's own cap on a payload


@router.post("/projects/{org}/{project}/hook", status_code=201)
async def rotate_hook(org: str, project: str, request: Request, db: Db,
                      who: Writer) -> dict:
    """Create the project's webhook, or give it a new secret. The secret is
    shown in this answer only; put it and the URL of your host in its settings
    (project admins; other members get 403, strangers 404)."""
    hook = await Hooks(db, who).rotate(f"{org}/{project}")
    return described(request, hook, secret_of(request, hook))


@router.get("/projects/{org}/{project}/hook")
async def get_hook(org: str, project: str, request: Request, db: Db,
                   who: Reader) -> dict:
    """The project's webhook: its URLs, never its secret (project admins;
    other members get 403, strangers 404)."""
    return described(request, await Hooks(db, who).get(f"{org}/{project}"))


@router.get("/projects/{org}/{project}/deliveries")
async def list_deliveries(org: str, project: str, db: Db, who: Reader,
                          limit: Annotated[int, Query(ge=1, le=500)] = 50) -> list[dict]:
    """The latest deliveries and what came of each (project admins; other
    members get 403, strangers 404)."""
    return await Hooks(db, who).deliveries(f"{org}/{project}", limit)


@router.post("/hooks/{host}/{hook_id}", name="receive_delivery")
async def receive_delivery(host: Host, hook_id: UUID, request: Request, db: Db) -> dict:
    """Where GitHub, GitLab and Gitea post. The delivery is authenticated as
    its host signs it, recorded, and applied in the background; a delivery
    seen before answers `duplicate`, one whose body is not a JSON object
    (within limits on nesting and numbers) 422."""
    body = await read_body(request, MAX_BODY, "a delivery")
    hooks = Hooks(db, Actor.service())
    hook = await hooks.find(hook_id)
    if hook is None:
        raise NotFound("no such webhook: create one with POST /api/v1/projects/{org}/{project}/hook")
    verify(host, request.headers, body, secret_of(request, hook))
    event = event_name(host, request.headers)
    if not event:
        raise InvalidInput(f"the delivery does not say which {host} event it is")
    # a body that cannot be read within limits is refused here, where the host shows why
    await asyncio.to_thread(load, body)
    # a host that sends no delivery id gets one from the content
    delivery = delivery_id(host, request.headers) or "sha256:" + hashlib.sha256(body).hexdigest()
    recorded = await hooks.record(host, hook, delivery[:200], event, dict(request.headers), body)
    if recorded is None:
        return {"ok": True, "duplicate": True}
    request.app.state.hook_processor.wake()
    return {"ok": True, "duplicate": False, "delivery": recorded}
