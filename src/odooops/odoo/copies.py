"""Copies of one of Odoo's databases with its filestore, in seconds whatever
their size: PostgreSQL copies the database as a template (file by file,
while nobody is connected to it) and the filestore is hard-linked, since
Odoo never rewrites a filestore file in place (it writes a new one under
the content's hash and garbage-collects the old).

Production's pre-update copies and the snapshot staging builds clone are
such copies: the pre-update copy becomes production's database again when
an update fails; the snapshot, kept idle (closed to connections), is cloned
by each staging build and handed to the staging branch's role."""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from pathlib import Path

from psycopg import sql

from odooops.db.queries import queries_beside
from odooops.odoo.envdb import EnvDatabase, EnvServer
from odooops.odoo.templates import link_tree

Q = queries_beside(__file__)
LOCK_NAMESPACE = 0x4F4F5043  # advisory locks of copies (first key): a clone holds its source's shared


@dataclass(frozen=True)
class Copy:
    database: EnvDatabase
    size: int            # bytes of the database
    filestore_size: int  # bytes of the filestore's files (shared with the source's by hard links)


async def copy(server: EnvServer, source: str, owner: str, target: str, target_owner: str | None = None, *,
               idle: bool = False) -> Copy:
    """`target`, a copy of `source` (owned by `owner`) and of its filestore,
    owned by `target_owner` (default the same), every object in it theirs.
    `idle`: closed to connections, as a template is. Nobody may be connected
    to `source` meanwhile: the caller stops its server first."""
    new_owner = target_owner or owner
    async with server.advisory_lock(LOCK_NAMESPACE, source, shared=True):
        made = await server.create_database(target, new_owner, template=source)
        try:
            if new_owner != owner:
                await server.hand_over(target, owner, new_owner)
            await asyncio.to_thread(link_tree, server.database(source, owner).filestore, made.filestore)
            if idle:
                conn = await server.connect()
                async with conn:
                    await conn.execute(sql.SQL(Q["close"]).format(database=sql.Identifier(target)))
        except BaseException:
            await server.drop_database(target)
            raise
    return Copy(made, await size(server, target), await asyncio.to_thread(tree_size, made.filestore))


async def restore(server: EnvServer, source: str, owner: str, target: str) -> Copy:
    """`target` (its server stopped) dropped and made again from `source`,
    a copy of it: a failed update goes back to the pre-update copy."""
    await server.drop_database(target)
    return await copy(server, source, owner, target)


async def drop(server: EnvServer, database: str) -> bool:
    """Drop a copy unless a clone of it is under way (False then: later)."""
    async with server.advisory_lock(LOCK_NAMESPACE, database, wait=False) as free:
        if not free:
            return False
        await server.drop_database(database)
        return True


async def disconnect(server: EnvServer, database: str) -> int:
    """End every session on `database` (a server that did not stop, a
    console left open): PostgreSQL copies only a database nobody uses."""
    conn = await server.connect()
    async with conn:
        row = await (await conn.execute(Q["terminate"], (database,))).fetchone()
    return int(row["n"]) if row else 0


async def size(server: EnvServer, database: str) -> int:
    conn = await server.connect()
    async with conn:
        row = await (await conn.execute(Q["size"], (database,))).fetchone()
    return int(row["size"]) if row and row["size"] is not None else 0


def tree_size(folder: Path) -> int:
    total = 0
    for root, _, files in os.walk(folder):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                pass
    return total
