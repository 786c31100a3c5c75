"""Queue benchmark: odooops side by side with procrastinate and pgqueuer, each
in its own database on one embedded PostgreSQL, all doing no-op jobs.

    .venv/bin/python bench/queue.py [--jobs 5000] [--repeat 3] [--quick]

Prints one JSON line per figure on stdout, progress on stderr. Needs the
packages of requirements-bench.lock; see bench/README.md."""

import os
import sys

# This file shares its name with the stdlib's queue module, and Python puts a
# script's folder first on sys.path: move it last, so `import queue` (asyncio's
# executors, logging) still finds the stdlib while `import _common` works.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path = [p for p in sys.path if os.path.abspath(p or ".") != _HERE] + [_HERE]

import argparse  # noqa: E402
import asyncio  # noqa: E402
import contextlib  # noqa: E402
import logging  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import time  # noqa: E402
from collections import defaultdict  # noqa: E402
from pathlib import Path  # noqa: E402

import psycopg  # noqa: E402
from _common import (  # noqa: E402
    Probe,
    as_url,
    create_database,
    embedded_postgres,
    emit,
    execute,
    info,
    median,
    percentile,
    seconds,
)

from odooops import runtime  # noqa: E402
from odooops.db import Actor  # noqa: E402
from odooops.managers.queue import Queue  # noqa: E402
from odooops.settings import Settings  # noqa: E402

KIND = "noop"
CHUNK = 1000        # jobs per statement in batch enqueues
LEASE_SECONDS = 30
IDLE_POLL = 2.0     # an idle odooops worker claims at least this often, should a NOTIFY be lost
POOL_SIZE = 10      # odooops' default pool size, given to every system that pools
UNITS = {"enqueue_single": "jobs/s", "enqueue_batch": "jobs/s", "pickup_p50": "ms", "pickup_p95": "ms"}


class Odooops:
    """The real Queue manager over the real pool, as the application role."""

    name = "odooops"
    # figure: (worker loops, runs claimed per call); each loop claims and starts
    # in one transaction, runs the no-op handlers, then finishes those and claims
    # the next in one more (finish_and_claim)
    throughputs = {"throughput_c1": (1, 1), "throughput_c4": (4, 1), "throughput_c4_batch10": (4, 10)}

    def __init__(self, data_dir: Path, probe: Probe):
        self.settings = Settings(data_dir=data_dir, pool_size=POOL_SIZE)
        self.probe = probe

    async def open(self) -> None:
        self.owner = await runtime.prepare(self.settings)
        self.db = runtime.database(self.settings)
        await self.db.open()
        self.q = Queue(self.db, Actor.service())
        async with self.db.transaction(Actor.service()) as c:
            org = await (await c.execute(
                "insert into ops.orgs (slug, name) values ('bench', 'bench') returning id")).fetchone()
            project = await (await c.execute(
                "insert into ops.projects (org_id, slug, name, repo_url) values (%s, 'p', 'p', 'r') returning id",
                (org["id"],))).fetchone()
        self.project_id = project["id"]
        worker = await self.q.register_worker(socket.gethostname(), os.getpid(), "bench", 4, [KIND])
        self.worker_id = worker["id"]

    async def close(self) -> None:
        await self.db.close()

    async def reset(self) -> None:
        await execute(self.owner, "truncate ops.runs cascade")

    async def enqueue_one(self) -> None:
        await self.q.enqueue(self.project_id, KIND, {})

    async def enqueue_chunk(self, n: int) -> None:
        await self.q.enqueue_many(self.project_id, KIND, [{}] * n)

    async def drain(self, loops: int, batch: int) -> float:
        return await seconds(asyncio.gather(*(self._drain_loop(batch) for _ in range(loops))))

    async def _drain_loop(self, batch: int) -> None:
        # as a worker loops: finishing what it ran and claiming the next is one transaction
        runs = await self.q.claim(self.worker_id, [KIND], LEASE_SECONDS, limit=batch, start=True)
        while runs:
            for _ in runs:
                self.probe.hit()
            runs = await self.q.finish_and_claim([(r["id"], r["attempt"]) for r in runs], "succeeded", "ok",
                                                 self.worker_id, [KIND], LEASE_SECONDS, batch, start=True)

    async def _run(self, runs: list[dict]) -> None:
        for _ in runs:
            self.probe.hit()
        if len(runs) == 1:
            await self.q.finish(runs[0]["id"], runs[0]["attempt"], "succeeded", "ok")
        else:
            await self.q.finish_many([(r["id"], r["attempt"]) for r in runs], "succeeded", "ok")

    @contextlib.asynccontextmanager
    async def idle_worker(self):
        """The runner's idle loop: LISTEN on a dedicated connection, claim on a wake-up."""
        listen = await psycopg.AsyncConnection.connect(
            runtime.app_conninfo(self.settings, self.owner), autocommit=True)
        await listen.execute("listen ops_runs")
        task = asyncio.create_task(self._idle_loop(listen))
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await listen.close()

    async def _idle_loop(self, listen: psycopg.AsyncConnection) -> None:
        while True:
            if runs := await self.q.claim(self.worker_id, [KIND], LEASE_SECONDS, limit=1, start=True):
                await self._run(runs)
                continue
            # Notifications wait in the socket until read here, so one sent
            # between the empty claim and this wait is not missed.
            async for _ in listen.notifies(timeout=IDLE_POLL, stop_after=1):
                pass


