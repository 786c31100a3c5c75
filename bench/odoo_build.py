"""How long the demo project's development build takes against a real Odoo
source, and what the database template cache saves.

  python bench/odoo_build.py --odoo PATH [--cache DIR] [--depends account,...]

PATH is a git clone of Odoo (e.g. 17.0 community), outside this repository.
One runner builds the demo project (hello_notes, which depends on mail, and
hello_board) four times on a fresh control plane and environments' server:

  miss      the first build: Odoo's virtualenv (unless --cache has it), the
            template (base, web, mail… installed once), then the modules
  hit       after a commit that changes only the project's modules: the
            template is cloned, only the project's modules install and test
  no_cache  the same commit with the project's template_cache setting off:
            every module installed by the build, as without OdooOps' cache
  hit_again the hit again, to see its spread

Prints one JSON object per figure, like the other benches: each build's
total seconds and its database and odoo phases, and the no-cache/hit ratio.
--depends adds modules to hello_notes' dependencies (a project on account,
say, as most are), to see how the ratio grows with what a project needs.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import argparse  # noqa: E402
import asyncio  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import psycopg  # noqa: E402
from psycopg.rows import dict_row  # noqa: E402

from odooops import demo, repos, runtime  # noqa: E402
from odooops.db import Actor, embedded  # noqa: E402
from odooops.managers.orgs import Orgs  # noqa: E402
from odooops.managers.projects import Projects  # noqa: E402
from odooops.managers.runs import Runs  # noqa: E402
from odooops.odoo import envdb  # noqa: E402
from odooops.settings import Settings  # noqa: E402

PROJECT = "bench/hello"


def figure(name: str, system: str, value: float, unit: str) -> None:
    print(json.dumps({"figure": name, "system": system, "value": round(value, 2), "unit": unit}), flush=True)


def info(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


async def finished(owner: str, run_id: int) -> dict:
    async with await psycopg.AsyncConnection.connect(owner, autocommit=True, row_factory=dict_row) as conn:
        while True:
            row = await (await conn.execute("select * from ops.runs where id = %s", (run_id,))).fetchone()
            if row and row["status"] in ("succeeded", "failed", "canceled"):
                phases = await (await conn.execute(
                    "select name, extract(epoch from ended_at - started_at) as seconds from ops.build_phases(%s)",
                    (run_id,))).fetchall()
                row["phases"] = {p["name"]: float(p["seconds"] or 0) for p in phases}
                return row
            await asyncio.sleep(0.5)


async def timed(db, owner: str, label: str) -> float:
    began = time.monotonic()
    run = await Runs(db, Actor.service()).trigger_build(PROJECT, "main")
    info(f"{label}: build {run['id']}")
    row = await finished(owner, run["id"])
    took = time.monotonic() - began
    if row["status"] != "succeeded":
        raise SystemExit(f"{label}: build {run['id']} {row['status']}: {row['error']}")
    info(f"{label}: {took:.1f} s, phases " + ", ".join(f"{k} {v:.1f} s" for k, v in row["phases"].items()))
    figure("build_seconds", label, took, "s")
    for phase in ("install", "database", "odoo"):
        figure(f"{phase}_seconds", label, row["phases"].get(phase, 0.0), "s")
    return took


async def make_project(db, settings: Settings, repo: Path, odoo: Path) -> None:
    """The bench's org and project on `repo`, building on the Odoo at `odoo`."""
    service = Actor.service()
    await Orgs(db, service).create("bench")
    for root in settings.repo_roots:
        await Orgs(db, service).allow_path("bench", str(root), repos.Host.of(settings))
    await Projects(db, service).create(PROJECT, str(repo), check=False)
    await Projects(db, service).update_settings(PROJECT, {"odoo_repository": str(odoo)})


def add_depends(repo: Path, modules: list[str]) -> None:
    manifest = repo / "hello_notes" / "__manifest__.py"
    manifest.write_text(manifest.read_text().replace('"depends": ["mail"]', f'"depends": {["mail", *modules]!r}'))
    subprocess.run(["git", "-C", str(repo), "-c", "user.name=b", "-c", "user.email=b@b.test",
                    "commit", "-qam", "depend on " + ", ".join(modules)], check=True)


async def main(odoo: Path, cache: Path | None, depends: list[str]) -> None:
    with tempfile.TemporaryDirectory(prefix="odooops-bench-") as tmp:
        os.chmod(tmp, 0o755)  # as root the servers run as their own user, which must reach them
        settings = Settings(data_dir=Path(tmp) / "data", runner_concurrency=1, poll_seconds=0.2,
                            repo_roots=(Path(tmp) / "repos", odoo.parent), cache_dir=cache or Path(tmp) / "cache")
        repo = demo.make_repo(Path(tmp) / "repos" / "hello")
        if depends:
            add_depends(repo, depends)
        owner = await runtime.prepare(settings)
        try:
            async with runtime.database(settings) as db:
                service = Actor.service()
                await make_project(db, settings, repo, odoo)
                worker = runtime.runner(settings, db)
                stop = asyncio.Event()
                working = asyncio.create_task(worker.run(stop))
                try:
                    await timed(db, owner, "miss")
                    note = repo / "hello_board" / "models" / "board.py"
                    note.write_text(note.read_text() + "\n# a change of the project's own module\n")
                    subprocess.run(["git", "-C", str(repo), "-c", "user.name=b", "-c", "user.email=b@b.test",
                                    "commit", "-qam", "change hello_board"], check=True)
                    hit = await timed(db, owner, "hit")
                    await Projects(db, service).update_settings(PROJECT, {"template_cache": False})
                    without = await timed(db, owner, "no_cache")
                    await Projects(db, service).update_settings(PROJECT, {"template_cache": True})
                    again = await timed(db, owner, "hit_again")
                    figure("no_cache_over_hit", "odooops", without / min(hit, again), "x")
                finally:
                    stop.set()
                    await working
        finally:
            envdb.stop(settings)
            embedded.stop(settings.data_dir)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--odoo", type=Path, required=True, help="a git clone of Odoo, e.g. 17.0")
    parser.add_argument("--cache", type=Path, help="a cache dir to reuse (mirrors, checkouts, virtualenvs)")
    parser.add_argument("--depends", default="", help="more dependencies of hello_notes, comma-separated")
    args = parser.parse_args()
    asyncio.run(main(args.odoo.resolve(), args.cache and args.cache.resolve(),
                     [m for m in args.depends.split(",") if m]))
