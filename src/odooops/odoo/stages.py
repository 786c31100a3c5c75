"""What a new commit does to the database on production and staging
branches, as Odoo.sh does it (and faster):

* production's first build: a new database without demo data or tests,
  then an idle snapshot of it for staging;
* production's later builds (and a staging branch set to staging_data =
  previous): an update in place, behind a maintenance page. The server is
  stopped, a pre-update copy taken (a template copy and hard links), the
  modules updated that need it (odoo/updates.py), the new code started and found
  healthy; if any step fails, the pre-update copy becomes the database again
  and the previous build's server comes back;
* staging's builds: a clone of production's snapshot, neutralized
  (neutralize.py) and verified, then updated as production would be.

Copies live on production's host: its builds, staging's and snapshot
refreshes are aimed there (ops.production_host)."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol
from uuid import UUID

from odooops.errors import InvalidInput, OpsError
from odooops.managers.updates import Updates
from odooops.odoo import copies, neutralize, odoobin, policy
from odooops.odoo import updates as module_updates
from odooops.odoo.build import OdooBuild
from odooops.odoo.envdb import EnvServer, database_name, role_name
from odooops.odoo.odoolog import Verdict
from odooops.odoo.templates import new_identity

STOP_SECONDS = 60      # for the running server to stop before an update
HEALTHY_SECONDS = 240  # for the new server to be up and healthy
POLL_SECONDS = 0.25
KEEP_DAYS = 7          # a pre-update copy's, by default (the project setting update_copy_days)

PhaseFn = Callable[[], Awaitable[int]]


class UpdateFailed(OpsError):
    """The update failed."""


class Say(Protocol):
    def __call__(self, message: str, level: str = "info") -> None: ...


@dataclass
class Stages:
    """The database phases of a production or staging build."""

    build: OdooBuild
    updates: Updates
    host: str                      # this runner's host: where the copies are
    say: Say
    started: float = 0.0           # maintenance began (monotonic)
    previous: int | None = None    # the build production served before
    copy: str | None = None        # the pre-update copy
    copy_id: int | None = None
    failed_step: str | None = None
    plan: module_updates.Plan | None = None
    env: dict = field(default_factory=dict)
    verdicts: list[Verdict] = field(default_factory=list)  # Odoo's, of the update

    @property
    def run(self) -> dict:
        return self.build.run

    @property
    def settings(self) -> dict:
        return self.run.get("project_settings") or {}

    @property
    def stage(self) -> str:
        return self.run["stage"]

    def role(self, branch: str | None = None, branch_id: object | None = None) -> str:
        return role_name(self.run["org_slug"], self.run["project_slug"], branch or self.run["branch_name"],
                         branch_id or self.run["branch_id"])

    async def mode(self) -> str:
        """first, update or copy: what this commit does to the database."""
        self.env = await self.updates.environment(self.run["branch_id"]) or {}
        in_place = self.stage == "production" or (self.run.get("branch_settings") or {}).get(
            "staging_data") == "previous"
        if in_place and self.env.get("build_id") and self.env.get("database") and not self.env.get("collected_at"):
            return "update"
        return "first" if self.stage == "production" else "copy"

    # production's first build

    async def snapshot(self) -> int:
        """The gates, then an idle copy of the database just made, for staging builds."""
        if not await gates(self.build, self.say):
            return 1
        server = self.build._server()
        await take_snapshot(self.updates, self.run, self.host, self.say, server, self.build.database,
                            self.build.role, self.run["id"])
        return 0

    # updates in place

    async def maintenance(self) -> int:
        """Stop production's server (the maintenance page shows), then take the pre-update copy."""
        run, server = self.run, (await self.build.host.ready())[0]
        self.previous = self.env["build_id"]
        database = self.env["database"]
        await self.build.use_database(server, database)
        copy = database_name(run["org_slug"], run["project_slug"], run["branch_name"], f"pre-{run['id']}")
        if self.env.get("maintenance_run_id") == run["id"] and copy in await server.list_databases(self.build.role):
            # an earlier attempt of this very build stopped mid-update: start again from its copy
            if self.previous == run["id"]:
                self.previous = (await self.updates.of_build(run["id"]) or {}).get("previous_build_id")
            self.say(f"an earlier attempt of this build stopped during the update: the database is its "
                     f"pre-update copy {copy} again first", "warning")
            await self.updates.begin(run["id"], run["attempt"], run["branch_id"], self.previous)
            await until_stopped(self.updates, run, run["branch_id"])
            await copies.disconnect(server, database)
            await copies.restore(server, copy, self.build.role, database)
        self.say(f"update of {database}, served by build {self.previous}: the maintenance page shows meanwhile")
        self.started = time.monotonic()
        self.failed_step = "stop"
        await self.updates.record(run["id"], run["attempt"], "running", previous=self.previous)
        await self.updates.begin(run["id"], run["attempt"], run["branch_id"])
        await until_stopped(self.updates, run, run["branch_id"])
        await copies.disconnect(server, database)
        self.failed_step = "copy"
        self.copy = copy
        await server.drop_database(self.copy)
        began = time.monotonic()
        made = await copies.copy(server, database, self.build.role, self.copy, idle=True)
        row = await self.updates.record_copy(run["id"], run["attempt"], "update", build_id=self.previous,
                                             database=self.copy, host=self.host, size=made.size,
                                             filestore_size=made.filestore_size,
                                             keep_days=int(self.settings.get("update_copy_days", KEEP_DAYS)))
        self.copy_id = row["id"]
        self.say(f"pre-update copy {self.copy}: {_mb(made.size)} database, {_mb(made.filestore_size)} filestore "
                 f"(hard links), in {time.monotonic() - began:.1f} s")
        return 0

    async def update(self) -> int:
        """odoo-bin -u (and -i) for the modules that need it, then the gates."""
        self.failed_step = "update"
        build, server = self.build, self.build._server()
        conn = await server.connect(build.database)
        async with conn:
            installed, sums, python_was = await module_updates.seen(conn)
        self.plan = module_updates.plan(build._addons(), build.targets, self.run["odoo_version"], installed, sums,
                                 python_was, self._python(), str(self.settings.get("update_modules", "version")))
        for line in self.plan.why:
            self.say(line)
        if self.plan.update or self.plan.install:
            code, verdict = await build.odoo(install=self.plan.install, update=self.plan.update)
            self.verdicts.append(verdict)
            self.say(f"Odoo's verdict: {verdict.result}" + "".join(f"\n  {r}" for r in verdict.reasons),
                     {"ok": "info", "warn": "warning"}.get(verdict.result, "error"))
            if code != 0 or verdict.result == "ko":
                return code or 1
        else:
            self.say("nothing to update: the new code starts on the same database")
        if not await gates(self.build, self.say):
            return 1
        conn = await server.connect(build.database)
        async with conn:
            await module_updates.remember(conn, build._addons(), self._python())
        return 0

    async def deploy(self) -> int:
        """The new code's server takes the environment once healthy."""
        run = self.run
        if self.stage == "production":
            self.failed_step = "snapshot"
            await take_snapshot(self.updates, run, self.host, self.say, self.build._server(), self.build.database,
                                self.build.role, run["id"])
        self.failed_step = "start"
        await self.updates.end(run["id"], run["attempt"], run["branch_id"], run["id"])
        detail = await self._until_healthy(run["branch_id"], run["id"])
        if detail is not None:
            self.failed_step = "health"
            raise UpdateFailed(f"the new server did not come up healthy: {detail}")
        seconds = time.monotonic() - self.started
        await self.updates.record(run["id"], run["attempt"], "succeeded", previous=self.previous,
                                  copy_id=self.copy_id, updated=self.plan.update if self.plan else [],
                                  installed=self.plan.install if self.plan else [], seconds=seconds)
        self.say(f"build {run['id']} serves, healthy: maintenance lasted {seconds:.1f} s")
        return 0

    async def _until_healthy(self, branch_id: UUID, build_id: int) -> str | None:
        """None once the environment's server of `build_id` is up and healthy; else what went wrong."""
        deadline = time.monotonic() + HEALTHY_SECONDS
        while time.monotonic() < deadline:
            env = await self.updates.environment(branch_id) or {}
            if env.get("status") == "running" and env.get("build_id") == build_id and env.get("health") == "pass":
                return None
            if env.get("build_id") != build_id:
                return f"the environment serves build {env.get('build_id')} instead"
            if env.get("build_serve_status") in ("failed", "canceled", "succeeded"):
                return env.get("build_serve_error") or f"its server's run {env['build_serve_status']}"
            await asyncio.sleep(POLL_SECONDS)
        return f"not healthy within {HEALTHY_SECONDS} s"

    async def revert(self, why: str) -> str:
        """Code and database back as they were; what to say of it."""
        run, server = self.run, self.build._server()
        if self.previous is None:
            return why
        self.say(f"reverting: {why}", "error")
        step = self.failed_step
        try:
            if self.copy is not None and step not in ("stop", "copy"):  # the database was worked on
                await self.updates.begin(run["id"], run["attempt"], run["branch_id"], self.previous)
                await until_stopped(self.updates, run, run["branch_id"])
                await copies.disconnect(server, self.build.database)
                await copies.restore(server, self.copy, self.build.role, self.build.database)
                self.say(f"the database is the pre-update copy {self.copy} again")
            await self.updates.end(run["id"], run["attempt"], run["branch_id"], self.previous)
            detail = await self._until_healthy(run["branch_id"], self.previous)
        except (OpsError, OSError) as exc:
            await self.updates.abandon(run["id"], run["attempt"], run["branch_id"])
            await self.updates.record(run["id"], run["attempt"], "failed", previous=self.previous,
                                      copy_id=self.copy_id, failed_step=step, detail=f"{why}; the revert failed: {exc}")
            self.say(f"the revert failed: {exc}. The pre-update copy is {self.copy}", "error")
            return f"update failed at {step} ({why}) and its revert failed: {exc}"
        seconds = time.monotonic() - self.started
        await self.updates.record(run["id"], run["attempt"], "reverted", previous=self.previous,
                                  copy_id=self.copy_id, failed_step=step, detail=why, seconds=seconds)
        self.say(f"reverted: build {self.previous} serves again on the database as it was"
                 + (f" (but: {detail})" if detail else "") + f"; maintenance lasted {seconds:.1f} s", "warning")
        return f"update failed at {step}: {why}; reverted to build {self.previous}"

    def _python(self) -> str:
        return (self.build.pipeline.venv.name if self.build.pipeline.venv else "")

    # staging: a neutralized copy of production's snapshot

    async def staging_copy(self) -> int:
        run = self.run
        server = (await self.build.host.ready())[0]
        found = await self.updates.production_snapshot(run["id"], run["attempt"])
        if not found or not found["production_database"]:
            self.say("production has no database yet: this staging build starts from a fresh database without "
                     "demo data, as production's first build does", "warning")
            return await self.build.database_phase()
        prod_role = self.role(found["production_branch"], found["production_branch_id"])
        snapshot = found["snapshot"]
        if (snapshot is None or snapshot not in await server.list_databases(prod_role)
                or not server.database(snapshot, prod_role).filestore.is_dir()):
            self.say("no snapshot of production on this host yet: taking one (production pauses a few seconds)")
            snapshot = await refresh_snapshot(self.updates, run, self.host, self.say, server,
                                              found["production_branch_id"], found["production_database"],
                                              prod_role, found["production_build_id"])
        else:
            self.say(f"snapshot {snapshot} of production, taken {found['snapshot_created_at']:%Y-%m-%d %H:%M} UTC")
        database = database_name(run["org_slug"], run["project_slug"], run["branch_name"], run["id"])
        role = self.role()
        await server.ensure_role(role, self.build._password(), branch_id=run["branch_id"])
        await server.drop_database(database)
        began = time.monotonic()
        made = await copies.copy(server, snapshot, prod_role, database, role)
        await new_identity(server, database)
        self.say(f"staging copy {database} of {snapshot}: {_mb(made.size)} database, {_mb(made.filestore_size)} "
                 f"filestore (hard links), in {time.monotonic() - began:.1f} s")
        await self.build.use_database(server, database)
        return 0

    async def neutralize(self) -> int:
        """Odoo's neutralization, OdooOps' safety net, the project's SQL, then the verification."""
        build = self.build
        if odoobin.major(self.run["odoo_version"]) >= 16:
            code = await build.neutralize()
            if code != 0:
                self.say("odoo-bin neutralize failed, which undid all of it: each module's neutralize.sql is "
                         "run again on its own", "warning")
                conn = await neutralize.connect(build.role_conninfo())
                async with conn:
                    for failure in await neutralize.module_scripts(conn, build._addons()):
                        self.say(f"{failure}; the build goes on with OdooOps' safety net", "warning")
        else:
            self.say(f"Odoo {self.run['odoo_version']} has no odoo-bin neutralize: OdooOps' safety net alone")
        conn = await neutralize.connect(build.role_conninfo())
        async with conn:
            for warning in await neutralize.safety_net(conn, self.settings.get("neutralization_sql")):
                self.say(warning, "warning")
            problems = await neutralize.verify(conn)
        for problem in problems:
            self.say(f"neutralization verification: {problem}", "error")
        if problems:
            raise InvalidInput("the copy is not neutralized: " + "; ".join(problems))
        self.say("neutralized and verified: outgoing mail goes to the mail catcher only, crons are off but the "
                 "autovacuum, incoming mail, payment and delivery providers and webhooks are off or in test mode")
        return 0


