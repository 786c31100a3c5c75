"""The runner process: registers as a worker, claims runs up to its
concurrency, executes them, heartbeats its leases and reaps dead workers'.

NOTIFY only wakes it; it also polls, so a lost notification strands nothing."""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import os
import shutil
import socket
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar
from uuid import UUID

import psycopg

from odooops import __version__, mail, repos, runtime
from odooops.db import Actor, Database
from odooops.environments.serve import ServePipeline
from odooops.errors import DatabaseUnavailable, LeaseLost, NotFound, OpsError
from odooops.managers.environments import Environments
from odooops.managers.events import Events
from odooops.managers.project_secrets import ProjectSecrets
from odooops.managers.queue import Queue
from odooops.managers.updates import Updates
from odooops.odoo import copies, envdb, pyenv, stages
from odooops.odoo.build import OdooHost
from odooops.odoo.sources import ENTERPRISE_TOKEN
from odooops.runner.artifacts import ArtifactStore
from odooops.runner.executor import Executor, Limits, LocalExecutor
from odooops.runner.logs import LogSink, Masker
from odooops.runner.pipeline import BuildPipeline, Job, Outcome
from odooops.runner.workdirs import WorkDirs
from odooops.runtime import secret_box
from odooops.settings import Settings

log = logging.getLogger(__name__)


MAX_DURATION_SECONDS = 3600  # a project's max_duration_seconds overrides it
FORGET_WORKERS_SECONDS = 3600  # a worker silent this long (and ten leases) holding no run is removed
EARLIER_LOG_PAGE = 5000
SERVE_CAPACITY = 50  # environments one runner serves at most (each counts its own memory)
COLLECT_SECONDS = 300  # how often a runner collects its host's idle development environments
LISTEN_CHECK_SECONDS = 10  # a LISTEN connection silent this long is checked
T = TypeVar("T")


