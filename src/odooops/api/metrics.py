"""/api/v1 for metrics: ingest tokens, the ingest endpoint agents post
samples to, and bucketed series for the project's members."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Header, Query, Request

from odooops import samples
from odooops.api.deps import ERRORS, Db, Reader, Writer, read_body
from odooops.db import Actor
from odooops.errors import Unauthenticated
from odooops.managers.ingest_tokens import IngestTokens
from odooops.managers.metrics import Metrics
from odooops.models import IngestTokenIn

router = APIRouter(prefix="/api/v1", responses=ERRORS)


@router.post("/projects/{org}/{project}/ingest-tokens", status_code=201)
async def create_ingest_token(org: str, project: str, body: IngestTokenIn, db: Db, who: Writer) -> dict:
    """A token for the project's metrics agents, in `token`: shown this once."""
    row, token = await IngestTokens(db, who).create(f"{org}/{project}", body.name)
    return {**row, "token": token}


@router.get("/projects/{org}/{project}/ingest-tokens")
async def list_ingest_tokens(org: str, project: str, db: Db, who: Reader) -> list[dict]:
    return await IngestTokens(db, who).list_all(f"{org}/{project}")


@router.delete("/projects/{org}/{project}/ingest-tokens/{token_id}")
async def revoke_ingest_token(org: str, project: str, token_id: UUID, db: Db, who: Writer) -> dict:
    return await IngestTokens(db, who).revoke(f"{org}/{project}", token_id)


_SAMPLE = {
    "type": "object", "additionalProperties": False, "required": ["metric", "value"],
    "properties": {
        "metric": {"type": "string", "pattern": "^[a-z0-9_.]{1,128}$"},
        "value": {"type": "number", "description": "finite: no NaN or Infinity"},
        "dims": {"type": "object", "maxProperties": samples.MAX_DIMS,
                 "additionalProperties": {"type": ["string", "number", "boolean", "null"]}},
        "ts": {"type": "string", "format": "date-time", "description": "default: the batch's ts"},
    },
}
_BATCH = {
    "type": "object", "additionalProperties": False, "required": ["project_id", "ts", "samples"],
    "properties": {
        "project_id": {"type": "string", "format": "uuid"},
        "branch_id": {"type": ["string", "null"], "format": "uuid"},
        "ts": {"type": "string", "format": "date-time", "description": "at most 5 minutes in the future"},
        "samples": {"type": "array", "maxItems": samples.MAX_SAMPLES, "items": _SAMPLE},
    },
}


@router.post("/metrics", openapi_extra={"requestBody": {"required": True, "content": {
    "application/json": {"schema": _BATCH}}}})
async def ingest_metrics(request: Request, db: Db,
                         x_ops_ingest_token: Annotated[str | None, Header()] = None) -> dict:
    """Samples of one project (and branch), sent with the project's ingest
    token in `x-ops-ingest-token`; all written, or none when one is invalid."""
    if not x_ops_ingest_token:
        raise Unauthenticated("send the project's ingest token as x-ops-ingest-token")
    # the token first: an unknown caller costs one lookup, never a parse of its body
    project_id = await IngestTokens(db, Actor.service()).project_of(x_ops_ingest_token.strip())
    if project_id is None:
        raise Unauthenticated("that ingest token is not valid: it is unknown or revoked")
    batch = samples.parse(await read_body(request, samples.MAX_BODY_BYTES, "a metrics request"))
    if batch.project_id != project_id:
        # the same answer whether that project exists or not
        raise Unauthenticated("that ingest token is not valid for this project_id")
    return {"inserted": await Metrics(db, Actor.service()).ingest(batch)}


@router.get("/projects/{org}/{project}/metrics")
async def metric_series(org: str, project: str, db: Db, who: Reader,
                        metric: Annotated[str, Query(pattern="^[a-z0-9_.]{1,128}$")],
                        hours: Annotated[int, Query(ge=1, le=24 * 366)] = 1,
                        step: Annotated[int, Query(ge=1, le=86400 * 31, description="seconds per bucket")] = 60,
                        branch: str | None = None) -> dict:
    """One metric over the last `hours`, in buckets of `step` seconds (at most
    10,000): each bucket's start, avg, min, max and count, optionally of one branch."""
    return await Metrics(db, who).series(f"{org}/{project}", metric, hours, step, branch)
