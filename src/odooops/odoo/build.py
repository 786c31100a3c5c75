"""The Odoo phases of a build, between checkout and the recipe's own:
`sources` (Odoo and extra repositories at pinned revisions), `install` (the
Python environment), `database` (a new database, from the template cache
when it hits) and `odoo` (install the modules with demo data and run their
tests), judged by Odoo's log as runbot judges it."""

from __future__ import annotations

import asyncio
import re
import socket
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from odooops import repos
from odooops.errors import InvalidInput
from odooops.managers.updates import Updates
from odooops.odoo import addons as graph
from odooops.odoo import odoobin, policy, pyenv, sources
from odooops.odoo.envdb import EnvServer, branch_data_dir, database_name, role_name, role_password
from odooops.odoo.odoolog import OdooLog, Verdict, junit_xml
from odooops.odoo.templates import TemplateCache
from odooops.runner.executor import Command
from odooops.runner.recipe import OdooOptions
from odooops.settings import Secret


@dataclass
class OdooHost:
    """What a runner gives every Odoo build: the environments' database server
    (started when the first build reaches its database phase) and its
    template cache, and this host's caches."""

    start: Callable[[], EnvServer]  # blocking: run in a thread
    secret_key: Secret
    cache: Path
    repo_host: repos.Host
    substitutes: dict[str, str]
    keep_templates: tuple[int, int] = (10, 14)  # how many, and for how many days unused
    pythons: dict[str, str] = field(default_factory=dict)  # Odoo version -> interpreter (ODOOOPS_ODOO_PYTHON)
    updates: Updates | None = None  # production updates and copies, in the control plane
    host_name: str = ""             # this runner's host (ODOOOPS_RUNNER_HOST): where copies are made
    _server: EnvServer | None = None
    _templates: TemplateCache | None = None
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def ready(self) -> tuple[EnvServer, TemplateCache]:
        async with self._lock:
            if self._server is None or self._templates is None:
                self._server = await asyncio.to_thread(self.start)
                self._templates = TemplateCache(self._server, self.secret_key)
            return self._server, self._templates


Record = Callable[[list[dict]], Awaitable[object]]
RELEASE = re.compile(r"^version_info\s*=\s*\(\s*(\d+)\s*,\s*(\d+)", re.M)


class Pipeline(Protocol):
    """The parts of the build pipeline the Odoo phases use."""

    src: Path
    artifacts: Path
    venv: Path | None
    database_env: dict[str, str]
    database_binds: tuple[Path, ...]

    async def exec_logged(self, command: Command, timeout: float | None = None,
                          tap: Callable[[int, str], None] | None = None) -> int: ...
    def command(self, argv: list[str], *, cwd: Path, env: dict[str, str] | None = None, network: bool = False,
                sandbox: bool = True, readable: tuple[Path, ...] = (), writable: tuple[Path, ...] = ()) -> Command: ...
    def say(self, message: str, level: str = "info") -> None: ...
    async def make_venv(self, venv: Path, files: list[Path], python: str = ...) -> int: ...


