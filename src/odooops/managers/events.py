"""A run's log lines and artifacts, as a runner writes them: fenced by the
run's attempt, which the database checks once per batch."""

from __future__ import annotations

from collections.abc import Sequence

from odooops.db import queries_beside
from odooops.managers import Manager

Q = queries_beside(__file__)

# (run_id, attempt, seq, ts, level, phase, stream, message)
EventRow = tuple


class Events(Manager):
    async def append(self, rows: Sequence[EventRow]) -> None:
        """Write a batch of lines with COPY, in one transaction."""
        async with self.tx() as conn:
            await conn.execute(Q["staging_table"])
            async with conn.cursor() as cur:
                async with cur.copy(Q["copy"]) as copy:
                    for row in rows:
                        await copy.write_row(row)
                await cur.execute(Q["move"])

    async def next_seq(self, run_id: int) -> int:
        return (await self.one(Q["next_seq"], {"run_id": run_id}))["seq"]

    async def record_artifact(self, run_id: int, attempt: int, name: str, sha256: str, size: int,
                              content_type: str, storage_uri: str) -> dict:
        return await self.one(Q["record_artifact"], {
            "run_id": run_id, "attempt": attempt, "name": name, "sha256": sha256, "size": size,
            "content_type": content_type, "storage_uri": storage_uri})

    async def artifacts(self, run_id: int) -> list[dict]:
        return await self.all(Q["artifacts"], {"run_id": run_id})
