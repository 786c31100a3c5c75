"""Domain managers: the only code that touches a database connection. The API,
console, runner and CLI all call these."""

from __future__ import annotations

from odooops.db import Actor, Database


class Manager:
    def __init__(self, db: Database, actor: Actor):
        self.db = db
        self.actor = actor

    def tx(self):
        return self.db.transaction(self.actor)

    # One statement in its own pipelined transaction, its rows read once the
    # transaction has committed: BEGIN, settings, statement and COMMIT then
    # cost the server a single round trip.

    async def one(self, sql: str, params: dict | None = None) -> dict | None:
        async with self.db.transaction(self.actor, pipeline=True) as conn:
            cur = await conn.execute(sql, params)
        return await cur.fetchone()

    async def all(self, sql: str, params: dict | None = None) -> list[dict]:
        async with self.db.transaction(self.actor, pipeline=True) as conn:
            cur = await conn.execute(sql, params)
        return await cur.fetchall()
