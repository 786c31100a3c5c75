"""What every command shares: settings from flags and environment, the
database opened as the right actor, and one way to print."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, TypeVar

import orjson
import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from odooops import runtime
from odooops.db import Actor, Database
from odooops.errors import InvalidInput, OpsError
from odooops.managers import lookup
from odooops.managers.vocabulary import result_label, status_label
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


JsonFlag = Annotated[bool, typer.Option("--json", help="Print the rows as JSON instead of a table.")]
Cell = str | Text | int | float | bool | None
GAP = 2  # spaces between columns
NARROWEST_TEXT = 12  # a column of free text narrower than this reads as a list of words


def print_json(rows: object) -> None:
    """Rows as the managers (or the API) gave them, as JSON on standard output."""
    sys.stdout.write(orjson.dumps(rows, default=str, option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE
                                  | orjson.OPT_NON_STR_KEYS).decode())


def _cell(value: Cell) -> Text:
    """A cell as text, never read as markup: names and reasons are shown as they are."""
    if isinstance(value, Text):
        return value
    return Text("" if value is None else str(value))


def _longest_word(text: Text) -> int:
    return max((len(word) for word in text.plain.split()), default=0)


def table(columns: list[str], rows: list[list[Cell]], wrap: tuple[str, ...] = ()) -> None:
    """Rows under their headers, every value whole. Columns named in `wrap`
    (free text) may wrap between words; the others identify things and never
    wrap. When they cannot fit the terminal, each row is printed as a record."""
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max([len(h), *(c[i].cell_len for c in cells)]) for i, h in enumerate(columns)]
    least = [min(widths[i], max([len(h), NARROWEST_TEXT, *(_longest_word(c[i]) for c in cells)]))
             if h in wrap else widths[i] for i, h in enumerate(columns)]
    if sum(least) + GAP * (len(columns) - 1) > out.width:
        _records(columns, cells)
        return
    t = Table(box=None, header_style="bold", pad_edge=False, padding=(0, GAP // 2))
    for header in columns:
        t.add_column(header, no_wrap=header not in wrap, overflow="fold")
    for row_cells in cells:
        t.add_row(*row_cells)
    out.print(t)


def _records(columns: list[str], cells: list[list[Text]]) -> None:
    """Each row as `header  value` lines, a blank line between rows."""
    label = max(len(h) for h in columns)
    for n, row in enumerate(cells):
        if n:
            out.print()
        for header, value in zip(columns, row, strict=True):
            out.print(Text.assemble((header.ljust(label), "bold"), "  ", value), soft_wrap=True)


TONE_STYLE = {"ok": "green", "bad": "red", "off": "dim", "busy": "cyan", "wait": "magenta", "none": "white"}


def status(value: str | None) -> Text:
    """A run's status in the managers' vocabulary, as the console shows it."""
    label = status_label(value)
    return Text(f"{label.icon} {label.word}", style=TONE_STYLE[label.tone])


def result(value: str | None) -> Text:
    """A build's verdict (ok, warn, ko) as the console says it: OK, Warnings, Errors."""
    label = result_label(value)
    return Text(f"{label.icon} {label.word}", style=TONE_STYLE[label.tone]) if label else Text("-")


def ago(ts: datetime | None) -> str:
    if ts is None:
        return "-"
    seconds = int((datetime.now(UTC) - ts).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return f"{max(seconds, 0)}s ago"
