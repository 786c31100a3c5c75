"""The `odooops` command."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from odooops import __version__
from odooops.cli import admin, db, environments, hooks, mail, metrics, remote, runner, serve, stages, tests, up, users
from odooops.cli.context import err, set_settings
from odooops.errors import OpsError
from odooops.settings import Secret, Settings

app = typer.Typer(
    help="OdooOps: every branch of an Odoo project an environment, every push built, tested and deployed.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        print(f"odooops {__version__}")
        raise typer.Exit()


@app.callback()
def configure(
    data_dir: Annotated[Path | None, typer.Option(
        envvar="ODOOOPS_DATA_DIR", metavar="DIR",
        help="Data directory (embedded PostgreSQL, secrets, artifacts).")] = None,
    database_url: Annotated[str | None, typer.Option(
        envvar="ODOOOPS_DATABASE_URL", metavar="URL", show_default=False,
        help="PostgreSQL URL of the owner role; unset: embedded server.")] = None,
    as_user: Annotated[str | None, typer.Option(
        "--as", envvar="ODOOOPS_AS", metavar="EMAIL", help="Act as this user, under row-level security.")] = None,
    version: Annotated[bool, typer.Option(
        "--version", callback=_version, is_eager=True, help="Print the version.")] = False,
) -> None:
    set_settings(Settings.from_env().with_overrides(
        data_dir=data_dir,
        database_url=Secret(database_url) if database_url else None,
        acting_as=as_user,
    ))


app.add_typer(db.app, name="db")
app.add_typer(admin.user_app, name="user")
app.add_typer(admin.org_app, name="org")
app.add_typer(admin.member_app, name="member")
app.add_typer(admin.project_app, name="project")
app.add_typer(admin.branch_app, name="branch")
app.add_typer(admin.build_app, name="build")
app.add_typer(admin.run_app, name="run")
app.add_typer(environments.app, name="env")
app.add_typer(environments.router_app, name="router")
app.add_typer(environments.domain_app, name="domain")
app.add_typer(stages.staging_app, name="staging")
app.command("projects")(admin.project_list)
app.command("builds")(admin.builds)
app.command("logs")(admin.logs)
app.command("up")(up.up)
app.command("runner")(runner.runner)
app.command("serve")(serve.serve)
app.command("mail-catcher")(mail.mail_catcher)
app.add_typer(serve.token_app, name="token")
app.add_typer(hooks.app, name="hook")
app.command("login")(remote.login)
app.command("logout")(remote.logout)
app.add_typer(metrics.ingest_token_app, name="ingest-token")
app.command("runs")(runner.runs)
app.command("workers")(runner.workers)
admin.run_app.command("authorize")(runner.authorize)
admin.run_app.command("tests")(tests.run_tests)
admin.branch_app.command("updates")(stages.branch_updates)
admin.branch_app.command("copies")(stages.branch_copies)
admin.user_app.command("set-password")(users.set_password)
admin.user_app.command("reset-link")(users.reset_link)


def main() -> None:
    try:
        app()
    except OpsError as exc:
        detail = f" ({exc.detail})" if exc.detail else ""  # the operator's own command: the database's words help
        err.print(f"[red]error:[/] {escape(exc.message + detail)}", soft_wrap=True)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
