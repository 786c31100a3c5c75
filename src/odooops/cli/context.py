"""What every command shares: settings from flags and environment, the
database opened as the right actor, and one way to print."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TypeVar

from rich.console import Console
from rich.table import Table

from odooops import runtime
from odooops.db import Actor, Database
from odooops.errors import InvalidInput, OpsError
from odooops.managers import lookup
from odooops.managers.vocabulary import status_label
from odooops.settings import Settings

T = TypeVar("T")
out = Console(highlight=False)
err = Console(stderr=True, highlight=False)

_settings: Settings | None = None


def set_settings(settings: Settings) -> None:
    global _settings
    _settings = settings


def settings() -> Settings:
    return _settings if _settings is not None else Settings.from_env()


async def _actor(db: Database, email: str | None) -> Actor:
    if email is None:
        return Actor.service()
    async with db.transaction(Actor.service()) as conn:
        return Actor.user((await lookup.user(conn, email))["id"])


def run(work: Callable[[Database, Actor], Awaitable[T]], remote: Callable | None = None) -> T:
    """Run `work(db, actor)` with the database open and migrated; or, when the
    CLI is logged in to a remote server, `remote(api)` over HTTP."""
    from odooops.cli.remote import api

    client = api()
    if client is not None:
        return _remotely(client, remote)

    async def main() -> T:
        s = settings()
        await runtime.prepare(s)
        async with runtime.database(s) as db:
            return await work(db, await _actor(db, s.acting_as))

    return asyncio.run(main())


def _remotely(client, remote: Callable | None):
    if remote is None:
        raise OpsError(f"this command works on the control plane's own host only; run it there, "
                       f"or `odooops logout` to use a local database instead of {client.url}")
    if settings().acting_as:
        raise InvalidInput(f"--as does not apply to {client.url}: you act there as the user you logged in as")
    return remote(client)


def table(columns: list[str], rows: list[list[object]], title: str | None = None) -> None:
    t = Table(*columns, title=title, header_style="bold")
    for row in rows:
        t.add_row(*("" if v is None else str(v) for v in row))
    out.print(t)


TONE_STYLE = {"ok": "green", "bad": "red", "off": "dim", "busy": "cyan", "wait": "magenta", "none": "white"}


def status(value: str | None) -> str:
    """A run's status in the managers' vocabulary, as the console shows it."""
    label = status_label(value)
    return f"[{TONE_STYLE[label.tone]}]{label.icon} {label.word}[/]"


def ago(ts: datetime | None) -> str:
    if ts is None:
        return "-"
    seconds = int((datetime.now(UTC) - ts).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return f"{max(seconds, 0)}s ago"
