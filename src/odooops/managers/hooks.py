"""A project's webhook and the ledger of its deliveries: each delivery is
recorded before anything is done about it, then processed in its own
transaction (the ledger row locked, so a delivery is applied at most once),
retried with backoff when the database balks."""

from __future__ import annotations

import logging
from uuid import UUID

import psycopg
from psycopg.types.json import Jsonb

from odooops.db import queries_beside
from odooops.db.errors import translate
from odooops.errors import Conflict, Forbidden, NotFound, OpsError
from odooops.hooks.events import HookEvent, parse
from odooops.hooks.repository import same_repository, shown
from odooops.managers import Manager, lookup

Q = queries_beside(__file__)
MAX_ATTEMPTS = 5
MAX_OUTCOME = 1000  # characters of a delivery's outcome kept in the ledger
log = logging.getLogger("odooops.hooks")
# where a pull request's commits can be fetched from the base repository
PR_REFS = {"github": "refs/pull/{}/head", "gitea": "refs/pull/{}/head", "gitlab": "refs/merge-requests/{}/head"}
SECRET_HEADERS = {"x-gitlab-token", "authorization", "cookie"}


class Hooks(Manager):
    async def rotate(self, project_ref: str) -> dict:
        """The project's hook, with a fresh salt: its secret changes."""
        async with self.tx() as conn:
            project = await lookup.project(conn, project_ref)
            return await (await conn.execute(Q["rotate"], {"project_id": project["id"]})).fetchone()

    async def get(self, project_ref: str) -> dict:
        async with self.tx() as conn:
            project = await _managed(conn, project_ref)
            hook = await (await conn.execute(Q["get"], {"project_id": project["id"]})).fetchone()
        if hook is None:
            raise NotFound(f"project {project_ref} has no webhook yet: an admin creates it")
        return hook

    async def deliveries(self, project_ref: str, limit: int = 50) -> list[dict]:
        async with self.tx() as conn:
            project = await _managed(conn, project_ref)
            return await (await conn.execute(Q["deliveries"], {"project_id": project["id"], "limit": limit})).fetchall()

    # The receiving side, as the control plane.

    async def find(self, hook_id: UUID) -> dict | None:
        return await self.one(Q["find"], {"hook_id": hook_id})

    async def record(self, host: str, hook: dict, delivery_id: str, event: str,
                     headers: dict[str, str], body: bytes) -> int | None:
        """The delivery's ledger id, or None when this delivery was recorded before."""
        kept = {k: v for k, v in headers.items() if k.lower() not in SECRET_HEADERS}
        row = await self.one(Q["record"], {
            "host": host, "hook_id": hook["id"], "project_id": hook["project_id"], "delivery_id": delivery_id,
            "event": event, "headers": Jsonb(kept), "body": body})
        return None if row is None else row["id"]

    async def process_next(self) -> dict | None:
        """Apply the oldest delivery that is due; None when none is. Whatever
        applying it raises, the delivery is settled: retried later when the
        database balked, failed with the reason otherwise, so that no delivery
        can be taken again and again and stop the others."""
        async with self.tx() as conn:
            delivery = await (await conn.execute(Q["next_pending"])).fetchone()
            if delivery is None:
                return None
            try:
                # a savepoint: a failure undoes the work but keeps the ledger row
                # locked, so no other lane takes it before its retry is recorded
                async with conn.transaction():
                    status, outcome, run_id = await self._apply(conn, delivery)
            except Exception as exc:
                error, final = _failure(delivery["id"], exc)
                row = await (await conn.execute(Q["retry"], {
                    "id": delivery["id"], "outcome": _storable(error),
                    "max_attempts": 1 if final else MAX_ATTEMPTS})).fetchone()
                return {"id": delivery["id"], "status": row["status"], "outcome": error, "run_id": None}
            await conn.execute(Q["settle"], {"id": delivery["id"], "status": status, "outcome": _storable(outcome),
                                             "run_id": run_id})
            return {"id": delivery["id"], "status": status, "outcome": outcome, "run_id": run_id}

    async def _apply(self, conn, delivery: dict) -> tuple[str, str, int | None]:
        event = parse(delivery["host"], delivery["event"], bytes(delivery["body"]))
        project = await (await conn.execute(Q["project_repository"], {"project_id": delivery["project_id"]})).fetchone()
        # an org-wide hook's ping names no repository: it only says the hook works
        if (event.names or event.action != "ping") and not same_repository(project["repo_url"], event.names):
            return "ignored", _elsewhere(event, project["repo_url"]), None
        if event.action == "ping":
            return "done", "ping: the hook works", None
        if event.action == "ignored":
            return "ignored", event.reason, None
        project_id = delivery["project_id"]
        key = {"project_id": project_id, "key": event.content_key(), "delivery_id": delivery["id"]}
        if await (await conn.execute(Q["claim_effect"], key)).fetchone() is None:
            twin = await (await conn.execute(Q["effect_of"], key)).fetchone()
            return "ignored", f"the same content was delivered before, as delivery {twin['delivery_id']}", None
        if event.branch is None:  # the parsers set one for every event that acts
            return "ignored", "the event names no branch", None
        if event.action == "branch_deleted":
            return await _archive(conn, project_id, event.branch)
        return await _build(conn, project_id, delivery["host"], event, event.branch)


