"""Production updates in place, the copies of production (pre-update and
snapshot), and the maintenance that holds an environment meanwhile."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from uuid import UUID

from odooops.db import queries_beside
from odooops.managers import Manager
from odooops.managers.vocabulary import update_label

Q = queries_beside(__file__)
UPDATES_MAX = 100


class Updates(Manager):
    # people

    async def copies(self, branch_id: UUID) -> list[dict]:
        return await self.all(Q["copies_of_branch"], {"branch_id": branch_id})

    async def snapshot(self, project_id: UUID) -> dict | None:
        return await self.one(Q["snapshot_of_project"], {"project_id": project_id})

    async def of_branch(self, branch_id: UUID, limit: int = 10) -> list[dict]:
        return await self.all(Q["updates_of_branch"], {"branch_id": branch_id, "limit": limit})

    async def refresh_snapshot(self, project_id: UUID) -> dict:
        """Queue a new snapshot of production (or the one already queued)."""
        return await self.row(Q["refresh_snapshot"], {"project_id": project_id})

    # runners (service), fenced by the run's attempt

    async def build_database(self, run_id: int, attempt: int, database: str) -> None:
        await self.one(Q["build_database"], {"run_id": run_id, "attempt": attempt, "database": database})

    async def environment(self, branch_id: UUID) -> dict | None:
        return await self.one(Q["environment"], {"branch_id": branch_id})

    async def begin(self, run_id: int, attempt: int, branch_id: UUID, build_id: int | None = None) -> dict:
        return await self.row(Q["maintenance_begin"], {"run_id": run_id, "attempt": attempt, "branch_id": branch_id,
                                                       "build_id": build_id})

    async def serving(self, run_id: int, attempt: int, branch_id: UUID) -> bool:
        return bool((await self.row(Q["serving"], {"run_id": run_id, "attempt": attempt,
                                                   "branch_id": branch_id}))["serving"])

    async def end(self, run_id: int, attempt: int, branch_id: UUID, build_id: int) -> None:
        await self.one(Q["maintenance_end"], {"run_id": run_id, "attempt": attempt, "branch_id": branch_id,
                                              "build_id": build_id})

    async def abandon(self, run_id: int, attempt: int, branch_id: UUID) -> None:
        await self.one(Q["maintenance_abandon"], {"run_id": run_id, "attempt": attempt, "branch_id": branch_id})

    async def record(self, run_id: int, attempt: int, status: str, *, previous: int | None = None,
                     copy_id: int | None = None, updated: list[str] | None = None,
                     installed: list[str] | None = None, failed_step: str | None = None,
                     detail: str | None = None, seconds: float | None = None) -> None:
        await self.one(Q["record"], {"run_id": run_id, "attempt": attempt, "status": status, "previous": previous,
                                     "copy_id": copy_id, "updated": updated, "installed": installed,
                                     "failed_step": failed_step, "detail": detail, "seconds": seconds})

    async def record_copy(self, run_id: int, attempt: int, kind: str, *, build_id: int | None, database: str,
                          host: str, size: int, filestore_size: int, keep_days: int | None) -> dict:
        return await self.row(Q["record_copy"], {"run_id": run_id, "attempt": attempt, "kind": kind,
                                                 "build_id": build_id, "database": database, "host": host,
                                                 "size": size, "filestore_size": filestore_size,
                                                 "keep_days": keep_days})

    async def production_snapshot(self, run_id: int, attempt: int) -> dict | None:
        return await self.one(Q["production_snapshot"], {"run_id": run_id, "attempt": attempt})

    async def of_build(self, build_id: int) -> dict | None:
        return await self.one(Q["update_of_build"], {"build_id": build_id})

    async def copies_to_drop(self, host: str) -> list[dict]:
        return await self.all(Q["copies_to_drop"], {"host": host})

    async def copy_dropped(self, copy_id: int) -> None:
        await self.one(Q["copy_dropped"], {"id": copy_id})


# rows as the API, the CLI (local or remote) and the console show them


def update_view(row: Mapping[str, Any]) -> dict:
    """An update as the API (and the CLI, local or remote) answers it."""
    seconds = row.get("maintenance_seconds")
    return {**row, "maintenance_seconds": None if seconds is None else float(seconds),
            "status_label": update_label(row["status"]).word}


def copy_view(row: Mapping[str, Any]) -> dict:
    database, files = row.get("size_bytes"), row.get("filestore_bytes")
    total = None if database is None and files is None else (database or 0) + (files or 0)
    return {**row, "total_bytes": total}


def copies_view(copies: list[dict], snapshot: dict | None) -> dict:
    """A branch's pre-update copies (newest first) and the project's snapshot."""
    return {"copies": [copy_view(c) for c in copies if c["kind"] == "update"],
            "snapshot": copy_view(snapshot) if snapshot else None}
