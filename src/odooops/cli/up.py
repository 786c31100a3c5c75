"""`odooops up`: the control plane, until Ctrl-C."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Annotated

import typer

from odooops import __version__, demo, runtime
from odooops.cli import mail, serve
from odooops.cli.context import out
from odooops.cli.runner import stop_on_signals
from odooops.cli.serve import Host, Port, PublicUrl, say
from odooops.db import Actor, Database, embedded
from odooops.managers.projects import Projects
from odooops.odoo import envdb
from odooops.settings import Settings

if TYPE_CHECKING:
    from odooops.mail.catcher import Catcher
    from odooops.runner.worker import Runner


def up(
    demo_project: Annotated[bool, typer.Option(
        "--demo/--no-demo", envvar="ODOOOPS_DEMO", show_default=False, help="Also create a demo project.")] = False,
    host: Host = None,
    port: Port = None,
    public: PublicUrl = None,
) -> None:
    """Start the control plane and stay up until Ctrl-C.

    Starts the database (embedded unless ODOOOPS_DATABASE_URL is set),
    migrates it, and runs the web console, the HTTP API and a runner in one
    process."""
    s = serve.server_settings(host, port, public)
    try:
        asyncio.run(_serve(s, demo_project))
    finally:
        if envdb.stop(s):
            out.print("stopped the environments' embedded PostgreSQL")
        if s.database_url is None and embedded.stop(s.data_dir):
            out.print("stopped the embedded PostgreSQL")


async def _serve(s: Settings, demo_project: bool) -> None:
    with out.status("starting the database and migrating…"):
        await runtime.prepare(s, always=True)
    async with runtime.database(s) as db:
        if demo_project:
            name = await demo.create(db, s.data_dir)
            say(f"demo project [bold]{name}[/] is ready: [bold]odooops branch list {name}[/]")
        worker = runtime.runner(s, db)
        http = serve.server(s, db, own_signals=False)
        http_task = asyncio.create_task(http.serve())
        async with mail.alongside(s, db) as catcher:
            await _banner(s, db, worker, catcher)
            try:
                await worker.run(stop_on_signals(worker))
                out.print("stopped the runner")
            finally:
                http.should_exit = True
                await http_task


async def _banner(s: Settings, db: Database, worker: Runner, catcher: Catcher | None) -> None:
    """What is up, where to open it, and how to stop it."""
    kind = "external" if s.database_url else f"embedded in {s.data_dir}"
    projects = await Projects(db, Actor.service()).list_all()
    say(f"[green]●[/] OdooOps {__version__} is up — PostgreSQL {kind}, schema migrated, "
        f"{len(projects)} project(s).")
    await serve.announce(s, db)
    sandboxed = ", sandboxed" if getattr(worker.executor, "sandboxed", False) else ""
    say(f"  runner: {s.runner_concurrency} slot(s) for {', '.join(s.runner_kinds)} runs "
        f"({worker.executor.name} executor{sandboxed})")
    if catcher is not None:
        say(f"  mail catcher: SMTP on {catcher.host}:{catcher.port}, for non-production environments' mail")
    say("  database: [bold]odooops db url[/] prints its address for psql and other tools "
        "(keep it to yourself: the password is in it)")
    say("  Press Ctrl-C to stop.")
