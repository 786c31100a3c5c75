"""/api/v1: projects, branches, builds, runs, logs, the queue and workers."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import FileResponse, Response, StreamingResponse

from odooops.api.deps import ERRORS, Db, Reader, Writer
from odooops.api.follow import FINAL, follow
from odooops.errors import InvalidInput, NotFound
from odooops.managers.branches import Branches
from odooops.managers.events import Events
from odooops.managers.orgs import Orgs
from odooops.managers.projects import Projects, masked
from odooops.managers.queue import Queue
from odooops.managers.runs import Runs
from odooops.managers.vocabulary import labelled, tally
from odooops.models import (
    INT4_MAX,
    INT8_MAX,
    BranchIn,
    BranchUpdate,
    BuildRequest,
    MemberIn,
    OrgIn,
    ProjectIn,
    ProjectUpdate,
    RoleIn,
    RunId,
    RunStatus,
    Seq,
)
from odooops.runner.artifacts import ArtifactStore

router = APIRouter(prefix="/api/v1", responses=ERRORS)

ARTIFACT_HEADERS = {"X-Content-Type-Options": "nosniff", "Content-Security-Policy": "default-src 'none'; sandbox"}


def _queued(run: dict) -> dict:
    return {"build_id": run["id"], "status": run["status"], "queue_id": run["id"], "created_at": run["created_at"]}


@router.get("/orgs")
async def list_orgs(db: Db, who: Reader) -> list[dict]:
    return await Orgs(db, who).list_all()


@router.post("/orgs", status_code=201)
async def create_org(body: OrgIn, db: Db, who: Writer) -> dict:
    """A new org, owned by the caller."""
    return await Orgs(db, who).create(body.slug, body.name)


@router.get("/orgs/{org}/members")
async def list_members(org: str, db: Db, who: Reader) -> list[dict]:
    return await Orgs(db, who).members(org)


@router.post("/orgs/{org}/members", status_code=201)
async def add_member(org: str, body: MemberIn, db: Db, who: Writer) -> dict:
    """Add someone by email (admins add members below owner, owners anyone).
    The answer is the same whether or not the address had an account."""
    return await Orgs(db, who).invite(org, body.email, body.role)


@router.patch("/orgs/{org}/members/{user_id}")
async def change_role(org: str, user_id: UUID, body: RoleIn, db: Db, who: Writer) -> dict:
    return await Orgs(db, who).set_role(org, user_id, body.role)


@router.delete("/orgs/{org}/members/{user_id}")
async def remove_member(org: str, user_id: UUID, db: Db, who: Writer) -> dict:
    """Remove a member; an org never loses its last owner."""
    return await Orgs(db, who).remove(org, user_id)


@router.get("/projects")
async def list_projects(db: Db, who: Reader, include_archived: bool = False) -> list[dict]:
    return await Projects(db, who).list_all(include_archived)


@router.post("/projects", status_code=201)
async def create_project(body: ProjectIn, db: Db, who: Writer) -> dict:
    """A project and its production branch (the default branch); org admins only.
    Unless `check` is false, the repository must answer `git ls-remote` and
    have that branch, else 422 saying which."""
    row = await Projects(db, who).create(f"{body.org}/{body.slug}", body.repo_url, name=body.name,
                                         default_branch=body.default_branch, odoo_version=body.odoo_version,
                                         check=body.check)
    return {**row, "settings": masked(row["settings"])}


@router.post("/projects/{org}/{project}/branches", status_code=201)
async def add_branch(org: str, project: str, body: BranchIn, db: Db, who: Writer) -> dict:
    """Track a branch of the project's repository; unless `check` is false, the
    repository must have it (422 otherwise)."""
    return await Branches(db, who).add(f"{org}/{project}", body.name, body.stage, check=body.check)


@router.patch("/projects/{org}/{project}/branches/{branch}")
async def update_branch(org: str, project: str, branch: str, body: BranchUpdate, db: Db, who: Writer) -> dict:
    """Either move a branch to another `stage` (Odoo.sh's rules apply and a
    refusal says why), or merge `settings` into its own (admins: which
    modules its Odoo builds install and test, and their test tags); an
    unknown setting or a bad value is a 422 saying which, and changes nothing."""
    if body.stage is not None and body.settings is None:
        return await Branches(db, who).set_stage(f"{org}/{project}", branch, body.stage)
    if body.settings is not None and body.stage is None:
        return await Branches(db, who).set_settings(f"{org}/{project}", branch, body.settings)
    raise InvalidInput("send either a stage or settings, one change at a time")


@router.get("/projects/{org}/{project}")
async def get_project(org: str, project: str, db: Db, who: Reader) -> dict:
    row = await Projects(db, who).get(f"{org}/{project}")
    return {**row, "settings": masked(row["settings"])}


@router.patch("/projects/{org}/{project}")
async def update_project(org: str, project: str, body: ProjectUpdate, request: Request, db: Db,
                         who: Writer) -> dict:
    """Change a project's name, repository, Odoo version or settings (admins).
    Secret settings are sealed; members see only their names, masked."""
    row = await Projects(db, who, request.app.state.secret_box).update(f"{org}/{project}", **body.model_dump())
    return {**row, "settings": masked(row["settings"])}


@router.post("/projects/{org}/{project}/archive")
async def archive_project(org: str, project: str, db: Db, who: Writer) -> dict:
    """Archive a project (owners): no more builds, unfinished runs end, history stays."""
    row = await Projects(db, who).archive(f"{org}/{project}")
    return {**row, "settings": masked(row["settings"])}


@router.post("/projects/{org}/{project}/branches/{branch}/archive")
async def archive_branch(org: str, project: str, branch: str, db: Db, who: Writer) -> dict:
    """Archive a branch (admins); never the production branch."""
    return await Branches(db, who).archive(f"{org}/{project}", branch)


@router.get("/projects/{org}/{project}/branches")
async def list_branches(org: str, project: str, db: Db, who: Reader, include_archived: bool = False) -> list[dict]:
    return await Branches(db, who).list_all(f"{org}/{project}", include_archived)


@router.get("/projects/{org}/{project}/builds")
async def list_builds(org: str, project: str, db: Db, who: Reader, branch: str | None = None,
                      status: Annotated[list[RunStatus] | None, Query()] = None,
                      kind: Annotated[str, Query(pattern="^[a-z][a-z_]{1,30}$")] = "build",
                      since: datetime | None = None,
                      before: Annotated[int | None, Query(
                          ge=1, le=INT8_MAX, description="Keyset: the last id of the previous page.")] = None,
                      limit: Annotated[int, Query(ge=1, le=500)] = 50) -> list[dict]:
    """A project's builds (or runs of another kind), newest first; filter by
    branch, status (repeatable), kind and creation time. `status_label` is
    the word the console and the CLI show for `status`."""
    rows = await Runs(db, who).builds(f"{org}/{project}", branch, before, limit, kind=kind, status=status, since=since)
    return [labelled(r) for r in rows]


@router.post("/projects/{org}/{project}/branches/{branch}/builds", status_code=201)
async def trigger_build(org: str, project: str, branch: str, db: Db, who: Writer,
                        body: BuildRequest | None = None) -> dict:
    run = await Runs(db, who).trigger_build(f"{org}/{project}", branch, body.commit if body else None, "api")
    return _queued(run)


@router.get("/runs/{run_id}")
async def get_run(run_id: RunId, db: Db, who: Reader) -> dict:
    """A run, with its phases and their timings (`status_label`: the word shown for its status);
    a build of an Odoo project has the `sources` it used: a list of {name, url, ref, commit}
    in addons path order (none until the build has checked them out)."""
    runs = Runs(db, who)
    run = await runs.get(run_id)
    return {**labelled(run), "phases": await runs.phases(run_id)}


@router.get("/runs/{run_id}/tests")
async def run_tests(run_id: RunId, db: Db, who: Reader) -> dict:
    """Each test of the build as Odoo's log told it: failures and errors
    first, then skips, then passes, each in log order. A test has its
    `module`, `test_class`, `method`, `outcome` (pass, fail, error or skip),
    `duration_ms`, `traceback`, `fingerprint` (its error with numbers, ids
    and paths normalised: the same failure in two builds has the same one),
    `log_seq` (the log line it is told at, as `seq` in /logs) and `attempt`;
    `summary` counts each outcome. A run that ran no Odoo tests has none."""
    tests = await Runs(db, who).tests(run_id)
    return {"tests": tests, "summary": tally(tests)}


@router.post("/runs/{run_id}/rebuild", status_code=201)
async def rebuild(run_id: RunId, db: Db, who: Writer) -> dict:
    """Build the same branch and commit again."""
    run = await Runs(db, who).rebuild(run_id)
    return _queued(run)


@router.get("/runs/{run_id}/logs")
async def run_logs(run_id: RunId, db: Db, who: Reader, after_seq: Seq = 0,
                   limit: Annotated[int, Query(ge=1, le=10000)] = 1000) -> list[dict]:
    return await Runs(db, who).logs(run_id, after_seq, limit)


@router.get("/runs/{run_id}/logs/stream", response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {}}}})
async def stream_logs(run_id: RunId, request: Request, db: Db, who: Reader,
                      last_event_id: Annotated[int | None, Header(ge=0, le=INT4_MAX)] = None,
                      after_seq: Seq = 0) -> StreamingResponse:
    """The log as Server-Sent Events, one event per line (id = its seq); it
    resumes after `Last-Event-ID` and ends with an `end` event when the run does."""
    runs = Runs(db, who)
    await runs.get(run_id)  # 404 before the stream starts, not inside it

    async def events():
        after = last_event_id if last_event_id is not None else after_seq
        async for run, lines in follow(runs, run_id, after, request.is_disconnected):
            for e in lines:
                data = json.dumps({"seq": e["seq"], "ts": e["ts"].isoformat(), "level": e["level"],
                                   "phase": e["phase"], "stream": e["stream"], "message": e["message"]})
                yield f"id: {e['seq']}\nevent: line\ndata: {data}\n\n"
            if not lines and run["status"] in FINAL:
                yield f"event: end\ndata: {json.dumps({'status': run['status'], 'result': run['result']})}\n\n"

    return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


@router.get("/runs/{run_id}/artifacts")
async def list_artifacts(run_id: RunId, db: Db, who: Reader) -> list[dict]:
    await Runs(db, who).get(run_id)
    return await Events(db, who).artifacts(run_id)


@router.get("/runs/{run_id}/artifacts/{name:path}", response_class=FileResponse,
            responses={200: {"content": {"application/octet-stream": {}}}})
async def download_artifact(run_id: RunId, name: str, request: Request, db: Db, who: Reader) -> Response:
    """The file, streamed; its ETag is its sha256. Sent with `nosniff` and a
    sandboxing Content-Security-Policy; plain text inline, anything else as
    an attachment."""
    found = [a for a in await list_artifacts(run_id, db, who) if a["name"] == name]
    if not found:
        raise NotFound(f"run {run_id} has no artifact {name!r}")
    artifact = found[0]
    etag = f'"{artifact["sha256"]}"'
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers={"ETag": etag})
    path = ArtifactStore(request.app.state.settings.data_dir / "artifacts").path_of(artifact["sha256"])
    if not path.is_file():
        raise NotFound(f"artifact {name!r} is recorded but its file is gone from this host's store")
    # what a phase wrote is never this site's page: not sniffed, not run, and
    # saved rather than shown unless it is plain text
    inline = artifact["content_type"] == "text/plain"
    return FileResponse(path, media_type=artifact["content_type"], filename=name.rsplit("/", 1)[-1],
                        content_disposition_type="inline" if inline else "attachment",
                        headers={"ETag": etag, **ARTIFACT_HEADERS})


@router.post("/runs/{run_id}/cancel")
async def cancel_run(run_id: RunId, db: Db, who: Writer) -> dict:
    return await Runs(db, who).cancel(run_id)


@router.post("/runs/{run_id}/authorize")
async def authorize_run(run_id: RunId, db: Db, who: Writer) -> dict:
    return await Queue(db, who).authorize(run_id)


@router.get("/queue")
async def queue(db: Db, who: Reader) -> list[dict]:
    return await Queue(db, who).queue()


@router.get("/workers")
async def workers(db: Db, who: Reader) -> list[dict]:
    return await Queue(db, who).workers()
