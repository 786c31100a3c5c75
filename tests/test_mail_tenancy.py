"""Caught mails under row-level security, with an owner (Alice), a teammate
(Bob, in each role) and a stranger (Eve): members of the project read its
environments' mails, through the table and through the functions; nobody
but the control plane writes them."""

from __future__ import annotations

import pytest
from conftest import acting, owner_conn
from psycopg import errors
from world import seed

from odooops.db import Actor

RANKS = ["viewer", "developer", "admin", "owner"]
SHA = "c" * 64


def with_mails(owner_db: str, bob_role: str | None = "developer"):
    """The seeded world, each of acme/shop's environments with a mail, and one of evil/lab."""
    world = seed(owner_db, bob_role=bob_role)
    with owner_conn(owner_db) as conn:
        conn.execute("delete from ops.mail_events")  # the world's one: these tests seed their own
        lab_dev = conn.execute("insert into ops.branches (project_id, name, stage) values (%s, 'dev', 'development') "
                               "returning id", (world.lab,)).fetchone()["id"]
        conn.execute("insert into ops.environments (project_id, branch_id, label) values (%s, %s, 'dev-lab-evil')",
                     (world.lab, lab_dev))
        conn.execute("insert into ops.mail_events (environment_id, project_id, branch_id, subject, size_bytes, "
                     "sha256) select id, project_id, branch_id, 'Hello from ' || label, 10, %s "
                     "from ops.environments", (SHA,))
        envs = {r["label"]: r["id"] for r in conn.execute("select id, label from ops.environments")}
    return world, envs


def test_members_read_their_projects_mails_and_strangers_none(owner_db, app_db):
    world, envs = with_mails(owner_db)
    staging = envs["staging-shop-acme"]
    for who, seen in ((world.alice, 3), (world.bob, 3), (world.eve, 1), (world.carol, 0)):
        with acting(app_db, Actor.user(who)) as conn:
            assert conn.execute("select count(*) as n from ops.mail_events").fetchone()["n"] == seen
            listed = conn.execute("select * from ops.environment_mails(%s)", (staging,)).fetchall()
            counted = conn.execute("select * from ops.mail_counts(%s)", ([staging],)).fetchall()
        member = who in (world.alice, world.bob)
        assert [m["subject"] for m in listed] == (["Hello from staging-shop-acme"] if member else [])
        assert counted == ([{"environment_id": staging, "mails": 1}] if member else [])


@pytest.mark.parametrize("role", RANKS + [None], ids=RANKS + ["stranger"])
def test_every_role_reads_and_none_writes(owner_db, app_db, role):
    world, envs = with_mails(owner_db, bob_role=role)
    bob = Actor.user(world.bob)
    dev = envs["development-shop-acme"]
    with acting(app_db, bob) as conn:
        assert len(conn.execute("select * from ops.environment_mails(%s)", (dev,)).fetchall()) == (role is not None)
    for change in ("update ops.mail_events set subject = 'forged'", "delete from ops.mail_events",
                   "insert into ops.mail_events (environment_id, project_id, branch_id, size_bytes, sha256) "
                   "values (%(dev)s, %(shop)s, %(branch)s, 1, %(sha)s)"):
        with acting(app_db, bob) as conn, pytest.raises(errors.InsufficientPrivilege):
            conn.execute(change, {"dev": dev, "shop": world.shop, "branch": world.dev, "sha": SHA})
    with owner_conn(owner_db) as conn:  # all four still there, untouched
        assert conn.execute("select count(*) as n from ops.mail_events where subject like 'Hello from %'"
                            ).fetchone()["n"] == 4


def test_anonymous_sees_no_mail_and_the_service_sees_all(owner_db, app_db):
    with_mails(owner_db)
    with acting(app_db, Actor.anonymous()) as conn, pytest.raises(errors.InsufficientPrivilege):
        conn.execute("select * from ops.mail_events")
    with acting(app_db, Actor.anonymous()) as conn, pytest.raises(errors.InsufficientPrivilege):
        conn.execute("select * from ops.environment_mails(gen_random_uuid())")
    with acting(app_db, Actor.service()) as conn:
        assert conn.execute("select count(*) as n from ops.mail_events").fetchone()["n"] == 4


def test_the_helper_is_not_callable_by_users(owner_db, app_db):
    world, envs = with_mails(owner_db)
    with acting(app_db, Actor.user(world.alice)) as conn, pytest.raises(errors.InsufficientPrivilege):
        conn.execute("select ops.can_read_environment(%s)", (envs["dev-lab-evil"],))
