"""`odooops staging refresh`: a new snapshot of production for staging builds;
`odooops branch updates` and `branch copies`: production's updates in place
(with their reverts) and its pre-update copies. Locally or over the API."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.text import Text

from odooops.cli.context import TONE_STYLE, JsonFlag, ago, out, print_json, run, table
from odooops.cli.remote import project_path
from odooops.managers.environments import Environments
from odooops.managers.updates import UPDATES_MAX, Updates, copies_view, update_view
from odooops.managers.vocabulary import labelled, update_label

staging_app = typer.Typer(help="Staging data: refresh the snapshot of production.",
                          no_args_is_help=True)

Project = Annotated[str, typer.Argument(help="The project, as ORG/PROJECT.")]
Branch = Annotated[str, typer.Argument(help="The branch (production's has updates and copies).")]


def _status(value: str) -> Text:
    label = update_label(value)
    return Text(f"{label.icon} {label.word}", style=TONE_STYLE[label.tone])


def _mib(value: int | None) -> str:
    return "" if value is None else f"{value / 1024**2:.0f} MiB"


def _seconds(value: float | None) -> str:
    return "" if value is None else f"{value:.1f} s"


@staging_app.command("refresh")
def staging_refresh(project: Project) -> None:
    """Take a new snapshot of production for staging builds to clone (those
    who may operate production). Production pauses a few seconds."""
    async def local(db, actor):
        project_id = await Environments(db, actor).project_id(project)
        return labelled(await Updates(db, actor).refresh_snapshot(project_id))
    snapshot = run(local, remote=lambda api: api.post(f"{project_path(project)}/staging/refresh"))
    out.print(f"snapshot run [bold]{snapshot['id']}[/] of {project}'s production is {snapshot['status_label'].lower()}"
              f": staging builds clone it once taken (odooops logs {snapshot['id']})")


def branch_updates(project: Project, branch: Branch,
                   limit: Annotated[int, typer.Option(min=1, max=UPDATES_MAX, help="How many, newest first.")] = 10,
                   as_json: JsonFlag = False) -> None:
    """A branch's updates in place, newest first: the build, its status
    (Updated, Reverted, …), the modules updated and installed, how long the
    maintenance page showed, and why a failed one was reverted."""
    async def local(db, actor):
        branch_id = await Environments(db, actor).branch_id(project, branch)
        return [update_view(u) for u in await Updates(db, actor).of_branch(branch_id, limit)]
    rows = run(local, remote=lambda api: api.get(f"{project_path(project)}/branches/{branch}/updates", limit=limit))
    if as_json:
        return print_json(rows)
    table(["build", "status", "updated", "installed", "when", "maintenance", "why"],
          [[u["build_id"], _status(u["status"]), ", ".join(u["updated_modules"]), ", ".join(u["installed_modules"]),
            ago(u["finished_at"] or u["created_at"]), _seconds(u["maintenance_seconds"]),
            ": ".join(p for p in (u["failed_step"], u["detail"]) if p)] for u in rows],
          wrap=("updated", "installed", "why"))


def branch_copies(project: Project, branch: Branch, as_json: JsonFlag = False) -> None:
    """A branch's pre-update copies (production's: what a failed update
    reverts to), with their size and expiry, and production's snapshot."""
    async def local(db, actor):
        envs = Environments(db, actor)
        branch_id = await envs.branch_id(project, branch)
        updates = Updates(db, actor)
        return copies_view(await updates.copies(branch_id), await updates.snapshot(await envs.project_id(project)))
    found = run(local, remote=lambda api: api.get(f"{project_path(project)}/branches/{branch}/copies"))
    if as_json:
        return print_json(found)
    rows = [["snapshot", found["snapshot"]]] if found["snapshot"] else []
    rows += [["pre-update", c] for c in found["copies"]]
    table(["kind", "database", "of build", "taken", "database size", "filestore", "expires"],
          [[kind, c["database"], c["build_id"] or "", ago(c["created_at"]), _mib(c["size_bytes"]),
            _mib(c["filestore_bytes"]), c["expires_at"].strftime("%Y-%m-%d %H:%M") if c.get("expires_at") else ""]
           for kind, c in rows])
    if not found["snapshot"]:
        out.print("no snapshot of production yet: the next staging build takes one")
