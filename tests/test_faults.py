"""Fault injection that stays: runners killed mid-build, the database stopped
and started under load (shorter and longer than a lease), a graceful shutdown
on a run's last attempt, a storm of cancels. Each test has its own runners
and, where it stops PostgreSQL, its own server (never the session's)."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from conftest import (
    APP_PASSWORD,
    APP_ROLE,
    allow_path,
    create_database,
    drop_database,
    owner_conn,
    process_env,
    with_db,
)
from helpers import SERVICE, call, make_repo, recipe, wait_until
from psycopg.types.json import Jsonb

from odooops import runtime
from odooops.db import Database, embedded, migrate
from odooops.errors import DatabaseUnavailable, InvalidTransition
from odooops.managers.branches import Branches
from odooops.managers.orgs import Orgs
from odooops.managers.projects import Projects
from odooops.managers.queue import Queue
from odooops.managers.runs import Runs
from odooops.settings import Secret, Settings

FAST = {"ODOOOPS_POLL_SECONDS": "0.2", "ODOOOPS_HEARTBEAT_SECONDS": "0.5", "ODOOOPS_LEASE_SECONDS": "3",
        "ODOOOPS_RETRY_BASE_SECONDS": "0", "ODOOOPS_SHUTDOWN_GRACE_SECONDS": "0.5"}
FINAL = {"succeeded", "failed", "canceled"}
LINES = "echo begin; for i in $(seq 1 {n}); do echo line $i; sleep {pause}; done; echo end"


# a PostgreSQL server of this module's own, which its tests stop and start

@pytest.fixture(scope="module")
def own_server(tmp_path_factory):
    """(data dir, maintenance conninfo) of a server only this module uses, with a migrated template."""
    data_dir = tmp_path_factory.mktemp("faults-pg")
    server = with_db(embedded.start(data_dir), "postgres")
    owner = create_database(server, "faults_template")
    asyncio.run(migrate.migrate(owner))
    asyncio.run(migrate.ensure_app_role(owner, APP_ROLE, APP_PASSWORD))
    yield data_dir, server
    embedded.stop(data_dir)


@pytest.fixture
def own_settings(own_server, tmp_path) -> Settings:
    data_dir, server = own_server
    if not embedded.running(data_dir):  # a test that failed mid-outage
        restart(data_dir)
    name = f"f_{uuid.uuid4().hex[:12]}"
    owner = create_database(server, name, "faults_template")
    yield Settings(data_dir=tmp_path / "data", database_url=Secret(owner), app_role=APP_ROLE,
                   app_password=Secret(APP_PASSWORD), repo_roots=(tmp_path,))
    if not embedded.running(data_dir):
        restart(data_dir)
    drop_database(server, name)


def restart(data_dir: Path) -> None:
    # the wheel keeps a handle per data dir in this process, which would stand for the stopped server
    embedded._server_module().PostgresServer._instances.pop((data_dir / "postgres").resolve(), None)
    embedded.start(data_dir)


def outage(data_dir: Path, seconds: float) -> None:
    embedded.stop(data_dir)
    time.sleep(seconds)
    restart(data_dir)


# runners, projects and what they wrote

def start_runners(settings: Settings, started: list, concurrency: int = 2, **env: str) -> subprocess.Popen:
    full = process_env(settings, **FAST, **env)
    log = (settings.data_dir.parent / f"runner-{len(started)}.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "odooops", "runner", "--concurrency", str(concurrency)],
                            env=full, stdout=log, stderr=subprocess.STDOUT)
    log.close()
    started.append(proc)
    return proc


@pytest.fixture
def runners():
    started: list[subprocess.Popen] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def make_project(settings: Settings, tmp_path: Path, phases: list[dict], branches: tuple[str, ...] = (),
                 org: str = "acme", **project_settings) -> None:
    repo = tmp_path / "repo"  # one repository, which every org is let use
    if not repo.exists():
        make_repo(repo, {".odooops.toml": recipe(*phases)}, branches=branches)

    async def work(db):
        await Orgs(db, SERVICE).create(org)
        await allow_path(db, settings, org, repo)
        await Projects(db, SERVICE).create(f"{org}/app", str(repo))
        for branch in branches:
            await Branches(db, SERVICE).add(f"{org}/app", branch)
    call(settings, work)
    if project_settings:
        with owner_conn(settings.database_url.reveal()) as conn:
            conn.execute("update ops.projects set settings = settings || %s where slug = 'app' and org_id = "
                         "(select id from ops.orgs where slug = %s)", (Jsonb(project_settings), org))


def trigger(settings: Settings, branch: str = "main", org: str = "acme") -> int:
    return call(settings, lambda db: Runs(db, SERVICE).trigger_build(f"{org}/app", branch))["id"]


def events(settings: Settings, run_id: int) -> list[dict]:
    with owner_conn(settings.database_url.reveal()) as conn:
        return conn.execute("select seq, attempt, message from ops.run_events where run_id = %s order by seq",
                            (run_id,)).fetchall()


def runs(settings: Settings, ids: list[int]) -> dict[int, dict]:
    with owner_conn(settings.database_url.reveal()) as conn:
        return {r["id"]: r for r in conn.execute("select * from ops.runs where id = any(%s)", (ids,))}


def wait_final(settings: Settings, ids: list[int], timeout: float = 60) -> dict[int, dict]:
    return wait_until(lambda: (state := runs(settings, ids)) and all(r["status"] in FINAL for r in state.values())
                      and state, timeout, f"runs {ids} to end")


def printed(settings: Settings, run_id: int, message: str) -> bool:
    return any(e["message"] == message for e in events(settings, run_id))


def check_log(settings: Settings, run_id: int) -> list[dict]:
    """No gap and no line twice within an attempt, attempts one after the other: no run executed twice at once."""
    log = events(settings, run_id)
    assert [e["seq"] for e in log] == list(range(1, len(log) + 1))
    attempts = [e["attempt"] for e in log if e["attempt"] is not None]
    assert attempts == sorted(attempts), "two attempts wrote at the same time"
    for attempt in set(attempts):
        lines = [e["message"] for e in log if e["attempt"] == attempt and e["message"].startswith("line ")]
        assert lines == [f"line {i}" for i in range(1, len(lines) + 1)], f"attempt {attempt} lost or repeated lines"
    return log


def log_artifact(settings: Settings, run_id: int) -> str:
    with owner_conn(settings.database_url.reveal()) as conn:
        sha = conn.execute("select sha256 from ops.artifacts where run_id = %s and name = 'log.txt'",
                           (run_id,)).fetchone()["sha256"]
    return (settings.data_dir / "artifacts" / sha[:2] / sha).read_text()


def printing(settings: Settings, runners: list[subprocess.Popen]) -> subprocess.Popen | None:
    """A live runner whose build is printing its lines."""
    with owner_conn(settings.database_url.reveal()) as conn:
        pids = {r["pid"] for r in conn.execute(
            "select w.pid from ops.runs r join ops.workers w on w.id = r.worker_id where r.status = 'running' "
            "and exists (select from ops.run_events e where e.run_id = r.id and e.attempt = r.attempt "
            "and e.message like 'line %%')")}
    return next((p for p in runners if p.poll() is None and p.pid in pids), None)


# the tests

def test_runners_killed_mid_build(settings, tmp_path, runners):
    branches = ("b1", "b2", "b3")
    make_project(settings, tmp_path, [{"name": "work", "command": LINES.format(n=30, pause=0.05)}], branches,
                 max_attempts=5)
    for _ in range(2):
        start_runners(settings, runners)
    ids = [trigger(settings, b) for b in branches]
    for _ in range(4):  # kill -9 a runner while it prints, start another
        victim = wait_until(lambda: printing(settings, runners), 30, "a runner printing a build")
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        start_runners(settings, runners)
    state = wait_final(settings, ids, timeout=90)
    assert any(row["attempt"] > 1 for row in state.values())
    for run_id, row in state.items():
        assert row["status"] == "succeeded" or row["error"], row
        log = check_log(settings, run_id)
        if row["status"] == "succeeded":
            done = [e["attempt"] for e in log if e["message"] == "end"]
            assert done == [row["attempt"]], "only the last attempt may finish"
    retried = next(run_id for run_id, row in state.items() if row["attempt"] > 1 and row["status"] == "succeeded")
    text = log_artifact(settings, retried)  # the whole log, every attempt's lines, as the console downloads it
    assert "attempt 1 of run" in text and f"attempt {state[retried]['attempt']} of run" in text
    assert "lost its worker; retrying in 0 s" in text
    # the folders of the killed processes' attempts are gone; the live runners' remain
    live = sum(p.poll() is None for p in runners)
    folders = [p for p in (settings.data_dir / "work").iterdir() if p.is_dir()]
    assert len(folders) == live and not any(p.name.startswith("run-") for p in folders), folders


@pytest.mark.parametrize("seconds", [1.5, 5], ids=["shorter-than-the-lease", "longer-than-the-lease"])
def test_database_outage_under_load(own_server, own_settings, tmp_path, runners, seconds):
    settings = own_settings
    make_project(settings, tmp_path, [{"name": "work", "command": LINES.format(n=40, pause=0.1)}], ("b1",))
    for _ in range(2):  # one build each
        start_runners(settings, runners, concurrency=1)
    ids = [trigger(settings, "main"), trigger(settings, "b1")]
    wait_until(lambda: all(printed(settings, i, "line 5") for i in ids), 30, "both to print")
    outage(own_server[0], seconds)  # mid-phase for both
    state = wait_final(settings, ids, timeout=60)
    for run_id in ids:
        row = state[run_id]
        assert (row["status"], row["attempt"]) == ("succeeded", 1), (row, events(settings, run_id))
        log = check_log(settings, run_id)
        assert [e["message"] for e in log if e["message"].startswith("line ")] == [f"line {i}" for i in range(1, 41)]
        assert log[-1]["message"] == "run succeeded"


def test_database_outage_at_the_end_of_a_phase(own_server, own_settings, tmp_path, runners):
    settings = own_settings
    make_project(settings, tmp_path, [{"name": "work", "command": "echo begin; sleep 1; echo end"}], ("b1",))
    for _ in range(2):
        start_runners(settings, runners, concurrency=1)
    ids = [trigger(settings, "main"), trigger(settings, "b1")]
    wait_until(lambda: all(printed(settings, i, "begin") for i in ids), 30, "both to begin")
    outage(own_server[0], 4)  # the phases end, log and finish while the database is away
    state = wait_final(settings, ids, timeout=60)
    for run_id in ids:
        assert (state[run_id]["status"], state[run_id]["attempt"]) == ("succeeded", 1)
        messages = [e["message"] for e in check_log(settings, run_id)]
        assert "end" in messages and messages[-1] == "run succeeded"
        with owner_conn(settings.database_url.reveal()) as conn:
            assert conn.execute("select count(*) as n from ops.artifacts where run_id = %s and name = 'log.txt'",
                                (run_id,)).fetchone()["n"] == 1


def test_graceful_shutdown_on_the_last_attempt_does_not_stop_the_queue(settings, tmp_path, runners):
    make_project(settings, tmp_path, [{"name": "work", "command": "echo begin; sleep 2; echo end"}], max_attempts=1)
    make_project(settings, tmp_path, [], org="other")  # the same repository and recipe
    first = start_runners(settings, runners, concurrency=1)
    last_try = trigger(settings)
    wait_until(lambda: printed(settings, last_try, "begin"), 30, "the build to begin")
    other = trigger(settings, org="other")
    first.send_signal(signal.SIGTERM)
    assert first.wait(timeout=20) == 0
    handed_back = runs(settings, [last_try])[last_try]
    assert (handed_back["status"], handed_back["attempt"], handed_back["max_attempts"]) == ("queued", 1, 1)
    start_runners(settings, runners, concurrency=1)
    state = wait_final(settings, [last_try, other], timeout=60)
    assert state[other]["status"] == "succeeded"
    assert (state[last_try]["status"], state[last_try]["attempt"]) == ("succeeded", 2)


def test_cancel_storm(settings, tmp_path, runners):
    branches = tuple(f"b{i}" for i in range(8))
    make_project(settings, tmp_path, [{"name": "work", "command": "echo begin; sleep 1239.5"}], branches)
    start_runners(settings, runners, concurrency=4)
    ids = [trigger(settings, b) for b in branches]
    wait_until(lambda: sum(printed(settings, i, "begin") for i in ids) >= 2, 30, "builds to begin")

    async def storm(db):
        async def cancel(run_id: int) -> None:
            try:
                await Runs(db, SERVICE).cancel(run_id)
            except InvalidTransition:  # canceled by another cancel already
                pass
        await asyncio.gather(*(cancel(i) for i in ids * 3))
    call(settings, storm)
    state = wait_final(settings, ids, timeout=30)
    assert {r["status"] for r in state.values()} == {"canceled"}
    for run_id in ids:
        assert events(settings, run_id)[-1]["message"] == "run canceled by request"
    wait_until(lambda: b"1239.5" not in subprocess.run(["ps", "-eo", "args"], capture_output=True).stdout,
               15, "the canceled phases to die")
    after = trigger(settings, "main")  # the runner goes on claiming
    wait_until(lambda: printed(settings, after, "begin"), 30, "the runner to claim again")
    call(settings, lambda db: Runs(db, SERVICE).cancel(after))


def test_pool_is_back_with_the_database(own_server, own_settings):
    """A connection the restart closed is never handed out, and the pool
    reconnects within a second or two of the database's return."""
    async def main():
        owner = own_settings.database_url.reveal()
        async with Database(runtime.app_conninfo(own_settings, owner), connection_wait=2) as db:
            queue = Queue(db, SERVICE)
            await asyncio.gather(*(queue.queue() for _ in range(4)))  # a few idle connections
            embedded.stop(own_server[0])
            with pytest.raises(DatabaseUnavailable):
                await queue.queue()
            await asyncio.sleep(2)  # the pool's tries to reconnect fail meanwhile
            restart(own_server[0])
            assert await queue.queue() == []  # the first query after the return works
    asyncio.run(asyncio.wait_for(main(), 20))
