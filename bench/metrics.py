"""Metrics: ingest through the real HTTP API, and the series query over a
large table.

    .venv/bin/python bench/metrics.py [--seconds 20] [--clients 4] [--samples 10000000] [--queries 200] [--quick]

Starts its own embedded PostgreSQL and a real `odooops serve` (uvicorn, one
process) on it, then:

  ingest_samples_per_second  --clients httpx clients posting 10,000-sample
                             requests (two dims a sample) for --seconds
  ingest_request_p50/p95     time of one such request, as a client sees it
  query_*_p50/p95            GET /api/v1/projects/…/metrics as a member (RLS),
                             over --samples stored samples: one metric over
                             24 h in 5-minute buckets (all branches, then one
                             branch), over 7 days in 1-hour buckets (all from
                             the per-minute rollup), and over 24 h in 90-second
                             buckets (query_24h_raw: from the samples)
  query_sql_24h_p50/p95      the 24 h query's SQL alone (its manager, in-process)

Prints one JSON line per figure on stdout, progress on stderr."""

import os
import sys

# bench/queue.py would shadow the standard library's queue module: put this
# folder last, so `import queue` finds the stdlib while `import _common` works.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path = [p for p in sys.path if os.path.abspath(p or ".") != _HERE] + [_HERE]

import argparse  # noqa: E402
import asyncio  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402
from datetime import datetime, timezone  # noqa: E402

import httpx  # noqa: E402
import psycopg  # noqa: E402
from _common import embedded_postgres, emit, free_port, info, percentile, serve  # noqa: E402

from odooops import runtime  # noqa: E402
from odooops.db import Actor  # noqa: E402
from odooops.managers.branches import Branches  # noqa: E402
from odooops.managers.ingest_tokens import IngestTokens  # noqa: E402
from odooops.managers.metrics import Metrics  # noqa: E402
from odooops.managers.orgs import Orgs  # noqa: E402
from odooops.managers.projects import Projects  # noqa: E402
from odooops.managers.tokens import Tokens  # noqa: E402
from odooops.managers.users import Users  # noqa: E402
from odooops.settings import Settings  # noqa: E402

PROJECT = "bench/shop"
BRANCHES = ("main", "staging", "dev-a", "dev-b")
METRICS = 20          # stored series: METRICS metrics x len(BRANCHES) branches
INTERVAL = 10         # seconds between two samples of one series
PER_REQUEST = 10_000
SERVICE = Actor.service()


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU the processes have used so far (Linux /proc)."""
    total = 0
    for pid in pids:
        try:
            fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def postgres_pids(data_dir, backends: bool) -> list[int]:
    """The embedded server's connection backends, or its other processes
    (postmaster, WAL writer, checkpointer, autovacuum, …)."""
    postmaster = int((data_dir / "postgres" / "postmaster.pid").read_text().split()[0])
    children = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if int(open(f"/proc/{entry}/stat").read().rsplit(")", 1)[1].split()[1]) == postmaster:
                    children.append(int(entry))
            except OSError:
                continue
    def is_backend(pid: int) -> bool:
        try:  # a backend's title: "postgres: user db [local] …"
            return "[local]" in open(f"/proc/{pid}/cmdline").read()
        except OSError:
            return False

    return [pid for pid in (postmaster, *children) if is_backend(pid) == backends]


async def setup(db) -> dict:
    """A project with four branches, a member with an API token, an ingest token."""
    user = await Users(db, SERVICE).create("alice@bench.test")
    await Orgs(db, SERVICE).create("bench", owner_email="alice@bench.test")
    project = await Projects(db, SERVICE).create(PROJECT, "https://git.example.com/bench/shop.git", check=False)
    for name in BRANCHES[1:]:
        await Branches(db, SERVICE).add(PROJECT, name, check=False)
    branches = {b["name"]: b["id"] for b in await Branches(db, SERVICE).list_all(PROJECT)}
    return {"project_id": project["id"], "branches": [branches[n] for n in BRANCHES],
            "api": (await Tokens(db, SERVICE).create("alice@bench.test", "bench", ["read"]))[1],
            "ingest": (await IngestTokens(db, SERVICE).create(PROJECT, "bench"))[1], "user_id": user["id"]}


def bodies(world: dict, count: int) -> list[bytes]:
    """Request bodies made once, so the clients spend their time sending."""
    ts = datetime.now(timezone.utc).isoformat()
    made = []
    for n in range(count):
        samples = [{"metric": f"bench.ingest.m{i % 50}", "value": (n * PER_REQUEST + i) * 0.25,
                    "dims": {"host": f"web-{i % 4}", "db": "prod"}} for i in range(PER_REQUEST)]
        made.append(json.dumps({"project_id": str(world["project_id"]), "branch_id": str(world["branches"][n % 4]),
                                "ts": ts, "samples": samples}).encode())
    return made


class CpuMeter:
    """CPU spent by the server, PostgreSQL and this process (the clients)
    between start() and stop(): what bounds the rate on a small machine."""

    def __init__(self, server_pid: int, data_dir) -> None:
        self.server_pid, self.data_dir = server_pid, data_dir
        self.used: dict[str, float] = {}

    def _now(self) -> dict[str, float]:
        return {"server": cpu_seconds([self.server_pid]),
                "postgres backends": cpu_seconds(postgres_pids(self.data_dir, True)),
                "postgres background": cpu_seconds(postgres_pids(self.data_dir, False)),
                "clients": time.process_time()}

    def start(self) -> None:
        self._start = self._now()

    def stop(self) -> None:
        self.used = {k: v - self._start[k] for k, v in self._now().items()}


async def ingest(base: str, world: dict, clients: int, duration: float,
                 cpu: CpuMeter) -> tuple[int, float, list[float]]:
    """Samples sent and accepted, seconds taken, each request's milliseconds."""
    payloads = bodies(world, 8)
    headers = {"x-ops-ingest-token": world["ingest"], "content-type": "application/json"}
    latencies: list[float] = []
    sent = 0

    async def client(n: int, client: httpx.AsyncClient, until: float) -> None:
        nonlocal sent
        i = n
        while time.perf_counter() < until:
            start = time.perf_counter()
            r = await client.post(f"{base}/api/v1/metrics", content=payloads[i % len(payloads)], headers=headers)
            latencies.append((time.perf_counter() - start) * 1000)
            r.raise_for_status()
            sent += r.json()["inserted"]
            i += clients

    async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=clients)) as http:
        await asyncio.gather(*(client(n, http, time.perf_counter() + 2) for n in range(clients)))  # warm-up
        latencies.clear()
        sent = 0
        cpu.start()
        start = time.perf_counter()
        await asyncio.gather(*(client(n, http, start + duration) for n in range(clients)))
        took = time.perf_counter() - start
        cpu.stop()
        return sent, took, latencies