class Runner:
    def __init__(self, db: Database, listen_conninfo: str, settings: Settings,
                 executor: Executor | None = None, secrets: list[str] | None = None):
        self.db = db
        self.listen_conninfo = listen_conninfo
        self.data_dir = settings.data_dir
        self.settings = settings
        self.executor = executor or LocalExecutor()
        self.secrets = secrets or []
        self.queue = Queue(db, Actor.service())
        self.events = Events(db, Actor.service())
        self.environments = Environments(db, Actor.service())
        self.updates = Updates(db, Actor.service())
        self.pokes: dict[int, asyncio.Event] = {}  # serve run -> set when its environment changed
        self._collected_at = 0.0
        self.project_secrets = ProjectSecrets(db, Actor.service(), secret_box(settings))  # the same key as the API's
        self.store = ArtifactStore(settings.data_dir / "artifacts")
        self.jobs: dict[int, Job] = {}
        self._worker_id: UUID | None = None
        self.wake = asyncio.Event()
        self.stopping = False
        self.giving_up = False  # stopping at once: steps of runs no longer wait for the database
        self.held: dict[int, int] = {}  # run -> attempt, from the claim to the end of its task
        self.workdirs: WorkDirs | None = None
        self._away = False  # the last heartbeat failed
        self._reap_after = 0.0  # monotonic time before which this runner reaps nothing
        self._tasks: set[asyncio.Task] = set()
        # what Odoo builds share; the environments' server starts when the first one needs it
        self.odoo = OdooHost(functools.partial(envdb.start, settings), runtime.secret_key(settings),
                             settings.cache_dir or settings.data_dir, repos.Host.of(settings),
                             pyenv.parse_substitutes(settings.odoo_requirement_substitutes),
                             (settings.template_cache_size, settings.template_max_age_days),
                             pyenv.parse_pythons(settings.odoo_python),
                             self.updates, settings.runner_host)

    @property
    def worker_id(self) -> UUID:
        if self._worker_id is None:
            raise RuntimeError("the runner is not registered yet")
        return self._worker_id

    @property
    def _workdirs(self) -> WorkDirs:
        if self.workdirs is None:
            raise RuntimeError("the runner has claimed no work folder yet")
        return self.workdirs

    async def run(self, stop: asyncio.Event) -> None:
        await self._register()
        self.workdirs = WorkDirs(self.data_dir, str(self.worker_id))
        await asyncio.to_thread(self.workdirs.claim)
        log.info("worker %s up: concurrency %s, kinds %s", self.worker_id, self.settings.runner_concurrency,
                 ",".join(self.settings.runner_kinds))
        if not getattr(self.executor, "sandboxed", True):
            log.warning("bubblewrap (bwrap) is not installed: phases run without a sandbox, with network")
        background = [asyncio.create_task(self._listen()), asyncio.create_task(self._heartbeat())]
        stopper = asyncio.create_task(stop.wait())
        try:
            while not stop.is_set():
                await self._fill()
                waker = asyncio.create_task(self.wake.wait())
                await asyncio.wait({waker, stopper}, timeout=self.settings.poll_seconds,
                                   return_when=asyncio.FIRST_COMPLETED)
                waker.cancel()
                self.wake.clear()
            await self._shutdown()
        finally:
            stopper.cancel()
            for task in background:
                task.cancel()
            await asyncio.gather(*background, return_exceptions=True)
            self._workdirs.release()
            try:
                await self.queue.deregister_worker(self.worker_id)
            except OpsError as exc:  # a reaper forgets it in time
                log.warning("worker %s not deregistered: %s", self.worker_id, exc)

    async def _register(self) -> None:
        worker = await self.queue.register_worker(self.settings.runner_host, os.getpid(), __version__,
                                                  self.settings.runner_concurrency, self.settings.runner_kinds)
        self._worker_id = worker["id"]

    @property
    def grace_seconds(self) -> int:
        """How long after the database came back no lease is reaped: a lease
        and two heartbeats, time for live workers to renew theirs."""
        return math.ceil(self.settings.lease_seconds + 2 * self.settings.heartbeat_seconds)

    async def _fill(self) -> None:
        """Claim up to the free slots: builds and chores by the concurrency,
        environments' servers (long runs) by their own capacity."""
        kinds = [k for k in self.settings.runner_kinds if k != "serve"]
        serving = len(self.pokes)  # jobs appear only once a task has begun: claimed serve runs count at once
        for wanted, free in ((kinds, self.settings.runner_concurrency - (len(self._tasks) - serving)),
                             (["serve"] if "serve" in self.settings.runner_kinds else [], SERVE_CAPACITY - serving)):
            if not wanted or free <= 0:
                continue
            try:
                runs = await self.queue.claim(self.worker_id, wanted, self.settings.lease_seconds, free)
            except OpsError as exc:
                log.warning("claim failed: %s", exc)
                return
            for run in runs:
                self.held[run["id"]] = run["attempt"]
                if run["kind"] == "serve":
                    self.pokes[run["id"]] = asyncio.Event()
                task = asyncio.create_task(self._execute(run))
                self._tasks.add(task)
                task.add_done_callback(functools.partial(self._done, run["id"]))

    def _done(self, run_id: int, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        self.pokes.pop(run_id, None)
        self.wake.set()  # a slot is free
        if not task.cancelled() and task.exception():
            log.error("run task crashed", exc_info=task.exception())

    # one run

    async def _execute(self, claimed: dict) -> None:
        """One attempt, from reading what it needs to finishing it. Every step
        is in here and waits out a database outage for as long as the run is
        this runner's: nothing may leave a run `running` that nobody executes."""
        run_id, attempt = claimed["id"], claimed["attempt"]
        workdir = self._workdirs.of(run_id, attempt)
        job: Job | None = None
        try:
            run = await self._retry("reading the run", lambda: self.queue.run_context(run_id), (run_id, attempt))
            run["attempt"] = attempt  # the claim's: a newer attempt may be someone else's
            shutil.rmtree(workdir, ignore_errors=True)
            workdir.mkdir(parents=True)
            settings = run["project_settings"] or {}
            secret_env = await self._retry("reading the secrets",
                                           lambda: self.project_secrets.reveal(run["project_id"]),
                                           (run_id, attempt))
            # the enterprise token fetches enterprise only: no phase sees it
            run["enterprise_token"] = secret_env.get(ENTERPRISE_TOKEN)
            env = {**{k: str(v) for k, v in (settings.get("env") or {}).items()},
                   **{k: v for k, v in secret_env.items() if k != ENTERPRISE_TOKEN}}
            first_seq = await self._retry("reading the log", lambda: self.events.next_seq(run_id), (run_id, attempt))
            await self._earlier_log(run_id, attempt, first_seq, workdir / "log.txt")
            # the branch's database password is derived, never stored, and never shown either
            role_password = envdb.role_password(runtime.secret_key(self.settings), run["branch_id"]) \
                if run.get("branch_id") else ""
            sink = LogSink(self.events, run_id, attempt, first_seq, workdir / "log.txt",
                           Masker([*self.secrets, *secret_env.values(), role_password]))
            job = Job(run, workdir, sink, env)
            self.jobs[job.id] = job
            sink.start()
            await self._finish(job, await self._outcome(job, settings))
        except LeaseLost:
            log.info("run %s attempt %s: lease lost", run_id, attempt)
        except Exception as exc:  # a bug of ours, or the database gone while stopping
            log.exception("run %s attempt %s: internal error", run_id, attempt)
            await self._fail(job, run_id, attempt, exc)
        finally:
            if job is not None and self.jobs.get(job.id) is job:
                del self.jobs[job.id]
            if self.held.get(run_id) == attempt:
                del self.held[run_id]
            shutil.rmtree(workdir, ignore_errors=True)

    async def _retry(self, what: str, step: Callable[[], Awaitable[T]], run: tuple[int, int]) -> T:
        """A step of a run, tried again while the database is away, as long
        as the run is still this attempt's (a heartbeat says when it is not:
        then LeaseLost) and the runner is not stopping at once."""
        delay = 0.2
        while True:
            try:
                return await step()
            except DatabaseUnavailable as exc:
                if self.held.get(run[0]) != run[1]:
                    raise LeaseLost() from exc
                if self.giving_up:
                    raise
                if delay == 0.2:
                    log.warning("run %s: %s waits for the database (%s)", run[0], what, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)

    async def _earlier_log(self, run_id: int, attempt: int, first_seq: int, path: Path) -> None:
        """The log artifact holds the whole log, as the console's download does:
        earlier attempts' lines and the control plane's notes come first."""
        after = 0
        with path.open("w", encoding="utf-8") as f:
            while after < first_seq - 1:
                page = functools.partial(self.events.messages, run_id, after, first_seq, EARLIER_LOG_PAGE)
                rows = await self._retry("reading the log", page, (run_id, attempt))
                if not rows:
                    break
                f.writelines(r["message"] + "\n" for r in rows)
                after = rows[-1]["seq"]

    async def _outcome(self, job: Job, settings: dict) -> Outcome:
        try:
            return await self._pipeline(job, settings)
        except LeaseLost:
            job.abort("lease lost")
            return Outcome("canceled", None, "lease lost")
        except Exception as exc:  # a bug of ours must not leave the run running forever
            log.exception("run %s: internal error", job.id)
            job.abort("internal error")
            return Outcome("failed", "ko", f"internal error: {exc}")

    async def _fail(self, job: Job | None, run_id: int, attempt: int, error: Exception) -> None:
        """After an internal error: the run fails with it, if it is still this attempt's."""
        if job is not None:
            job.abort("internal error")
            job.sink.give_up = True
            try:
                await job.sink.close()
            except Exception:
                log.exception("run %s: the log could not be closed", run_id)
        try:
            await self._retry("failing", lambda: self.queue.finish(run_id, attempt, "failed", "ko", None,
                                                                   f"internal error: {error}"), (run_id, attempt))
        except OpsError as exc:
            log.warning("run %s attempt %s could not be failed (%s); its lease will run out", run_id, attempt, exc)

    async def _pipeline(self, job: Job, settings: dict) -> Outcome:
        try:
            await self._retry("starting", lambda: self.queue.start(job.id, job.attempt), (job.id, job.attempt))
        except LeaseLost:
            job.abort("lease lost")
            return Outcome("canceled", None, "lease lost")
        sandbox = ", sandboxed" if getattr(self.executor, "sandboxed", False) else ""
        job.sink.system(f"attempt {job.attempt} of run {job.id} on {socket.gethostname()} "
                        f"({self.executor.name} executor{sandbox})")
        if job.run["kind"] == "cleanup":
            return await self._cleanup(job)
        if job.run["kind"] == "snapshot":
            return await self._snapshot(job)
        if job.run["kind"] == "serve":
            return await ServePipeline(job, self.executor, self.data_dir, self.odoo, self.settings.cache_dir,
                                       self.environments, address=self.settings.runner_address,
                                       idle_seconds=self.settings.environment_idle_minutes * 60,
                                       poke=self.pokes[job.id],
                                       repo_roots=self.settings.repo_roots,
                                       mail_catcher=mail.address(self.settings)).run()
        if job.run["kind"] != "build":
            job.sink.system(f"this runner cannot execute runs of kind {job.run['kind']!r}", "error")
            return Outcome("failed", "ko", f"no executor for kind {job.run['kind']}")
        limit = int(settings.get("max_duration_seconds", MAX_DURATION_SECONDS))
        pipeline = BuildPipeline(job, self.executor, self.data_dir, Limits(cpu_seconds=limit),
                                 lambda message, author: self.queue.record_commit(job.id, job.attempt, message, author),
                                 self.settings.repo_roots, self.odoo, self.settings.cache_dir,
                                 (functools.partial(self.queue.record_sources, job.id, job.attempt),
                                  functools.partial(self.queue.record_test_results, job.id, job.attempt)))
        task = asyncio.create_task(pipeline.run())
        done, _ = await asyncio.wait({task}, timeout=limit)
        if not done:
            job.sink.system(f"run exceeded its maximum duration of {limit} s", "error")
            job.abort("timeout")
        return await task

    async def _cleanup(self, job: Job) -> Outcome:
        """An archived branch's Odoo databases, filestores and role, dropped."""
        run = job.run
        if self.settings.env_database_url is None and not envdb.pgdata(self.data_dir).exists():
            job.sink.system("no Odoo database was ever made on this host: nothing to drop")
            return Outcome("succeeded", "ok", exit_code=0)
        server, _ = await self.odoo.ready()
        role = envdb.role_name(run["org_slug"], run["project_slug"], run["branch_name"], run["branch_id"])
        dropped = await server.drop_branch(role)
        job.sink.system(f"branch {run['branch_name']} ({(run.get('params') or {}).get('why', 'cleanup')}): dropped "
                        f"{len(dropped)} database(s){': ' + ', '.join(dropped) if dropped else ''} and role {role}")
        return Outcome("succeeded", "ok", exit_code=0)

    async def _snapshot(self, job: Job) -> Outcome:
        """Refresh staging data: a new snapshot of production's database."""
        run = job.run
        env = await self.updates.environment(run["branch_id"])
        if not env or not env.get("database") or not env.get("build_id"):
            job.sink.system("production has no database yet: its first build makes one", "error")
            return Outcome("failed", "ko", "production has no database yet")
        server, _ = await self.odoo.ready()
        role = envdb.role_name(run["org_slug"], run["project_slug"], run["branch_name"], run["branch_id"])
        try:
            await stages.refresh_snapshot(self.updates, run, self.settings.runner_host, job.sink.system, server,
                                          run["branch_id"], env["database"], role, env["build_id"])
        except OpsError as exc:
            job.sink.system(str(exc), "error")
            return Outcome("failed", "ko", str(exc))
        return Outcome("succeeded", "ok", exit_code=0)

    async def _finish(self, job: Job, outcome: Outcome) -> None:
        sink = job.sink
        if outcome.status != "canceled":
            sink.system(f"run {outcome.status}" + (f": {outcome.error}" if outcome.error else ""),
                        "info" if outcome.status == "succeeded" else "error")
        await sink.close()
        if job.abort_reason in ("canceled", "lease lost") or sink.lost:
            return  # someone else owns the run now; our writes would be refused anyway
        try:
            await self._store_artifacts(job)
            await self._retry("finishing", lambda: self.queue.finish(
                job.id, job.attempt, outcome.status, outcome.result, outcome.exit_code, outcome.error),
                (job.id, job.attempt))
        except LeaseLost:
            log.info("run %s attempt %s: lease lost before finishing", job.id, job.attempt)

    async def _store_artifacts(self, job: Job) -> None:
        # masked like the log (which is masked as it is written); in a thread, as a large file takes a while
        stored, withheld = await asyncio.to_thread(self.store.collect, job.workdir / "artifacts", job.sink.mask)
        await job.sink.late([w.message for w in withheld])
        stored.append(self.store.put(job.workdir / "log.txt", "log.txt"))
        for a in stored:
            record = functools.partial(self.events.record_artifact, job.id, job.attempt, a.name, a.sha256, a.size,
                                       a.content_type, a.uri)
            await self._retry(f"recording artifact {a.name}", record, (job.id, job.attempt))

    # wake-ups, heartbeats, the reaper, shutdown

    async def _listen(self) -> None:
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(self.listen_conninfo, autocommit=True,
                                                                 connect_timeout=10) as conn:
                    await conn.execute("listen ops_runs")
                    await conn.execute("listen ops_run_canceled")
                    await conn.execute("listen ops_environments")
                    self.wake.set()  # what was queued while it was away
                    while True:
                        async for note in conn.notifies(timeout=LISTEN_CHECK_SECONDS):
                            self._notified(note.channel, note.payload)
                        await conn.execute("select")  # a silent connection may be a dead one
            except psycopg.Error as exc:
                log.warning("listener lost its connection (%s); polling until it is back", exc)
                await asyncio.sleep(self.settings.poll_seconds)

    def _notified(self, channel: str, payload: str) -> None:
        if channel == "ops_runs":
            self.wake.set()
        elif channel == "ops_environments":  # one of them changed: each checks at once whether it is its
            for poke in self.pokes.values():
                poke.set()
        elif payload.isdigit() and int(payload) in self.jobs:
            self.jobs[int(payload)].abort("canceled")

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self.settings.heartbeat_seconds)
            try:
                await self._beat()
            except OpsError as exc:
                if not self._away:
                    log.warning("heartbeat failed: %s", exc)
                self._away = True

    async def _beat(self) -> None:
        """Renew the leases of the runs this runner executes, stop those it
        lost, then reap dead workers' runs. After its own outage it reaps
        nothing for a grace period: its peers may have been cut off as it
        was (a network partition) and need a heartbeat to come back."""
        try:
            lost = await self.queue.heartbeat(self.worker_id, list(self.held), self.settings.lease_seconds)
        except NotFound:  # forgotten after a long silence: its runs were reaped long ago
            log.warning("worker %s was forgotten; registering again", self.worker_id)
            await self._register()
            return
        if self._away:
            log.info("heartbeat is back; reaping nothing for %s s", self.grace_seconds)
            self._away, self._reap_after = False, time.monotonic() + self.grace_seconds
        for run_id in lost:
            self.held.pop(run_id, None)
            if run_id in self.jobs:
                self.jobs[run_id].abort("canceled")
        if time.monotonic() < self._reap_after:
            return
        reaped = await self.queue.reap(self.settings.retry_base_seconds, self.settings.retry_cap_seconds,
                                       self.grace_seconds,
                                       max(FORGET_WORKERS_SECONDS, 10 * self.settings.lease_seconds))
        for r in reaped:
            log.warning("run %s lost its worker: now %s", r["id"], r["status"])
        if reaped:
            self.wake.set()
        await self._collect()

    async def _collect(self) -> None:
        """Development environments of this host with no build for the GC
        days are stopped and their databases dropped (by a cleanup run)."""
        if time.monotonic() - self._collected_at < COLLECT_SECONDS:
            return
        self._collected_at = time.monotonic()
        for e in await self.environments.collect(self.settings.runner_host, self.settings.environment_gc_days):
            log.info("environment %s: no build for %s days, collected", e["label"], self.settings.environment_gc_days)
        await self._drop_copies()

    async def _drop_copies(self) -> None:
        """Pre-update copies past their days and snapshots a newer one replaced."""
        due = await self.updates.copies_to_drop(self.settings.runner_host)
        if not due:
            return
        server, _ = await self.odoo.ready()
        for copy in due:
            if await copies.drop(server, copy["database"]):  # else a clone of it is under way: later
                await self.updates.copy_dropped(copy["id"])
                log.info("dropped %s copy %s", copy["kind"], copy["database"])

    async def _shutdown(self) -> None:
        """Claim nothing more; let running phases end within the grace period,
        then kill what is left and hand it back to the queue."""
        if not self.jobs:
            return
        log.info("stopping: waiting up to %ss for %s run(s)", self.settings.grace_seconds, len(self.jobs))
        for job in self.jobs.values():
            job.stop_after_phase = True
            if job.run["kind"] == "serve":  # handed back: the runner's next start serves it again
                job.abort("shutdown")
        deadline = time.monotonic() + self.settings.grace_seconds
        while self._tasks and time.monotonic() < deadline:
            await asyncio.wait(set(self._tasks), timeout=deadline - time.monotonic())
        for job in list(self.jobs.values()):
            job.abort("shutdown")
        if self._tasks:  # handing back waits for the database a lease at most, then the lease runs out
            await asyncio.wait(set(self._tasks), timeout=self.settings.lease_seconds)
        self._give_up()
        if self._tasks:
            _, stuck = await asyncio.wait(set(self._tasks), timeout=self.settings.lease_seconds)
            if stuck:
                log.warning("stopping: %s run(s) did not end; their leases will run out", len(stuck))

    def stop_now(self) -> None:
        """A second Ctrl-C: hand everything back at once."""
        for job in list(self.jobs.values()):
            job.abort("shutdown")
        self._give_up()

    def _give_up(self) -> None:
        self.giving_up = True
        for job in self.jobs.values():
            job.sink.give_up = True
