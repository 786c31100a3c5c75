"""`odooops db …`: the database itself."""

from __future__ import annotations

import asyncio

import typer

from odooops import runtime
from odooops.cli.context import err, out, settings, table
from odooops.db import embedded, migrate
from odooops.odoo import envdb

app = typer.Typer(help="Start, migrate and inspect the database.", no_args_is_help=True)


@app.command("migrate")
def migrate_cmd() -> None:
    """Apply pending migrations (and provision the application role)."""
    s = settings()
    owner = runtime.owner_conninfo(s)
    applied = asyncio.run(migrate.migrate(owner))
    # the password may have changed
    asyncio.run(migrate.ensure_app_role(owner, s.app_role, runtime.app_password(s).reveal()))
    asyncio.run(runtime.seal_secrets(s))
    if applied:
        for name in applied:
            out.print(f"[green]applied[/] {name}")
    else:
        out.print("nothing to migrate: the schema is up to date")


@app.command("status")
def status_cmd() -> None:
    """List applied and pending migrations."""
    states = asyncio.run(migrate.status(runtime.owner_conninfo(settings())))
    style = {"applied": "green", "pending": "yellow", "changed": "red"}
    table(["migration", "state", "applied at"],
          [[s.name, f"[{style[s.state]}]{s.state}[/]", s.applied_at.isoformat(" ", "seconds") if s.applied_at else None]
           for s in states])
    if any(s.state == "changed" for s in states):
        err.print("[red]a migration file changed after it was applied[/]")
        raise typer.Exit(1)


@app.command("url")
def url_cmd() -> None:
    """Print the owner role's connection URL, for operators and scripts."""
    print(runtime.display_url(runtime.owner_conninfo(settings())))


@app.command("stop")
def stop_cmd() -> None:
    """Stop the embedded PostgreSQL server (and the environments' one, Odoo's databases)."""
    s = settings()
    if envdb.stop(s):
        out.print("stopped the environments' embedded PostgreSQL")
    if s.database_url is not None:
        err.print("ODOOOPS_DATABASE_URL is set: OdooOps does not run that server and will not stop it")
        raise typer.Exit(1)
    stopped = embedded.stop(s.data_dir)
    out.print("stopped the embedded PostgreSQL" if stopped else "the embedded PostgreSQL is not running")
