"""`odooops ingest-token …`: the tokens a project's metrics agents send."""

from __future__ import annotations

import typer

from odooops.cli.context import JsonFlag, ago, out, print_json, run, table
from odooops.managers.ingest_tokens import IngestTokens, token_id

ingest_token_app = typer.Typer(help="Per-project ingest tokens for metrics agents.", no_args_is_help=True)


@ingest_token_app.command("create")
def create(project: str, name: str) -> None:
    """Create an ingest token for ORG/PROJECT.

    It is printed once and stored only as a hash."""
    row, token = run(lambda db, actor: IngestTokens(db, actor).create(project, name))
    out.print(f"ingest token [bold]{row['name']}[/] ({row['id']}) for {project} — shown this once, keep it safe:")
    print(token)


@ingest_token_app.command("list")
def list_(project: str, as_json: JsonFlag = False) -> None:
    """List the ingest tokens of ORG/PROJECT (never their values)."""
    rows = run(lambda db, actor: IngestTokens(db, actor).list_all(project))
    if as_json:
        return print_json(rows)
    table(["id", "name", "created", "last used", "revoked"],
          [[str(t["id"]), t["name"], ago(t["created_at"]), ago(t["last_used_at"]),
            ago(t["revoked_at"]) if t["revoked_at"] else ""] for t in rows])


@ingest_token_app.command("revoke")
def revoke(project: str, token: str) -> None:
    """Revoke an ingest token of ORG/PROJECT by its id.

    Agents using it are refused at once."""
    wanted = token_id(token)
    row = run(lambda db, actor: IngestTokens(db, actor).revoke(project, wanted))
    out.print(f"revoked ingest token {row['name']} ({row['id']})")
