"""Who may run a pull request's build without an admin's authorization: the
database decides, from the caller's role, never from a parameter a user passes.
The webhook (the control plane) says whether a pull request comes from a fork."""

from __future__ import annotations

import psycopg
import pytest
from conftest import acting, owner_conn
from psycopg import errors
from world import seed

from odooops.db import Actor

SHA = "1" * 40
FORK = "select status from ops.request_build(%(dev)s, %(sha)s, 'pull_request', 'refs/pull/7/head', 7)"


@pytest.fixture
def world(owner_db):
    return seed(owner_db, bob_role="developer")


def status_of(app_db: str, actor: Actor, sql: str, args: dict) -> str:
    with acting(app_db, actor) as conn:
        status = conn.execute(sql, args).fetchone()["status"]
        conn.commit()
    return status


def test_a_developer_asking_for_a_pull_request_waits_for_an_admin(app_db, world):
    args = {"dev": world.dev, "sha": SHA}
    assert status_of(app_db, Actor.user(world.bob), FORK, args) == "awaiting_authorization"
    # a number is enough, whatever the ref says
    same_repo = "select status from ops.request_build(%(dev)s, %(sha)s, 'pull_request', null, 8)"
    assert status_of(app_db, Actor.user(world.bob), same_repo, {**args, "sha": "2" * 40}) == "awaiting_authorization"
    # the branch itself builds at once
    branch = "select status from ops.request_build(%(dev)s, %(sha)s)"
    assert status_of(app_db, Actor.user(world.bob), branch, {**args, "sha": "3" * 40}) == "queued"


def test_an_admin_asking_for_a_pull_request_runs_it(app_db, world):
    assert status_of(app_db, Actor.user(world.alice), FORK, {"dev": world.dev, "sha": SHA}) == "queued"


@pytest.mark.parametrize("who", ["bob", "alice"])
def test_users_cannot_pass_an_authorization(app_db, world, who):
    """Only the control plane says what it decided; the old function with its
    default is gone."""
    for sql in ("select * from ops.enqueue_build_v2(%(dev)s, %(sha)s, 'pull_request', 'refs/pull/7/head', 7,"
                " '{}', true)",
                "select * from ops.enqueue_build(%(dev)s, %(sha)s, 'pull_request', 'refs/pull/7/head', 7,"
                " '{}', true)"):
        with acting(app_db, Actor.user(getattr(world, who))) as conn, \
                pytest.raises((errors.InsufficientPrivilege, errors.UndefinedFunction)):
            conn.execute(sql, {"dev": world.dev, "sha": SHA})


def test_the_control_plane_decides_explicitly(app_db, world):
    sql = ("select status from ops.enqueue_build_v2(%(dev)s, %(sha)s, 'pull_request', 'refs/pull/7/head', 7,"
           " '{}', %(authorized)s)")
    args = {"dev": world.dev, "sha": SHA}
    assert status_of(app_db, Actor.service(), sql, {**args, "authorized": False}) == "awaiting_authorization"
    assert status_of(app_db, Actor.service(), sql, {**args, "sha": "2" * 40, "authorized": True}) == "queued"
    with acting(app_db, Actor.service()) as conn, pytest.raises(errors.NullValueNotAllowed):
        conn.execute(sql, {**args, "sha": "3" * 40, "authorized": None})


def test_a_run_a_developer_inserts_directly_waits_too(app_db, world):
    sql = ("insert into ops.runs (project_id, branch_id, commit_sha, ref, pr_number, status)"
           " values (%(shop)s, %(dev)s, %(sha)s, %(ref)s, %(pr)s, 'queued') returning status")
    args = {"shop": world.shop, "dev": world.dev, "sha": SHA, "ref": "refs/pull/7/head", "pr": 7}
    assert status_of(app_db, Actor.user(world.bob), sql, args) == "awaiting_authorization"
    assert status_of(app_db, Actor.user(world.alice), sql, args) == "queued"
    assert status_of(app_db, Actor.user(world.bob), sql, {**args, "ref": "refs/heads/dev", "pr": None}) == "queued"


def test_rebuilding_a_pull_request_waits_unless_an_admin_asks(app_db, owner_db, world):
    with owner_conn(owner_db) as conn:
        run = conn.execute("select id from ops.enqueue_build_v2(%s, %s, 'pull_request', 'refs/pull/7/head', 7,"
                           " '{}', false)", (world.dev, SHA)).fetchone()["id"]
        conn.execute("update ops.runs set status = 'canceled' where id = %s", (run,))
    rebuild = "select id, status from ops.rebuild(%(run)s)"
    assert status_of(app_db, Actor.user(world.bob), rebuild, {"run": run}) == "awaiting_authorization"
    with owner_conn(owner_db) as conn:
        conn.execute("update ops.runs set status = 'canceled' where id <> %s and status = 'awaiting_authorization'",
                     (run,))
    assert status_of(app_db, Actor.user(world.alice), rebuild, {"run": run}) == "queued"


def test_viewers_still_cannot_build(app_db, owner_db):
    world = seed(owner_db, bob_role="viewer")
    with acting(app_db, Actor.user(world.bob)) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute(FORK, {"dev": world.dev, "sha": SHA})