class Procrastinate:
    name = "procrastinate"
    # figure: (worker concurrency, 1); procrastinate fetches one job per query
    throughputs = {"throughput_c1": (1, 1), "throughput_c4": (4, 1)}
    skipped = {"throughput_c4_batch10": "procrastinate 3.10 fetches one job per query; it has no batch claim"}

    def __init__(self, conninfo: str, probe: Probe):
        import procrastinate

        self.conninfo = conninfo
        self.probe = probe
        # It warns when the App lives in __main__, for workers started elsewhere
        # that must import it; this one's worker runs in this very process.
        logging.getLogger("procrastinate.blueprints").setLevel(logging.ERROR)
        self.app = procrastinate.App(connector=procrastinate.PsycopgConnector(
            conninfo=conninfo, min_size=1, max_size=POOL_SIZE))

        @self.app.task(name=KIND)
        async def noop() -> None:
            probe.hit()

        self.task = noop

    async def open(self) -> None:
        await self.app.open_async()
        await self.app.schema_manager.apply_schema_async()

    async def close(self) -> None:
        await self.app.close_async()

    async def reset(self) -> None:
        await execute(self.conninfo, "truncate procrastinate_jobs, procrastinate_workers cascade")

    async def enqueue_one(self) -> None:
        await self.task.defer_async()

    async def enqueue_chunk(self, n: int) -> None:
        await self.task.batch_defer_async(*([{}] * n))

    async def drain(self, concurrency: int, batch: int) -> float:
        # wait=False: the worker stops by itself once it finds the queue empty
        return await seconds(self.app.run_worker_async(
            concurrency=concurrency, wait=False, install_signal_handlers=False))

    @contextlib.asynccontextmanager
    async def idle_worker(self):
        task = asyncio.create_task(self.app.run_worker_async(
            concurrency=1, wait=True, install_signal_handlers=False))
        try:
            yield
        finally:
            task.cancel()  # procrastinate turns this into a graceful stop
            with contextlib.suppress(asyncio.CancelledError):
                await task


class PgQueuer:
    """pgqueuer over asyncpg: its psycopg driver makes every pick-up wait ~1 s."""

    name = "pgqueuer"
    # figure: (queue managers, batch_size); each manager has its own asyncpg
    # connection, which its driver uses for one statement at a time
    throughputs = {"throughput_c1": (1, 1), "throughput_c4": (4, 1), "throughput_c4_batch10": (4, 10)}

    def __init__(self, conninfo: str, probe: Probe):
        self.conninfo = conninfo
        self.url = as_url(conninfo)
        self.probe = probe

    async def open(self) -> None:
        import asyncpg
        from pgqueuer import AsyncpgDriver, Queries

        self.conn = await asyncpg.connect(self.url)
        self.queries = Queries(AsyncpgDriver(self.conn))
        await self.queries.install()

    async def close(self) -> None:
        await self.conn.close()

    async def reset(self) -> None:
        names = self.queries.qbe.qualified
        await execute(self.conninfo, f"truncate {names.queue_table}, {names.queue_table_log}, {names.statistics_table}")

    async def enqueue_one(self) -> None:
        await self.queries.enqueue(KIND, None)

    async def enqueue_chunk(self, n: int) -> None:
        await self.queries.enqueue([KIND] * n, [None] * n, [0] * n)

    async def drain(self, managers: int, batch: int) -> float:
        from pgqueuer.types import QueueExecutionMode

        # connected before the clock starts: the others' pools are already open
        started = [await self._manager() for _ in range(managers)]
        try:
            return await seconds(asyncio.gather(*(
                qm.run(batch_size=batch, mode=QueueExecutionMode.drain) for qm, _ in started)))
        finally:
            for _, conn in started:
                await conn.close()

    async def _manager(self):
        import asyncpg
        from pgqueuer import AsyncpgDriver, Queries, QueueManager

        conn = await asyncpg.connect(self.url)
        qm = QueueManager(Queries(AsyncpgDriver(conn)))
        probe = self.probe

        @qm.entrypoint(KIND)
        async def noop(job) -> None:
            probe.hit()

        return qm, conn

    @contextlib.asynccontextmanager
    async def idle_worker(self):
        qm, conn = await self._manager()
        task = asyncio.create_task(qm.run(batch_size=1))
        try:
            yield
        finally:
            qm.shutdown.set()
            await task
            await conn.close()


