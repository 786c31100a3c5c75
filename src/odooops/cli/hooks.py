"""`odooops hook …`: a project's webhook, its deliveries, and the
post-receive hook that makes a plain git server deliver like GitHub."""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path
from typing import Annotated

import httpx
import typer

from odooops import runtime
from odooops.cli.context import JsonFlag, ago, out, print_json, run, table
from odooops.cli.remote import project_path
from odooops.cli.serve import PublicUrl, server_settings
from odooops.errors import InvalidInput, OpsError
from odooops.hooks.events import ZERO
from odooops.hooks.verify import hook_secret, signed_headers
from odooops.managers.hooks import Hooks
from odooops.settings import public_url
from odooops.web import HOOK_HOSTS

app = typer.Typer(help="Git host webhooks.", no_args_is_help=True)
Project = Annotated[str, typer.Argument(help="The project, as ORG/PROJECT.")]


def _urls(base: str, hook_id: object) -> dict[str, str]:
    return {host: f"{base}/api/v1/hooks/{host}/{hook_id}" for host in HOOK_HOSTS}


@app.command("create")
def create(project: Project, public: PublicUrl = None) -> None:
    """Create the project's webhook, or give it a new secret.

    Prints the URL each git host posts to and the secret, shown this once.
    Logged in to a remote server, that server says its URLs."""
    s = server_settings(None, None, public)

    def locally(hook: dict) -> dict:
        return {"urls": _urls(public_url(s), hook["id"]),
                "secret": hook_secret(runtime.secret_key(s).reveal(), hook["id"], hook["salt"])}

    made = run(lambda db, actor: Hooks(db, actor).rotate(project),
               remote=lambda api: api.post(f"{project_path(project)}/hook"))
    remote = "secret" in made  # the server's answer, with its own URLs
    hook = made if remote else locally(made)
    out.print("payload URLs (content type application/json; events: push and pull requests):")
    for host, url in hook["urls"].items():
        print(f"  {host + ':':<8} {url}")  # whole, whatever the terminal's width
    if not remote and not s.public_url:
        out.print("  (this server's own address: set ODOOOPS_PUBLIC_URL if git hosts reach it elsewhere)",
                  soft_wrap=True)
    out.print("the secret, shown only now:")
    print(hook["secret"])


@app.command("deliveries")
def deliveries(
    project: Project,
    limit: Annotated[int, typer.Option(min=1, max=500, help="How many, newest first.")] = 20,
    as_json: JsonFlag = False,
) -> None:
    """List what came to a project's webhook, and what it did."""
    rows = run(lambda db, actor: Hooks(db, actor).deliveries(project, limit),
               remote=lambda api: api.get(f"{project_path(project)}/deliveries", limit=limit))
    if as_json:
        return print_json(rows)
    table(["id", "host", "event", "received", "status", "run", "outcome"],
          [[r["id"], r["host"], r["event"], ago(r["received_at"]), r["status"], r["run_id"], r["outcome"]]
           for r in rows], wrap=("outcome",))


@app.command("post-receive")
def post_receive(
    url: Annotated[str, typer.Argument(help="The hook's GitHub payload URL (…/api/v1/hooks/github/ID).")],
    secret_file: Annotated[Path, typer.Option(help="File holding the hook's secret.")],
    repository: Annotated[str | None, typer.Option(help="The repository's clone URL, as the project knows it.")] = None,
) -> None:
    """Deliver pushes to a plain git server as GitHub would.

    Use as a bare repository's hooks/post-receive: reads git's
    `<old> <new> <ref>` lines from stdin and delivers each as a signed
    GitHub push event."""
    try:
        secret = secret_file.read_text().strip()
    except OSError as exc:
        raise InvalidInput(f"cannot read the secret: {exc}") from exc
    for line in sys.stdin:
        before, after, ref = line.split()
        payload = {"ref": ref, "before": before, "after": after, "created": before == ZERO,
                   "deleted": after == ZERO, "repository": {"clone_url": repository or str(Path.cwd())}}
        body = json.dumps(payload).encode()
        headers = signed_headers("github", secret, body, "push", str(uuid.uuid4()))
        try:
            response = httpx.post(url, content=body, headers={**headers, "Content-Type": "application/json"},
                                  timeout=10)
        except httpx.HTTPError as exc:
            raise OpsError(f"OdooOps did not answer for {ref}: {exc}") from exc
        if response.status_code != 200:
            raise OpsError(f"OdooOps refused {ref}: {response.status_code} {response.text}")
        out.print(f"odooops: {ref} delivered")
