"""Queue semantics in the database: supersede, debounce, de-duplication,
authorization, priorities, claims, leases, fencing and the reaper."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from uuid import UUID

import psycopg
import pytest
from conftest import acting, owner_conn
from helpers import SERVICE, call
from psycopg.types.json import Jsonb
from world import seed

from odooops.db import Actor
from odooops.errors import Forbidden, InvalidTransition, LeaseLost, NotFound
from odooops.managers.queue import Queue


def NOW():
    return datetime.now(timezone.utc)


SHAS = ["a" * 40, "b" * 40, "c" * 40]


@pytest.fixture
def world(owner_db):
    w = seed(owner_db)
    with owner_conn(owner_db) as conn:  # the seeded runs would get in the way
        conn.execute("delete from ops.runs")
    return w


def settings_of(owner_db, project: UUID, **values) -> None:
    with owner_conn(owner_db) as conn:
        conn.execute("update ops.projects set settings = settings || %s where id = %s", (Jsonb(values), project))


def enqueue(app_db, branch: UUID, sha: str, trigger: str = "push", actor: Actor = SERVICE,
            authorized: bool = True, params: dict | None = None) -> dict:
    with psycopg.connect(app_db, row_factory=psycopg.rows.dict_row) as conn:
        conn.execute("select set_config('role', %s, true), set_config('request.jwt.claims', %s, true)",
                     (actor.role, actor.claims()))
        return conn.execute("select * from ops.enqueue_build_v2(%s, %s, %s, null, null, %s, %s)",
                            (branch, sha, trigger, Jsonb(params or {}), authorized)).fetchone()


def runs(owner_db) -> dict[int, dict]:
    with owner_conn(owner_db) as conn:
        return {r["id"]: r for r in conn.execute("select * from ops.runs order by id")}


def claim(settings, worker: UUID | None = None, limit: int = 1, kinds=None, lease: int = 30) -> list[dict]:
    async def work(db):
        q = Queue(db, SERVICE)
        wid = worker or (await q.register_worker("test", 1, "t", limit, None))["id"]
        return await q.claim(wid, kinds, lease, limit)
    return call(settings, work)


def test_newest_commit_supersedes_queued_builds(app_db, owner_db, world):
    first, second, third = (enqueue(app_db, world.dev, s) for s in SHAS)
    state = runs(owner_db)
    assert [state[r["id"]]["status"] for r in (first, second, third)] == ["superseded", "superseded", "queued"]
    assert state[first["id"]]["superseded_by"] == second["id"]
    assert state[second["id"]]["superseded_by"] == third["id"]


def test_same_commit_twice_is_one_run(app_db, owner_db, world):
    assert enqueue(app_db, world.dev, SHAS[0])["id"] == enqueue(app_db, world.dev, SHAS[0])["id"]
    assert enqueue(app_db, world.dev, SHAS[0], params={"x": 1})["id"] != enqueue(app_db, world.dev, SHAS[0])["id"]


def test_cancel_in_progress(app_db, owner_db, settings, world):
    settings_of(owner_db, world.shop, cancel_in_progress=True)
    running = enqueue(app_db, world.dev, SHAS[0])
    assert claim(settings)[0]["id"] == running["id"]
    newer = enqueue(app_db, world.dev, SHAS[1])
    state = runs(owner_db)
    assert state[running["id"]]["status"] == "canceled" and state[newer["id"]]["status"] == "queued"


def test_without_cancel_in_progress_the_running_build_goes_on(app_db, owner_db, settings, world):
    running = enqueue(app_db, world.dev, SHAS[0])
    claim(settings)
    enqueue(app_db, world.dev, SHAS[1])
    assert runs(owner_db)[running["id"]]["status"] == "claimed"


def test_debounce_replaces_the_waiting_commit(app_db, owner_db, settings, world):
    settings_of(owner_db, world.shop, coalesce_seconds=60)
    first = enqueue(app_db, world.dev, SHAS[0])
    second = enqueue(app_db, world.dev, SHAS[1])
    assert first["id"] == second["id"] and second["commit_sha"] == SHAS[1]
    assert len(runs(owner_db)) == 1
    assert claim(settings) == []  # still inside its quiet time
    with owner_conn(owner_db) as conn:
        conn.execute("update ops.runs set not_before = now() - interval '1 s'")
    assert [r["commit_sha"] for r in claim(settings)] == [SHAS[1]]


def test_fork_pull_requests_wait_for_an_admin(app_db, owner_db, settings, world):
    run = enqueue(app_db, world.dev, SHAS[0], trigger="pull_request", authorized=False)
    assert run["status"] == "awaiting_authorization"
    assert claim(settings) == []
    as_bob = Actor.user(world.bob)  # a developer
    with pytest.raises(Forbidden, match="only an admin"):
        call(settings, lambda db: Queue(db, as_bob).authorize(run["id"]))
    with pytest.raises(Exception, match="not found"):
        call(settings, lambda db: Queue(db, Actor.user(world.eve)).authorize(run["id"]))
    assert call(settings, lambda db: Queue(db, Actor.user(world.alice)).authorize(run["id"]))["status"] == "queued"
    with pytest.raises(InvalidTransition, match="not awaiting authorization"):
        call(settings, lambda db: Queue(db, Actor.user(world.alice)).authorize(run["id"]))
    assert [r["id"] for r in claim(settings)] == [run["id"]]


def test_priorities_production_staging_development_then_manual_then_fifo(app_db, owner_db, settings, world):
    with owner_conn(owner_db) as conn:
        extra = conn.execute("insert into ops.branches (project_id, name) values (%s, 'dev2') returning id",
                             (world.shop,)).fetchone()["id"]
    dev_push = enqueue(app_db, world.dev, SHAS[0], "push")
    dev2_push = enqueue(app_db, extra, SHAS[0], "push")
    dev_manual = enqueue(app_db, world.dev, SHAS[1], "manual")  # supersedes dev_push
    staging = enqueue(app_db, world.staging, SHAS[0], "push")
    prod = enqueue(app_db, world.main, SHAS[0], "push")
    order = [r["id"] for r in claim(settings, limit=10)]
    assert order == [prod["id"], staging["id"], dev_manual["id"], dev2_push["id"]]
    assert runs(owner_db)[dev_push["id"]]["status"] == "superseded"


def test_one_running_build_per_branch(app_db, owner_db, settings, world):
    first = enqueue(app_db, world.dev, SHAS[0])
    assert [r["id"] for r in claim(settings)] == [first["id"]]
    second = enqueue(app_db, world.dev, SHAS[1])
    assert claim(settings) == []
    assert "branch is busy with run" in next(r for r in call(settings, lambda db: Queue(db, SERVICE).queue())
                                             if r["id"] == second["id"])["reason"]


def test_project_concurrency_cap(app_db, owner_db, settings, world):
    settings_of(owner_db, world.shop, max_concurrent_runs=1)
    enqueue(app_db, world.dev, SHAS[0])
    enqueue(app_db, world.staging, SHAS[0])
    assert len(claim(settings, limit=5)) == 1
    assert claim(settings, limit=5) == []
    settings_of(owner_db, world.shop, max_concurrent_runs=2)
    assert len(claim(settings, limit=5)) == 1


def test_kinds_a_worker_runs(app_db, owner_db, settings, world):
    enqueue(app_db, world.dev, SHAS[0])
    assert claim(settings, kinds=["backup"]) == []
    assert len(claim(settings, kinds=["build"])) == 1


def test_eight_claimers_over_2000_runs_claim_each_once(settings, world):
    async def work(db):
        q = Queue(db, SERVICE)
        await q.enqueue_many(world.shop, "noop", [{"i": i} for i in range(2000)])
        claimed: list[int] = []

        async def claimer(n: int):
            wid = (await q.register_worker("test", n, "t", 1, None))["id"]
            while batch := await q.claim(wid, ["noop"], 30, 1 + n % 3):
                for run in batch:
                    claimed.append(run["id"])
                    await q.finish(run["id"], run["attempt"], "canceled")

        await asyncio.gather(*(claimer(n) for n in range(8)))
        return claimed

    claimed = call(settings.with_overrides(pool_size=9), work)
    assert len(claimed) == 2000 and len(set(claimed)) == 2000


def test_stale_attempt_cannot_write(app_db, owner_db, settings, world):
    enqueue(app_db, world.dev, SHAS[0])
    run = claim(settings, lease=1)[0]
    with owner_conn(owner_db) as conn:
        conn.execute("update ops.runs set lease_expires_at = now() - interval '1 s'")

    async def work(db):
        q = Queue(db, SERVICE)
        reaped = await q.reap(0, 0)
        assert [(r["id"], r["status"], r["attempt"]) for r in reaped] == [(run["id"], "queued", 1)]
        with pytest.raises(LeaseLost):
            await q.start(run["id"], run["attempt"])
        with pytest.raises(LeaseLost):
            await q.finish(run["id"], run["attempt"], "succeeded", "ok")
        from odooops.managers.events import Events
        with pytest.raises(LeaseLost):
            await Events(db, SERVICE).append([(run["id"], run["attempt"], 1, NOW(), "info", None, "stdout", "late")])
        again = await q.claim((await q.register_worker("w2", 2, "t", 1, None))["id"], None, 30, 1)
        assert again[0]["attempt"] == 2
        # line 1 is the reaper's note that attempt 1 lost its worker
        await Events(db, SERVICE).append([(run["id"], 2, 2, NOW(), "info", None, "stdout", "fresh")])

    call(settings, work)


def test_reaper_backs_off_then_gives_up(app_db, owner_db, settings, world):
    enqueue(app_db, world.dev, SHAS[0])
    with owner_conn(owner_db) as conn:
        conn.execute("update ops.runs set max_attempts = 2")
    expire = "update ops.runs set lease_expires_at = now() - interval '1 s', not_before = null"
    claim(settings)
    with owner_conn(owner_db) as conn:
        conn.execute(expire)
    first = call(settings, lambda db: Queue(db, SERVICE).reap(5, 300))
    assert first[0]["status"] == "queued" and first[0]["error"] == "worker lost"
    assert claim(settings) == []  # backing off
    with owner_conn(owner_db) as conn:
        conn.execute("update ops.runs set not_before = now()")
    assert len(claim(settings)) == 1
    with owner_conn(owner_db) as conn:
        conn.execute(expire)
    last = call(settings, lambda db: Queue(db, SERVICE).reap(5, 300))
    assert (last[0]["status"], last[0]["error"], last[0]["attempt"]) == ("failed", "worker lost", 2)


def test_heartbeat_renews_and_reports_lost_runs(app_db, owner_db, settings, world):
    enqueue(app_db, world.dev, SHAS[0])

    async def work(db):
        q = Queue(db, SERVICE)
        wid = (await q.register_worker("w", 1, "t", 1, None))["id"]
        run = (await q.claim(wid, None, 1, 1))[0]
        assert await q.heartbeat(wid, [run["id"]], 60) == []
        await q.finish(run["id"], run["attempt"], "canceled")
        assert await q.heartbeat(wid, [run["id"]], 60) == [run["id"]]

    call(settings, work)
    assert runs(owner_db)  # nothing reaped by the renewed lease


def test_batch_claim_started_and_finished_together(settings, world):
    async def work(db):
        q = Queue(db, SERVICE)
        await q.enqueue_many(world.shop, "noop", [{}] * 5)
        wid = (await q.register_worker("w", 1, "t", 5, None))["id"]
        batch = await q.claim(wid, ["noop"], 30, 3, start=True)
        assert [r["status"] for r in batch] == ["running"] * 3
        stale = [(r["id"], r["attempt"]) for r in batch] + [(batch[0]["id"] + 3, 1)]  # one not held
        with pytest.raises(LeaseLost, match="1 of 4 runs"):
            await q.finish_many(stale, "succeeded", "ok")
        done = await q.finish_many([(r["id"], r["attempt"]) for r in batch], "succeeded", "ok")
        assert sorted(r["status"] for r in done) == ["succeeded"] * 3

    call(settings, work)


def test_finish_and_claim_in_one_transaction(settings, world):
    async def work(db):
        q = Queue(db, SERVICE)
        await q.enqueue_many(world.shop, "noop", [{}] * 3)
        wid = (await q.register_worker("w", 1, "t", 1, None))["id"]
        first = await q.claim(wid, ["noop"], 30, 1, start=True)
        second = await q.finish_and_claim([(first[0]["id"], 1)], "succeeded", "ok", wid, ["noop"], 30, 2, True)
        assert len(second) == 2 and first[0]["id"] not in {r["id"] for r in second}
        with pytest.raises(LeaseLost):  # a stale finish claims nothing either
            await q.finish_and_claim([(first[0]["id"], 1)], "succeeded", "ok", wid, ["noop"], 30, 1, True)
        assert await q.finish_and_claim([(r["id"], r["attempt"]) for r in second], "succeeded", "ok", wid,
                                        ["noop"], 30, 1, True) == []

    call(settings, work)


# Reliability: hand-backs, runs that cannot be claimed, heartbeats, the reaper's grace, notes.

def notes(owner_db, run_id: int) -> list[str]:
    with owner_conn(owner_db) as conn:
        return [r["message"] for r in conn.execute(
            "select message from ops.run_events where run_id = %s and attempt is null order by seq", (run_id,))]


def test_hand_back_on_the_last_attempt_gives_the_attempt_back(app_db, owner_db, settings, world):
    run = enqueue(app_db, world.dev, SHAS[0])
    with owner_conn(owner_db) as conn:
        conn.execute("update ops.runs set max_attempts = 1")

    async def work(db):
        q = Queue(db, SERVICE)
        wid = (await q.register_worker("w", 1, "t", 1, None))["id"]
        for attempt in (1, 2):  # a graceful shutdown hands it back twice
            claimed = await q.claim(wid, None, 30, 1)
            assert [(r["id"], r["attempt"]) for r in claimed] == [(run["id"], attempt)]
            await q.finish(run["id"], attempt, "queued", error="handed back: the worker shut down")
        third = await q.claim(wid, None, 30, 1, start=True)
        assert [(r["id"], r["attempt"]) for r in third] == [(run["id"], 3)]  # still the fencing token
        with pytest.raises(LeaseLost):
            await q.finish(run["id"], 2, "succeeded", "ok")
        await q.finish(run["id"], 3, "succeeded", "ok")

    call(settings, work)
    assert runs(owner_db)[run["id"]]["status"] == "succeeded"


def test_a_run_that_cannot_be_claimed_fails_and_the_queue_goes_on(app_db, owner_db, settings, world):
    stuck = enqueue(app_db, world.main, SHAS[0])  # first in line: production
    with owner_conn(owner_db) as conn:  # as a hand-back on the last attempt left it before
        conn.execute("update ops.runs set attempt = max_attempts where id = %s", (stuck["id"],))
        broken = conn.execute("insert into ops.runs (project_id, branch_id, commit_sha, priority) "
                              "values (%s, %s, %s, 1000) returning id", (world.shop, world.staging, SHAS[1])
                              ).fetchone()["id"]
        # any error while claiming one run, here from a trigger
        conn.execute(f"""create function public.refuse_claim() returns trigger language plpgsql as $$
            begin if new.id = {broken} and new.status = 'claimed' then raise exception 'refused'; end if;
            return new; end $$""")
        conn.execute("create trigger refuse before update on ops.runs for each row execute function public.refuse_claim()")
        lab = conn.execute("insert into ops.runs (project_id, branch_id, commit_sha) "
                           "select project_id, id, %s from ops.branches where project_id = %s returning id",
                           (SHAS[2], world.lab)).fetchone()["id"]
        claimed = claim(settings, limit=1)
        conn.execute("drop trigger refuse on ops.runs; drop function public.refuse_claim()")
    assert [r["id"] for r in claimed] == [lab]  # another org's run goes
    state = runs(owner_db)
    assert (state[stuck["id"]]["status"], state[stuck["id"]]["error"]) == ("failed", "no attempt left (3 of 3 used)")
    assert state[broken]["status"] == "failed" and "refused" in state[broken]["error"]
    assert notes(owner_db, stuck["id"]) == ["run failed: no attempt left (3 of 3 used)"]


def test_heartbeat_renews_only_the_runs_it_names(app_db, owner_db, settings, world):
    enqueue(app_db, world.dev, SHAS[0])
    enqueue(app_db, world.staging, SHAS[0])

    async def work(db):
        q = Queue(db, SERVICE)
        wid = (await q.register_worker("w", 1, "t", 2, None))["id"]
        executing, abandoned = await q.claim(wid, None, 30, 2)
        with owner_conn(owner_db) as conn:
            conn.execute("update ops.runs set lease_expires_at = now() - interval '1 s'")
        assert await q.heartbeat(wid, [executing["id"]], 30) == []
        reaped = await q.reap(0, 0, 0)
        assert [r["id"] for r in reaped] == [abandoned["id"]]

    call(settings, work)


def test_reaper_waits_for_workers_after_the_server_started(app_db, owner_db, settings, world):
    enqueue(app_db, world.dev, SHAS[0])
    run = claim(settings)[0]
    with owner_conn(owner_db) as conn:
        conn.execute("update ops.runs set lease_expires_at = now() - interval '1 s'")
        up_for = conn.execute("select extract(epoch from now() - pg_postmaster_start_time())::int as s"
                              ).fetchone()["s"]
    # as if the server had started a moment ago: the leases ran out while it was down
    assert call(settings, lambda db: Queue(db, SERVICE).reap(0, 0, up_for + 60)) == []
    assert runs(owner_db)[run["id"]]["status"] == "claimed"
    assert [r["id"] for r in call(settings, lambda db: Queue(db, SERVICE).reap(0, 0, 0))] == [run["id"]]


def test_reaper_forgets_dead_workers_that_hold_no_run(app_db, owner_db, settings, world):
    enqueue(app_db, world.dev, SHAS[0])
    busy = claim(settings)[0]["worker_id"]
    with owner_conn(owner_db) as conn:
        conn.execute("update ops.workers set heartbeat_at = now() - interval '2 hours'")
    call(settings, lambda db: Queue(db, SERVICE).reap(0, 0, 0, 3600))
    with owner_conn(owner_db) as conn:
        left = [r["id"] for r in conn.execute("select id from ops.workers")]
    assert left == [busy]  # the seeded worker is gone; the one holding a run stays until it is reaped


def test_forgotten_worker_is_told_by_its_heartbeat(settings, world):
    async def work(db):
        q = Queue(db, SERVICE)
        wid = (await q.register_worker("w", 1, "t", 1, None))["id"]
        await q.deregister_worker(wid)
        with pytest.raises(NotFound, match="not registered"):
            await q.heartbeat(wid, [], 30)

    call(settings, work)


def test_reaper_and_cancel_end_the_log_with_a_note(app_db, owner_db, settings, world):
    run = enqueue(app_db, world.dev, SHAS[0])
    with owner_conn(owner_db) as conn:
        conn.execute("update ops.runs set max_attempts = 2")
    for _ in range(2):
        with owner_conn(owner_db) as conn:
            conn.execute("update ops.runs set not_before = null")
        claim(settings)
        with owner_conn(owner_db) as conn:
            conn.execute("update ops.runs set lease_expires_at = now() - interval '1 s'")
        call(settings, lambda db: Queue(db, SERVICE).reap(3, 300, 0))
    assert notes(owner_db, run["id"]) == ["attempt 1 lost its worker; retrying in 3 s",
                                          "run failed: worker lost after 2 attempts"]
    other = enqueue(app_db, world.staging, SHAS[0])
    claim(settings)
    with acting(app_db, Actor.user(world.alice)) as conn:
        conn.execute("select ops.cancel_run(%s)", (other["id"],))
        conn.commit()
    assert notes(owner_db, other["id"]) == ["run canceled by request"]
