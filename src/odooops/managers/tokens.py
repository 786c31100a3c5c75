"""Personal API tokens: shown once, stored as their sha256, sent as
`Authorization: Bearer …`."""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta
from uuid import UUID

from odooops.db import queries_beside
from odooops.errors import InvalidInput, NotFound
from odooops.managers import Manager, lookup

Q = queries_beside(__file__)
PREFIX = "oot_"
SCOPES = ("read", "write")


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Tokens(Manager):
    async def create(self, email: str | None, name: str, scopes: list[str],
                     expires_in_days: int | None = None) -> tuple[dict, str]:
        """A new token for a user (yourself, unless the operator names one);
        returns it with its only clear copy."""
        if not name.strip():
            raise InvalidInput("a token needs a name")
        if not scopes or any(s not in SCOPES for s in scopes):
            raise InvalidInput(f"token scopes are {' and '.join(SCOPES)}")
        if expires_in_days is not None and expires_in_days < 1:
            raise InvalidInput("a token expires after at least one day")
        token = PREFIX + secrets.token_urlsafe(32)
        expires = datetime.now(UTC) + timedelta(days=expires_in_days) if expires_in_days else None
        async with self.tx() as conn:
            user_id = self.actor.user_id if email is None else (await lookup.user(conn, email))["id"]
            if user_id is None:
                raise InvalidInput("name the user the token is for")
            row = await (await conn.execute(Q["insert"], {
                "user_id": user_id, "name": name.strip(), "token_hash": token_hash(token),
                "scopes": sorted(set(scopes)), "expires_at": expires})).fetchone()
        return row, token

    async def resolve(self, token: str) -> dict | None:
        """The user and scopes a token stands for, or None."""
        if not token.startswith(PREFIX):
            return None
        return await self.one(Q["resolve"], {"token_hash": token_hash(token)})

    async def list_all(self, user_id: UUID) -> list[dict]:
        return await self.all(Q["list"], {"user_id": user_id})

    async def revoke(self, user_id: UUID, token_id: UUID) -> dict:
        row = await self.one(Q["revoke"], {"id": token_id, "user_id": user_id})
        if row is None:
            raise NotFound("no such token, or it is revoked already")
        return row
