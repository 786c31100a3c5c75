"""Per-project ingest tokens: what a metrics agent sends as
`x-ops-ingest-token`. Shown once, stored as their sha256; a project's admins
and owners manage them."""

from __future__ import annotations

import secrets
from uuid import UUID

from odooops.db import queries_beside
from odooops.errors import Forbidden, InvalidInput, NotFound
from odooops.managers import Manager, lookup
from odooops.managers.tokens import token_hash

Q = queries_beside(__file__)
PREFIX = "oit_"


def token_id(text: str) -> UUID:
    try:
        return UUID(text)
    except ValueError:
        raise InvalidInput(f"an ingest token id is a UUID, not {text!r}") from None


class IngestTokens(Manager):
    async def _project(self, conn, ref: str) -> dict:
        """The project, once the caller is known to manage its tokens: a clear
        403 for its other members, where row-level security would only hide."""
        project = await lookup.project(conn, ref)
        if not (await (await conn.execute(Q["may_manage"], {"project_id": project["id"]})).fetchone())["ok"]:
            raise Forbidden("only the project's admins and owners manage its ingest tokens")
        return project

    async def create(self, ref: str, name: str) -> tuple[dict, str]:
        """A new token for the project; returns it with its only clear copy."""
        if not name.strip():
            raise InvalidInput("an ingest token needs a name")
        token = PREFIX + secrets.token_urlsafe(32)
        async with self.tx() as conn:
            project = await self._project(conn, ref)
            row = await (await conn.execute(Q["insert"], {
                "project_id": project["id"], "name": name.strip(), "token_hash": token_hash(token)})).fetchone()
        return row, token

    async def list_all(self, ref: str) -> list[dict]:
        async with self.tx() as conn:
            project = await self._project(conn, ref)
            return await (await conn.execute(Q["list"], {"project_id": project["id"]})).fetchall()

    async def revoke(self, ref: str, token: UUID) -> dict:
        async with self.tx() as conn:
            project = await self._project(conn, ref)
            row = await (await conn.execute(Q["revoke"], {"id": token, "project_id": project["id"]})).fetchone()
        if row is None:
            raise NotFound("the project has no such ingest token, or it is already revoked")
        return row

    async def project_of(self, token: str) -> UUID | None:
        """The project a token writes to, or None (unknown, revoked, or not one)."""
        if not token.startswith(PREFIX):
            return None
        return (await self.row(Q["resolve"], {"token_hash": token_hash(token)}))["project_id"]
