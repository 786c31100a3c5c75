from __future__ import annotations

from collections.abc import Awaitable

import psycopg
from psycopg.types.json import Jsonb

from odooops import git, repos
from odooops.db import Actor, Connection, Database, Row, queries_beside
from odooops.errors import Forbidden, InvalidInput, OpsError
from odooops.managers import Manager, lookup, project_secrets
from odooops.odoo import sources
from odooops.sealing import SecretBox

Q = queries_beside(__file__)

# The settings a project may have, each with a check of its value.
SETTINGS = {
    "coalesce_seconds": ("seconds a push waits for more pushes before its build may start (0: none)",
                         lambda v: isinstance(v, int) and 0 <= v <= 3600),
    "cancel_in_progress": ("a newer commit also cancels the branch's running build",
                           lambda v: isinstance(v, bool)),
    "max_concurrent_runs": ("runs of this project at once (0: no limit)",
                            lambda v: isinstance(v, int) and 0 <= v <= 1000),
    "max_duration_seconds": ("longest a run may take before it fails with `timeout`",
                             lambda v: isinstance(v, int) and 1 <= v <= 7 * 86400),
    "max_attempts": ("attempts a run gets when its worker is lost (1 to 5)",
                     lambda v: isinstance(v, int) and 1 <= v <= 5),
    "env": ("environment variables of every phase", lambda v: _str_dict(v)),
    "odoo_repository": ("the Odoo repository: a URL or a local path (default: the public Odoo repository)",
                        lambda v: _text(v, 2000)),
    "odoo_ref": ("the branch, tag or commit of Odoo (default: the project's Odoo version)",
                 lambda v: isinstance(v, str) and bool(sources.REF.match(v))),
    "enterprise_repository": ("the enterprise repository, a URL or a local path; its token is the secret_env "
                              f"{sources.ENTERPRISE_TOKEN}", lambda v: _text(v, 2000)),
    "enterprise_ref": ("the branch, tag or commit of enterprise (default: the Odoo version)",
                       lambda v: isinstance(v, str) and bool(sources.REF.match(v))),
    "extra_addons": ("extra addons repositories: a list of {name, repository, ref}", sources.check_settings),
    "template_cache": ("builds start from a database template with the dependencies installed",
                       lambda v: isinstance(v, bool)),
    "secret_env": ("environment variables masked in every log", lambda v: _str_dict(v)),
    "environment_workers": ("odoo-bin --workers of the project's environments (0: threaded, as on runbot)",
                            lambda v: isinstance(v, int) and 0 <= v <= 32),
    "environment_memory_mb": ("the memory an environment's server may use (MiB, address space)",
                              lambda v: isinstance(v, int) and 512 <= v <= 262144),
    "connect_as_production": ("project admins may also \"Connect as\" an Odoo user on production",
                              lambda v: isinstance(v, bool)),
    "update_modules": ("which modules a production or staging update updates: \"version\" (those whose "
                       "manifest version rose, Odoo.sh's rule) or \"checksum\" (those whose files changed, "
                       "click-odoo-update's rule)", lambda v: v in ("version", "checksum")),
    "update_copy_days": ("days a production update's pre-update copy is kept (1 to 365; default 7)",
                         lambda v: isinstance(v, int) and 1 <= v <= 365),
    "neutralization_sql": ("the project's own SQL, run after OdooOps' neutralization of every staging copy",
                           lambda v: _text(v, 100_000)),
    "max_tables": ("the most tables and sequences a database may have (default 10000, Odoo.sh's ceiling)",
                   lambda v: isinstance(v, int) and 100 <= v <= 1_000_000),
    "allow_smtp_port_25": ("an outgoing mail server may use port 25 (refused by default)",
                           lambda v: isinstance(v, bool)),
}
SECRET_KEYS = {"secret_env"}


def _text(value: object, limit: int) -> bool:
    return isinstance(value, str) and 0 < len(value.strip()) <= limit


def _str_dict(value: object) -> bool:
    return isinstance(value, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())


def check_settings(values: dict) -> dict:
    for key, value in values.items():
        if key not in SETTINGS:
            raise InvalidInput(f"unknown project setting {key!r}; known: {', '.join(sorted(SETTINGS))}")
        if not SETTINGS[key][1](value):
            raise InvalidInput(f"{key}: {SETTINGS[key][0]}; {value!r} does not fit")
    return values


def masked(settings: dict) -> dict:
    """Settings fit to show: secret values replaced by a mask."""
    return {k: ({n: "********" for n in v} if k in SECRET_KEYS else v) for k, v in settings.items()}


def shown(project: dict) -> dict:
    """The project fit to show: a credential in its repository URL masked."""
    return {**project, "repo_url": repos.display(project["repo_url"])} if "repo_url" in project else project


async def repo_source(conn, org_id: object, repo_url: str, host: repos.Host | None = None) -> repos.Source:
    """The repository a project of the org may read at `repo_url`, else
    InvalidInput saying why (see odooops.repos)."""
    rows = await (await conn.execute(Q["org_roots"], {"org_id": org_id})).fetchall()
    return repos.check(repo_url, [r["path"] for r in rows], host)


async def rehearse(conn: Connection, write: Awaitable[object]) -> None:
    """Make `write` and undo it: every rule the database keeps (rights, names,
    duplicates, stages) says no before a remote is asked, and no transaction
    stays open while one answers."""
    async with conn.transaction() as rehearsal:
        await write
        raise psycopg.Rollback(rehearsal)