def load(owner: str, world: dict, total: int) -> None:
    """Top the table up to `total` samples, as the owner, straight from
    generate_series: 80 series 10 s apart, ending now. The indexes are dropped
    and built again afterwards, as one would for a bulk load, from their own
    definitions."""
    with psycopg.connect(owner, autocommit=True) as conn:
        have = conn.execute("select count(*) from ops.metrics").fetchone()[0]
        missing = max(0, total - have)
        series = METRICS * len(BRANCHES)
        indexes = [r[0] for r in conn.execute(
            "select indexdef from pg_indexes where schemaname = 'ops' and tablename = 'metrics'")]
        conn.execute("drop index ops.metrics_series_idx, ops.metrics_ts_brin")
        start = time.perf_counter()
        conn.execute("""
            insert into ops.metrics (project_id, branch_id, ts, metric, value, dims)
            select %(project_id)s, (%(branches)s::uuid[])[1 + (i / %(metrics)s) %% 4],
                   now() - ((%(missing)s - 1 - i) / %(series)s) * interval '1 second' * %(interval)s,
                   'odoo.m' || (i %% %(metrics)s), random() * 100, '{"host": "web-1"}'
              from generate_series(0, %(missing)s - 1) i
        """, {"project_id": world["project_id"], "branches": world["branches"], "metrics": METRICS,
              "missing": missing, "series": series, "interval": INTERVAL})
        conn.execute("""
            insert into ops.metrics_minutely (project_id, metric, minute, branch_key, count, sum, min, max)
            select project_id, metric, date_bin(interval '1 minute', ts, timestamptz 'epoch'),
                   coalesce(branch_id, '00000000-0000-0000-0000-000000000000'),
                   count(*), sum(value), min(value), max(value)
              from ops.metrics where metric like 'odoo.m%%'
             group by 1, 2, 3, 4""")  # what the ingest would have rolled up
        info(f"loaded {missing} samples and their per-minute rollup in {time.perf_counter() - start:.0f} s")
        start = time.perf_counter()
        for definition in indexes:
            conn.execute(definition)
        conn.execute("vacuum (analyze) ops.metrics, ops.metrics_minutely")
        size = conn.execute("select pg_size_pretty(pg_total_relation_size('ops.metrics'))").fetchone()[0]
        info(f"indexes built and vacuumed in {time.perf_counter() - start:.0f} s; table and indexes: {size}")


