from __future__ import annotations

import asyncio
import functools
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from odooops.db import queries_beside
from odooops.errors import Conflict, InvalidInput, Unauthenticated
from odooops.managers import Manager, lookup
from odooops.managers.orgs import Q as ORGS

Q = queries_beside(__file__)
_hasher = PasswordHasher()
MIN_PASSWORD = 10


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise InvalidInput(f"a password has at least {MIN_PASSWORD} characters")
    return _hasher.hash(password)


@functools.cache
def dummy_hash() -> str:
    """A hash no password matches, made with the same parameters as real ones."""
    return _hasher.hash(secrets.token_urlsafe(32))


def verify_password(password_hash: str | None, password: str) -> bool:
    """Whether `password` matches. Without a hash (an unknown account, or one
    with no password) a dummy hash is checked instead, so that the answer takes
    as long and an attacker's stopwatch cannot tell which accounts exist."""
    try:
        return _hasher.verify(password_hash or dummy_hash(), password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


class Users(Manager):
    async def create(self, email: str, name: str = "", password: str | None = None) -> dict:
        password_hash = hash_password(password) if password is not None else None
        return await self.row(Q["create"], {"email": email.strip(), "name": name.strip(),
                                            "password_hash": password_hash})

    async def by_email(self, email: str) -> dict:
        async with self.tx() as conn:
            return await lookup.user(conn, email)

    async def list_all(self) -> list[dict]:
        return await self.all(Q["list"])

    async def any_exist(self) -> bool:
        return (await self.row(Q["any_user"]))["found"]

    async def create_first_owner(self, email: str, name: str, password: str, org_slug: str, org_name: str) -> dict:
        """The first user (run as the control plane, at first-run setup): owner
        of a new org and of any org made before anyone could sign in. Refused
        once a user exists."""
        password_hash = await asyncio.to_thread(hash_password, password)
        async with self.tx() as conn:
            await conn.execute(Q["lock_users"])
            if (await (await conn.execute(Q["any_user"])).fetchone())["found"]:
                raise Conflict("setup is already done: sign in instead")
            user = await (await conn.execute(Q["create"], {
                "email": email.strip(), "name": name.strip(), "password_hash": password_hash})).fetchone()
            await conn.execute(Q["adopt_orgs"], {"user_id": user["id"]})
            org = await (await conn.execute(ORGS["insert"], {"slug": org_slug, "name": org_name})).fetchone()
            await conn.execute(ORGS["add_member"], {"org_id": org["id"], "user_id": user["id"], "role": "owner"})
            return user

    async def me(self) -> dict:
        """The signed-in user: id, email and name."""
        row = await self.one(Q["me"])
        if row is None:
            raise Unauthenticated("no signed-in user")
        return row