@dataclass
class OdooBuild:
    pipeline: Pipeline
    host: OdooHost
    run: dict
    options: OdooOptions
    checkouts: list[sources.Checkout] = field(default_factory=list)
    addons: graph.Addons | None = None
    targets: list[str] = field(default_factory=list)
    database: str = ""
    role: str = ""
    log: OdooLog | None = None
    server: EnvServer | None = None
    record_sources: Record | None = None  # the revisions, to the control plane
    record_tests: Record | None = None    # the test results, likewise
    record_database: Callable[[str], Awaitable[object]] | None = None  # the database made or updated

    @property
    def version(self) -> str:
        return self.run["odoo_version"]

    @property
    def odoo_tree(self) -> Path:
        return next(c.path for c in self.checkouts if c.spec.name == "odoo")

    # sources: every repository at its revision, then the addons graph

    async def sources(self) -> int:
        own = graph.collect([(self.pipeline.src, "project")])  # the project's manifests first: nothing fetched
        if not own.modules and self.options.modules in (None, "own"):
            raise InvalidInput("the repository has no Odoo module (no folder with a __manifest__.py) and no "
                               ".odooops.toml to say what else a build runs")
        settings = self.run.get("project_settings") or {}
        pinned = (self.run.get("params") or {}).get("sources")
        fetcher = sources.Sources(self.host.cache, self._git, self.pipeline.say, self.run.get("repo_roots") or [],
                                  self.host.repo_host, self.run["project_id"],
                                  f"{self.run['org_slug']}/{self.run['project_slug']}")
        for spec in sources.specs(settings, self.version, pinned):
            auth = sources.enterprise_auth(self.run.get("enterprise_token")) if spec.name == "enterprise" else {}
            self.checkouts.append(await fetcher.get(spec, auth))
        if self.record_sources:
            await self.record_sources([c.record() for c in self.checkouts])
        self._check_version()
        self._discover()
        return 0

    def _check_version(self) -> None:
        release = self.odoo_tree / "odoo" / "release.py"
        found = RELEASE.search(release.read_text(errors="replace")) if release.is_file() else None
        if found is None:
            raise InvalidInput("the odoo source is not an Odoo source tree: it has no odoo/release.py")
        version = f"{found[1]}.{found[2]}"
        if version != self.version:
            raise InvalidInput(f"the odoo source is Odoo {version}, and the project builds on Odoo {self.version}: "
                               "change the project's Odoo version, or its odoo_repository or odoo_ref")
        self.pipeline.say(f"Odoo {version}")

    def _discover(self) -> None:
        roots = [(self.pipeline.src, "project")]
        roots += [(c.path, c.spec.name) for c in self.checkouts if c.spec.name not in ("odoo", "enterprise")]
        roots += [(c.path, "enterprise") for c in self.checkouts if c.spec.name == "enterprise"]
        # a source tree has addons/ beside odoo/addons; a packaged Odoo (setup.py's layout) only the latter
        roots += [(path, "odoo") for path in (self.odoo_tree / "odoo" / "addons", self.odoo_tree / "addons")
                  if path.is_dir()]
        self.addons = graph.collect(roots)
        for passed_over in self.addons.ignored:
            self.pipeline.say(f"passed over, as Odoo does until a module needs it: {passed_over}", "warning")
        choice = self.options.modules or (self.run.get("branch_settings") or {}).get("odoo_modules") or "own"
        self.targets = graph.select(self.addons, choice)
        graph.check(self.addons, self.targets, series=self.version)
        self.pipeline.say(f"modules under test: {', '.join(self.targets)}")
        self.pipeline.say("addons path: " + ", ".join(_shown(p, self.pipeline.src) for p in self.addons.paths))
        drift = policy.addons_drift(policy.declared_addons_path(self.pipeline.src), self.addons.paths,
                                    self.pipeline.src)
        if drift is not None:
            self.pipeline.say(f"policy {drift.gate}: {drift.message}", drift.level)

    async def _git(self, *args: str, env: dict[str, str] | None = None) -> int:
        command = self.pipeline.command(["git", *args], cwd=self.host.cache, env={**repos.GIT_ENV, **(env or {})},
                                        network=True, sandbox=False)
        return await self.pipeline.exec_logged(command)

    # install: one virtualenv per Python and requirements

    async def install(self) -> int:
        others = [("project", self.pipeline.src)]
        others += [(c.spec.name, c.path) for c in self.checkouts if c.spec.name != "odoo"]
        python = self.host.pythons.get(self.version, sys.executable)
        wanted = pyenv.gather(self.odoo_tree, others, self.host.substitutes, python)
        venv = self.host.cache / "venvs" / f"odoo-{wanted.key}"
        files_dir = venv.with_suffix(".requirements")
        files_dir.mkdir(parents=True, exist_ok=True)
        files = []
        for label, text in wanted.files:
            path = files_dir / f"{label}.txt"
            if not path.exists():  # the folder is named by the hash of these very texts
                path.write_text(text)
            files.append(path)
        self.pipeline.say("requirements: " + (", ".join(label for label, _ in wanted.files) or "none")
                          + f"; Python: {python}")
        return await self.pipeline.make_venv(venv, files, python)

    # database: a new database for this build, cloned from a template when one fits

    async def database_phase(self) -> int:
        run = self.run
        self.role = role_name(run["org_slug"], run["project_slug"], run["branch_name"], run["branch_id"])
        self.database = database_name(run["org_slug"], run["project_slug"], run["branch_name"], run["id"])
        server, templates = await self.host.ready()
        self.server = server
        await server.ensure_role(self.role, self._password(), branch_id=run["branch_id"])
        await server.drop_database(self.database)  # an earlier attempt's
        deps = graph.dependencies(self._addons(), self.targets)
        key = self._template_key(deps)
        if not (self.run.get("project_settings") or {}).get("template_cache", True):
            self.pipeline.say("template cache off: the build installs every module itself")
            await server.create_database(self.database, self.role)
        else:
            found = await templates.lookup(key)
            if found:
                self.pipeline.say(f"template hit: {key[:12]} has {len(deps)} dependencies installed "
                                  f"({', '.join(deps[:8])}{'…' if len(deps) > 8 else ''})")
            else:
                self.pipeline.say(f"template miss: none yet for {key[:12]} (these revisions, these "
                                  f"{len(deps)} dependencies, demo {'on' if self.options.demo else 'off'}, "
                                  "this Python environment): building it once")
                built = await templates.ensure(key, lambda db, role, password, data_dir: self._template(
                    deps, db, role, password, data_dir), modules=deps)
                if built is None:
                    self.pipeline.say("the template could not be built: its install's log above says why", "error")
                    return 1
                dropped = await templates.evict(*self.host.keep_templates)
                if dropped:
                    self.pipeline.say(f"dropped {len(dropped)} least recently used template(s)")
            await templates.clone(key, self.database, self.role, branch_data_dir(server.data_dir, self.role))
        await self.use_database(server, self.database)
        return 0

    async def use_database(self, server: EnvServer, database: str) -> None:
        """The build's database from now on: the later phases reach it as Odoo does."""
        self.server, self.database = server, database
        self.role = role_name(self.run["org_slug"], self.run["project_slug"], self.run["branch_name"],
                              self.run["branch_id"])
        self.pipeline.say(f"database {self.database} (role {self.role})")
        self.pipeline.database_env = {**server.odoo_env(self.role, self._password()), "PGDATABASE": self.database}
        self.pipeline.database_binds = (server.sandbox_dir,) if server.sandbox_dir else ()
        if self.record_database:
            await self.record_database(database)

    def role_conninfo(self) -> str:
        """How OdooOps reaches the build's database as the branch's role (never as a superuser)."""
        return self._server().role_conninfo(self.role, self._password(), self.database)

    def _addons(self) -> graph.Addons:
        if self.addons is None:
            raise InvalidInput("the sources phase found no addons")
        return self.addons

    def _template_key(self, deps: list[str]) -> str:
        revisions = [f"{c.spec.name}={c.commit}".encode() for c in self.checkouts]
        return sources.digest(b"template", self.version.encode(), *revisions, ",".join(deps).encode(),
                              b"demo" if self.options.demo else b"nodemo", (self.pipeline.venv or Path()).name.encode())

    async def _template(self, deps: list[str], database: str, role: str, password: str, data_dir: Path) -> bool:
        invocation = odoobin.Invocation(self.version, self.odoo_tree, database, self._addons().paths, data_dir,
                                        install=deps, demo=self.options.demo, http_port=free_port())
        log = OdooLog(tests=False)
        code = await self._odoo_bin(invocation, role, password, data_dir, log)
        verdict = log.verdict()
        self.pipeline.say(f"template install: {verdict.result}" + _reasons(verdict),
                          "info" if verdict.result != "ko" else "error")
        return code == 0 and verdict.result != "ko"

    # odoo: install and test the modules

    async def odoo(self, *, install: list[str] | None = None,
                   update: list[str] | None = None) -> tuple[int, Verdict]:
        """Install (by default the modules under test) or update modules, with
        their tests when the options say so."""
        data_dir = branch_data_dir(self._server().data_dir, self.role)
        tags = (self.options.test_tags or (self.run.get("branch_settings") or {}).get("odoo_test_tags")
                or odoobin.scoped_tags(self.targets))
        invocation = odoobin.Invocation(self.version, self.odoo_tree, self.database, self._addons().paths, data_dir,
                                        install=self.targets if install is None else install, update=update or [],
                                        demo=self.options.demo, tests=self.options.tests,
                                        test_tags=tags if self.options.tests else None, http_port=free_port(),
                                        extra=self.options.options)
        self.log = OdooLog() if install is None and update is None else OdooLog(tests=False)
        code = await self._odoo_bin(invocation, self.role, self._password(), data_dir, self.log)
        verdict = self.log.verdict()
        await self._results()
        return code, verdict

    async def neutralize(self) -> int:
        """odoo-bin neutralize on the build's database (16.0+); its exit code."""
        data_dir = branch_data_dir(self._server().data_dir, self.role)
        invocation = odoobin.Invocation(self.version, self.odoo_tree, self.database, self._addons().paths, data_dir,
                                        command="neutralize")
        return await self._odoo_bin(invocation, self.role, self._password(), data_dir, OdooLog(tests=False))

    async def _odoo_bin(self, invocation: odoobin.Invocation, role: str, password: str, data_dir: Path,
                        log: OdooLog) -> int:
        if self.pipeline.venv is None:
            raise InvalidInput("the install phase made no Python environment")
        await asyncio.to_thread(data_dir.mkdir, parents=True, exist_ok=True)
        server = self._server()
        # the tree on the path: setup/odoo of a packaged tree imports odoo from beside it
        env = {**server.odoo_env(role, password), "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(self.odoo_tree)}
        readable = (self.pipeline.venv, *(c.path for c in self.checkouts))
        writable = (data_dir, *((server.sandbox_dir,) if server.sandbox_dir else ()))
        argv = invocation.argv(self.pipeline.venv / "bin" / "python")
        self.pipeline.say("$ " + " ".join(_shown(Path(a), self.pipeline.src) if a.startswith("/") else a
                                          for a in argv[1:]))
        command = self.pipeline.command(argv, cwd=self.pipeline.src, env=env, readable=readable, writable=writable)
        return await self.pipeline.exec_logged(command, tap=lambda seq, line: log.feed(line, seq))

    async def _results(self) -> None:
        if self.log is None:
            return
        results = self.log.results
        if results:
            path = self.pipeline.artifacts / "junit.xml"
            path.write_bytes(junit_xml(results, f"{self.run['project_slug']} {self.run['branch_name']}"))
        if self.record_tests:
            await self.record_tests([{
                "module": r.module, "test_class": r.test_class, "method": r.method, "outcome": r.outcome,
                "duration_ms": None if r.duration is None else round(r.duration * 1000),
                "traceback": r.traceback, "fingerprint": r.fingerprint, "log_seq": r.ref} for r in results])
        counts = {o: sum(r.outcome == o for r in results) for o in ("pass", "fail", "error", "skip")}
        self.pipeline.say(f"tests: {counts['pass']} passed, {counts['fail']} failed, {counts['error']} errors, "
                          f"{counts['skip']} skipped")

    def _server(self) -> EnvServer:
        if self.server is None:
            raise InvalidInput("the database phase has not run")
        return self.server

    def _password(self) -> str:
        return role_password(self.host.secret_key, self.run["branch_id"])


def _reasons(verdict: Verdict) -> str:
    return (": " + "; ".join(verdict.reasons)) if verdict.reasons else ""


def _shown(path: Path, src: Path) -> str:
    """A path as a person reads it in the log: the checkout's relative."""
    try:
        return str(path.relative_to(src)) or "."
    except ValueError:
        return str(path)


def free_port(address: str = "127.0.0.1") -> int:
    """A port for Odoo's HTTP server while it installs and tests (HttpCase
    tests need one; inside the sandbox's own network any would do), or for
    an environment's server outside a sandbox."""
    with socket.socket() as s:
        s.bind((address, 0))
        return s.getsockname()[1]
