"""`odooops env`: a project's environments, start/stop/restart, Connect as;
`odooops router nginx`: the routing table as nginx configuration."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Annotated

import typer

from odooops.cli.context import JsonFlag, ago, out, print_json, run, table
from odooops.cli.context import settings as cli_settings
from odooops.cli.remote import project_path
from odooops.environments import nginx
from odooops.environments.routing import checked_domain, described, environment_url
from odooops.errors import NotFound
from odooops.managers.environments import Environments

app = typer.Typer(help="A project's running environments.", no_args_is_help=True)
router_app = typer.Typer(help="Put a real proxy in front of the environments.", no_args_is_help=True)

Project = Annotated[str, typer.Argument(help="The project, as ORG/PROJECT.")]
Branch = Annotated[str, typer.Argument(help="The branch whose environment it is.")]


def _size(value: int | None) -> str:
    return f"{value / 1024**2:.0f} MiB" if value else ""


@app.command("list")
def env_list(project: Project, as_json: JsonFlag = False) -> None:
    """The project's environments: status, health, URL and the build each serves."""
    async def local(db, actor):
        envs = Environments(db, actor)
        return [described(cli_settings(), e) for e in await envs.of_project(await envs.project_id(project))]
    rows = run(local, remote=lambda api: api.get(f"{project_path(project)}/environments"))
    if as_json:
        return print_json(rows)
    table(["branch", "stage", "status", "health", "url", "build", "up since", "last request", "memory"],
          [[e["branch"], e["stage"], e["status"], e["health"] or "", e["url"], e["build_id"] or "",
            ago(e["started_at"]) if e["status"] == "running" else "", ago(e["last_request_at"]),
            _size(e["memory_bytes"])] for e in rows])


def _control(project: str, branch: str, action: str) -> None:
    async def local(db, actor):
        envs = Environments(db, actor)
        branch_id = await envs.branch_id(project, branch)
        await envs.control(branch_id, action)
        return described(cli_settings(), await envs.of_branch(branch_id) or {})
    row = run(local, remote=lambda api: api.post(f"{project_path(project)}/branches/{branch}/environment/{action}"))
    out.print(f"environment of [bold]{branch}[/]: {action} asked; it is {row['status']} at {row['url']}")


@app.command("start")
def env_start(project: Project, branch: Branch) -> None:
    """Start a stopped, crashed or sleeping environment."""
    _control(project, branch, "start")


@app.command("stop")
def env_stop(project: Project, branch: Branch) -> None:
    """Stop an environment (its database stays)."""
    _control(project, branch, "stop")


@app.command("restart")
def env_restart(project: Project, branch: Branch) -> None:
    """Start a new server and swap to it once healthy."""
    _control(project, branch, "restart")


@app.command("connect")
def env_connect(project: Project, branch: Branch,
                login: Annotated[str, typer.Option(help="The Odoo user to open it as.")] = "admin") -> None:
    """Print a single-use link (valid a minute) that opens the environment as
    an Odoo user without its password (project admins)."""
    async def local(db, actor):
        envs = Environments(db, actor)
        branch_id = await envs.branch_id(project, branch)
        token = await envs.connect_token(branch_id, login)
        row = await envs.of_branch(branch_id)
        return {"url": f"{environment_url(cli_settings(), row['label'] if row else '')}odooops/connect?token={token}"}
    answer = run(local, remote=lambda api: api.post(f"{project_path(project)}/branches/{branch}/environment/connect",
                                                    {"login": login}))
    print(answer["url"])


domain_app = typer.Typer(help="Custom domains of a branch's environment.", no_args_is_help=True)


@domain_app.command("list")
def domain_list(project: Project, branch: Branch) -> None:
    """The branch's custom domains."""
    async def local(db, actor):
        envs = Environments(db, actor)
        return await envs.domains(await envs.branch_id(project, branch))
    for row in run(local, remote=lambda api: api.get(f"{project_path(project)}/branches/{branch}/domains")):
        print(row["domain"])


@domain_app.command("add")
def domain_add(project: Project, branch: Branch, domain: Annotated[str, typer.Argument(help="e.g. shop.example.com")]
               ) -> None:
    """Make the branch's environment answer at DOMAIN too (project admins);
    point its DNS at the router, or at the proxy in front."""
    async def local(db, actor):
        envs = Environments(db, actor)
        return await envs.add_domain(await envs.branch_id(project, branch), checked_domain(cli_settings(), domain))
    row = run(local, remote=lambda api: api.post(f"{project_path(project)}/branches/{branch}/domains",
                                                 {"domain": domain}))
    out.print(f"{row['domain']} now reaches the environment of {branch}")


@domain_app.command("remove")
def domain_remove(project: Project, branch: Branch, domain: str) -> None:
    """Stop answering at DOMAIN."""
    async def local(db, actor):
        envs = Environments(db, actor)
        if not await envs.remove_domain(await envs.branch_id(project, branch), checked_domain(cli_settings(), domain)):
            raise NotFound(f"branch {branch!r} has no domain {domain!r}")
        return {"ok": True}
    run(local, remote=lambda api: api.delete(f"{project_path(project)}/branches/{branch}/domains/{domain}"))
    out.print(f"{domain} removed")


@router_app.command("nginx")
def router_nginx(
    output: Annotated[Path | None, typer.Option(help="Write the configuration here (else print it).")] = None,
    fallback: Annotated[str, typer.Option(help="host:port of OdooOps' own router (serve).")] = "",
    watch: Annotated[float, typer.Option(help="Rewrite it every so many seconds when it changes (0: once).")] = 0,
    reload: Annotated[str, typer.Option(help="Command run after each change, e.g. 'nginx -s reload'.")] = "",
    tls_cert: Annotated[str, typer.Option(help="A wildcard certificate for *.DOMAIN: HTTPS, HTTP redirected.")] = "",
    tls_key: Annotated[str, typer.Option(help="Its private key.")] = "",
) -> None:
    """nginx configuration for the running environments: each host straight to
    its server, everything else (sleeping, starting, unknown) to OdooOps'
    router, which wakes environments and knows ports as they change."""
    s = cli_settings()
    target = fallback or f"{s.host}:{s.port}"
    last = None
    while True:
        rows = run(lambda db, actor: Environments(db, actor).routing_table())
        text = nginx.render([nginx.ProxyRoute([f"{r['label']}.{s.environment_domain}", *r["domains"]],
                                              r["address"] if r["status"] == "running" else None,
                                              r["websocket_address"]) for r in rows],
                            target, base_domain=s.environment_domain,
                            tls=(tls_cert, tls_key) if tls_cert and tls_key else None)
        if text != last:
            if output is None:
                print(text)
            else:
                output.write_text(text)
                out.print(f"wrote {output} ({len(rows)} environments)")
            if reload:
                asyncio.run(_reload(reload))
            last = text
        if not watch:
            return
        time.sleep(watch)


async def _reload(command: str) -> None:
    proc = await asyncio.create_subprocess_shell(command)
    if await proc.wait() != 0:
        out.print(f"[red]{command} failed[/]")
