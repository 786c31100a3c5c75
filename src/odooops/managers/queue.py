"""The queue as runners and operators use it. Runner calls carry the run's
attempt, the fencing token the database checks on every write."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from psycopg.types.json import Jsonb

from odooops.db import queries_beside
from odooops.managers import Manager

Q = queries_beside(__file__)


class Queue(Manager):
    async def register_worker(self, hostname: str, pid: int, version: str, capacity: int,
                              kinds: Sequence[str] | None) -> dict:
        return await self.row(Q["register_worker"], {"hostname": hostname, "pid": pid, "version": version,
                                                     "capacity": capacity, "kinds": list(kinds) if kinds else None})

    async def deregister_worker(self, worker_id: UUID) -> None:
        await self.one(Q["deregister_worker"], {"worker_id": worker_id})

    async def claim(self, worker_id: UUID, kinds: Sequence[str] | None = None, lease_seconds: int = 30,
                    limit: int = 1, start: bool = False) -> list[dict]:
        """Claim up to `limit` runs; with `start`, they are running already."""
        return await self.all(Q["claim"], {"worker_id": worker_id, "kinds": list(kinds) if kinds else None,
                                           "lease_seconds": lease_seconds, "limit": limit, "start": start})

    async def start(self, run_id: int, attempt: int) -> dict:
        return await self.row(Q["start"], {"run_id": run_id, "attempt": attempt})

    async def record_commit(self, run_id: int, attempt: int, message: str | None, author: str | None) -> dict:
        """The message and author of the commit the attempt checked out."""
        return await self.row(Q["record_commit"], {"run_id": run_id, "attempt": attempt, "message": message,
                                                   "author": author})

    async def record_sources(self, run_id: int, attempt: int, sources: list[dict]) -> dict:
        """The exact revisions of the Odoo sources the attempt built on."""
        return await self.row(Q["record_sources"], {"run_id": run_id, "attempt": attempt, "sources": Jsonb(sources)})

    async def record_test_results(self, run_id: int, attempt: int, results: list[dict]) -> int:
        """Each test's result, replacing an earlier attempt's."""
        row = await self.row(Q["record_test_results"], {"run_id": run_id, "attempt": attempt,
                                                        "results": Jsonb(results)})
        return row["recorded"]

    async def finish(self, run_id: int, attempt: int, status: str, result: str | None = None,
                     exit_code: int | None = None, error: str | None = None) -> dict:
        return await self.row(Q["finish"], {"run_id": run_id, "attempt": attempt, "status": status,
                                            "result": result, "exit_code": exit_code, "error": error})

    async def finish_many(self, runs: Sequence[tuple[int, int]], status: str, result: str | None = None) -> list[dict]:
        """End a batch of (run id, attempt) at once: all of them, or none."""
        return await self.all(Q["finish_many"], {"run_ids": [r for r, _ in runs], "attempts": [a for _, a in runs],
                                                 "status": status, "result": result})

    async def finish_and_claim(self, runs: Sequence[tuple[int, int]], status: str, result: str | None,
                               worker_id: UUID, kinds: Sequence[str] | None = None, lease_seconds: int = 30,
                               limit: int = 1, start: bool = False) -> list[dict]:
        """End a batch and claim the next in one transaction (one commit a run)."""
        return await self.all(Q["finish_and_claim"], {
            "run_ids": [r for r, _ in runs], "attempts": [a for _, a in runs], "status": status, "result": result,
            "worker_id": worker_id, "kinds": list(kinds) if kinds else None, "lease_seconds": lease_seconds,
            "limit": limit, "start": start})

    async def heartbeat(self, worker_id: UUID, runs: Sequence[int], lease_seconds: int = 30) -> list[int]:
        rows = await self.all(Q["heartbeat"], {"worker_id": worker_id, "runs": list(runs),
                                               "lease_seconds": lease_seconds})
        return [r["run_id"] for r in rows]

    async def reap(self, base_seconds: int = 5, cap_seconds: int = 300, grace_seconds: int = 0,
                   forget_seconds: int = 3600) -> list[dict]:
        """Requeue or fail runs whose lease expired, except within `grace_seconds`
        of the server's start; forget workers silent for `forget_seconds` that hold no run."""
        return await self.all(Q["reap"], {"base_seconds": base_seconds, "cap_seconds": cap_seconds,
                                          "grace_seconds": grace_seconds, "forget_seconds": forget_seconds})

    async def enqueue(self, project_id: UUID, kind: str, params: dict | None = None, priority: int = 0) -> dict:
        return await self.row(Q["enqueue"], {"project_id": project_id, "kind": kind,
                                             "params": Jsonb(params or {}), "priority": priority})

    async def enqueue_many(self, project_id: UUID, kind: str, params: Sequence[dict], priority: int = 0) -> int:
        """Queue many runs of one kind in one statement (one wake-up for all)."""
        async with self.tx() as conn:
            cur = await conn.execute(Q["enqueue_many"], {"project_id": project_id, "kind": kind, "priority": priority,
                                                         "params": [Jsonb(p) for p in params]})
            await conn.execute(Q["notify_many"])
            return cur.rowcount

    async def queue(self) -> list[dict]:
        return await self.all(Q["queue"])

    async def workers(self) -> list[dict]:
        return await self.all(Q["workers"])

    async def authorize(self, run_id: int) -> dict:
        return await self.row(Q["authorize"], {"run_id": run_id})

    async def run_context(self, run_id: int) -> dict:
        """A run with what executing it needs to know of its project and branch."""
        return await self.row(Q["run_settings"], {"run_id": run_id})
