from __future__ import annotations

from odooops.db import queries_beside
from odooops.errors import InvalidInput
from odooops.managers import Manager, lookup

Q = queries_beside(__file__)
ROLES = ("viewer", "developer", "admin", "owner")


def check_role(role: str) -> str:
    if role not in ROLES:
        raise InvalidInput(f"a role is one of {', '.join(ROLES)}, not {role!r}")
    return role


class Orgs(Manager):
    async def create(self, slug: str, name: str | None = None, owner_email: str | None = None) -> dict:
        """A new org. A user creating one becomes its owner; the operator names one."""
        params = {"slug": slug, "name": name or slug}
        async with self.tx() as conn:
            if self.actor.user_id is not None:
                return await (await conn.execute(Q["create_as_user"], params)).fetchone()
            org = await (await conn.execute(Q["insert"], params)).fetchone()
            if owner_email:
                owner = await lookup.user(conn, owner_email)
                await conn.execute(Q["add_member"], {"org_id": org["id"], "user_id": owner["id"], "role": "owner"})
            return org

    async def list(self) -> list[dict]:
        return await self.all(Q["list"])

    async def add_member(self, org_slug: str, email: str, role: str, project_slug: str | None = None) -> dict:
        """Add a user to an org, or to one of its projects when a project is named."""
        check_role(role)
        async with self.tx() as conn:
            org = await lookup.org(conn, org_slug)
            user = await lookup.user(conn, email)
            if project_slug is None:
                params = {"org_id": org["id"], "user_id": user["id"], "role": role}
                return await (await conn.execute(Q["add_member"], params)).fetchone()
            project = await lookup.project(conn, f"{org_slug}/{project_slug}")
            params = {"project_id": project["id"], "user_id": user["id"], "role": role}
            return await (await conn.execute(Q["add_project_member"], params)).fetchone()
