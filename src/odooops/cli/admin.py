"""The local admin verbs: people, orgs, projects, branches, builds and logs."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Annotated

import typer
from rich.text import Text

from odooops import repos
from odooops.cli.context import JsonFlag, ago, err, out, print_json, result, run, status, table
from odooops.cli.context import settings as cli_settings
from odooops.cli.remote import project_path
from odooops.cli.users import PasswordStdin, read_password
from odooops.errors import InvalidInput
from odooops.managers.branches import Branches
from odooops.managers.lookup import split_project_ref
from odooops.managers.orgs import Orgs
from odooops.managers.projects import Projects, masked
from odooops.managers.runs import Runs
from odooops.managers.users import Users
from odooops.managers.vocabulary import labelled
from odooops.runtime import secret_box

user_app = typer.Typer(help="Manage users.", no_args_is_help=True)
org_app = typer.Typer(help="Manage orgs (tenants).", no_args_is_help=True)
member_app = typer.Typer(help="Manage who belongs to an org or project.", no_args_is_help=True)
project_app = typer.Typer(help="Manage projects.", no_args_is_help=True)
branch_app = typer.Typer(help="Manage a project's branches and their stages.", no_args_is_help=True)
build_app = typer.Typer(help="Start builds.", no_args_is_help=True)
run_app = typer.Typer(help="Act on runs.", no_args_is_help=True)

Project = Annotated[str, typer.Argument(help="The project, as ORG/PROJECT.")]
NoCheck = Annotated[bool, typer.Option(
    "--no-check", help="Do not ask the repository first (git ls-remote, 15 s at most): for one not reachable yet.")]


@user_app.command("create")
def user_create(
    email: str,
    name: Annotated[str, typer.Option(help="Display name.")] = "",
    password_stdin: PasswordStdin = False,
    no_password: Annotated[bool, typer.Option(
        "--no-password",
        help="Make an account with no password yet: `user set-password` or `user reset-link` give it one later.",
    )] = False,
) -> None:
    """Create a user, with the password given on standard input.

    On a terminal it is asked twice, else read from the first line of
    standard input. An empty password creates nothing: --no-password makes
    an account without one."""
    password = None if no_password else read_password(
        password_stdin, "pipe it in as the first line, or give --no-password for an account without one")
    user = run(lambda db, actor: Users(db, actor).create(email, name, password))
    out.print(f"created user [bold]{user['email']}[/] ({user['id']})")


@user_app.command("list")
def user_list(as_json: JsonFlag = False) -> None:
    """List the users you can see."""
    users = run(lambda db, actor: Users(db, actor).list_all())
    if as_json:
        return print_json(users)
    table(["email", "name", "active", "created"],
          [[u["email"], u["name"], u["is_active"], ago(u["created_at"])] for u in users], wrap=("name",))


@org_app.command("create")
def org_create(
    slug: str,
    name: Annotated[str | None, typer.Option(help="Display name (default: the slug).")] = None,
    owner: Annotated[str | None, typer.Option(help="Email of the user who owns the org.")] = None,
) -> None:
    """Create an org."""
    org = run(lambda db, actor: Orgs(db, actor).create(slug, name, owner),
              remote=None if owner else lambda api: api.post("/orgs", {"slug": slug, "name": name}))
    out.print(f"created org [bold]{org['slug']}[/]")


@org_app.command("list")
def org_list(as_json: JsonFlag = False) -> None:
    """List orgs."""
    orgs = run(lambda db, actor: Orgs(db, actor).list_all(), remote=lambda api: api.get("/orgs"))
    if as_json:
        return print_json(orgs)
    table(["org", "name", "projects", "created"],
          [[o["slug"], o["name"], o["project_count"], ago(o["created_at"])] for o in orgs], wrap=("name",))


@org_app.command("allow-path")
def org_allow_path(org: str, path: Annotated[str, typer.Argument(help="A folder inside ODOOOPS_REPO_ROOTS.")]) -> None:
    """Let an org's projects use the repositories in a folder.

    The folder, of this host, must lie inside ODOOOPS_REPO_ROOTS. The
    operator only."""
    row = run(lambda db, actor: Orgs(db, actor).allow_path(org, path, repos.Host.of(cli_settings())))
    out.print(f"projects of {org} may use local repositories inside [bold]{row['path']}[/]")


@org_app.command("disallow-path")
def org_disallow_path(org: str, path: str) -> None:
    """Take back a folder given with allow-path.

    The projects whose repositories are inside it no longer build."""
    run(lambda db, actor: Orgs(db, actor).disallow_path(org, path))
    out.print(f"projects of {org} may no longer use {path}")


@org_app.command("paths")
def org_paths(org: str, as_json: JsonFlag = False) -> None:
    """List the folders an org's projects may use repositories in."""
    rows = run(lambda db, actor: Orgs(db, actor).paths(org))
    if as_json:
        return print_json(rows)
    table(["path", "given"], [[r["path"], ago(r["created_at"])] for r in rows])


