"""Running environments: how soon a successful build serves, how fast a
sleeping environment wakes, and what the router costs per request.

  python bench/environments.py --odoo PATH [--cache DIR] [--requests N]

PATH is a git clone of Odoo (e.g. 17.0 community), outside this repository.
On a fresh control plane, one runner builds the demo project's development
branch; `odooops serve` routes to the environment it leaves. Figures (JSON
lines, as the other benches):

  build_to_healthy_seconds   the build's end to its environment healthy and routed
  wake_seconds               a request to a sleeping environment to its answer (target <= 5 s with Odoo 17)
  requests_per_second, p95_ms  GET /web/health, sequential on one kept-alive connection,
                             through the router and straight to the environment's server, side by side
  router_added_p95_ms        the difference at p95 (target <= 2 ms)
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.append(str(Path(__file__).resolve().parent))  # odoo_build's helpers, after the packages

import argparse  # noqa: E402
import asyncio  # noqa: E402
import os  # noqa: E402
import socket  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import httpx  # noqa: E402
import psycopg  # noqa: E402
from psycopg.rows import dict_row  # noqa: E402

from odoo_build import PROJECT, figure, finished, info, make_project  # noqa: E402
from odooops import demo, runtime  # noqa: E402
from odooops.db import Actor, embedded  # noqa: E402
from odooops.managers.branches import Branches  # noqa: E402
from odooops.managers.runs import Runs  # noqa: E402
from odooops.odoo import envdb  # noqa: E402
from odooops.settings import Settings  # noqa: E402

HOST = "feature-hello-bench.localhost"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def environment(owner: str) -> dict | None:
    async with await psycopg.AsyncConnection.connect(owner, autocommit=True, row_factory=dict_row) as conn:
        return await (await conn.execute(
            "select e.*, (s.params ->> 'build_id')::bigint as serving_build from ops.environments e "
            "left join ops.runs s on s.id = e.serve_run_id")).fetchone()


async def until(what: str, check, timeout: float = 300):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := await check():
            return found
        await asyncio.sleep(0.05)
    raise SystemExit(f"timed out waiting for {what}")


async def latencies(client: httpx.AsyncClient, url: str, host: str | None, n: int) -> list[float]:
    headers = {"Host": host} if host else {}
    taken = []
    for _ in range(n):
        began = time.perf_counter()
        answer = await client.get(url, headers=headers)
        taken.append(time.perf_counter() - began)
        if answer.status_code != 200:
            raise SystemExit(f"{url} answered {answer.status_code}")
    return taken


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1] * 1000


async def measure(owner: str, router: str, n: int) -> None:
    env = await environment(owner)
    assert env is not None
    direct = f"http://{env['address']}/web/health"
    async with httpx.AsyncClient(timeout=30) as a, httpx.AsyncClient(timeout=30) as b:
        await latencies(a, f"{router}/web/health", HOST, 50)  # warm both up
        await latencies(b, direct, None, 50)
        through = await latencies(a, f"{router}/web/health", HOST, n)
        straight = await latencies(b, direct, None, n)
    for system, values in (("router", through), ("direct", straight)):
        figure("requests_per_second", system, len(values) / sum(values), "req/s")
        figure("p95_ms", system, p95(values), "ms")
    figure("router_added_p95_ms", "odooops", p95(through) - p95(straight), "ms")


async def wake(owner: str, router: str) -> None:
    async with await psycopg.AsyncConnection.connect(owner, autocommit=True) as conn:
        await conn.execute("update ops.environments set last_request_at = now() - interval '1 day', "
                           "started_at = now() - interval '1 day'")
    await until("the environment to sleep", lambda: _status(owner, "sleeping"), 60)
    began = time.monotonic()
    async with httpx.AsyncClient(timeout=60) as client:
        while (await client.get(f"{router}/web/health", headers={"Host": HOST})).status_code != 200:
            await asyncio.sleep(0.1)  # the router held it, then answered "waking up": a browser refreshes
    figure("wake_seconds", "odooops", time.monotonic() - began, "s")


async def _status(owner: str, status: str) -> bool:
    env = await environment(owner)
    return bool(env and env["status"] == status)


async def main(odoo: Path, cache: Path | None, n: int) -> None:
    with tempfile.TemporaryDirectory(prefix="odooops-bench-") as tmp:
        os.chmod(tmp, 0o755)
        settings = Settings(data_dir=Path(tmp) / "data", runner_concurrency=1, poll_seconds=0.2,
                            repo_roots=(Path(tmp) / "repos", odoo.parent), cache_dir=cache or Path(tmp) / "cache",
                            odoo_python=os.environ.get("ODOOOPS_ODOO_PYTHON", ""))
        repo = demo.make_repo(Path(tmp) / "repos" / "hello")
        subprocess.run(["git", "-C", str(repo), "branch", "feature"], check=True)
        owner = await runtime.prepare(settings)
        port = free_port()
        env = {**os.environ, "ODOOOPS_DATA_DIR": str(settings.data_dir), "ODOOOPS_PORT": str(port)}
        serve = subprocess.Popen([sys.executable, "-m", "odooops", "serve"], env=env, stdout=subprocess.DEVNULL)
        router = f"http://127.0.0.1:{port}"
        try:
            async with runtime.database(settings) as db:
                service = Actor.service()
                await make_project(db, settings, repo, odoo)
                await Branches(db, service).add(PROJECT, "feature", "development", check=False)
                worker = runtime.runner(settings, db)
                stop = asyncio.Event()
                working = asyncio.create_task(worker.run(stop))
                try:
                    run = await Runs(db, service).trigger_build(PROJECT, "feature")
                    info(f"build {run['id']} of the development branch")
                    row = await finished(owner, run["id"])
                    if row["status"] != "succeeded":
                        raise SystemExit(f"build {run['id']} {row['status']}: {row['error']}")
                    ended = time.monotonic()
                    await until("the environment", lambda: _serving(owner, run["id"]))
                    async with httpx.AsyncClient(timeout=30) as client:
                        await until("the router", lambda: _answers(client, router))
                    figure("build_to_healthy_seconds", "odooops", time.monotonic() - ended, "s")
                    await measure(owner, router, n)
                    await wake(owner, router)
                finally:
                    stop.set()
                    await working
        finally:
            serve.terminate()
            serve.wait(timeout=30)
            envdb.stop(settings)
            embedded.stop(settings.data_dir)


async def _serving(owner: str, build_id: int) -> bool:
    env = await environment(owner)
    return bool(env and env["status"] == "running" and env["serving_build"] == build_id)


async def _answers(client: httpx.AsyncClient, router: str) -> bool:
    try:
        return (await client.get(f"{router}/web/health", headers={"Host": HOST})).status_code == 200
    except httpx.HTTPError:
        return False


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--odoo", type=Path, required=True, help="a git clone of Odoo, e.g. 17.0")
    parser.add_argument("--cache", type=Path, help="a cache dir to reuse (mirrors, checkouts, virtualenvs)")
    parser.add_argument("--requests", type=int, default=2000, help="requests each way for the router's cost")
    args = parser.parse_args()
    asyncio.run(main(args.odoo.resolve(), args.cache and args.cache.resolve(), args.requests))
