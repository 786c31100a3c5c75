"""`odooops mail-catcher`, and the catcher `up` and `serve` start beside the HTTP server."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator
from typing import Annotated

import typer

from odooops import runtime
from odooops.cli.context import err, out, settings
from odooops.db import Database
from odooops.mail.catcher import Catcher, ListenFailed
from odooops.settings import Settings, host_port

Address = Annotated[str | None, typer.Option(
    "--address", envvar="ODOOOPS_MAIL_CATCHER_ADDRESS", metavar="HOST:PORT", show_default="127.0.0.1:8625",
    help="Address the SMTP server listens on.")]


def mail_catcher(address: Address = None) -> None:
    """Run the mail catcher alone, until Ctrl-C.

    An SMTP server that keeps every mail non-production environments send,
    attributed by their credentials: for a host other than the control
    plane's (`up` and `serve` run one themselves)."""
    if address is not None:
        host_port(address, "--address")
    s = settings().with_overrides(mail_catcher_address=address)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    async def main() -> None:
        await runtime.prepare(s)
        async with runtime.database(s) as db, Catcher(db, s, runtime.secret_key(s)) as catcher:
            out.print(f"mail catcher: SMTP on {catcher.host}:{catcher.port}; Ctrl-C to stop", soft_wrap=True)
            stop = asyncio.Event()
            for sig in (signal.SIGINT, signal.SIGTERM):
                asyncio.get_running_loop().add_signal_handler(sig, stop.set)
            await stop.wait()
        out.print("stopped the mail catcher")

    asyncio.run(main())


@contextlib.asynccontextmanager
async def alongside(s: Settings, db: Database) -> AsyncIterator[Catcher | None]:
    """The catcher for the time of `up` or `serve`; None when its address is
    taken (by another control plane process of this host, whose catcher then
    serves: they share one database), which is said and not fatal."""
    catcher = Catcher(db, s, runtime.secret_key(s))
    try:
        await catcher.start()
    except ListenFailed as exc:
        err.print(f"[yellow]mail catcher not started[/]: {exc}", soft_wrap=True)
        yield None
        return
    try:
        yield catcher
    finally:
        await catcher.stop()
