from __future__ import annotations

from odooops import git
from odooops.db import queries_beside
from odooops.errors import NotFound
from odooops.managers import Manager, lookup

Q = queries_beside(__file__)


class Runs(Manager):
    async def trigger_build(self, project_ref: str, branch_name: str, commit: str | None = None,
                            trigger: str = "manual") -> dict:
        """Queue a build of a branch at a commit; without one, at the head of the
        branch in the project's repository."""
        async with self.tx() as conn:
            project = await lookup.project(conn, project_ref)
            branch = await lookup.branch(conn, project, branch_name)
        sha = commit or await git.resolve_head(project["repo_url"], branch_name)
        return await self.one(Q["enqueue_build"], {"branch_id": branch["id"], "commit_sha": sha, "trigger": trigger})

    async def builds(self, project_ref: str, branch_name: str | None = None,
                     before: int | None = None, limit: int = 50) -> list[dict]:
        async with self.tx() as conn:
            project = await lookup.project(conn, project_ref)
            if branch_name is None:
                params = {"project_id": project["id"], "before": before, "limit": limit}
                return await (await conn.execute(Q["project_builds"], params)).fetchall()
            branch = await lookup.branch(conn, project, branch_name)
            params = {"branch_id": branch["id"], "before": before, "limit": limit}
            return [dict(r, branch=branch_name) for r in await (await conn.execute(Q["branch_builds"], params)).fetchall()]

    async def get(self, run_id: int) -> dict:
        run = await self.one(Q["get"], {"run_id": run_id})
        if run is None:
            raise NotFound(f"run {run_id} not found")
        return run

    async def logs(self, run_id: int, after_seq: int = 0, limit: int = 1000) -> list[dict]:
        await self.get(run_id)  # unknown and hidden runs say so instead of showing an empty log
        return await self.all(Q["logs"], {"run_id": run_id, "after_seq": after_seq, "limit": limit})

    async def cancel(self, run_id: int) -> dict:
        return await self.one(Q["cancel"], {"run_id": run_id})
