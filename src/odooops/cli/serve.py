"""`odooops serve` and `odooops token …`."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Annotated

import typer
import uvicorn

from odooops import runtime
from odooops.api import accesslog
from odooops.cli.context import ago, out, run, settings, table
from odooops.db import Actor
from odooops.errors import InvalidInput
from odooops.managers.tokens import Tokens
from odooops.managers.users import Users

token_app = typer.Typer(help="Personal API tokens.", no_args_is_help=True)


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self):  # inside `up`, Ctrl-C belongs to the runner, which stops us
        yield


def server(s, db, *, own_signals: bool = True) -> uvicorn.Server:
    """The HTTP server on an open database, to run in the caller's event loop."""
    from odooops.api.app import create_app

    config = uvicorn.Config(create_app(s, db), host=s.host, port=s.port, log_level="warning", lifespan="on",
                            proxy_headers=True, forwarded_allow_ips=s.forwarded_allow_ips)
    return (uvicorn.Server if own_signals else _Server)(config)


async def announce(s, db) -> None:
    """Where to point a browser; on first run, the link that makes the first owner."""
    from odooops.console.first_run import (
        setup_path,  # the console's templates load only when serving
    )

    base = f"http://{s.host}:{s.port}"
    out.print(f"  console: {base}/   api: {base}/api/v1 (docs at /api/v1/docs)")
    if not await Users(db, Actor.service()).any_exist():
        link = base + setup_path(runtime.secret_key(s).reveal())
        out.print("  [bold]first run[/]: no one can sign in yet. Create the first owner at")
        out.print(f"    [bold]{link}[/]", soft_wrap=True)  # whole, so a terminal can open it


def serve(
    host: Annotated[str | None, typer.Option(envvar="ODOOOPS_HOST", help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option(envvar="ODOOOPS_PORT", help="Port to listen on.")] = None,
) -> None:
    """Serve the web console (/) and the HTTP API (/api/v1, docs at
    /api/v1/docs) until Ctrl-C."""
    s = settings().with_overrides(host=host, port=port)
    accesslog.enable()

    async def main() -> None:
        await runtime.prepare(s)
        async with runtime.database(s) as db:
            await announce(s, db)
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
def token_list(user: Annotated[str | None, typer.Option(help="Email of the user (the operator names one).")] = None) -> None:
    """List a user's tokens (never their values)."""
    async def work(db, actor):
        from odooops.managers import lookup

        if user is None and actor.user_id is None:
            raise InvalidInput("name the user with --user")
        async with db.transaction(actor) as conn:
            user_id = actor.user_id if user is None else (await lookup.user(conn, user))["id"]
        return await Tokens(db, actor).list_all(user_id)

    rows = run(work, remote=None if user else lambda api: api.get("/tokens"))
    table(["id", "name", "scopes", "expires", "last used", "revoked"],
          [[str(t["id"])[:8], t["name"], ",".join(t["scopes"]), t["expires_at"], ago(t["last_used_at"]),
            "yes" if t.get("revoked_at") or t.get("revoked") else ""] for t in rows])
