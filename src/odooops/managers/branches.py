from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from psycopg.types.json import Jsonb

from odooops import git
from odooops.db import queries_beside
from odooops.errors import Forbidden, InvalidInput
from odooops.managers import Manager, lookup
from odooops.managers.projects import rehearse, repo_source

Q = queries_beside(__file__)
STAGES = ("production", "staging", "development")
# Odoo.sh's stage rules as the database enforces them (ops.branches_check_stage,
# the one-production index): production is never moved away, it changes by
# merging into its branch; development reaches production only through staging.
# Pages offer these moves and no others; the database still decides.
STAGE_MOVES: dict[str, tuple[str, ...]] = {
    "production": (),
    "staging": ("production", "development"),
    "development": ("staging",),
}
MAY_MOVE = frozenset({"admin", "owner"})  # policy admin_update on ops.branches


def check_stage(stage: str) -> str:
    if stage not in STAGES:
        raise InvalidInput(f"a stage is one of {', '.join(STAGES)}, not {stage!r}")
    return stage


def stage_moves(branches: Sequence[Mapping[str, Any]], role: str | None) -> dict[str, tuple[str, ...]]:
    """The stages each of a project's live branches may move to, for a caller
    with this role in the project: none below admin, and never to production
    while the project has a production branch (it has exactly one)."""
    if role not in MAY_MOVE:
        return {b["name"]: () for b in branches}
    taken = any(b["stage"] == "production" for b in branches)
    return {b["name"]: tuple(s for s in STAGE_MOVES[b["stage"]] if not (taken and s == "production"))
            for b in branches}


MODULE = re.compile(r"^[a-z0-9_]{1,128}$")
BRANCH_SETTINGS = {
    "odoo_modules": ("the modules a build installs and tests: \"own\" (the project's installable modules), "
                     "\"all\" (with the extra repositories'), or a list of names",
                     lambda v: v in ("own", "all") or (isinstance(v, list) and 0 < len(v) <= 500
                                                       and all(isinstance(m, str) and MODULE.match(m) for m in v))),
    "odoo_test_tags": ("odoo-bin's --test-tags for the build (default: the modules under test)",
                       lambda v: isinstance(v, str) and 0 < len(v) <= 2000),
    "staging_data": ("what a staging build starts from: \"production\" (a fresh neutralized copy of "
                     "production, the default) or \"previous\" (the branch's previous database, updated)",
                     lambda v: v in ("production", "previous")),
}


def check_branch_settings(values: dict) -> dict:
    for key, value in values.items():
        if key not in BRANCH_SETTINGS:
            raise InvalidInput(f"unknown branch setting {key!r}; known: {', '.join(sorted(BRANCH_SETTINGS))}")
        if not BRANCH_SETTINGS[key][1](value):
            raise InvalidInput(f"{key}: {BRANCH_SETTINGS[key][0]}; {value!r} does not fit")
    return values


class Branches(Manager):
    async def add(self, project_ref: str, name: str, stage: str = "development", *, check: bool = True) -> dict:
        """Track a branch of the project's repository. With `check`, git must
        first find it there (git.check_branches), read under the project's rules."""
        check_stage(stage)
        async with self.tx() as conn:
            project = await lookup.project(conn, project_ref)
            params = {"project_id": project["id"], "name": name, "stage": stage}
            if not check:
                return await (await conn.execute(Q["insert"], params)).fetchone()
            source = await repo_source(conn, project["org_id"], project["repo_url"])
            await rehearse(conn, conn.execute(Q["insert"], params))
        await git.check_branches(source, [name])
        async with self.tx() as conn:
            return await (await conn.execute(Q["insert"], params)).fetchone()

    async def list_all(self, project_ref: str, include_archived: bool = False) -> list[dict]:
        async with self.tx() as conn:
            project = await lookup.project(conn, project_ref)
            return await (await conn.execute(
                Q["list"], {"project_id": project["id"], "include_archived": include_archived})).fetchall()

    async def of_project(self, project_id) -> list[dict]:
        """The live branches of a project already found, in one round trip:
        what a page polling for changes asks every second."""
        return await self.all(Q["list"], {"project_id": project_id, "include_archived": False})

    async def set_stage(self, project_ref: str, name: str, stage: str) -> dict:
        check_stage(stage)
        async with self.tx() as conn:
            project = await lookup.project(conn, project_ref)
            branch = await lookup.branch(conn, project, name)
            row = await (await conn.execute(Q["set_stage"], {"id": branch["id"], "stage": stage})).fetchone()
            if row is None:  # visible but not updatable: row-level security said no
                raise Forbidden("your role in this project cannot change stages")
            return row

    async def set_settings(self, project_ref: str, name: str, values: dict) -> dict:
        """Merge settings into the branch's (admins): which modules its Odoo
        builds install and test, and their test tags; a None unsets one."""
        check_branch_settings({k: v for k, v in values.items() if v is not None})
        unknown = [k for k, v in values.items() if v is None and k not in BRANCH_SETTINGS]
        if unknown:
            raise InvalidInput(f"unknown branch setting {unknown[0]!r}")
        merge = {"values": Jsonb({k: v for k, v in values.items() if v is not None}),
                 "drop": [k for k, v in values.items() if v is None]}
        async with self.tx() as conn:
            project = await lookup.project(conn, project_ref)
            branch = await lookup.branch(conn, project, name)
            row = await (await conn.execute(Q["merge_settings"], {"id": branch["id"], **merge})).fetchone()
            if row is None:
                raise Forbidden("only an admin of this project can change a branch's settings")
            return row

    async def settings_of(self, project_ref: str, name: str) -> dict:
        """The branch's own settings (odoo_modules, odoo_test_tags)."""
        async with self.tx() as conn:
            project = await lookup.project(conn, project_ref)
            return (await lookup.branch(conn, project, name))["settings"]

    async def archive(self, project_ref: str, name: str) -> dict:
        """Archive a branch: it keeps its history, takes no more builds, and its
        unfinished runs end. The production branch is never archived."""
        async with self.tx() as conn:
            project = await lookup.project(conn, project_ref)
            branch = await lookup.branch(conn, project, name)
            return await (await conn.execute(Q["archive"], {"id": branch["id"]})).fetchone()