async def gates(build: OdooBuild, say: Say) -> bool:
    """The platform's limits on the build's database (policy.py); False when one fails."""
    conn = await build._server().connect(build.database)
    async with conn:
        findings = await policy.database_findings(conn, build.run.get("project_settings") or {})
    for finding in findings:
        say(f"policy {finding.gate}: {finding.message}", finding.level)
    return not any(f.level == "error" for f in findings)


async def until_stopped(control: Updates, run: dict, branch_id: UUID) -> None:
    """Until no serve run of the branch is at work (its server stopped)."""
    deadline = time.monotonic() + STOP_SECONDS
    while await control.serving(run["id"], run["attempt"], branch_id):
        if time.monotonic() > deadline:
            raise UpdateFailed(f"the running server did not stop within {STOP_SECONDS} s")
        await asyncio.sleep(POLL_SECONDS)


async def take_snapshot(control: Updates, run: dict, host: str, say: Say, server: EnvServer, database: str,
                        role: str, build_id: int) -> str:
    """An idle copy of production's `database` (nobody connected to it),
    recorded as the project's newest snapshot; its name."""
    name = database_name(run["org_slug"], run["project_slug"], "snapshot", run["id"])
    began = time.monotonic()
    await server.drop_database(name)  # an earlier attempt's
    made = await copies.copy(server, database, role, name, idle=True)
    await control.record_copy(run["id"], run["attempt"], "snapshot", build_id=build_id, database=name, host=host,
                              size=made.size, filestore_size=made.filestore_size, keep_days=None)
    say(f"snapshot {name} for staging builds: {_mb(made.size)} database, {_mb(made.filestore_size)} filestore, "
        f"in {time.monotonic() - began:.1f} s")
    return name


async def refresh_snapshot(control: Updates, run: dict, host: str, say: Say, server: EnvServer,
                           branch_id: UUID, database: str, role: str, build_id: int) -> str:
    """A new snapshot of production: PostgreSQL copies only a database nobody
    is connected to, so production's server stops (the maintenance page
    shows) for as long as the copy takes, seconds (a file copy of the
    database; the filestore is hard-linked), and starts again."""
    began = time.monotonic()
    await control.begin(run["id"], run["attempt"], branch_id)
    try:
        await until_stopped(control, run, branch_id)
        await copies.disconnect(server, database)
        name = await take_snapshot(control, run, host, say, server, database, role, build_id)
    finally:
        await control.end(run["id"], run["attempt"], branch_id, build_id)
    say(f"production paused {time.monotonic() - began:.1f} s for the snapshot")
    return name


def without_demo(build: OdooBuild) -> None:
    """Production and staging databases have no demo data, and run no tests."""
    build.options = dataclasses.replace(build.options, demo=False, tests=False)


def _mb(size: int) -> str:
    return f"{size / 1024 / 1024:.1f} MiB"
