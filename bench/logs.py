"""How fast a runner gets a phase's output into the database.

  python bench/logs.py [--lines 500000] [--samples 200]

Prints one JSON object per figure, like the other benches:
  lines_per_second   a phase printing --lines lines, from its first line
                     printed to its last line visible in ops.run_events
  visible_p50/p95    print-to-visible latency of single lines printed every
                     20 ms (a watcher polls the table every 2 ms)
"""

from __future__ import annotations

import sys
from pathlib import Path

# bench/queue.py would shadow the standard library's queue module
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import argparse  # noqa: E402
import asyncio  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import psycopg  # noqa: E402

from odooops import repos, runtime  # noqa: E402
from odooops.db import Actor, embedded  # noqa: E402
from odooops.managers.orgs import Orgs  # noqa: E402
from odooops.managers.projects import Projects  # noqa: E402
from odooops.managers.runs import Runs  # noqa: E402
from odooops.settings import Settings  # noqa: E402

FLOOD = "python3 -c \"import sys\nw = sys.stdout.write\nfor i in range({n}): w('line %d of the flood\\n' % i)\""
TICKS = ("python3 -c \"import time\nfor i in range({n}):\n print('T %.6f' % time.time(), flush=True)"
         "\n time.sleep(0.02)\"")


def figure(name: str, value: float, unit: str) -> None:
    print(json.dumps({"figure": name, "system": "odooops", "value": round(value, 2), "unit": unit}), flush=True)


def make_repo(path: Path, lines: int, samples: int) -> None:
    path.mkdir(parents=True)
    # ticks first: behind the flood they would measure its backlog, not a line's way
    (path / ".odooops.toml").write_text(
        f"[[phases]]\nname = \"ticks\"\ncommand = '''{TICKS.format(n=samples)}'''\n"
        f"[[phases]]\nname = \"flood\"\ncommand = '''{FLOOD.format(n=lines)}'''\n")
    for args in (["init", "-q", "-b", "main"], ["add", "-A"],
                 ["-c", "user.name=b", "-c", "user.email=b@b.test", "commit", "-q", "-m", "bench"]):
        subprocess.run(["git", "-C", str(path), *args], check=True)


async def watch(conninfo: str, run_id: int, lines: int, samples: int) -> tuple[float, list[float]]:
    """Poll the run's events; return the flood's lines/s and the ticks' latencies."""
    async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
        latencies: list[float] = []
        after = 0
        ticks = ("select seq, message from ops.run_events where run_id = %s and phase = 'ticks' "
                 "and stream = 'stdout' and seq > %s order by seq")
        while len(latencies) < samples:
            rows = await (await conn.execute(ticks, (run_id, after))).fetchall()
            now = time.time()
            for seq, message in rows:
                after = seq
                latencies.append((now - float(message[2:])) * 1000)
            await asyncio.sleep(0.002)
        count = "select count(*), min(ts) from ops.run_events where run_id = %s and phase = 'flood' and stream = 'stdout'"
        while True:
            seen, first = await (await conn.execute(count, (run_id,))).fetchone()
            if seen >= lines:
                return lines / (time.time() - first.timestamp()), latencies
            await asyncio.sleep(0.005)


async def main(lines: int, samples: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp) / "data", runner_concurrency=1, poll_seconds=0.2, repo_roots=(Path(tmp),))
        make_repo(Path(tmp) / "repo", lines, samples)
        owner = await runtime.prepare(settings)
        try:
            async with runtime.database(settings) as db:
                service = Actor.service()
                await Orgs(db, service).create("bench")
                await Orgs(db, service).allow_path("bench", tmp, repos.Host.of(settings))
                await Projects(db, service).create("bench/logs", str(Path(tmp) / "repo"))
                run = await Runs(db, service).trigger_build("bench/logs", "main")
                worker = runtime.runner(settings, db)
                stop = asyncio.Event()
                working = asyncio.create_task(worker.run(stop))
                print(f"run {run['id']}: {lines} lines, then {samples} timed lines", file=sys.stderr)
                rate, latencies = await watch(owner, run["id"], lines, samples)
                stop.set()
                await working
        finally:
            embedded.stop(settings.data_dir)
    figure("lines_per_second", rate, "lines/s")
    q = statistics.quantiles(latencies, n=100)
    figure("visible_p50", statistics.median(latencies), "ms")
    figure("visible_p95", q[94], "ms")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=500_000)
    parser.add_argument("--samples", type=int, default=200)
    args = parser.parse_args()
    asyncio.run(main(args.lines, args.samples))
