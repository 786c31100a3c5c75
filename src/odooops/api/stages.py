"""/api/v1: production's updates in place, the copies of production (pre-update
copies and the snapshot staging builds clone), and Refresh staging data."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from odooops.api.deps import ERRORS, Db, Reader, Writer
from odooops.managers.environments import Environments
from odooops.managers.updates import UPDATES_MAX, Updates, copies_view, update_view
from odooops.managers.vocabulary import labelled

router = APIRouter(prefix="/api/v1", responses=ERRORS)


@router.get("/projects/{org}/{project}/branches/{branch}/updates")
async def list_updates(org: str, project: str, branch: str, db: Db, who: Reader,
                       limit: Annotated[int, Query(ge=1, le=UPDATES_MAX)] = 10) -> list[dict]:
    """The branch's updates in place, newest first: production's builds after
    its first (and a staging branch's with staging_data = previous)."""
    branch_id = await Environments(db, who).branch_id(f"{org}/{project}", branch)
    return [update_view(u) for u in await Updates(db, who).of_branch(branch_id, limit)]


@router.get("/projects/{org}/{project}/branches/{branch}/copies")
async def list_copies(org: str, project: str, branch: str, db: Db, who: Reader) -> dict:
    """The branch's pre-update copies not dropped yet (production's), and the
    project's snapshot of production that staging builds clone (or null)."""
    envs = Environments(db, who)
    ref = f"{org}/{project}"
    branch_id = await envs.branch_id(ref, branch)
    updates = Updates(db, who)
    return copies_view(await updates.copies(branch_id), await updates.snapshot(await envs.project_id(ref)))


@router.post("/projects/{org}/{project}/staging/refresh", status_code=202)
async def refresh_staging(org: str, project: str, db: Db, who: Writer) -> dict:
    """Refresh staging data: queue a new snapshot of production (or answer the
    one already queued or running). Those who may operate production (admins);
    production pauses a few seconds while it is taken."""
    project_id = await Environments(db, who).project_id(f"{org}/{project}")
    return labelled(await Updates(db, who).refresh_snapshot(project_id))
