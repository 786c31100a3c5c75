"""The thin database layer: a pool of connections as the application role, and
transactions that act as one caller under row-level security."""

from __future__ import annotations

import json
import select
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, nullcontext
from dataclasses import dataclass
from uuid import UUID

import psycopg
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool
from psycopg_pool.base import AttemptWithBackoff

from odooops.db.errors import translate
from odooops.errors import Unauthenticated

ROLES = ("anon", "authenticated", "service_role")
RECONNECT_EVERY = 0.5  # seconds between tries to reconnect while the database is away
CONNECTION_WAIT = 10.0  # seconds a caller waits for a connection before "the database cannot be reached"

Row = DictRow  # every connection of the pool reads rows as dicts
Connection = psycopg.AsyncConnection[Row]


class _Reconnect(AttemptWithBackoff):
    """The pool's reconnection, tried every RECONNECT_EVERY instead of after
    a delay that doubles: back within a second of the database."""

    INITIAL_DELAY = RECONNECT_EVERY
    DELAY_JITTER = 0.2

    def update_delay(self, now: float) -> None:
        super().update_delay(now)
        self.delay = min(self.delay, RECONNECT_EVERY)


class _Pool(AsyncConnectionPool[Connection]):
    async def _add_connection(self, attempt: AttemptWithBackoff | None, growing: bool = False) -> None:
        await super()._add_connection(attempt or _Reconnect(timeout=self.reconnect_timeout), growing)


def _said_goodbye(conn: Connection) -> bool:
    """An idle connection has nothing to read, unless the server closed it
    (a restart's "terminating connection", or end of file)."""
    try:
        return bool(select.select([conn.fileno()], [], [], 0)[0])
    except (psycopg.Error, OSError, ValueError):
        return True


@dataclass(frozen=True)
class Actor:
    """Who a transaction acts for: a database role and, for a user, their id."""

    role: str
    user_id: UUID | None = None

    @classmethod
    def service(cls) -> Actor:
        return cls("service_role")

    @classmethod
    def user(cls, user_id: UUID) -> Actor:
        return cls("authenticated", user_id)

    @classmethod
    def anonymous(cls) -> Actor:
        return cls("anon")

    def me(self) -> UUID:
        """The user acting: the service and anonymous callers are nobody."""
        if self.user_id is None:
            raise Unauthenticated()
        return self.user_id

    def claims(self) -> str:
        claims: dict[str, str] = {"role": self.role}
        if self.user_id is not None:
            claims["sub"] = str(self.user_id)
        return json.dumps(claims)


class Database:
    def __init__(self, conninfo: str, *, max_size: int = 10, connection_wait: float = CONNECTION_WAIT):
        self.conninfo = conninfo
        self._pool = _Pool(
            conninfo,
            connection_class=Connection,
            min_size=1,
            max_size=max_size,
            kwargs={"row_factory": dict_row, "autocommit": True},
            open=False,
            name="odooops",
            check=self._check,
            timeout=connection_wait,
        )

    async def _check(self, conn: Connection) -> None:
        """Before a connection is handed out. Free for a healthy one; one the
        server closed fails its check, and so do the others it closed at the
        same time: the first query after a restart works."""
        if not _said_goodbye(conn):
            return
        try:
            await AsyncConnectionPool.check_connection(conn)
        except psycopg.Error:
            await self._pool.check()  # the idle ones went with it
            raise

    async def open(self) -> None:
        # One plain connection first: when the server is unreachable it fails at
        # once with the server's reason, where the pool would wait and time out.
        try:
            conn = await psycopg.AsyncConnection.connect(self.conninfo, connect_timeout=10)
        except psycopg.Error as exc:
            raise translate(exc) from exc
        await conn.close()
        await self._pool.open(wait=True, timeout=30)

    async def close(self) -> None:
        await self._pool.close()

    async def __aenter__(self) -> Database:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @asynccontextmanager
    async def transaction(self, actor: Actor, *, pipeline: bool = False) -> AsyncIterator[Connection]:
        """One transaction as `actor`. Role and claims are set with
        set_config(..., true), so they end with the transaction and never leak
        to the next user of the pooled connection.

        With `pipeline`, BEGIN, the settings, the statements and COMMIT go out
        without waiting for one another (no COPY then): one round trip where
        there would be four, for the short transactions of the queue."""
        if actor.role not in ROLES:
            raise ValueError(f"unknown role {actor.role!r}")
        try:
            async with self._pool.connection() as conn:
                async with (conn.pipeline() if pipeline else nullcontext()), conn.transaction():
                    await conn.execute(
                        "select set_config('role', %s, true), set_config('request.jwt.claims', %s, true)",
                        (actor.role, actor.claims()),
                    )
                    yield conn
        except psycopg.Error as exc:
            raise translate(exc) from exc
