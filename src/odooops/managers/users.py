from __future__ import annotations

from argon2 import PasswordHasher

from odooops.db import queries_beside
from odooops.errors import InvalidInput
from odooops.managers import Manager, lookup

Q = queries_beside(__file__)
_hasher = PasswordHasher()
MIN_PASSWORD = 10


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise InvalidInput(f"a password has at least {MIN_PASSWORD} characters")
    return _hasher.hash(password)


class Users(Manager):
    async def create(self, email: str, name: str = "", password: str | None = None) -> dict:
        password_hash = hash_password(password) if password is not None else None
        return await self.one(Q["create"], {"email": email.strip(), "name": name.strip(), "password_hash": password_hash})

    async def by_email(self, email: str) -> dict:
        async with self.tx() as conn:
            return await lookup.user(conn, email)

    async def list(self) -> list[dict]:
        return await self.all(Q["list"])
