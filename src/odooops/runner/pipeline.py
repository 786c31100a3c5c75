"""A build as a pipeline of phases: checkout, install, then the recipe's.
A failed phase stops the pipeline; the phases after it are recorded skipped."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import os
import shutil
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from odooops import repos
from odooops.errors import InvalidInput, OpsError
from odooops.git import describe_head
from odooops.locks import locked
from odooops.odoo.build import OdooBuild, OdooHost, Record
from odooops.odoo.odoolog import Verdict
from odooops.odoo.pyenv import PipWatch
from odooops.odoo.stages import Stages, gates, without_demo
from odooops.runner import recipe as recipes
from odooops.runner.executor import Command, Executor, Limits, Process
from odooops.runner.logs import LogSink

GIT_ENV = repos.GIT_ENV  # no host configuration or credentials; remote transports only
MIRROR_ENV = {**GIT_ENV, "GIT_ALLOW_PROTOCOL": "file"}  # the clone of our own mirror


@dataclass
class Job:
    """A claimed run as the runner holds it; `abort` stops it at once,
    `stop_after_phase` at the next phase boundary (graceful shutdown)."""

    run: dict
    workdir: Path
    sink: LogSink
    env: dict[str, str] = field(default_factory=dict)
    abort_reason: str | None = None
    stop_after_phase: bool = False
    current: Process | None = None

    @property
    def id(self) -> int:
        return self.run["id"]

    @property
    def attempt(self) -> int:
        return self.run["attempt"]

    def abort(self, reason: str) -> None:
        if self.abort_reason is None:
            self.abort_reason = reason
        if self.current is not None:
            self.current.kill()


@dataclass(frozen=True)
class Outcome:
    status: str           # succeeded | failed | canceled | queued
    result: str | None    # ok | warn | ko
    error: str | None = None
    exit_code: int | None = None


PhaseFn = Callable[[], Awaitable[int]]
OnCommit = Callable[[str, str], Awaitable[object]]  # (message, author)


class BuildPipeline:
    def __init__(self, job: Job, executor: Executor, data_dir: Path, limits: Limits,
                 on_commit: OnCommit | None = None, repo_roots: tuple[Path, ...] = (),
                 odoo_host: OdooHost | None = None, cache: Path | None = None,
                 recorders: tuple[Record, Record] | None = None):
        self.job = job
        self.odoo_host = odoo_host  # what Odoo builds share on this host
        self.recorders = recorders  # of sources and of test results
        self.cache = cache or data_dir
        self.repo_roots = repo_roots  # ODOOOPS_REPO_ROOTS
        self.on_commit = on_commit
        self.executor = executor
        self.data_dir = data_dir
        self.limits = limits
        self.src = job.workdir / "src"
        self.artifacts = job.workdir / "artifacts"
        self.venv: Path | None = None
        # after an Odoo build's database phase: how phases reach the build's database, as Odoo does
        self.database_env: dict[str, str] = {}
        self.database_binds: tuple[Path, ...] = ()
        self._exit_code: int | None = None  # of the phase that failed
        self._refusal: str | None = None  # why it failed, when it said so itself

    def make_dirs(self) -> None:
        for d in (self.artifacts, self.job.workdir / "home", self.job.workdir / "tmp"):
            d.mkdir(parents=True, exist_ok=True)

    async def run(self) -> Outcome:
        self.make_dirs()
        if not await self._phase("checkout", self._checkout):
            return self._stopped("checkout", [])
        try:
            recipe = recipes.load(self.src)
        except InvalidInput as exc:
            self.job.sink.system(str(exc), "error")
            return Outcome("failed", "ko", str(exc))
        if recipe.odoo is not None:
            return await self._odoo_build(recipe, recipe.odoo)
        later = ["install", *(p.name for p in recipe.phases)]
        if not await self._phase("install", lambda: self._install(recipe.requirements)):
            return self._stopped("install", later[1:])
        return await self._recipe_phases(recipe.phases, "ok")

    async def _recipe_phases(self, phases: list[recipes.Phase], result: str) -> Outcome:
        for i, phase in enumerate(phases):
            if self.job.stop_after_phase:
                return self._stopped(None, [p.name for p in phases[i:]])
            if not await self._phase(phase.name, functools.partial(self._recipe_phase, phase)):
                return self._stopped(phase.name, [p.name for p in phases[i + 1:]])
        return Outcome("succeeded", result, exit_code=0)

    async def _odoo_build(self, recipe: recipes.Recipe, options: recipes.OdooOptions) -> Outcome:
        """sources, install, [before-odoo phases], then the stage's database
        phases (development: database, odoo), [after-odoo phases]."""
        if self.odoo_host is None:
            self.job.sink.system("this runner has no environment database server for Odoo builds", "error")
            return Outcome("failed", "ko", "no Odoo host")
        build = OdooBuild(self, self.odoo_host, self.job.run, options)
        if self.recorders:
            build.record_sources, build.record_tests = self.recorders
        updates = self.odoo_host.updates
        if updates is not None:
            build.record_database = functools.partial(updates.build_database, self.job.id, self.job.attempt)
        before = [p for p in recipe.phases if p.before_odoo]
        after: list[tuple[str, PhaseFn]] = [(p.name, functools.partial(self._recipe_phase, p))
                                            for p in recipe.phases if not p.before_odoo]
        steps: list[tuple[str, PhaseFn]] = [("sources", build.sources), ("install", build.install)]
        steps += [(p.name, functools.partial(self._recipe_phase, p)) for p in before]
        verdict: list[Verdict] = []

        async def odoo() -> int:
            code, judged = await build.odoo()
            verdict.append(judged)
            self.job.sink.system(f"Odoo's verdict: {judged.result}" + ("".join(f"\n  {r}" for r in judged.reasons)),
                                 {"ok": "info", "warn": "warning"}.get(judged.result, "error"))
            if judged.result == "ko":
                return code or 1
            return code or (0 if await gates(build, self.say) else 1)

        if self.job.run.get("stage", "development") == "development" or updates is None:
            steps += [("database", build.database_phase), ("odoo", odoo)]
            return await self._steps(steps + after, None, verdict)
        flow = Stages(build, updates, self.odoo_host.host_name, self.say, verdicts=verdict)
        without_demo(build)
        mode = await flow.mode()
        self.say({"first": "production's first build: a new database without demo data",
                  "copy": "staging: a fresh neutralized copy of production, then the update",
                  "update": "an update in place, behind the maintenance page"}[mode])
        if mode == "first":
            steps += [("database", build.database_phase), ("odoo", odoo), ("snapshot", flow.snapshot), *after]
        elif mode == "copy":
            steps += [("database", flow.staging_copy), ("neutralize", flow.neutralize), ("odoo", flow.update), *after]
        else:
            steps += [("maintenance", flow.maintenance)]
            steps += [("neutralize", flow.neutralize)] if self.job.run["stage"] == "staging" else []
            steps += [("odoo", flow.update), *after, ("deploy", flow.deploy)]
        return await self._steps(steps, flow if mode == "update" else None, verdict)

    async def _steps(self, steps: list[tuple[str, PhaseFn]], flow: Stages | None, verdict: list[Verdict]) -> Outcome:
        """The phases in order; the first that fails stops them. Once an
        update's maintenance began, a failure (or an error) is reverted."""
        names = [n for n, _ in steps]
        for i, (name, fn) in enumerate(steps):
            began = flow is not None and flow.started > 0
            if self.job.stop_after_phase and i and not began:
                return self._stopped(None, names[i:])
            try:
                ok = await self._phase(name, fn)
            except Exception as exc:
                if flow is None or flow.started == 0:
                    raise
                self.say(f"{type(exc).__name__}: {exc}", "error")
                ok, self._refusal = False, str(exc).splitlines()[0][:500] if str(exc) else type(exc).__name__
            if not ok:
                if flow is not None and flow.started > 0:
                    why = self._refusal or (verdict[0].reasons[0] if verdict and verdict[0].reasons
                                            else f"phase {name} failed")
                    self._refusal = await self._revert(flow, why)
                return self._stopped(name, names[i + 1:], verdict[0] if verdict else None)
        return Outcome("succeeded", verdict[0].result if verdict else "ok", exit_code=0)

    async def _revert(self, flow: Stages, why: str) -> str:
        said = [why]

        async def revert() -> int:
            said[0] = await flow.revert(why)
            return 0

        await self._phase("revert", revert)
        return said[0]

    def _stopped(self, failed: str | None, skipped: list[str], verdict: Verdict | None = None) -> Outcome:
        for name in skipped:
            self.job.sink.system(f"phase {name} skipped", "info")
            self.job.sink.phase = None
        reason = self.job.abort_reason
        if reason == "timeout":
            return Outcome("failed", "ko", "timeout")
        if reason in ("canceled", "lease lost"):
            return Outcome("canceled", None, reason)
        if reason == "shutdown" or (failed is None and self.job.stop_after_phase):
            return Outcome("queued", None, "handed back: the worker shut down")
        error = f"phase {failed} failed"
        if self._refusal or (verdict is not None and verdict.reasons):
            error += ": " + (self._refusal or (verdict.reasons[0] if verdict else ""))
        return Outcome("failed", "ko", error, self._exit_code)

    async def _phase(self, name: str, fn: PhaseFn) -> bool:
        sink = self.job.sink
        sink.phase = name
        sink.system(f"phase {name} started")
        began = time.monotonic()
        try:
            code = await fn()
        except InvalidInput as exc:  # what the phase found wrong, said before anything ran
            sink.system(str(exc), "error")
            code, self._refusal = -1, str(exc).splitlines()[0][:500]
        took = time.monotonic() - began
        ok = code == 0 and self.job.abort_reason is None
        verdict = "succeeded" if ok else (self.job.abort_reason or ("failed" if self._refusal else
                                                                    f"failed with exit code {code}"))
        sink.lines("system", [f"phase {name} {verdict} in {took:.1f} s"], "info" if ok else "error")
        sink.phase = None
        if not ok:
            self._exit_code = code
        return ok

    def say(self, message: str, level: str = "info") -> None:
        self.job.sink.system(message, level)

    async def exec_logged(self, command: Command, timeout: float | None = None,
                          tap: Callable[[int, str], None] | None = None) -> int:
        """Run a command, its output in the log; `tap` also sees each line
        (masked, as the log keeps it) with its seq."""
        return await self._exec(command, timeout, tap)

    async def _exec(self, command: Command, timeout: float | None = None,
                    tap: Callable[[int, str], None] | None = None) -> int:
        if self.job.abort_reason:
            return -1
        sink = self.job.sink
        on_lines = sink.lines if tap is None else sink.tapped(tap)
        process = await self.executor.start(command, on_lines)
        self.job.current = process
        if self.job.abort_reason:  # an abort that came while the process was starting
            process.kill()
        try:
            if timeout is None:
                return await process.wait()
            try:
                return await asyncio.wait_for(asyncio.shield(asyncio.ensure_future(process.wait())), timeout)
            except TimeoutError:
                sink.system(f"phase timed out after {timeout:g} s", "error")
                process.kill()
                await process.wait()
                return -9
        finally:
            self.job.current = None

    def command(self, argv: list[str], *, cwd: Path, env: dict[str, str] | None = None, network: bool = False,
                sandbox: bool = True, readable: tuple[Path, ...] = (), writable: tuple[Path, ...] = ()) -> Command:
        work = self.job.workdir
        env = {**self.job.env, **(env or {}), "HOME": str(work / "home"), "TMPDIR": str(work / "tmp"),
               "ODOOOPS_ARTIFACTS": str(self.artifacts)}
        readable = ((self.venv,) if self.venv else ()) + readable
        if self.venv:
            env["PATH"] = f"{self.venv / 'bin'}:{os.environ.get('PATH', '/usr/bin:/bin')}"
            env["VIRTUAL_ENV"] = str(self.venv)
        return Command(argv, cwd, env, network=network, sandbox=sandbox, writable=(work, *writable),
                       readable=readable, hidden=(self.data_dir,), limits=self.limits)

    # checkout: a bare mirror per repository, fetched, then a shared clone at the commit

    async def _checkout(self) -> int:
        """Checked again here, whoever wrote the row: a repository the project's
        org may not read is refused before git touches it (odooops.repos)."""
        run, sha = self.job.run, self.job.run["commit_sha"]
        source = repos.check(run["repo_url"], run.get("repo_roots") or (), repos.Host(self.repo_roots, self.data_dir))
        mirror = self.data_dir / "git" / repos.mirror_name(run["project_id"], source)
        mirror.parent.mkdir(parents=True, exist_ok=True)
        git = lambda *a, cwd=self.job.workdir, env=GIT_ENV: self.command(  # noqa: E731
            ["git", *a], cwd=cwd, env=env, network=True, sandbox=False)
        async with locked(mirror.with_suffix(".lock")):
            if not (mirror / "HEAD").exists():
                self.job.sink.system(f"mirroring {repos.display(source.url)}")
                code = await self._exec(git("clone", "--mirror", "--quiet", "--", source.url, str(mirror),
                                            env=source.git_env()))
            elif await self._exec(git("--git-dir", str(mirror), "cat-file", "-e", f"{sha}^{{commit}}")) == 0:
                code = 0  # the mirror has the commit already (a rebuild, an environment's server)
            else:
                code = await self._exec(git("--git-dir", str(mirror), "fetch", "--prune", "--quiet", "origin",
                                            env=source.git_env()))
            if code != 0:
                return code
        code = await self._exec(git("clone", "--quiet", "--shared", "--no-checkout", str(mirror), str(self.src),
                                    env=MIRROR_ENV))
        if code == 0:
            code = await self._exec(git("checkout", "--quiet", "--detach", sha, cwd=self.src))
        if code == 0 and (self.src / ".gitmodules").exists():
            # remote submodules only, whatever the project's own repository is
            code = await self._exec(git("submodule", "update", "--init", "--recursive", "--quiet", cwd=self.src))
        if code == 0:
            self.job.sink.system(f"checked out {sha[:12]}")
            await self._describe_commit()
        return code

    async def _describe_commit(self) -> None:
        """Tell the control plane the commit's message and author; a build
        does not fail for want of them."""
        if self.on_commit is None:
            return
        try:
            await self.on_commit(*await describe_head(self.src))
        except (OpsError, OSError) as exc:
            self.job.sink.system(f"commit message and author not recorded: {exc}", "warning")

    # install: a virtualenv per hash of the requirements files, reused between builds

    async def _install(self, requirement_files: list[str]) -> int:
        present = [self.src / f for f in requirement_files if (self.src / f).is_file()]
        if not present:
            self.job.sink.system("no requirements file: nothing to install")
            return 0
        h = hashlib.sha256(sys.version.encode())
        for path in present:
            h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
        return await self.make_venv(self.cache / "venvs" / h.hexdigest()[:24], present)

    async def make_venv(self, venv: Path, files: list[Path], python: str = sys.executable) -> int:
        """The virtualenv of these requirements files, made once per host and
        reused; a requirement that does not install is named."""
        venv.parent.mkdir(parents=True, exist_ok=True)
        async with locked(venv.with_suffix(".lock")):
            if (venv / ".complete").exists():
                self.job.sink.system(f"reusing virtualenv {venv.name}")
                self.venv = venv
                return 0
            code = await self._make_venv(venv, files, python)
        if code == 0:
            self.venv = venv
        return code

    async def _make_venv(self, venv: Path, requirements: list[Path], python: str) -> int:
        """Made where it stays (a venv's scripts name its path), under the lock;
        `.complete` is written last, so a half-made one is never reused."""
        self.job.sink.system(f"creating virtualenv {venv.name}")
        shutil.rmtree(venv, ignore_errors=True)
        cmd = lambda argv: self.command(argv, cwd=self.src, network=True, sandbox=False)  # noqa: E731
        code = await self._exec(cmd([python, "-m", "venv", str(venv)]))
        if code == 0 and requirements:
            pip = PipWatch()
            code = await self._exec(cmd([str(venv / "bin" / "python"), "-m", "pip", "install",
                                         "--disable-pip-version-check", "--no-input", "--progress-bar", "off",
                                         *(a for r in requirements for a in ("-r", str(r)))]),
                                    tap=lambda _seq, line: pip.feed(line))
            if code != 0:
                self.job.sink.system(pip.reason(""), "error")
        if code == 0:
            (venv / ".complete").touch()
        else:
            shutil.rmtree(venv, ignore_errors=True)
        return code

    async def _recipe_phase(self, phase: recipes.Phase) -> int:
        self.job.sink.system(f"$ {recipes.describe(phase)}")
        env, writable = (self.database_env, self.database_binds) if not phase.before_odoo else ({}, ())
        return await self._exec(self.command(phase.argv, cwd=self.src, env={**env, **phase.env},
                                             network=phase.network, writable=writable), phase.timeout)