async def _managed(conn, project_ref: str) -> dict:
    """The project, once the caller is known to be one of its admins: a clear
    403 for its other members, where row-level security would only hide the
    hook (an empty list, a 404); a stranger still gets 404 from the lookup."""
    project = await lookup.project(conn, project_ref)
    if not (await (await conn.execute(Q["may_manage"], {"project_id": project["id"]})).fetchone())["ok"]:
        raise Forbidden("only the project's admins and owners see its webhook and deliveries")
    return project


def _failure(delivery_id: int, exc: Exception) -> tuple[str, bool]:
    """What to record of a failed delivery, and whether it is final: a
    refusal will not change on retry, a conflict or an outage may, and a
    fault of ours (any other exception) would only repeat."""
    if isinstance(exc, (OpsError, psycopg.Error)):
        error = exc if isinstance(exc, OpsError) else translate(exc)
        return error.message, 400 <= error.status < 500 and not isinstance(error, Conflict)
    log.error("delivery %s could not be applied", delivery_id, exc_info=exc)
    return f"internal error while applying the delivery: {type(exc).__name__}: {exc}", True


def _elsewhere(event: HookEvent, repo_url: str) -> str:
    """Why a delivery for another repository did nothing: a hook shared by
    several repositories, or a secret used for one it was not made for."""
    named = event.repository or (event.names[0] if event.names else None)
    builds = f"this project builds {shown(repo_url)}"
    if not named:
        return f"the delivery names no repository; {builds}"
    return f"delivery is for repository {shown(named)}, {builds}"


def _storable(text: str) -> str:
    """Text PostgreSQL takes (no NUL, valid UTF-8) and a reader wants (not a whole payload)."""
    text = text.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")
    return text if len(text) <= MAX_OUTCOME else text[:MAX_OUTCOME - 1] + "…"


async def _archive(conn, project_id: UUID, name: str) -> tuple[str, str, int | None]:
    branch = await (await conn.execute(Q["branch"], {"project_id": project_id, "name": name})).fetchone()
    if branch is None or branch["archived_at"] is not None:
        return "ignored", f"branch {name} is not tracked", None
    if branch["stage"] == "production":
        return "ignored", f"branch {name} is the production branch: a push does not archive it", None
    await conn.execute(Q["archive_branch"], {"id": branch["id"]})
    return "done", f"branch {name} archived", None


async def _build(conn, project_id: UUID, host: str, event: HookEvent, branch: str) -> tuple[str, str, int | None]:
    """Build a push or a pull request, creating (or reviving) its branch in
    development as Odoo.sh does; a fork's pull request gets a branch of its
    own and waits for an admin."""
    fork = event.action == "pull_request" and event.from_fork
    name = f"pull/{event.pr_number}" if fork else branch
    row = await _ensure_branch(conn, project_id, name)
    run = await (await conn.execute(Q["enqueue"], {
        "branch_id": row["id"], "commit": event.commit,
        "trigger": "pull_request" if event.action == "pull_request" else "push",
        "ref": PR_REFS[host].format(event.pr_number) if fork else None,
        "pr_number": event.pr_number, "authorized": not fork})).fetchone()
    if event.message or event.author:  # shown on the branch's card before a runner takes the build
        await conn.execute(Q["describe_commit"], {"run_id": run["id"], "commit": event.commit,
                                                  "message": event.message, "author": event.author})
    what = f"pull request #{event.pr_number}" if event.pr_number else f"branch {name}"
    return "done", f"build {run['id']} of {what} is {run['status']}", run["id"]


async def _ensure_branch(conn, project_id: UUID, name: str) -> dict:
    params = {"project_id": project_id, "name": name}
    branch = await (await conn.execute(Q["branch"], params)).fetchone()
    if branch is None:
        return await (await conn.execute(Q["new_branch"], params)).fetchone()
    if branch["archived_at"] is not None:
        return await (await conn.execute(Q["revive_branch"], {"id": branch["id"]})).fetchone()
    return branch
