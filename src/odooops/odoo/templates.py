"""The template cache: a database and its filestore with a project's
dependency modules installed, under a key the caller computes (from the
revisions, the modules, demo or not…), cloned to start a build in seconds.

A template is built once, however many builds want it at once, on however
many hosts: an advisory lock on the environments' server serialises them and
a waiter finds it built. Its install runs as a role of its own (LOGIN and no
more, password derived from the server key), in a database the superuser
owns: a clone then gives the template role's objects to the branch's role
(REASSIGN OWNED, which would also give away any database the role owned:
it owns none). A template's record (key, modules, times, sizes) is its
database's comment; its filestore is on this host, beside a marker naming
the build it belongs to, and is copied into a clone with hard links (Odoo
never rewrites a filestore file in place, and the template's are made
read-only)."""

from __future__ import annotations

import asyncio
import errno
import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from odooops.db.queries import queries_beside
from odooops.errors import NotFound
from odooops.odoo.envdb import EnvDatabase, EnvServer, branch_data_dir, derived_password
from odooops.settings import Secret

Q = queries_beside(__file__)
PREFIX = "odooops_template_"
LOCK_NAMESPACE = 0x4F4F5054  # advisory locks of templates (first key)
MARKER = "template.json"

# build(database, role, password, data_dir) installs the modules into the
# fresh database as `role`, its filestore in data_dir/filestore/database; True
# when it succeeded
Build = Callable[[str, str, str, Path], Awaitable[bool]]


@dataclass(frozen=True)
class Template:
    key: str
    database: str      # also the name of the role that owns what is in it
    modules: tuple[str, ...]
    created_at: datetime
    last_used_at: datetime
    size: int          # bytes of the database
    filestore_size: int
    data_dir: Path     # the template's Odoo data dir on this host

    @property
    def role(self) -> str:
        return self.database

    @property
    def filestore(self) -> Path:
        return self.data_dir / "filestore" / self.database


