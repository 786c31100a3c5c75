"""A run's log lines and artifacts, as a runner writes them: fenced by the
run's attempt, which the database checks once per batch."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from odooops.db import queries_beside
from odooops.managers import Manager

Q = queries_beside(__file__)

# (run_id, attempt, seq, ts, level, phase, stream, message)
EventRow = tuple


_NEEDS_ESCAPE = re.compile(r"[\\\t\n\r]")
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def copy_escape(value: str | None) -> str:
    """A value in COPY's text format."""
    if value is None:
        return "\\N"
    return value.translate(_ESCAPES) if _NEEDS_ESCAPE.search(value) else value


def copy_text(rows: Sequence[EventRow]) -> str:
    return "".join(
        f"{run_id}\t{copy_escape(None if attempt is None else str(attempt))}\t{seq}\t{ts.isoformat()}\t{level}\t"
        f"{copy_escape(phase)}\t{stream}\t{copy_escape(message)}\n"
        for run_id, attempt, seq, ts, level, phase, stream, message in rows)


class Events(Manager):
    async def append(self, rows: Sequence[EventRow]) -> None:
        await self.append_copy(copy_text(rows), {(r[0], r[1]) for r in rows if r[1] is not None})

    async def append_copy(self, text: str, attempts: Iterable[tuple[int, int]] = ()) -> None:
        """Write a batch of lines, already in COPY's text format (columns as in
        EventRow), in one transaction. The (run, attempt) pairs given are fenced
        before any line goes in: that locks their runs first, so a note of the
        control plane (which ends the attempt) waits for the batch instead of
        taking one of its seqs. A batch sent again after a lost connection may
        have been committed already: lines whose seq is there are skipped."""
        async with self.tx() as conn:
            for run_id, attempt in attempts:
                await conn.execute(Q["fence"], {"run_id": run_id, "attempt": attempt})
            await conn.execute(Q["staging_table"])
            async with conn.cursor() as cur:
                async with cur.copy(Q["copy"]) as copy:
                    await copy.write(text)
                await cur.execute(Q["move"])

    async def messages(self, run_id: int, after_seq: int, before_seq: int, limit: int) -> list[dict]:
        """A page of a run's lines (seq, message) between two seqs, for the runner."""
        return await self.all(Q["messages"], {"run_id": run_id, "after_seq": after_seq, "before_seq": before_seq,
                                              "limit": limit})

    async def next_seq(self, run_id: int) -> int:
        return (await self.row(Q["next_seq"], {"run_id": run_id}))["seq"]

    async def record_artifact(self, run_id: int, attempt: int, name: str, sha256: str, size: int,
                              content_type: str, storage_uri: str) -> dict:
        return await self.row(Q["record_artifact"], {
            "run_id": run_id, "attempt": attempt, "name": name, "sha256": sha256, "size": size,
            "content_type": content_type, "storage_uri": storage_uri})

    async def artifacts(self, run_id: int) -> list[dict]:
        return await self.all(Q["artifacts"], {"run_id": run_id})
