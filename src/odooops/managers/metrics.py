"""Metric samples: written in batches by agents holding an ingest token,
read back as bucketed series by the project's members."""

from __future__ import annotations

from odooops.db import queries_beside
from odooops.errors import InvalidInput, NotFound
from odooops.managers import Manager, lookup
from odooops.samples import METRIC, Batch

Q = queries_beside(__file__)
MAX_BUCKETS = 10_000


class Metrics(Manager):
    async def ingest(self, batch: Batch) -> int:
        """Write a checked batch whose project its token has proven (as the
        service role: COPY and the move bypass no check of the caller's, the
        token was that check). One transaction: all of it or nothing."""
        async with self.tx() as conn:
            await conn.execute(Q["no_commit_wait"])
            if batch.branch_id is not None:
                found = await (await conn.execute(Q["branch_in_project"], {
                    "branch_id": batch.branch_id, "project_id": batch.project_id})).fetchone()
                if not found["ok"]:
                    raise NotFound("branch_id: the project has no such branch")
            if not batch.count:
                return 0
            await conn.execute(Q["staging_table"])
            async with conn.cursor() as cur:
                async with cur.copy(Q["copy"]) as copy:
                    await copy.write(batch.copy)
                params = {"project_id": batch.project_id, "branch_id": batch.branch_id, "ts": batch.ts,
                          "dims": f"[{','.join(batch.dims)}]"}
                await cur.execute(Q["move"], params)
                inserted = cur.rowcount
                await cur.execute(Q["roll_up"], params)  # last: its row locks are held only until commit
            return inserted

    async def series(self, ref: str, metric: str, hours: int, step: int, branch: str | None = None) -> dict:
        """One metric of a project over the last `hours`, in buckets of `step`
        seconds: each bucket's start, average, minimum, maximum and count."""
        if METRIC.fullmatch(metric) is None:
            raise InvalidInput("metric: a metric name is 1 to 128 of a-z, 0-9, '_' and '.'")
        if hours < 1 or step < 1:
            raise InvalidInput("hours and step are positive whole numbers")
        if hours * 3600 // step > MAX_BUCKETS:
            raise InvalidInput(f"at most {MAX_BUCKETS} buckets: make step larger or hours fewer")
        async with self.tx() as conn:
            project = await lookup.project(conn, ref)
            branch_id = None if branch is None else (await lookup.branch(conn, project, branch))["id"]
            params = {"project_id": project["id"], "metric": metric, "hours": hours, "step": step,
                      "branch_id": branch_id}
            params["since"] = since = (await (await conn.execute(Q["since"], params)).fetchone())["since"]
            query = Q["series_by_minute"] if step % 60 == 0 else Q["series"]
            points = await (await conn.execute(query, params)).fetchall()
        return {"metric": metric, "branch": branch, "step": step, "since": since, "points": points}
