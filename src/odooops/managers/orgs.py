from __future__ import annotations

from pathlib import Path
from uuid import UUID

from odooops import repos
from odooops.db import queries_beside
from odooops.errors import Forbidden, InvalidInput, NotFound
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

    async def list_all(self) -> list[dict]:
        return await self.all(Q["list"])

    async def mine(self) -> list[dict]:
        """The orgs the caller sees, with the caller's role in each (None when
        only through a project)."""
        return await self.all(Q["mine"])

    async def administered(self) -> list[dict]:
        """The orgs the caller is an admin or owner of, the one they would
        call their own first: one they founded, else the oldest."""
        return await self.all(Q["administered"])

    async def add_member(self, org_slug: str, email: str, role: str, project_slug: str | None = None) -> dict:
        """Add whoever owns `email` to an org (see invite: the API, the console
        and the CLI alike), or to one of its projects when a project is named.
        An address with no account gets one without a password either way; its
        owner signs in once given one (odooops user reset-link EMAIL)."""
        if project_slug is None:
            return await self.invite(org_slug, email, role)
        check_role(role)
        async with self.tx() as conn:
            await lookup.org(conn, org_slug)  # no such org: NotFound before any account is made
            if self.actor.role == "service_role":  # the operator; users reach ops.users through invite only
                await conn.execute(Q["ensure_user"], {"email": email.strip()})
            user = await lookup.user(conn, email.strip())
            project = await lookup.project(conn, f"{org_slug}/{project_slug}")
            params = {"project_id": project["id"], "user_id": user["id"], "role": role}
            return await (await conn.execute(Q["add_project_member"], params)).fetchone()

    async def allow_path(self, org_slug: str, path: str, host: repos.Host) -> dict:
        """Let the org's projects use local repositories inside `path`, a folder
        inside the host's ODOOOPS_REPO_ROOTS (the operator only)."""
        self._operator_only()
        root = host.root(path)
        async with self.tx() as conn:
            org = await lookup.org(conn, org_slug)
            params = {"org_id": org["id"], "path": str(root)}
            row = await (await conn.execute(Q["insert_root"], params)).fetchone()
            return row or await (await conn.execute(Q["root"], params)).fetchone()

    async def disallow_path(self, org_slug: str, path: str) -> dict:
        """Take back a folder given with allow_path; projects inside it no longer build."""
        self._operator_only()
        async with self.tx() as conn:
            org = await lookup.org(conn, org_slug)
            row = await (await conn.execute(
                Q["delete_root"], {"org_id": org["id"], "path": str(repos.real(Path(path)))})).fetchone()
            if row is None:
                raise NotFound(f"{org_slug} was not given {path}")
            return row

    async def paths(self, org_slug: str) -> list[dict]:
        """The folders of this host the org's projects may use (members see their org's)."""
        async with self.tx() as conn:
            org = await lookup.org(conn, org_slug)
            return await (await conn.execute(Q["roots"], {"org_id": org["id"]})).fetchall()

    def _operator_only(self) -> None:
        if self.actor.role != "service_role":
            raise Forbidden("only the operator gives an org folders of this host: run it without --as")

    async def invite(self, org_slug: str, email: str, role: str) -> dict:
        """Add whoever owns `email` to the org (an account without a password
        when there is none), answering alike either way."""
        check_role(role)
        async with self.tx() as conn:
            org = await lookup.org(conn, org_slug)
            added = await (await conn.execute(
                Q["invite"], {"org_id": org["id"], "email": email, "role": role})).fetchone()
            return await _member(conn, org, added["user_id"])

    async def members(self, org_slug: str) -> list[dict]:
        async with self.tx() as conn:
            org = await lookup.org(conn, org_slug)
            return await (await conn.execute(Q["members"], {"org_id": org["id"], "user_id": None})).fetchall()

    async def set_role(self, org_slug: str, user_id: UUID, role: str) -> dict:
        check_role(role)
        return await self._change(org_slug, user_id, "set_role", {"role": role})

    async def remove(self, org_slug: str, user_id: UUID) -> dict:
        """Remove a member; the org's last owner stays."""
        return await self._change(org_slug, user_id, "remove", {})

    async def _change(self, org_slug: str, user_id: UUID, query: str, params: dict) -> dict:
        async with self.tx() as conn:
            org = await lookup.org(conn, org_slug)
            ids = {"org_id": org["id"], "user_id": user_id}
            if await (await conn.execute(Q["member"], ids)).fetchone() is None:
                raise NotFound(f"no such member of {org_slug}")
            if await (await conn.execute(Q[query], {**ids, **params})).fetchone() is None:
                raise Forbidden("admins manage members below owner; owners manage everyone")
            if query == "remove":
                return {"org": org["slug"], "user_id": user_id, "removed": True}
            return await _member(conn, org, user_id)


async def _member(conn, org: dict, user_id: UUID) -> dict:
    row = await (await conn.execute(Q["members"], {"org_id": org["id"], "user_id": user_id})).fetchone()
    return {"org": org["slug"], **row}