class TemplateCache:
    def __init__(self, server: EnvServer, secret_key: Secret):
        self.server = server
        self._secret_key = secret_key

    @staticmethod
    def name(key: str) -> str:
        """The template's database and role: `odooops_template_<hash of the key>`."""
        return PREFIX + hashlib.sha256(key.encode()).hexdigest()[:24]

    def _data_dir(self, name: str) -> Path:
        return branch_data_dir(self.server.data_dir, name)

    def _password(self, name: str) -> str:
        return derived_password(self._secret_key, f"odoo-template-role:{name}")

    async def lookup(self, key: str) -> Template | None:
        """The template for `key` if it is built on the server and its
        filestore (of that very build) is on this host."""
        name = self.name(key)
        conn = await self.server.connect()
        async with conn:
            row = await (await conn.execute(Q["template"], (name,))).fetchone()
        record = _record(row["comment"]) if row else None
        if record is None or record["key"] != key or not self._here(name, record["build"]):
            return None
        return self._template(name, record)

    async def list_all(self) -> list[Template]:
        """Every template built on the server, whether or not this host has
        its filestore, most recently used first."""
        found = []
        for name, record in await self._records():
            if record is not None:
                found.append(self._template(name, record))
        return sorted(found, key=lambda t: t.last_used_at, reverse=True)

    async def ensure(self, key: str, build: Build, *, modules: Sequence[str] = ()) -> Template | None:
        """The template for `key`, built with `build` if there is none yet;
        None when the build failed, which leaves no template behind."""
        found = await self.lookup(key)
        if found is not None:
            return found
        name = self.name(key)
        async with self._lock(name):
            found = await self.lookup(key)  # built by whoever held the lock before
            if found is not None:
                return found
            await self._discard(name)
            password = await self._prepare(name)
            try:
                built = await build(name, name, password, self._data_dir(name))
            except BaseException:
                await self._discard(name)
                raise
            if not built:
                await self._discard(name)
                return None
            return await self._seal(key, name, modules)

    async def clone(self, key: str, database: str, owner_role: str, data_dir: Path | None = None) -> EnvDatabase:
        """A new database `database` for `owner_role`, a copy of the template:
        every object in it the role's, and the filestore hard-linked into the
        role's Odoo data dir (or `data_dir`)."""
        name = self.name(key)
        async with self._lock(name, shared=True):
            found = await self.lookup(key)
            if found is None:
                raise NotFound(f"no template {name} for this key on this host: ensure it first")
            made = await self.server.create_database(database, owner_role, template=name)
            if data_dir is not None:
                made = EnvDatabase(made.name, made.owner, data_dir, data_dir / "filestore" / made.name)
            try:
                await self.server.hand_over(database, found.role, owner_role)
                await new_identity(self.server, database)
                await asyncio.to_thread(link_tree, found.filestore, made.filestore)
            except BaseException:
                await self.server.drop_database(database)
                shutil.rmtree(made.filestore, ignore_errors=True)
                raise
            await self._touch(name)
        return made

    async def evict(self, max_count: int, max_age_days: float) -> list[str]:
        """Drop the templates beyond the `max_count` most recently used, those
        unused for `max_age_days`, what failed builds left, and this host's
        filestores of templates no longer on the server; never one being built
        or cloned right now. The keys dropped."""
        records = await self._records()
        built = sorted(((n, r) for n, r in records if r is not None),
                       key=lambda nr: _when(nr[1]["last_used_at"]), reverse=True)
        oldest = datetime.now(UTC) - timedelta(days=max_age_days)
        victims: list[tuple[str, dict[str, Any] | None]] = [
            (n, r) for i, (n, r) in enumerate(built) if i >= max_count or _when(r["last_used_at"]) < oldest]
        victims += [(n, None) for n, r in records if r is None]
        on_server = {n for n, _ in records}
        victims += [(p.name, None) for p in sorted(self.server.data_dir.glob(PREFIX + "*")) if p.name not in on_server]
        dropped = []
        for name, record in victims:
            async with self._lock(name, wait=False) as locked:
                if locked:
                    await self._discard(name)
                    if record is not None:
                        dropped.append(record["key"])
        return dropped

    # the steps

    def _lock(self, name: str, *, shared: bool = False, wait: bool = True) -> AbstractAsyncContextManager[bool]:
        """The template's advisory lock (shared: clones, which may run together)."""
        return self.server.advisory_lock(LOCK_NAMESPACE, name, shared=shared, wait=wait)

    async def _records(self) -> list[tuple[str, dict[str, Any] | None]]:
        conn = await self.server.connect()
        async with conn:
            rows = await (await conn.execute(Q["templates"], (PREFIX,))).fetchall()
        return [(r["database"], _record(r["comment"])) for r in rows]

    def _here(self, name: str, build: str) -> bool:
        try:
            marker = json.loads((self._data_dir(name) / MARKER).read_text())
        except (OSError, ValueError):
            return False
        return marker.get("build") == build and (self._data_dir(name) / "filestore" / name).is_dir()

    async def _prepare(self, name: str) -> str:
        """The template role and an empty database it may fill (the public
        schema its), with its filestore folder; the role's password."""
        password = self._password(name)
        await self.server.ensure_role(name, password, kind="template")
        db, role = sql.Identifier(name), sql.Identifier(name)
        conn = await self.server.connect()
        async with conn:
            await conn.execute(_sql("create_template", database=db))
            await conn.execute(_sql("revoke_public", database=db))
            await conn.execute(_sql("grant_connect", database=db, role=role))
        conn = await self.server.connect(name)
        async with conn:
            await conn.execute(_sql("give_public_schema", role=role))
            await conn.execute(Q["create_extensions"])
        await asyncio.to_thread((self._data_dir(name) / "filestore" / name).mkdir, parents=True, exist_ok=True)
        return password

    async def _seal(self, key: str, name: str, modules: Sequence[str]) -> Template:
        """Close the built template to connections (a copy needs nobody
        connected), make its filestore read-only and record it."""
        db = sql.Identifier(name)
        conn = await self.server.connect()
        async with conn:
            await conn.execute(_sql("close_template", database=db))
            await conn.execute(Q["terminate_database"], (name,))
            await conn.execute(_sql("revoke_role", database=db, role=sql.Identifier(name)))
            size = (await (await conn.execute(Q["database_size"], (name,))).fetchone() or {}).get("size", 0)
            filestore_size = await asyncio.to_thread(_freeze, self._data_dir(name) / "filestore" / name)
            now = datetime.now(UTC).isoformat()
            record = {"odooops": "template", "key": key, "modules": list(modules), "created_at": now,
                      "last_used_at": now, "size": size, "filestore_size": filestore_size,
                      "build": uuid.uuid4().hex}
            await asyncio.to_thread((self._data_dir(name) / MARKER).write_text,
                                    json.dumps({"key": key, "build": record["build"]}))
            await conn.execute(_sql("comment_template", database=db, comment=sql.Literal(json.dumps(record))))
        return self._template(name, record)

    async def _touch(self, name: str) -> None:
        conn = await self.server.connect()
        async with conn:
            row = await (await conn.execute(Q["template"], (name,))).fetchone()
            record = _record(row["comment"]) if row else None
            if record is not None:
                record["last_used_at"] = datetime.now(UTC).isoformat()
                await conn.execute(_sql("comment_template", database=sql.Identifier(name),
                                        comment=sql.Literal(json.dumps(record))))

    async def _discard(self, name: str) -> None:
        """No trace of the template: database, this host's folder and role
        (kept if something still depends on it, to be set right when reused)."""
        conn = await self.server.connect()
        async with conn:
            await conn.execute(_sql("drop_template", database=sql.Identifier(name)))
            await conn.execute(Q["terminate_role"], (name,))
            try:
                await conn.execute(_sql("drop_role", role=sql.Identifier(name)))
            except psycopg.errors.DependentObjectsStillExist:
                pass
        await asyncio.to_thread(shutil.rmtree, self._data_dir(name), ignore_errors=True)

    def _template(self, name: str, record: dict[str, Any]) -> Template:
        return Template(record["key"], name, tuple(record.get("modules") or ()), _when(record["created_at"]),
                        _when(record["last_used_at"]), int(record.get("size") or 0),
                        int(record.get("filestore_size") or 0), self._data_dir(name))


