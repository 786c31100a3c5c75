"""Caught mails: the catcher records them (service), members read them, with
what the stored .eml says; old ones are pruned with their files."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from typing import TypedDict, cast
from uuid import UUID

from psycopg.types.json import Jsonb

from odooops.db import Actor, Database, queries_beside
from odooops.errors import InvalidInput, NotFound
from odooops.mail.message import Attachment, Parsed, Part, parse
from odooops.managers import Manager, lookup
from odooops.runner.artifacts import ArtifactStore
from odooops.settings import Settings

Q = queries_beside(__file__)
PAGE = 50
PAGE_MAX = 500
SEARCH_MAX = 200


class MailRow(TypedDict):
    id: int
    environment_id: UUID
    project_id: UUID
    branch_id: UUID
    mail_from: str
    rcpt_to: list[str]
    subject: str
    message_id: str | None
    size_bytes: int
    sha256: str
    attachments: list[Attachment]
    received_at: datetime


@dataclass
class Mail:
    """A mail as its page shows it: the row and what its .eml says."""

    row: MailRow
    message: Parsed


def store_of(settings: Settings) -> ArtifactStore:
    """The control plane's artifact store, where the .eml files are kept."""
    return ArtifactStore(settings.data_dir / "artifacts")


class Mails(Manager):
    def __init__(self, db: Database, actor: Actor, store: ArtifactStore):
        super().__init__(db, actor)
        self.store = store

    # the catcher (service)

    async def accepting(self, environment_id: UUID) -> bool:
        """Whether mail of this environment is caught: it exists, and is not production's."""
        return await self.one(Q["accepting"], {"id": environment_id}) is not None

    async def record(self, environment_id: UUID, mail_from: str, rcpt_to: list[str], size_bytes: int,
                     sha256: str, message: Parsed) -> MailRow | None:
        """The mail recorded, or None when its environment is gone."""
        row = await self.one(Q["record"], {
            "environment_id": environment_id, "mail_from": mail_from, "rcpt_to": rcpt_to,
            "subject": message.subject, "message_id": message.message_id, "size_bytes": size_bytes,
            "sha256": sha256, "attachments": Jsonb([p.summary() for p in message.parts])})
        return cast(MailRow, row) if row else None

    async def prune(self, older_than_days: int) -> int:
        """Mails older than this many days forgotten, with the .eml files no
        mail or artifact still names; how many mails."""
        row = await self.row(Q["prune"], {"days": older_than_days})
        await asyncio.to_thread(self._unlink, row["unreferenced"])
        return row["deleted"]

    def _unlink(self, digests: list[str]) -> None:
        for digest in digests:
            self.store.path_of(digest).unlink(missing_ok=True)

    # members (row-level security, and ops.environment_mails's own check)

    async def environment_of(self, project_ref: str, branch: str) -> UUID:
        """The environment of a project's branch, as the caller may see it."""
        async with self.tx() as conn:
            found = await lookup.branch(conn, await lookup.project(conn, project_ref), branch)
            row = await (await conn.execute(Q["environment_of_branch"], {"branch_id": found["id"]})).fetchone()
        if row is None:
            raise NotFound(f"branch {branch!r} has no environment: a successful build makes one")
        return row["id"]

    async def list_for_environment(self, environment_id: UUID, q: str | None = None, limit: int = PAGE,
                                   before: int | None = None) -> list[MailRow]:
        """Newest first; `before`: the last mail of the page before; `q`: in the subject, sender or recipients."""
        if q is not None and len(q) > SEARCH_MAX:
            raise InvalidInput(f"a search is at most {SEARCH_MAX} characters")
        if not 0 < limit <= PAGE_MAX:
            raise InvalidInput(f"a page holds 1 to {PAGE_MAX} mails")
        rows = await self.all(Q["list_for_environment"], {"environment_id": environment_id, "q": q or None,
                                                           "limit": limit, "before": before})
        return [cast(MailRow, r) for r in rows]

    async def row_of(self, mail_id: int) -> MailRow:
        row = await self.one(Q["get"], {"id": mail_id})
        if row is None:
            raise NotFound(f"no mail {mail_id}")
        return cast(MailRow, row)

    async def raw(self, mail_id: int) -> bytes:
        """The .eml as it arrived."""
        return await self._read(await self.row_of(mail_id))

    async def get(self, mail_id: int) -> Mail:
        row = await self.row_of(mail_id)
        raw = await self._read(row)
        return Mail(row, await asyncio.to_thread(parse, raw))

    async def attachment(self, mail_id: int, index: int) -> Part:
        """The mail's part `index` (from 0, as its attachments list them)."""
        parts = (await self.get(mail_id)).message.parts
        if not 0 <= index < len(parts):
            raise NotFound(f"mail {mail_id} has no attachment {index}")
        return parts[index]

    async def counts(self, environment_ids: list[UUID]) -> dict[UUID, int]:
        """How many mails each environment caught (those the caller may read)."""
        rows = await self.all(Q["counts"], {"ids": environment_ids})
        return {r["environment_id"]: r["mails"] for r in rows}

    async def count(self, environment_id: UUID) -> int:
        return (await self.counts([environment_id])).get(environment_id, 0)

    async def _read(self, row: MailRow) -> bytes:
        path = self.store.path_of(row["sha256"])
        try:
            return await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError:
            raise NotFound(f"mail {row['id']} is recorded but its .eml is gone from this host's store") from None