async def _insert(conn: Connection, org_id: object, values: dict) -> Row:
    project = await (await conn.execute(Q["insert"], {"org_id": org_id, **values})).fetchone()
    if project is None:
        raise OpsError("the database answered no row where one was due")
    await conn.execute(Q["insert_production_branch"], {"project_id": project["id"], "name": values["default_branch"]})
    return project


class Projects(Manager):
    """Projects; `box` seals secret settings, and is needed only to set them."""

    def __init__(self, db: Database, actor: Actor, box: SecretBox | None = None):
        super().__init__(db, actor)
        self.box = box

    async def _with_secrets(self, conn, row: dict) -> dict:
        """The project with the names of its secrets (kept apart, see
        managers/project_secrets.py) as masked `secret_env` settings."""
        found = await project_secrets.names(conn, row["id"])
        if not found:
            return row
        return {**row, "settings": {**row["settings"], "secret_env": {n: project_secrets.MASK for n in found}}}

    async def create(self, ref: str, repo_url: str, *, name: str | None = None,
                     default_branch: str = "main", odoo_version: str = "17.0", check: bool = True) -> dict:
        """A project and its production branch, the repository's default branch
        (as on Odoo.sh), in one transaction. With `check`, git must first read
        the repository and find that branch in it (git.check_branches)."""
        org_slug, slug = lookup.split_project_ref(ref)
        values = {"slug": slug, "name": name or slug, "repo_url": repo_url.strip(),
                  "default_branch": default_branch, "odoo_version": odoo_version}
        async with self.tx() as conn:
            org = await lookup.org(conn, org_slug)
            source = await repo_source(conn, org["id"], repo_url)
            if not check:
                return shown(await _insert(conn, org["id"], values))
            await rehearse(conn, _insert(conn, org["id"], values))
        await git.check_branches(source, [default_branch])
        async with self.tx() as conn:
            return shown(await _insert(conn, org["id"], values))

    async def get(self, ref: str) -> dict:
        async with self.tx() as conn:
            return shown(await self._with_secrets(conn, await lookup.project(conn, ref)))

    async def seen(self, ref: str) -> dict:
        """The project, with the caller's role in it as `my_role`."""
        async with self.tx() as conn:
            project = await lookup.project(conn, ref)
            role = await (await conn.execute(Q["my_role"], {"id": project["id"]})).fetchone()
            return {**shown(project), "my_role": role["role"]}

    async def page(self, search: str | None, limit: int, offset: int) -> tuple[list[dict], int]:
        """One page of the caller's live projects by name, and how many match in all."""
        rows = await self.all(Q["page"], {"search": search or None, "limit": limit, "offset": offset})
        return [shown(r) for r in rows], rows[0]["total"] if rows else 0

    async def list_all(self, include_archived: bool = False) -> list[dict]:
        return [shown(r) for r in await self.all(Q["list"], {"include_archived": include_archived})]

    async def update_settings(self, ref: str, values: dict) -> dict:
        """Merge settings into the project's (env and secret_env merge by name;
        secret_env goes sealed to ops.project_secrets, never into the settings)."""
        return await self.update(ref, settings=values)

    async def unset_setting(self, ref: str, key: str) -> dict:
        if key not in SETTINGS:
            raise InvalidInput(f"unknown project setting {key!r}")
        async with self.tx() as conn:
            project = await lookup.project(conn, ref)
            if key in SECRET_KEYS:
                await project_secrets.drop(conn, project["id"])
                return shown(project)
            return shown(await (await conn.execute(Q["drop_setting"], {"id": project["id"], "key": key})).fetchone())

    async def update(self, ref: str, *, name: str | None = None, repo_url: str | None = None,
                     odoo_version: str | None = None, settings: dict | None = None) -> dict:
        """Change what a project is and how it builds, in one transaction (admins)."""
        settings = dict(check_settings(settings)) if settings else {}
        secrets = settings.pop("secret_env", None)
        if secrets and self.box is None:
            raise RuntimeError("Projects needs a SecretBox to set secret settings")
        async with self.tx() as conn:
            project = await lookup.project(conn, ref)
            if repo_url is not None:
                await repo_source(conn, project["org_id"], repo_url)
            row = await (await conn.execute(Q["update"], {
                "id": project["id"], "name": name, "repo_url": repo_url and repo_url.strip(),
                "odoo_version": odoo_version})).fetchone()
            if row is None:  # visible, not updatable: row-level security said no
                raise Forbidden("only an admin of this project can change it")
            if "env" in settings:
                settings["env"] = {**row["settings"].get("env", {}), **settings["env"]}
            if settings:
                merge = {"id": row["id"], "values": Jsonb(settings)}
                row = await (await conn.execute(Q["merge_settings"], merge)).fetchone()
            if secrets and self.box:  # a box there is, or it raised above
                await project_secrets.put(conn, self.box, row["id"], secrets)
            return shown(await self._with_secrets(conn, row))

    async def archive(self, ref: str) -> dict:
        """Archive a project: its branches take no more builds, its unfinished runs end (owners)."""
        async with self.tx() as conn:
            project = await lookup.project(conn, ref)
            return shown(await self._with_secrets(
                conn, await (await conn.execute(Q["archive"], {"id": project["id"]})).fetchone()))
