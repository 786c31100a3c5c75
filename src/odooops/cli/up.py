"""`odooops up`: the control plane, until Ctrl-C."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from odooops import __version__, demo, runtime
from odooops.cli import serve
from odooops.cli.context import out, settings
from odooops.cli.runner import stop_on_signals
from odooops.db import Actor, embedded
from odooops.managers.projects import Projects


def up(demo_project: Annotated[bool, typer.Option("--demo", envvar="ODOOOPS_DEMO", help="Also create a demo project.")] = False) -> None:
    """Start the control plane: database, migrations, and the services of
    OdooOps; stay up until Ctrl-C."""
    s = settings()
    try:
        asyncio.run(_serve(demo_project))
    finally:
        if s.database_url is None and embedded.stop(s.data_dir):
            out.print("stopped the embedded PostgreSQL")


async def _serve(demo_project: bool) -> None:
    s = settings()
    kind = "external" if s.database_url else f"embedded in {s.data_dir}"
    with out.status("starting the database and migrating…"):
        await runtime.prepare(s, always=True)
    async with runtime.database(s) as db:
        if demo_project:
            name = await demo.create(db, s.data_dir)
            out.print(f"demo project [bold]{name}[/] is ready: [bold]odooops branch list {name}[/]")
        projects = await Projects(db, Actor.service()).list_all()
        out.print(f"[green]●[/] OdooOps {__version__} is up — PostgreSQL {kind}, schema migrated, "
                  f"{len(projects)} project(s).")
        out.print("  database: [bold]odooops db url[/] prints its URL (it holds the owner's password)")
        worker = runtime.runner(s, db)
        http = serve.server(s, db, own_signals=False)
        http_task = asyncio.create_task(http.serve())
        await serve.announce(s, db)
        out.print(f"  runner: {s.runner_concurrency} slot(s) for {', '.join(s.runner_kinds)} runs "
                  f"({worker.executor.name} executor{', sandboxed' if getattr(worker.executor, 'sandboxed', False) else ''})")
        out.print("  Press Ctrl-C to stop.")
        try:
            await worker.run(stop_on_signals(worker))
            out.print("stopped the runner")
        finally:
            http.should_exit = True
            await http_task
