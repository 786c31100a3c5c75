"""A build's commit message and author: written by the control plane and by
the attempt that holds the run, never by users; kept to one short line;
forgotten when the run's commit changes; listed with each branch."""

from __future__ import annotations

import psycopg
import pytest
from conftest import acting, owner_conn
from helpers import SERVICE, call
from test_queue import SHAS, claim, enqueue, runs, settings_of, world  # noqa: F401  (world is a fixture)

from odooops.db import Actor
from odooops.errors import LeaseLost
from odooops.managers.branches import Branches
from odooops.managers.queue import Queue


def test_the_attempt_holding_the_run_records_its_commit(app_db, owner_db, settings, world):
    run = enqueue(app_db, world.dev, SHAS[0])
    assert (run["commit_message"], run["commit_author"]) == (None, None)
    held = claim(settings)[0]
    message = "  Teach the shop to sell\r\n\nWhy, at length.\n" + "x" * 300

    async def work(db):
        q = Queue(db, SERVICE)
        recorded = await q.record_commit(held["id"], held["attempt"], message, " Ada Lovelace ")
        assert (recorded["commit_message"], recorded["commit_author"]) == ("Teach the shop to sell", "Ada Lovelace")
        long = await q.record_commit(held["id"], held["attempt"], "y" * 500, "")
        assert (long["commit_message"], long["commit_author"]) == ("y" * 200, None)

    call(settings, work)


def test_a_stale_attempt_cannot_record(app_db, owner_db, settings, world):
    enqueue(app_db, world.dev, SHAS[0])
    held = claim(settings)[0]

    async def work(db):
        q = Queue(db, SERVICE)
        with pytest.raises(LeaseLost):
            await q.record_commit(held["id"], held["attempt"] + 1, "not mine", "someone")
        await q.start(held["id"], held["attempt"])
        await q.finish(held["id"], held["attempt"], "succeeded", "ok")
        with pytest.raises(LeaseLost):
            await q.record_commit(held["id"], held["attempt"], "too late", "someone")

    call(settings, work)
    assert runs(owner_db)[held["id"]]["commit_message"] is None


def test_users_cannot_write_them(app_db, world):
    run_id = enqueue(app_db, world.dev, SHAS[0])["id"]
    for sql, args in (
            ("update ops.runs set commit_message = 'forged' where id = %s", (run_id,)),
            ("update ops.runs set commit_author = 'forged' where id = %s", (run_id,)),
            ("insert into ops.runs (project_id, branch_id, commit_sha, commit_message) values (%s, %s, %s, 'forged')",
             (world.shop, world.dev, SHAS[0])),
            ("select ops.record_commit(%s, 1, 'forged', 'forged')", (run_id,))):
        with acting(app_db, Actor.user(world.alice)) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(sql, args)
    with acting(app_db, Actor.user(world.alice)) as conn:  # but they may read them
        assert conn.execute("select commit_message from ops.runs where id = %s", (run_id,)).fetchone() is not None


def test_a_replaced_commit_forgets_them(app_db, owner_db, settings, world):
    settings_of(owner_db, world.shop, coalesce_seconds=60)
    first = enqueue(app_db, world.dev, SHAS[0])
    with owner_conn(owner_db) as conn:
        conn.execute("update ops.runs set commit_message = 'first', commit_author = 'a' where id = %s", (first["id"],))
    second = enqueue(app_db, world.dev, SHAS[1])  # inside the quiet time: the same run, a newer commit
    assert second["id"] == first["id"]
    assert (second["commit_message"], second["commit_author"]) == (None, None)


def test_branches_list_the_last_build_commit(app_db, owner_db, settings, world):
    enqueue(app_db, world.dev, SHAS[0])
    held = claim(settings)[0]

    async def work(db):
        await Queue(db, SERVICE).record_commit(held["id"], held["attempt"], "Sell more", "Ada")
        return await Branches(db, Actor.user(world.alice)).list_all("acme/shop")

    listed = {b["name"]: b for b in call(settings, work)}
    assert (listed["dev"]["last_build_commit"], listed["dev"]["last_build_commit_message"],
            listed["dev"]["last_build_commit_author"]) == (SHAS[0], "Sell more", "Ada")
    assert listed["main"]["last_build_commit_message"] is None and "last_build_commit_author" in listed["main"]
