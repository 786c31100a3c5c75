"""Passwords after an account exists: the operator sets one, or makes a
one-time link for its user to choose one; a signed-in user changes their own.
A new password ends the user's sessions (all but the one that asked for it)
and voids any open reset link (see migration 0018). Run as the control plane
(service_role): these steps read and write what no user role may."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from odooops.db import queries_beside
from odooops.errors import Forbidden, OpsError
from odooops.managers import Manager, lookup
from odooops.managers.sessions import Sessions
from odooops.managers.users import hash_password

Q = queries_beside(__file__)
RESET_PREFIX = "oor_"
RESET_SECONDS = 24 * 3600


@dataclass(frozen=True)
class ResetLink:
    token: str  # the clear token, for the link only: the database keeps its sha256
    email: str
    expires_at: datetime


def reset_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Passwords(Manager):
    async def set(self, email: str, password: str) -> dict:
        """The operator gives a user a new password: the user, whose sessions have ended."""
        self._operator_only()
        password_hash = await asyncio.to_thread(hash_password, password)
        async with self.tx() as conn:
            user = await lookup.user(conn, email)
            await conn.execute(Q["set"], {"user_id": user["id"], "password_hash": password_hash,
                                          "keep_session": None})
        return user

    async def start_reset(self, email: str, seconds: int = RESET_SECONDS) -> ResetLink:
        """A one-time link's token for a user, open for `seconds`; the user's earlier link stops working."""
        self._operator_only()
        token = RESET_PREFIX + secrets.token_urlsafe(32)
        async with self.tx() as conn:
            user = await lookup.user(conn, email)
            row = await (await conn.execute(Q["start_reset"], {
                "user_id": user["id"], "token_hash": reset_hash(token), "seconds": seconds})).fetchone()
        if row is None:
            raise OpsError("the database answered no row where one was due")
        return ResetLink(token, user["email"], row["expires_at"])

    async def reset_email(self, token: str) -> str | None:
        """The email of the user an open reset link is for; None when it is unknown, used or expired."""
        if not token.startswith(RESET_PREFIX):
            return None
        row = await self.one(Q["reset_user"], {"token_hash": reset_hash(token)})
        return row["email"] if row else None

    async def reset(self, token: str, password: str) -> str:
        """Use a reset link (once): the user's new password; their sessions end. Their email."""
        password_hash = await asyncio.to_thread(hash_password, password)
        row = await self.row(Q["finish_reset"], {"token_hash": reset_hash(token), "password_hash": password_hash})
        return row["email"]

    async def change(self, email: str, current: str, new: str, keep_session: UUID, address: str) -> None:
        """A signed-in user's own change: the current password must be right
        (a wrong one counts as a failed login, throttled alike); every other
        session of theirs ends."""
        password_hash = await asyncio.to_thread(hash_password, new)  # a too-short one is no attempt
        attempt = await Sessions(self.db, self.actor).attempt(
            email, current, address, throttled="too many wrong passwords: wait before trying again",
            wrong="the current password is wrong")
        async with self.tx() as conn:
            await conn.execute(Q["forget_attempt"], {"attempt_id": attempt["attempt_id"]})
            await conn.execute(Q["set"], {"user_id": attempt["user_id"], "password_hash": password_hash,
                                          "keep_session": keep_session})

    def _operator_only(self) -> None:
        if self.actor.role != "service_role":
            raise Forbidden("only the operator sets passwords and makes reset links: run it without --as")