async def timed_gets(base: str, world: dict, params: dict, count: int) -> list[float]:
    headers = {"Authorization": f"Bearer {world['api']}"}
    url = f"{base}/api/v1/projects/{PROJECT}/metrics"
    times = []
    async with httpx.AsyncClient(timeout=30) as http:
        for i in range(count + 5):
            start = time.perf_counter()
            r = await http.get(url, params=params, headers=headers)
            elapsed = (time.perf_counter() - start) * 1000
            r.raise_for_status()
            if i >= 5:  # the first few warm the caches and the pool
                times.append(elapsed)
    info(f"  {params}: {len(r.json()['points'])} buckets, {sum(p['count'] for p in r.json()['points'])} samples")
    return times


async def timed_sql(db, world: dict, count: int) -> list[float]:
    metrics = Metrics(db, Actor.user(world["user_id"]))
    times = []
    for i in range(count + 5):
        start = time.perf_counter()
        await metrics.series(PROJECT, "odoo.m7", 24, 300)
        if i >= 5:
            times.append((time.perf_counter() - start) * 1000)
    return times


def explain(owner: str, world: dict) -> None:
    """The plans of both series queries, as the owner (without RLS)."""
    from odooops.managers.metrics import Q

    params = {"project_id": world["project_id"], "metric": "odoo.m7", "step": 300, "branch_id": None,
              "since": datetime.fromtimestamp(time.time() // 300 * 300 - 86400, timezone.utc)}
    with psycopg.connect(owner, autocommit=True) as conn:
        for name in ("series_by_minute", "series"):
            plan = conn.execute("explain (analyze, buffers, costs off) " + Q[name], params).fetchall()
            info(f"plan of {name}, 24 h in 5-minute buckets:\n  " + "\n  ".join(r[0] for r in plan))


def report(name: str, values: list[float]) -> None:
    emit(f"{name}_p50", "odooops", percentile(values, 50), "ms")
    emit(f"{name}_p95", "odooops", percentile(values, 95), "ms")


async def main(args: argparse.Namespace) -> None:
    with embedded_postgres() as (data_dir, _):
        settings = Settings(data_dir=data_dir)
        owner = await runtime.prepare(settings)
        async with runtime.database(settings) as db:
            world = await setup(db)
        port = free_port()
        server = serve(data_dir, port)
        base = f"http://127.0.0.1:{port}"
        try:
            info(f"ingest: {args.clients} clients, {PER_REQUEST}-sample requests, {args.seconds} s "
                 f"(load average {os.getloadavg()[0]:.1f})")
            cpu = CpuMeter(server.pid, data_dir)
            sent, took, latencies = await ingest(base, world, args.clients, args.seconds, cpu)
            info(f"  {sent} samples in {took:.1f} s, {len(latencies)} requests; CPU per 10,000 samples: "
                 + ", ".join(f"{k} {v / sent * PER_REQUEST * 1000:.0f} ms" for k, v in cpu.used.items()))
            emit("ingest_samples_per_second", "odooops", sent / took, "samples/s")
            report("ingest_request", latencies)

            load(owner, world, args.samples)
            explain(owner, world)
            info(f"queries: {args.queries} each (load average {os.getloadavg()[0]:.1f})")
            report("query_24h", await timed_gets(base, world, {"metric": "odoo.m7", "hours": 24, "step": 300},
                                                 args.queries))
            report("query_24h_raw", await timed_gets(base, world, {"metric": "odoo.m7", "hours": 24, "step": 90},
                                                     args.queries))
            report("query_24h_branch", await timed_gets(
                base, world, {"metric": "odoo.m7", "hours": 24, "step": 300, "branch": "staging"}, args.queries))
            report("query_7d", await timed_gets(base, world, {"metric": "odoo.m7", "hours": 168, "step": 3600},
                                                args.queries))
            async with runtime.database(settings) as db:
                report("query_sql_24h", await timed_sql(db, world, args.queries))
        finally:
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=20, help="how long the clients post (default 20)")
    p.add_argument("--clients", type=int, default=4, help="concurrent httpx clients (default 4)")
    p.add_argument("--samples", type=int, default=10_000_000, help="samples stored for the queries (default 10M)")
    p.add_argument("--queries", type=int, default=200, help="timed GETs per query (default 200)")
    p.add_argument("--quick", action="store_true", help="smoke run: 5 s of ingest, 1M samples, 50 queries")
    args = p.parse_args()
    if args.quick:
        args.seconds, args.samples, args.queries = 5, 1_000_000, 50
    asyncio.run(main(args))