async def new_identity(server: EnvServer, database: str) -> None:
    """A copy is a database of its own to Odoo: its uuid and the secret it
    signs sessions and tokens with are new, as Odoo's own duplicate makes them."""
    conn = await server.connect(database)
    async with conn:
        row = await (await conn.execute(Q["has_parameters"])).fetchone()
        if row and row["found"]:
            await conn.execute(Q["new_identity"])


def _sql(name: str, **parts: sql.Composable) -> sql.Composed:
    return sql.SQL(Q[name]).format(**parts)


def _record(comment: str | None) -> dict[str, Any] | None:
    """A built template's record, from its database's comment (None: not
    built, or not built to the end)."""
    try:
        record = json.loads(comment or "")
    except ValueError:
        return None
    if not isinstance(record, dict) or record.get("odooops") != "template":
        return None
    if not all(isinstance(record.get(k), str) for k in ("key", "build", "created_at", "last_used_at")):
        return None
    return record


def _when(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _freeze(folder: Path) -> int:
    """Make a template's filestore read-only (its clones share its files);
    its size in bytes."""
    total = 0
    for path in folder.rglob("*"):
        if path.is_file() and not path.is_symlink():
            path.chmod(0o444)
            total += path.stat().st_size
    return total


def link_tree(source: Path, target: Path) -> None:
    """`target` a copy of `source` whose files are hard links (copies across
    file systems, where links cannot go)."""
    def link(src: str, dst: str) -> None:
        try:
            os.link(src, dst)
        except OSError as exc:
            if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK):
                raise
            shutil.copy2(src, dst)

    shutil.copytree(source, target, copy_function=link, dirs_exist_ok=True)

