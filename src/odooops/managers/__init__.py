"""Domain managers: the only code that touches a database connection. The API,
console, runner and CLI all call these."""

from __future__ import annotations

from typing import Any, LiteralString

from odooops.db import Actor, Database, Row
from odooops.errors import OpsError


class Manager:
    def __init__(self, db: Database, actor: Actor):
        self.db = db
        self.actor = actor

    def tx(self):
        return self.db.transaction(self.actor)

    # One statement in its own pipelined transaction, its rows read once the
    # transaction has committed: BEGIN, settings, statement and COMMIT then
    # cost the server a single round trip.

    async def one(self, sql: LiteralString, params: dict[str, Any] | None = None) -> Row | None:
        async with self.db.transaction(self.actor, pipeline=True) as conn:
            cur = await conn.execute(sql, params)
        return await cur.fetchone()

    async def row(self, sql: LiteralString, params: dict[str, Any] | None = None) -> Row:
        """One statement that always answers one row (a function's result)."""
        found = await self.one(sql, params)
        if found is None:
            raise OpsError("the database answered no row where one was due")
        return found

    async def all(self, sql: LiteralString, params: dict[str, Any] | None = None) -> list[Row]:
        async with self.db.transaction(self.actor, pipeline=True) as conn:
            cur = await conn.execute(sql, params)
        return await cur.fetchall()
