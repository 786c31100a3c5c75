"""The runner process: registers as a worker, claims runs up to its
concurrency, executes them, heartbeats its leases and reaps dead workers'.

NOTIFY only wakes it; it also polls, so a lost notification strands nothing."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import socket
import time

import psycopg

from odooops import __version__
from odooops.db import Actor, Database
from odooops.errors import LeaseLost, OpsError
from odooops.managers.events import Events
from odooops.managers.project_secrets import ProjectSecrets
from odooops.managers.queue import Queue
from odooops.runner.artifacts import ArtifactStore
from odooops.runner.executor import Executor, Limits, LocalExecutor
from odooops.runner.logs import LogSink, Masker
from odooops.runner.pipeline import BuildPipeline, Job, Outcome
from odooops.runtime import secret_box
from odooops.settings import Settings

log = logging.getLogger(__name__)


MAX_DURATION_SECONDS = 3600  # a project's max_duration_seconds overrides it


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
        self.project_secrets = ProjectSecrets(db, Actor.service(), secret_box(settings))  # the same key as the API's
        self.store = ArtifactStore(settings.data_dir / "artifacts")
        self.jobs: dict[int, Job] = {}
        self.worker_id = None
        self.wake = asyncio.Event()
        self.stopping = False
        self._tasks: set[asyncio.Task] = set()

    async def run(self, stop: asyncio.Event) -> None:
        worker = await self.queue.register_worker(socket.gethostname(), os.getpid(), __version__,
                                                  self.settings.runner_concurrency, self.settings.runner_kinds)
        self.worker_id = worker["id"]
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
            await self.queue.deregister_worker(self.worker_id)

    async def _fill(self) -> None:
        free = self.settings.runner_concurrency - len(self._tasks)  # jobs appear only once a task has begun
        if free <= 0:
            return
        try:
            runs = await self.queue.claim(self.worker_id, self.settings.runner_kinds, self.settings.lease_seconds, free)
        except OpsError as exc:
            log.warning("claim failed: %s", exc)
            return
        for run in runs:
            task = asyncio.create_task(self._execute(run))
            self._tasks.add(task)
            task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        self.wake.set()  # a slot is free
        if not task.cancelled() and task.exception():
            log.error("run task crashed", exc_info=task.exception())

    # one run

    async def _execute(self, claimed: dict) -> None:
        run = await self.queue.run_context(claimed["id"])
        workdir = self.data_dir / "work" / f"run-{run['id']}-{run['attempt']}"
        shutil.rmtree(workdir, ignore_errors=True)
        workdir.mkdir(parents=True)
        settings = run["project_settings"] or {}
        secret_env = await self.project_secrets.reveal(run["project_id"])
        env = {**{k: str(v) for k, v in (settings.get("env") or {}).items()}, **secret_env}
        first_seq = await self.events.next_seq(run["id"])
        sink = LogSink(self.events, run["id"], run["attempt"], first_seq, workdir / "log.txt",
                       Masker([*self.secrets, *secret_env.values()]))
        job = Job(run, workdir, sink, env)
        self.jobs[job.id] = job
        sink.start()
        try:
            try:
                outcome = await self._pipeline(job, settings)
            except Exception as exc:  # a bug of ours must not leave the run running forever
                log.exception("run %s: internal error", job.id)
                job.abort("internal error")
                outcome = Outcome("failed", "ko", f"internal error: {exc}")
            await self._finish(job, outcome)
        finally:
            self.jobs.pop(job.id, None)
            shutil.rmtree(workdir, ignore_errors=True)

    async def _pipeline(self, job: Job, settings: dict) -> Outcome:
        try:
            await self.queue.start(job.id, job.attempt)
        except LeaseLost:
            job.abort("lease lost")
            return Outcome("canceled", None, "lease lost")
        sandbox = ", sandboxed" if getattr(self.executor, "sandboxed", False) else ""
        job.sink.system(f"attempt {job.attempt} of run {job.id} on {socket.gethostname()} "
                        f"({self.executor.name} executor{sandbox})")
        if job.run["kind"] != "build":
            job.sink.system(f"this runner cannot execute runs of kind {job.run['kind']!r}", "error")
            return Outcome("failed", "ko", f"no executor for kind {job.run['kind']}")
        limit = int(settings.get("max_duration_seconds", MAX_DURATION_SECONDS))
        pipeline = BuildPipeline(job, self.executor, self.data_dir, Limits(cpu_seconds=limit),
                                 lambda message, author: self.queue.record_commit(job.id, job.attempt, message, author),
                                 self.settings.repo_roots)
        task = asyncio.create_task(pipeline.run())
        done, _ = await asyncio.wait({task}, timeout=limit)
        if not done:
            job.sink.system(f"run exceeded its maximum duration of {limit} s", "error")
            job.abort("timeout")
        return await task

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
            await self.queue.finish(job.id, job.attempt, outcome.status, outcome.result, outcome.exit_code,
                                    outcome.error)
        except LeaseLost:
            log.info("run %s attempt %s: lease lost before finishing", job.id, job.attempt)

    async def _store_artifacts(self, job: Job) -> None:
        # masked like the log (which is masked as it is written); in a thread, as a large file takes a while
        stored, withheld = await asyncio.to_thread(self.store.collect, job.workdir / "artifacts", job.sink.mask)
        await job.sink.late([w.message for w in withheld])
        stored.append(self.store.put(job.workdir / "log.txt", "log.txt"))
        for a in stored:
            await self.events.record_artifact(job.id, job.attempt, a.name, a.sha256, a.size, a.content_type, a.uri)

    # wake-ups, heartbeats, the reaper, shutdown

    async def _listen(self) -> None:
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(self.listen_conninfo, autocommit=True) as conn:
                    await conn.execute("listen ops_runs")
                    await conn.execute("listen ops_run_canceled")
                    async for note in conn.notifies():
                        self._notified(note.channel, note.payload)
            except psycopg.Error as exc:
                log.warning("listener lost its connection (%s); polling until it is back", exc)
                await asyncio.sleep(self.settings.poll_seconds)

    def _notified(self, channel: str, payload: str) -> None:
        if channel == "ops_runs":
            self.wake.set()
        elif payload.isdigit() and int(payload) in self.jobs:
            self.jobs[int(payload)].abort("canceled")

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self.settings.heartbeat_seconds)
            try:
                lost = await self.queue.heartbeat(self.worker_id, list(self.jobs), self.settings.lease_seconds)
                for run_id in lost:
                    if run_id in self.jobs:
                        self.jobs[run_id].abort("canceled")
                reaped = await self.queue.reap(self.settings.retry_base_seconds, self.settings.retry_cap_seconds)
                for r in reaped:
                    log.warning("run %s lost its worker: now %s", r["id"], r["status"])
                if reaped:
                    self.wake.set()
            except OpsError as exc:
                log.warning("heartbeat failed: %s", exc)

    async def _shutdown(self) -> None:
        """Claim nothing more; let running phases end within the grace period,
        then kill what is left and hand it back to the queue."""
        if not self.jobs:
            return
        log.info("stopping: waiting up to %ss for %s run(s)", self.settings.grace_seconds, len(self.jobs))
        for job in self.jobs.values():
            job.stop_after_phase = True
        deadline = time.monotonic() + self.settings.grace_seconds
        while self._tasks and time.monotonic() < deadline:
            await asyncio.wait(set(self._tasks), timeout=deadline - time.monotonic())
        for job in list(self.jobs.values()):
            job.abort("shutdown")
        if self._tasks:
            await asyncio.wait(set(self._tasks))

    def stop_now(self) -> None:
        """A second Ctrl-C: hand everything back at once."""
        for job in list(self.jobs.values()):
            job.abort("shutdown")
