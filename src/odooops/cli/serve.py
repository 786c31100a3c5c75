"""`odooops serve` and `odooops token …`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Annotated

import typer
import uvicorn

from odooops import runtime
from odooops.api import accesslog
from odooops.cli import mail
from odooops.cli.context import JsonFlag, ago, out, print_json, run, settings, table
from odooops.db import Actor, Database
from odooops.errors import InvalidInput
from odooops.managers.tokens import Tokens
from odooops.managers.users import Users
from odooops.settings import Settings, checked_url, public_url

token_app = typer.Typer(help="Personal API tokens.", no_args_is_help=True)

# The options of the HTTP server, which `serve` and `up` both take.
Host = Annotated[str | None, typer.Option(envvar="ODOOOPS_HOST", metavar="ADDRESS", show_default="127.0.0.1",
                                          help="Address to listen on.")]
Port = Annotated[int | None, typer.Option(min=1, max=65535, envvar="ODOOOPS_PORT", metavar="PORT",
                                          show_default="8600", help="Port to listen on.")]
PublicUrl = Annotated[str | None, typer.Option(
    "--public-url", envvar="ODOOOPS_PUBLIC_URL", metavar="URL", show_default="http://HOST:PORT",
    help="Address people and git hosts reach the server at (as in https://ops.example.com), "
         "in the links and webhook URLs shown.")]


def server_settings(host: str | None, port: int | None, public: str | None) -> Settings:
    """The settings, with the server's options given on the command line."""
    return settings().with_overrides(host=host, port=port, public_url=checked_url(public, "--public-url"))


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self):  # inside `up`, Ctrl-C belongs to the runner, which stops us
        yield


def server(s: Settings, db: Database, *, own_signals: bool = True) -> uvicorn.Server:
    """The HTTP server on an open database, to run in the caller's event loop."""
    from odooops.api.app import create_app
    from odooops.environments.router import Router
    from odooops.environments.routing import DatabaseRoutes, own_hosts

    logging.getLogger("httpx").setLevel(logging.WARNING)  # not a line per proxied request
    # the console and the API on this server's own names; environments' hosts routed to their Odoo
    app = Router(create_app(s, db), DatabaseRoutes(db, s, runtime.secret_key(s)), s.environment_domain, own_hosts(s))
    config = uvicorn.Config(app, host=s.host, port=s.port, log_level="warning", lifespan="on",
                            proxy_headers=True, forwarded_allow_ips=s.forwarded_allow_ips)
    return (uvicorn.Server if own_signals else _Server)(config)


def say(line: str) -> None:
    """One line of the startup banner: wrapped by a terminal, never cut in a log file."""
    out.print(line, soft_wrap=not out.is_terminal)


async def announce(s: Settings, db: Database) -> None:
    """Where to point a browser; on first run, the link that makes the first owner."""
    from odooops.console.first_run import (
        setup_path,  # the console's templates load only when serving
    )

    base = public_url(s)
    say(f"  console: {base}/   API: {base}/api/v1 (its docs at {base}/api/v1/docs)")
    if not await Users(db, Actor.service()).any_exist():
        say("  [bold]first run[/]: nobody has an account yet. Open this link to create the first one (the owner):")
        out.print(f"    [bold]{base}{setup_path(runtime.secret_key(s).reveal())}[/]", soft_wrap=True)  # whole


def serve(host: Host = None, port: Port = None, public: PublicUrl = None) -> None:
    """Serve the web console and the HTTP API until Ctrl-C.

    The console is at /, the API at /api/v1 and its docs at /api/v1/docs.
    No runner: start one with `odooops runner`, or use `odooops up`."""
    s = server_settings(host, port, public)
    accesslog.enable()

    async def main() -> None:
        await runtime.prepare(s)
        async with runtime.database(s) as db, mail.alongside(s, db) as catcher:
            await announce(s, db)
            if catcher is not None:
                say(f"  mail catcher: SMTP on {catcher.host}:{catcher.port}")
            await server(s, db).serve()

    asyncio.run(main())


@token_app.command("create")
def token_create(
    name: str,
    user: Annotated[str | None, typer.Option(help="Email of the user it is for (the operator names one).")] = None,
    scopes: Annotated[str, typer.Option(help="read, or read,write.")] = "read",
    expires_in_days: Annotated[int | None, typer.Option(help="Days until it expires (default: never).")] = None,
) -> None:
    """Create an API token; it is printed once and stored only as a hash."""
    wanted = [x.strip() for x in scopes.split(",") if x.strip()]
    def remotely(api):
        made = api.post("/tokens", {"name": name, "scopes": wanted, "expires_in_days": expires_in_days})
        return made, made["token"]

    row, token = run(lambda db, actor: Tokens(db, actor).create(user, name, wanted, expires_in_days),
                     remote=None if user else remotely)
    out.print(f"token [bold]{row['name']}[/] ({', '.join(row['scopes'])}) — shown this once, keep it safe:")
    print(token)


@token_app.command("list")
def token_list(
    user: Annotated[str | None, typer.Option(help="Email of the user (the operator names one).")] = None,
    as_json: JsonFlag = False,
) -> None:
    """List a user's tokens (never their values)."""
    async def work(db, actor):
        from odooops.managers import lookup

        if user is None and actor.user_id is None:
            raise InvalidInput("name the user with --user")
        async with db.transaction(actor) as conn:
            user_id = actor.user_id if user is None else (await lookup.user(conn, user))["id"]
        return await Tokens(db, actor).list_all(user_id)

    rows = run(work, remote=None if user else lambda api: api.get("/tokens"))
    if as_json:
        return print_json(rows)
    table(["id", "name", "scopes", "expires", "last used", "revoked"],
          [[str(t["id"]), t["name"], ",".join(t["scopes"]), t["expires_at"], ago(t["last_used_at"]),
            "yes" if t.get("revoked_at") or t.get("revoked") else ""] for t in rows])
