from __future__ import annotations

from odooops.db import queries_beside
from odooops.managers import Manager, lookup

Q = queries_beside(__file__)


class Projects(Manager):
    async def create(self, ref: str, repo_url: str, *, name: str | None = None,
                     default_branch: str = "main", odoo_version: str = "17.0") -> dict:
        """A project and its production branch, the repository's default branch
        (as on Odoo.sh), in one transaction."""
        org_slug, slug = lookup.split_project_ref(ref)
        async with self.tx() as conn:
            org = await lookup.org(conn, org_slug)
            project = await (await conn.execute(Q["insert"], {
                "org_id": org["id"], "slug": slug, "name": name or slug, "repo_url": repo_url.strip(),
                "default_branch": default_branch, "odoo_version": odoo_version,
            })).fetchone()
            await conn.execute(Q["insert_production_branch"], {"project_id": project["id"], "name": default_branch})
            return project

    async def get(self, ref: str) -> dict:
        async with self.tx() as conn:
            return await lookup.project(conn, ref)

    async def list(self, include_archived: bool = False) -> list[dict]:
        return await self.all(Q["list"], {"include_archived": include_archived})
