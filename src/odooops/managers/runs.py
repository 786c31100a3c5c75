from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime

from odooops import git
from odooops.db import queries_beside
from odooops.errors import NotFound
from odooops.managers import Manager, lookup
from odooops.managers.projects import repo_source

Q = queries_beside(__file__)


# the runner's last word on a phase: "phase NAME succeeded in 1.2 s", or its
# reason to stop ("failed with exit code 2", "canceled", …) in place of succeeded
VERDICT = re.compile(r"phase \S+ (.+) in [0-9.]+ s")


def _phase(row: dict) -> dict:
    if row["skipped"]:
        return {"name": row["name"], "status": "skipped"}
    verdict = VERDICT.fullmatch(row["last_system"] or "")
    status = "running" if verdict is None else "ok" if verdict[1] == "succeeded" else "failed"
    return {"name": row["name"], "started_at": row["started_at"], "ended_at": row["ended_at"],
            "lines": row["lines"], "errors": row["errors"], "status": status,
            "seconds": round((row["ended_at"] - row["started_at"]).total_seconds(), 3)}


class Runs(Manager):
    async def trigger_build(self, project_ref: str, branch_name: str, commit: str | None = None,
                            trigger: str = "manual") -> dict:
        """Queue a build of a branch at a commit; without one, at the head of the
        branch in the project's repository."""
        async with self.tx() as conn:
            project = await lookup.project(conn, project_ref)
            branch = await lookup.branch(conn, project, branch_name)
            source = None if commit else await repo_source(conn, project["org_id"], project["repo_url"])
        sha = await git.resolve_head(source, branch_name) if source else commit
        return await self.row(Q["enqueue_build"], {"branch_id": branch["id"], "commit_sha": sha, "trigger": trigger})

    async def builds(self, project_ref: str, branch_name: str | None = None, before: int | None = None,
                     limit: int = 50, *, kind: str | None = "build", status: Sequence[str] | None = None,
                     since: datetime | None = None) -> list[dict]:
        """A project's runs, newest first, a page at a time: pass the last id
        seen as `before` for the next page."""
        async with self.tx() as conn:
            project = await lookup.project(conn, project_ref)
            branch = await lookup.branch(conn, project, branch_name) if branch_name else None
            return await (await conn.execute(Q["project_runs"], {
                "project_id": project["id"], "branch_id": branch and branch["id"], "kind": kind,
                "status": list(status) if status else None, "since": since, "before": before,
                "limit": limit})).fetchall()

    async def rebuild(self, run_id: int) -> dict:
        return await self.row(Q["rebuild"], {"run_id": run_id})

    async def phases(self, run_id: int) -> list[dict]:
        """The run's phases as its log tells them: when each started and
        ended, its lines and errors, and how it went."""
        rows = await self.all(Q["phases"], {"run_id": run_id})
        return [_phase(r) for r in rows]

    async def tests(self, run_id: int) -> list[dict]:
        """The run's test results, failures first, each with its log line."""
        await self.get(run_id)
        return await self.all(Q["tests"], {"run_id": run_id})

    async def get(self, run_id: int) -> dict:
        run = await self.one(Q["get"], {"run_id": run_id})
        if run is None:
            raise NotFound(f"run {run_id} not found")
        return run

    async def place(self, run_id: int) -> dict:
        """The run, and where it belongs by the names people use: its project
        as ORG/PROJECT (`project_ref`), its branch (none for runs of no
        branch) and the caller's role there (`my_role`)."""
        found = await self.one(Q["place"], {"run_id": run_id})
        if found is None:
            raise NotFound(f"run {run_id} not found")
        return found

    async def tail(self, run_id: int, limit: int) -> list[dict]:
        """The last `limit` lines of the run's log, oldest first."""
        return await self.all(Q["tail"], {"run_id": run_id, "limit": limit})

    async def logs(self, run_id: int, after_seq: int = 0, limit: int = 1000) -> list[dict]:
        await self.get(run_id)  # unknown and hidden runs say so instead of showing an empty log
        return await self.lines(run_id, after_seq, limit)

    async def lines(self, run_id: int, after_seq: int, limit: int) -> list[dict]:
        """The log after `after_seq`, for a caller that has just read the run
        (a run the caller may not see simply has no lines)."""
        return await self.all(Q["logs"], {"run_id": run_id, "after_seq": after_seq, "limit": limit})

    async def cancel(self, run_id: int) -> dict:
        return await self.row(Q["cancel"], {"run_id": run_id})
