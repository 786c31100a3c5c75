"""Append-only numbered SQL migrations, applied as the owner role.

Each file under migrations/ is applied once, in one transaction, and recorded
with its checksum; an advisory lock makes concurrent migrators take turns."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from odooops.db.database import ROLES, Connection, Row
from odooops.db.errors import translate
from odooops.errors import MigrationError

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_FILE = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
# pg_advisory_lock key: the bytes of "opsmigr" as an integer
LOCK_KEY = int.from_bytes(b"opsmigr", "big")

BOOTSTRAP = """
create schema if not exists ops;
create table if not exists ops.schema_migrations (
    name text primary key,
    checksum text not null,
    applied_at timestamptz not null default now()
);
alter table ops.schema_migrations enable row level security;
alter table ops.schema_migrations force row level security;
revoke all on ops.schema_migrations from public;
"""


@dataclass(frozen=True)
class Migration:
    name: str
    path: Path

    @property
    def sql(self) -> str:
        return self.path.read_text(encoding="utf-8")

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()


@dataclass(frozen=True)
class MigrationState:
    name: str
    state: str  # applied | pending | changed
    applied_at: datetime | None


def available(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    found = sorted(p for p in directory.glob("*.sql") if _FILE.match(p.name))
    return [Migration(p.stem, p) for p in found]


async def _connect(owner_conninfo: str) -> Connection:
    try:
        return await psycopg.AsyncConnection.connect(
            owner_conninfo, autocommit=True, row_factory=dict_row, connect_timeout=10)
    except psycopg.Error as exc:
        raise translate(exc) from exc


async def _applied(conn: Connection) -> dict[str, Row]:
    exists = await (await conn.execute("select to_regclass('ops.schema_migrations') is not null as ok")).fetchone()
    if not exists or not exists["ok"]:
        return {}
    rows = await (await conn.execute("select name, checksum, applied_at from ops.schema_migrations")).fetchall()
    return {r["name"]: r for r in rows}


def _compare(migrations: list[Migration], applied: dict[str, dict]) -> list[MigrationState]:
    states = []
    for m in migrations:
        row = applied.get(m.name)
        if row is None:
            states.append(MigrationState(m.name, "pending", None))
        elif row["checksum"] != m.checksum:
            states.append(MigrationState(m.name, "changed", row["applied_at"]))
        else:
            states.append(MigrationState(m.name, "applied", row["applied_at"]))
    return states


async def status(owner_conninfo: str, migrations: list[Migration] | None = None) -> list[MigrationState]:
    conn = await _connect(owner_conninfo)
    async with conn:
        return _compare(available() if migrations is None else migrations, await _applied(conn))


async def up_to_date(owner_conninfo: str, app_role: str) -> bool:
    """Whether every migration is applied and the application role exists: one
    cheap look, so that ordinary commands need not take the migration lock."""
    conn = await _connect(owner_conninfo)
    async with conn:
        states = _compare(available(), await _applied(conn))
        role = await (await conn.execute("select 1 from pg_roles where rolname = %s", (app_role,))).fetchone()
    return role is not None and all(s.state == "applied" for s in states)


async def _check_owner(conn: Connection) -> None:
    row = await (await conn.execute(
        "select rolsuper or rolbypassrls as ok from pg_roles where rolname = current_user")).fetchone()
    if not row or not row["ok"]:
        raise MigrationError(
            "the role in ODOOOPS_DATABASE_URL must be a superuser or have BYPASSRLS: "
            "it owns the schema, whose row-level security is forced")


async def migrate(owner_conninfo: str, migrations: list[Migration] | None = None) -> list[str]:
    """Apply what is pending; return the names applied. Refuses to go on if an
    applied migration's file has changed since."""
    migrations = available() if migrations is None else migrations
    conn = await _connect(owner_conninfo)
    async with conn:
        await _check_owner(conn)
        await conn.execute("select pg_advisory_lock(%s)", (LOCK_KEY,))
        try:
            await conn.execute(BOOTSTRAP)
            states = _compare(migrations, await _applied(conn))
            changed = [s.name for s in states if s.state == "changed"]
            if changed:
                raise MigrationError(
                    f"migration {', '.join(changed)} was changed after it was applied; "
                    "migrations are append-only: restore the file and add a new migration instead")
            done = []
            for m, s in zip(migrations, states, strict=True):
                if s.state == "pending":
                    await _apply(conn, m)
                    done.append(m.name)
            return done
        finally:
            await conn.execute("select pg_advisory_unlock(%s)", (LOCK_KEY,))


async def _apply(conn: Connection, m: Migration) -> None:
    try:
        async with conn.transaction():
            await conn.execute(m.sql)
            await conn.execute(
                "insert into ops.schema_migrations (name, checksum) values (%s, %s)", (m.name, m.checksum))
    except psycopg.Error as exc:
        raise MigrationError(f"migration {m.name} failed: {exc.diag.message_primary or exc}") from exc


async def ensure_app_role(owner_conninfo: str, role: str, password: str) -> None:
    """The login role the application connects as: no privileges of its own
    (NOINHERIT), allowed only to SET ROLE to anon, authenticated, service_role."""
    conn = await _connect(owner_conninfo)
    async with conn, conn.transaction():
        await conn.execute("select pg_advisory_xact_lock(%s)", (LOCK_KEY + 1,))
        exists = await (await conn.execute("select 1 from pg_roles where rolname = %s", (role,))).fetchone()
        verb = "alter" if exists else "create"
        await conn.execute(sql.SQL(verb + " role {} with login noinherit nosuperuser nocreatedb nocreaterole "
                                   "nobypassrls password {}").format(sql.Identifier(role), sql.Literal(password)))
        await conn.execute(sql.SQL("grant {} to {}").format(
            sql.SQL(", ").join(map(sql.Identifier, ROLES)), sql.Identifier(role)))
