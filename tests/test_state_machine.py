"""The run state machine, enforced by a trigger whoever writes."""

from __future__ import annotations

import itertools

import psycopg
import pytest
from conftest import owner_conn
from world import SHA, seed

STATUSES = ["awaiting_authorization", "queued", "claimed", "running",
            "succeeded", "failed", "canceled", "superseded"]
ALLOWED = {
    ("awaiting_authorization", "queued"), ("awaiting_authorization", "canceled"),
    ("queued", "claimed"), ("queued", "canceled"), ("queued", "superseded"),
    ("claimed", "running"), ("claimed", "queued"), ("claimed", "canceled"),
    ("claimed", "failed"),  # added with the queue: the reaper gives up on a claim that never started
    ("queued", "failed"),  # a run the queue cannot hand out (no attempt left) fails where it waits
    ("running", "succeeded"), ("running", "failed"), ("running", "canceled"), ("running", "queued"),
}
# How to bring a new run to each status along allowed transitions.
PATH = {
    "awaiting_authorization": [], "queued": [], "claimed": ["claimed"], "running": ["claimed", "running"],
    "succeeded": ["claimed", "running", "succeeded"], "failed": ["claimed", "running", "failed"],
    "canceled": ["canceled"], "superseded": ["superseded"],
}


@pytest.fixture(scope="module")
def machine(server, template):
    """One database for the whole module: each case makes its own run."""
    from conftest import create_database, drop_database

    owner = create_database(server, "t_state_machine", "ops_template")
    world = seed(owner)
    conn = owner_conn(owner)
    yield conn, world
    conn.close()
    drop_database(server, "t_state_machine")


def new_run(conn, world, status: str) -> int:
    first = "awaiting_authorization" if status == "awaiting_authorization" else "queued"
    run = conn.execute("insert into ops.runs (project_id, branch_id, commit_sha, status) values (%s, %s, %s, %s) "
                       "returning id", (world.shop, world.dev, SHA, first)).fetchone()["id"]
    for step in PATH[status]:
        conn.execute("update ops.runs set status = %s where id = %s", (step, run))
    return run


@pytest.mark.parametrize("old,new", [p for p in itertools.product(STATUSES, STATUSES) if p[0] != p[1]])
def test_transition(machine, old, new):
    conn, world = machine
    run = new_run(conn, world, old)
    if (old, new) in ALLOWED:
        conn.execute("update ops.runs set status = %s where id = %s", (new, run))
        assert conn.execute("select status from ops.runs where id = %s", (run,)).fetchone()["status"] == new
    else:
        with pytest.raises(psycopg.Error) as caught:
            conn.execute("update ops.runs set status = %s where id = %s", (new, run))
        assert caught.value.sqlstate == "OP001"
        assert f"cannot go from {old} to {new}" in caught.value.diag.message_primary


@pytest.mark.parametrize("status", [s for s in STATUSES if s not in ("queued", "awaiting_authorization")])
def test_runs_start_queued_or_awaiting(machine, status):
    conn, world = machine
    with pytest.raises(psycopg.Error, match="starts queued or awaiting"):
        conn.execute("insert into ops.runs (project_id, branch_id, commit_sha, status) values (%s, %s, %s, %s)",
                     (world.shop, world.dev, SHA, status))


def test_same_status_is_not_a_transition(machine):
    conn, world = machine
    run = new_run(conn, world, "succeeded")
    conn.execute("update ops.runs set status = 'succeeded', result = 'ok' where id = %s", (run,))


def test_timestamps_are_stamped(machine):
    conn, world = machine
    run = new_run(conn, world, "queued")
    stamps = "select queued_at, claimed_at, started_at, finished_at from ops.runs where id = %s"
    row = conn.execute(stamps, (run,)).fetchone()
    assert row["queued_at"] and not (row["claimed_at"] or row["started_at"] or row["finished_at"])
    for status in ("claimed", "running", "succeeded"):
        conn.execute("update ops.runs set status = %s where id = %s", (status, run))
    row = conn.execute(stamps, (run,)).fetchone()
    assert row["queued_at"] <= row["claimed_at"] <= row["started_at"] <= row["finished_at"]


def test_requeue_clears_the_claim(machine):
    conn, world = machine
    run = new_run(conn, world, "running")
    conn.execute("update ops.runs set worker_id = %s, lease_expires_at = now() + interval '30 s' where id = %s",
                 (world.worker, run))
    conn.execute("update ops.runs set status = 'queued' where id = %s", (run,))
    row = conn.execute("select worker_id, lease_expires_at, claimed_at, started_at from ops.runs where id = %s",
                       (run,)).fetchone()
    assert row == {"worker_id": None, "lease_expires_at": None, "claimed_at": None, "started_at": None}


def test_table_matches_the_documented_machine(machine):
    conn, _ = machine
    rows = conn.execute("select from_status::text, to_status::text from ops.run_transitions").fetchall()
    assert {(r["from_status"], r["to_status"]) for r in rows} == ALLOWED