@member_app.command("add")
def member_add(
    org: str,
    email: str,
    role: Annotated[str, typer.Option(help="owner, admin, developer or viewer.")] = "developer",
    project: Annotated[str | None, typer.Option(help="Add to this project of the org only (its slug).")] = None,
) -> None:
    """Add someone to an org, or to one project of it, by email.

    An address with no account gets one without a password, as in the API
    and the console."""
    run(lambda db, actor: Orgs(db, actor).add_member(org, email, role, project),
        remote=None if project else lambda api: api.post(f"/orgs/{org}/members", {"email": email, "role": role}))
    where = f"{org}/{project}" if project else org
    out.print(f"{email} is now {role} of {where}")
    out.print(f"without a password yet, they sign in through a link the operator gives them: "
              f"[bold]odooops user reset-link {email}[/]")


@project_app.command("create")
def project_create(
    project: Project,
    repo: Annotated[str, typer.Option(help="URL or path of the git repository.")],
    name: Annotated[str | None, typer.Option(help="Display name (default: the slug).")] = None,
    default_branch: Annotated[str, typer.Option(help="The production branch.")] = "main",
    odoo_version: Annotated[str, typer.Option(help="Odoo version the project runs on.")] = "17.0",
    no_check: NoCheck = False,
) -> None:
    """Create a project from a git repository.

    Its default branch becomes the production branch. The repository must
    first answer git ls-remote and have that branch."""
    org, slug = split_project_ref(project)
    created = run(lambda db, actor: Projects(db, actor).create(
        project, repo, name=name, default_branch=default_branch, odoo_version=odoo_version, check=not no_check),
        remote=lambda api: api.post("/projects", {"org": org, "slug": slug, "repo_url": repo, "name": name,
                                                  "default_branch": default_branch, "odoo_version": odoo_version,
                                                  "check": not no_check}))
    out.print(f"created project [bold]{project}[/] ({created['id']}) with production branch {default_branch}")


