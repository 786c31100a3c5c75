"""Secret settings are kept where only the control plane reads them, sealed
with a key derived from ODOOOPS_SECRET_KEY and bound to their project; members
see their names only. (That a build still gets them, masked in its log, is
test_runner's test_secrets_are_masked_in_events_and_log_artifact.)"""

from __future__ import annotations

import asyncio

import pytest
from conftest import acting, create_database, owner_conn, with_db
from helpers import SERVICE, call
from psycopg import errors
from psycopg.types.json import Jsonb
from world import seed

from odooops import runtime
from odooops.db import Actor, migrate
from odooops.errors import SecretUnreadable
from odooops.managers.project_secrets import ProjectSecrets
from odooops.managers.projects import Projects
from odooops.sealing import SecretBox
from odooops.settings import Secret

VALUE = "hunter2-very-secret"


@pytest.fixture
def world(owner_db):
    return seed(owner_db, bob_role="developer")


def set_secret(settings, who: Actor, ref: str = "acme/shop", value: str = VALUE) -> dict:
    return call(settings, lambda db: Projects(db, who, runtime.secret_box(settings)).update_settings(
        ref, {"secret_env": {"TOKEN": value}, "env": {"PLAIN": "1"}}))


def reveal(settings, project_id, box: SecretBox | None = None) -> dict:
    return call(settings, lambda db: ProjectSecrets(db, SERVICE, box or runtime.secret_box(settings))
                .reveal(project_id))


def test_secrets_are_sealed_apart_from_the_settings(settings, owner_db, world):
    shown = set_secret(settings, Actor.user(world.alice))
    assert shown["settings"] == {"env": {"PLAIN": "1"}, "secret_env": {"TOKEN": "********"}}
    with owner_conn(owner_db) as conn:
        stored = conn.execute("select settings from ops.projects where id = %s", (world.shop,)).fetchone()
        sealed = conn.execute("select * from ops.project_secrets").fetchall()
    assert stored["settings"] == {"env": {"PLAIN": "1"}}
    assert [(r["project_id"], r["name"], r["unsealed"]) for r in sealed] == [(world.shop, "TOKEN", None)]
    assert VALUE.encode() not in sealed[0]["ciphertext"]
    assert reveal(settings, world.shop) == {"TOKEN": VALUE}


@pytest.mark.parametrize("role", ["viewer", "developer", "admin", "owner"])
def test_no_member_reads_the_secrets_table(settings, app_db, owner_db, role):
    world = seed(owner_db, bob_role=role)
    set_secret(settings, SERVICE)
    with acting(app_db, Actor.user(world.bob)) as conn, pytest.raises(errors.InsufficientPrivilege):
        conn.execute("select * from ops.project_secrets")
    with acting(app_db, Actor.user(world.bob)) as conn:  # the names, through a function that checks membership
        assert [r["n"] for r in conn.execute("select ops.project_secret_names(%s) as n", (world.shop,))] == ["TOKEN"]
    with acting(app_db, Actor.user(world.eve)) as conn:
        assert conn.execute("select ops.project_secret_names(%s) as n", (world.shop,)).fetchall() == []


def test_members_see_names_and_only_admins_change_secrets(settings, world):
    bob = Actor.user(world.bob)  # a developer
    got = call(settings, lambda db: Projects(db, bob).get("acme/shop"))
    assert got["settings"] == {}
    set_secret(settings, SERVICE)
    got = call(settings, lambda db: Projects(db, bob).get("acme/shop"))
    assert got["settings"] == {"env": {"PLAIN": "1"}, "secret_env": {"TOKEN": "********"}}
    with pytest.raises(Exception, match="only an admin"):
        set_secret(settings, bob, value="mine")
    assert reveal(settings, world.shop) == {"TOKEN": VALUE}


def test_the_settings_column_refuses_clear_secrets(app_db, world):
    with acting(app_db, Actor.user(world.alice)) as conn, pytest.raises(errors.CheckViolation):
        conn.execute("update ops.projects set settings = settings || %s where id = %s",
                     (Jsonb({"secret_env": {"TOKEN": VALUE}}), world.shop))


def test_unsetting_secret_env_forgets_every_secret(settings, world):
    set_secret(settings, SERVICE)
    row = call(settings, lambda db: Projects(db, Actor.user(world.alice)).unset_setting("acme/shop", "secret_env"))
    assert "secret_env" not in row["settings"] and reveal(settings, world.shop) == {}


def test_a_ciphertext_copied_to_another_project_does_not_open(settings, owner_db, world):
    set_secret(settings, SERVICE)
    with owner_conn(owner_db) as conn:
        conn.execute("insert into ops.project_secrets (project_id, name, nonce, ciphertext) "
                     "select %s, name, nonce, ciphertext from ops.project_secrets", (world.lab,))
    with pytest.raises(SecretUnreadable, match="cannot be decrypted"):
        reveal(settings, world.lab)
    assert reveal(settings, world.shop) == {"TOKEN": VALUE}


def test_another_server_key_is_a_clear_error(settings, world):
    set_secret(settings, SERVICE)
    with pytest.raises(SecretUnreadable, match="ODOOOPS_SECRET_KEY"):
        reveal(settings, world.shop, SecretBox(Secret("another key")))


def test_clear_secrets_of_before_are_sealed_by_migrating(server, settings, tmp_path):
    """A database migrated before 0015 with a clear secret: after `prepare`
    (what `odooops up`, `serve`, `runner` and `db migrate` do) the settings
    hold none and the secret opens with the server key."""
    name = f"t_legacy_{tmp_path.name[-8:]}".replace("-", "_").lower()
    owner = create_database(server, name)
    before = [m for m in migrate.available() if m.name < "0015"]
    asyncio.run(migrate.migrate(owner, before))
    with owner_conn(owner) as conn:
        org = conn.execute("insert into ops.orgs (slug, name) values ('old', 'Old') returning id").fetchone()["id"]
        project = conn.execute("insert into ops.projects (org_id, slug, name, repo_url, settings) "
                               "values (%s, 'p', 'P', 'r', %s) returning id",
                               (org, Jsonb({"env": {"A": "1"}, "secret_env": {"TOKEN": VALUE}}))).fetchone()["id"]
    legacy = settings.with_overrides(database_url=Secret(with_db(server, name)))
    try:
        asyncio.run(runtime.prepare(legacy, always=True))
        with owner_conn(owner) as conn:
            assert conn.execute("select settings from ops.projects").fetchone()["settings"] == {"env": {"A": "1"}}
            assert conn.execute("select count(*) as n from ops.project_secrets where unsealed is not null"
                                ).fetchone()["n"] == 0
        assert reveal(legacy, project) == {"TOKEN": VALUE}
    finally:
        with owner_conn(server) as conn:
            conn.execute(f'drop database if exists "{name}" with (force)')
