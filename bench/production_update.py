"""Production update downtime: how long production's URL shows the
maintenance page for a one-module update with real Odoo.

  python bench/production_update.py --odoo PATH [--cache DIR] [--updates N]

PATH is a git clone of Odoo (e.g. 17.0 community), outside this repository.
On a fresh control plane, one runner builds the demo project's production
branch (main: hello_notes and hello_board, without demo data), then, N
times, a commit that bumps hello_board's manifest version is pushed and
built. A client asks production's URL through the router every 50 ms; the
downtime is from the first maintenance answer (503) to the first healthy
answer (200) after it. Figures (JSON lines, as the other benches):

  update_downtime_seconds      first 503 to healthy again, as a client sees it (median of N)
  maintenance_seconds          what OdooOps recorded: maintenance begun to the new server healthy
  phase_*_seconds              the update build's maintenance (stop + pre-update copy), odoo (-u), deploy
                               (snapshot for staging + the new server's start)
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.append(str(Path(__file__).resolve().parent))  # the other benches' helpers, after the packages

import argparse  # noqa: E402
import asyncio  # noqa: E402
import os  # noqa: E402
import re  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import httpx  # noqa: E402
import psycopg  # noqa: E402
from psycopg.rows import dict_row  # noqa: E402

from environments import free_port, until  # noqa: E402
from odoo_build import PROJECT, figure, finished, info, make_project  # noqa: E402
from odooops import demo, runtime  # noqa: E402
from odooops.db import Actor, embedded  # noqa: E402
from odooops.managers.runs import Runs  # noqa: E402
from odooops.odoo import envdb  # noqa: E402
from odooops.settings import Settings  # noqa: E402

HOST = "main-hello-bench.localhost"


async def row(owner: str, query: str, params: tuple = ()) -> dict | None:
    async with await psycopg.AsyncConnection.connect(owner, autocommit=True, row_factory=dict_row) as conn:
        return await (await conn.execute(query, params)).fetchone()  # type: ignore[arg-type]


async def serving(owner: str, build_id: int) -> bool:
    env = await row(owner, "select e.status, (s.params ->> 'build_id')::bigint as build from ops.environments e "
                           "left join ops.runs s on s.id = e.serve_run_id")
    return bool(env and env["status"] == "running" and env["build"] == build_id)


def bump(repo: Path, n: int) -> None:
    manifest = repo / "hello_board" / "__manifest__.py"
    manifest.write_text(re.sub(r'"version": "17\.0\.1\.0\.\d+"', f'"version": "17.0.1.0.{n}"', manifest.read_text()))
    subprocess.run(["git", "-C", str(repo), "-c", "user.name=b", "-c", "user.email=b@b.test",
                    "commit", "-qam", f"hello_board {n}"], check=True)


async def watch(router: str, stop: asyncio.Event) -> tuple[float | None, float | None]:
    """When the first 503 came, and the first 200 after it (asked until then,
    `stop` or not: the router may still answer from what it looked up last)."""
    down = up = None
    deadline = None
    async with httpx.AsyncClient(timeout=10) as client:
        while up is None and (deadline is None or time.monotonic() < deadline):
            if stop.is_set() and deadline is None:
                deadline = time.monotonic() + 30
            try:
                status = (await client.get(f"{router}/web/health", headers={"Host": HOST})).status_code
            except httpx.HTTPError:
                status = 0
            now = time.monotonic()
            if status == 503 and down is None:
                down = now
            elif status == 200 and down is not None and up is None:
                up = now
            await asyncio.sleep(0.05)
    return down, up


async def update(db, owner: str, repo: Path, router: str, n: int) -> float:
    bump(repo, n)
    stop = asyncio.Event()
    watching = asyncio.create_task(watch(router, stop))
    run = await Runs(db, Actor.service()).trigger_build(PROJECT, "main")
    done = await finished(owner, run["id"])
    if done["status"] != "succeeded":
        raise SystemExit(f"update build {run['id']} {done['status']}: {done['error']}")
    await until("production to serve the update", lambda: serving(owner, run["id"]), 120)
    await asyncio.sleep(0.5)
    stop.set()
    down, up = await watching
    if down is None or up is None:
        raise SystemExit(f"the watcher saw no maintenance page (503 at {down}, 200 at {up})")
    recorded = await row(owner, "select maintenance_seconds, updated_modules from ops.updates where build_id = %s",
                         (run["id"],))
    phases = done["phases"]
    info(f"update {n}: build {run['id']} updated {recorded and recorded['updated_modules']}; "
         f"503 to 200 in {up - down:.2f} s; phases {phases}")
    if recorded:
        figure("maintenance_seconds", "odooops", float(recorded["maintenance_seconds"]), "s")
    for phase in ("maintenance", "odoo", "deploy"):
        figure(f"phase_{phase}_seconds", "odooops", phases.get(phase, 0.0), "s")
    return up - down


async def main(odoo: Path, cache: Path | None, updates: int) -> None:
    with tempfile.TemporaryDirectory(prefix="odooops-bench-") as tmp:
        os.chmod(tmp, 0o755)
        settings = Settings(data_dir=Path(tmp) / "data", runner_concurrency=1, poll_seconds=0.2,
                            repo_roots=(Path(tmp) / "repos", odoo.parent), cache_dir=cache or Path(tmp) / "cache",
                            odoo_python=os.environ.get("ODOOOPS_ODOO_PYTHON", ""))
        repo = demo.make_repo(Path(tmp) / "repos" / "hello")
        owner = await runtime.prepare(settings)
        port = free_port()
        env = {**os.environ, "ODOOOPS_DATA_DIR": str(settings.data_dir), "ODOOOPS_PORT": str(port),
               "ODOOOPS_MAIL_CATCHER_ADDRESS": f"127.0.0.1:{free_port()}"}
        serve = subprocess.Popen([sys.executable, "-m", "odooops", "serve"], env=env,  # noqa: ASYNC220
                                 stdout=subprocess.DEVNULL)
        router = f"http://127.0.0.1:{port}"
        try:
            async with runtime.database(settings) as db:
                await make_project(db, settings, repo, odoo)
                worker = runtime.runner(settings, db)
                stop = asyncio.Event()
                working = asyncio.create_task(worker.run(stop))
                try:
                    first = await Runs(db, Actor.service()).trigger_build(PROJECT, "main")
                    info(f"build {first['id']}: production's first")
                    done = await finished(owner, first["id"])
                    if done["status"] != "succeeded":
                        raise SystemExit(f"build {first['id']} {done['status']}: {done['error']}")
                    await until("production", lambda: serving(owner, first["id"]), 300)
                    downtimes = [await update(db, owner, repo, router, n) for n in range(1, updates + 1)]
                    figure("update_downtime_seconds", "odooops", statistics.median(downtimes), "s")
                finally:
                    stop.set()
                    await working
        finally:
            serve.terminate()
            serve.wait(timeout=30)
            envdb.stop(settings)
            embedded.stop(settings.data_dir)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--odoo", type=Path, required=True, help="a git clone of Odoo, e.g. 17.0")
    parser.add_argument("--cache", type=Path, help="a cache dir to reuse (mirrors, checkouts, virtualenvs)")
    parser.add_argument("--updates", type=int, default=3, help="how many one-module updates")
    args = parser.parse_args()
    asyncio.run(main(args.odoo.resolve(), args.cache and args.cache.resolve(), args.updates))