@project_app.command("list")
def project_list(
    archived: Annotated[bool, typer.Option(
        "--archived/--no-archived", show_default=False, help="Include archived projects.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """List projects with their last build."""
    projects = run(lambda db, actor: Projects(db, actor).list_all(archived),
                   remote=lambda api: api.get("/projects", include_archived=archived))
    if as_json:
        return print_json(projects)
    if not projects:
        out.print("no projects yet: create one with [bold]odooops project create ORG/PROJECT --repo URL[/]")
        return
    table(["project", "odoo", "branches", "builds", "last build", "when"],
          [[f"{p['org_slug']}/{p['slug']}", p["odoo_version"], p["branch_count"], p["build_count"],
            status(p["last_build_status"]), ago(p["last_build_at"])] for p in projects])


def _parse_value(raw: str) -> object:
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw


def _pairs(items: list[str], what: str) -> dict[str, str]:
    pairs = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InvalidInput(f"{what} are given as NAME=VALUE, not {item!r}")
        pairs[key] = value
    return pairs


@project_app.command("set")
def project_set(
    project: Project,
    settings: Annotated[list[str] | None, typer.Argument(
        metavar="[KEY=VALUE]...", show_default=False,
        help="Settings, e.g. coalesce_seconds=60 cancel_in_progress=true.")] = None,
    env: Annotated[list[str] | None, typer.Option(
        metavar="NAME=VALUE", help="An environment variable of every phase.")] = None,
    secret: Annotated[list[str] | None, typer.Option(
        metavar="NAME", help="A secret environment variable; its value is read from standard input.")] = None,
    unset: Annotated[list[str] | None, typer.Option(help="A setting to remove.")] = None,
) -> None:
    """Change a project's settings.

    Secrets are read from standard input (a hidden prompt on a terminal),
    never from the command line."""
    values: dict = {k: _parse_value(v) for k, v in _pairs(settings or [], "settings").items()}
    if env:
        values["env"] = _pairs(env, "variables")
    if secret:
        values["secret_env"] = {name: _read_secret(name) for name in secret}

    async def work(db, actor):
        manager = Projects(db, actor, secret_box(cli_settings()))
        row = await manager.update_settings(project, values) if values else await manager.get(project)
        for key in unset or []:
            row = await manager.unset_setting(project, key)
        return row

    def remotely(api):
        if unset:
            raise InvalidInput("--unset works on the control plane's own host only")
        return api.patch(project_path(project), {"settings": values}) if values else api.get(project_path(project))

    row = run(work, remote=remotely)
    out.print_json(data=masked(row["settings"]))


def _read_secret(name: str) -> str:
    if sys.stdin.isatty():
        return typer.prompt(f"Value of {name}", hide_input=True)
    value = sys.stdin.readline().rstrip("\n")
    if not value:
        raise InvalidInput(f"no value for secret {name} on standard input")
    return value


@project_app.command("show")
def project_show(project: Project) -> None:
    """A project's details and settings (secrets masked)."""
    p = run(lambda db, actor: Projects(db, actor).get(project), remote=lambda api: api.get(project_path(project)))
    table(["field", "value"],
          [["name", p["name"]], ["repository", p["repo_url"]], ["default branch", p["default_branch"]],
           ["odoo", p["odoo_version"]], ["created", ago(p["created_at"])],
           ["settings", json.dumps(masked(p["settings"]))]], wrap=("value",))


@branch_app.command("add")
def branch_add(
    project: Project,
    name: str,
    stage: Annotated[str, typer.Option(help="production, staging or development.")] = "development",
    no_check: NoCheck = False,
) -> None:
    """Add a branch to a project.

    The repository must first have it (git ls-remote)."""
    run(lambda db, actor: Branches(db, actor).add(project, name, stage, check=not no_check),
        remote=lambda api: api.post(f"{project_path(project)}/branches",
                                    {"name": name, "stage": stage, "check": not no_check}))
    out.print(f"added branch [bold]{name}[/] to {project} as {stage}")


@branch_app.command("list")
def branch_list(project: Project, as_json: JsonFlag = False) -> None:
    """List a project's branches by stage, with their last build."""
    branches = run(lambda db, actor: Branches(db, actor).list_all(project),
                   remote=lambda api: api.get(f"{project_path(project)}/branches"))
    if as_json:
        return print_json(branches)
    table(["branch", "stage", "builds", "last build", "commit", "when"],
          [[b["name"], b["stage"], b["build_count"], status(b["last_build_status"]),
            (b["last_build_commit"] or "")[:10], ago(b["last_build_at"])] for b in branches])


@branch_app.command("archive")
def branch_archive(project: Project, name: str) -> None:
    """Archive a branch, keeping its history.

    It takes no more builds, and its unfinished runs end."""
    run(lambda db, actor: Branches(db, actor).archive(project, name),
        remote=lambda api: api.post(f"{project_path(project)}/branches/{name}/archive"))
    out.print(f"branch [bold]{name}[/] of {project} is archived")


@project_app.command("archive")
def project_archive(project: Project) -> None:
    """Archive a project, keeping its history (owners).

    It takes no more builds, and its unfinished runs end."""
    run(lambda db, actor: Projects(db, actor).archive(project),
        remote=lambda api: api.post(f"{project_path(project)}/archive"))
    out.print(f"project [bold]{project}[/] is archived")


@branch_app.command("set-stage")
def branch_set_stage(project: Project, name: str, stage: str) -> None:
    """Move a branch to another stage (Odoo.sh's rules apply)."""
    run(lambda db, actor: Branches(db, actor).set_stage(project, name, stage),
        remote=lambda api: api.patch(f"{project_path(project)}/branches/{name}", {"stage": stage}))
    out.print(f"branch [bold]{name}[/] is now {stage}")


def _branch_value(key: str, raw: str) -> object:
    """A setting's value as `project set` reads it (JSON, else text); a list
    of modules may also be given as names with commas: odoo_modules=sale,stock."""
    value = _parse_value(raw)
    if key == "odoo_modules" and isinstance(value, str) and value not in ("own", "all"):
        return [name.strip() for name in value.split(",") if name.strip()]
    return value


@branch_app.command("set")
def branch_set(
    project: Project,
    name: str,
    settings: Annotated[list[str], typer.Argument(
        metavar="KEY=VALUE", show_default=False,
        help="Settings, e.g. odoo_modules=sale_custom,stock_custom or odoo_test_tags=/sale_custom")],
) -> None:
    """Change a branch's settings (admins).

    odoo_modules is own (the project's modules), all (with the extra
    repositories') or a list of module names; odoo_test_tags is odoo-bin's
    --test-tags."""
    values = {k: _branch_value(k, v) for k, v in _pairs(settings, "settings").items()}
    row = run(lambda db, actor: Branches(db, actor).set_settings(project, name, values),
              remote=lambda api: api.patch(f"{project_path(project)}/branches/{name}", {"settings": values}))
    out.print_json(data=row["settings"])


@build_app.command("trigger")
def build_trigger(
    project: Project,
    branch: str,
    commit: Annotated[str | None, typer.Option(
        help="Commit to build (default: the branch head in the repository).")] = None,
) -> None:
    """Queue a build of a branch."""
    def remotely(api):
        queued = api.post(f"{project_path(project)}/branches/{branch}/builds", {"commit": commit} if commit else None)
        return api.get(f"/runs/{queued['build_id']}")

    r = run(lambda db, actor: Runs(db, actor).trigger_build(project, branch, commit), remote=remotely)
    out.print(f"queued build [bold]{r['id']}[/] of {branch} at {r['commit_sha'][:10]} ({r['status']})")


def builds(
    project: Project,
    branch: Annotated[str | None, typer.Option(help="Only this branch.")] = None,
    before: Annotated[int | None, typer.Option(help="Only builds older than this build id (next page).")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500, help="How many builds.")] = 20,
    as_json: JsonFlag = False,
) -> None:
    """List a project's builds, newest first."""
    rows = run(lambda db, actor: Runs(db, actor).builds(project, branch, before, limit),
               remote=lambda api: api.get(f"{project_path(project)}/builds", branch=branch, before=before, limit=limit))
    if as_json:
        return print_json(rows)
    table(["id", "branch", "commit", "trigger", "status", "result", "queued"],
          [[r["id"], r["branch"], r["commit_sha"][:10], r["trigger"], status(r["status"]), result(r["result"]),
            ago(r["queued_at"] or r["created_at"])] for r in rows])


LEVEL_STYLE = {"debug": "dim", "warning": "yellow", "error": "red", "critical": "bold red"}
FINAL = {"succeeded", "failed", "canceled", "superseded"}


def _print_events(events: list[dict]) -> None:
    for e in events:
        line = f"{e['seq']:>6} {e['ts']:%H:%M:%S} {e['phase'] or '-':<10} {e['message']}"
        out.print(Text(line, style=LEVEL_STYLE.get(e["level"], "")), soft_wrap=True)


async def _follow(runs: Runs, run_id: int, after: int) -> dict:
    """Print lines as they come until the run has ended and all are shown."""
    while True:
        ended = (await runs.get(run_id))["status"] in FINAL
        while events := await runs.logs(run_id, after, 5000):
            _print_events(events)
            after = events[-1]["seq"]
        if ended:
            return await runs.get(run_id)
        await asyncio.sleep(0.2)


def _follow_stream(api, run_id: int, after: int) -> dict:
    """Follow over the API's Server-Sent Events until the run ends."""
    for event, data in api.events(f"/runs/{run_id}/logs/stream", after_seq=after):
        if event == "line":
            _print_events([data])
    return api.get(f"/runs/{run_id}")


def logs(
    run_id: int,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new lines until the run ends.")] = False,
    after: Annotated[int, typer.Option(help="Start after this line number.")] = 0,
    limit: Annotated[int, typer.Option(min=1, max=10000, help="How many lines (without --follow).")] = 1000,
) -> None:
    """Print a run's log."""
    if follow:
        final = run(lambda db, actor: _follow(Runs(db, actor), run_id, after),
                    remote=lambda api: _follow_stream(api, run_id, after))
        err.print(Text.assemble(f"run {run_id} ", status(final["status"]),
                                f": {final['error']}" if final["error"] else ""))
        return
    events = run(lambda db, actor: Runs(db, actor).logs(run_id, after, limit),
                 remote=lambda api: api.get(f"/runs/{run_id}/logs", after_seq=after, limit=limit))
    if not events:
        err.print(f"run {run_id} has no log lines after line {after}")
    _print_events(events)


def _seconds(phase: dict) -> str:
    return f"{phase['status']} in {phase['seconds']} s" if "seconds" in phase else phase["status"]


@run_app.command("show")
def run_show(run_id: int, as_json: Annotated[bool, typer.Option(
        "--json", help="Print the run as JSON instead of a table.")] = False) -> None:
    """A run: its status, result, commit, times, phases and the Odoo sources it built on."""
    async def work(db, actor):
        runs = Runs(db, actor)
        return {**labelled(await runs.get(run_id)), "phases": await runs.phases(run_id)}

    r = run(work, remote=lambda api: api.get(f"/runs/{run_id}"))
    if as_json:
        return print_json(r)
    rows: list[list] = [
        ["run", f"{r['id']} ({r['kind']})"], ["status", status(r["status"])], ["result", result(r["result"])],
        ["commit", r["commit_sha"] or "-"], ["trigger", r["trigger"]],
        ["attempt", f"{r['attempt']}/{r['max_attempts']}"], ["queued", ago(r["created_at"])],
        ["started", ago(r["started_at"])], ["finished", ago(r["finished_at"])]]
    if r["error"]:
        rows.append(["error", r["error"]])
    rows += [[f"source {s['name']}", f"{s['ref']} at {(s.get('commit') or '-')[:12]}  {s.get('url') or ''}".rstrip()]
             for s in r.get("sources") or []]
    rows += [[f"phase {p['name']}", _seconds(p)] for p in r["phases"]]
    table(["field", "value"], rows, wrap=("value",))


@run_app.command("rebuild")
def run_rebuild(run_id: int) -> None:
    """Build the same branch and commit again."""
    r = run(lambda db, actor: Runs(db, actor).rebuild(run_id),
            remote=lambda api: api.get(f"/runs/{api.post(f'/runs/{run_id}/rebuild')['build_id']}"))
    out.print(f"build [bold]{r['id']}[/] of {r['commit_sha'][:10]} is {r['status']}")


@run_app.command("cancel")
def run_cancel(run_id: int) -> None:
    """Cancel a run that has not finished."""
    r = run(lambda db, actor: Runs(db, actor).cancel(run_id), remote=lambda api: api.post(f"/runs/{run_id}/cancel"))
    out.print(f"run {r['id']} is {r['status']}")