async def enqueue_single(system, n: int) -> float:
    """jobs/s, one job per call (each its own transaction)."""
    start = time.perf_counter()
    for _ in range(n):
        await system.enqueue_one()
    return n / (time.perf_counter() - start)


async def enqueue_batch(system, n: int) -> float:
    """jobs/s, CHUNK jobs per call."""
    start = time.perf_counter()
    for done in range(0, n, CHUNK):
        await system.enqueue_chunk(min(CHUNK, n - done))
    return n / (time.perf_counter() - start)


async def throughput(system, figure: str, n: int) -> float:
    """jobs/s claimed, run and finished, from a queue of n jobs enqueued beforehand."""
    concurrency, batch = system.throughputs[figure]
    await system.reset()
    await enqueue_batch(system, n)
    system.probe.count = 0
    cpu = time.process_time()
    elapsed = await system.drain(concurrency, batch)
    cpu = time.process_time() - cpu
    if system.probe.count != n:
        raise RuntimeError(f"{system.name} ran {system.probe.count} of {n} jobs")
    # On 2 cores the client's own CPU can be the limit: show it beside the rate.
    info(f"  {figure}: {n / elapsed:.0f} jobs/s, client CPU {cpu / n * 1000:.2f} ms/job")
    return n / elapsed


async def pickup(system, n: int, pause: float) -> list[float]:
    """ms from just before each enqueue to its handler starting, one job at a time."""
    await system.reset()
    latencies = []
    async with system.idle_worker():
        await asyncio.sleep(1.0)  # let the worker settle into its idle wait
        for _ in range(n):
            system.probe.arm()
            start = time.perf_counter()
            await system.enqueue_one()
            latencies.append((await system.probe.started() - start) * 1000)
            await asyncio.sleep(pause)  # the worker finishes and goes idle again
    return latencies


async def measure(system, args) -> dict[str, list[float]]:
    samples: dict[str, list[float]] = defaultdict(list)
    for figure, reason in getattr(system, "skipped", {}).items():
        info(f"{system.name}: no {figure}: {reason}")
    for r in range(1, args.repeat + 1):
        info(f"{system.name}: round {r}/{args.repeat}")
        await system.reset()
        samples["enqueue_single"].append(await enqueue_single(system, args.single))
        await system.reset()
        samples["enqueue_batch"].append(await enqueue_batch(system, args.jobs))
        for figure in system.throughputs:
            samples[figure].append(await throughput(system, figure, args.jobs))
        latencies = await pickup(system, args.pickups, args.pause)
        samples["pickup_p50"].append(percentile(latencies, 50))
        samples["pickup_p95"].append(percentile(latencies, 95))
    return samples


async def bench(args) -> None:
    # SIGTERM unwinds like ctrl-c, so the embedded server is stopped and removed.
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, asyncio.current_task().cancel)
    probe = Probe()
    with embedded_postgres() as (data_dir, owner):
        systems = {
            "odooops": lambda: Odooops(data_dir, probe),
            "procrastinate": lambda: Procrastinate(create_database(owner, "bench_procrastinate"), probe),
            "pgqueuer": lambda: PgQueuer(create_database(owner, "bench_pgqueuer"), probe),
        }
        for name in args.systems:
            # Anything else running on a 2-core machine skews every figure: say so.
            info(f"{name}: load average {os.getloadavg()[0]:.2f} before it starts")
            system = systems[name]()
            await system.open()
            try:
                samples = await measure(system, args)
            finally:
                await system.close()
            for figure, values in samples.items():
                emit(figure, name, median(values), UNITS.get(figure, "jobs/s"))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # 20000 is the reference setting; 5000 keeps a default run within 15 minutes
    # on 2 cores shared with other work (10000 took 15 to 19 minutes)
    p.add_argument("--jobs", type=int, default=5000, help="jobs per throughput and batch-enqueue run")
    p.add_argument("--single", type=int, default=None,
                   help="jobs per single-enqueue run (default: a quarter of --jobs)")
    p.add_argument("--repeat", type=int, default=3, help="runs per figure; the median is reported")
    p.add_argument("--pickups", type=int, default=200, help="jobs enqueued one by one for pick-up latency")
    p.add_argument("--pause", type=float, default=0.02, help="seconds between pick-up jobs")
    p.add_argument("--systems", nargs="+", default=["odooops", "procrastinate", "pgqueuer"],
                   choices=["odooops", "procrastinate", "pgqueuer"])
    p.add_argument("--quick", action="store_true", help="smoke run: 2000 jobs, 50 pick-ups, 1 repeat")
    args = p.parse_args(argv)
    if args.quick:
        args.jobs, args.pickups, args.repeat = 2000, 50, 1
    args.single = args.single or max(1, args.jobs // 4)
    return args


if __name__ == "__main__":
    try:
        asyncio.run(bench(parse_args()))
    except asyncio.CancelledError:
        info("stopped by SIGTERM")
        sys.exit(143)
