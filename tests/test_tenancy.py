"""Row-level security with an owner (Alice), a teammate (Bob, in each role)
and a stranger (Eve, owner of another org)."""

from __future__ import annotations

import psycopg
import pytest
from conftest import acting, owner_conn
from psycopg import errors
from world import SHA, seed

from odooops.db import Actor

# For every tenant table: which of its rows belong to Acme.
ACME_ROWS = {
    "orgs": "id = %(acme)s",
    "users": "id in (%(alice)s, %(bob)s)",
    "org_members": "org_id = %(acme)s",
    "org_repo_roots": "org_id = %(acme)s",
    "project_members": "project_id = %(shop)s",
    "api_tokens": "user_id in (%(alice)s, %(bob)s)",
    "sessions": "user_id in (%(alice)s, %(bob)s)",
    "projects": "org_id = %(acme)s",
    "branches": "project_id = %(shop)s",
    "runs": "project_id = %(shop)s",
    "run_events": "run_id in (select id from ops.runs where project_id = %(shop)s)",
    "artifacts": "run_id in (select id from ops.runs where project_id = %(shop)s)",
    "hooks": "project_id = %(shop)s",
    "hook_deliveries": "project_id = %(shop)s",
    "ingest_tokens": "project_id = %(shop)s",
    "metrics": "project_id = %(shop)s",
    "metrics_minutely": "project_id = %(shop)s",
    "environments": "project_id = %(shop)s",
    "mail_events": "project_id = %(shop)s",
    "database_copies": "project_id = %(shop)s",
    "updates": "project_id = %(shop)s",
    "environment_domains": "project_id = %(shop)s",
}
# Tables that hold no tenant data; any signed-in user may read them.
SHARED = {"workers", "run_transitions"}
# Tables no user may read or write: only the control plane and its functions.
# test_results: read through ops.build_tests, which checks the run (tests/test_test_results.py)
# connect_tokens: created and consumed through functions that check the caller's role (test_role_matrix)
PRIVATE = {"login_failures", "hook_effects", "project_secrets", "password_resets", "test_results", "connect_tokens"}

# A change a stranger might try on Acme's rows, per table.
UPDATES = {
    "orgs": "update ops.orgs set name = 'pwned' where {where}",
    "users": "update ops.users set name = 'pwned' where {where}",
    "org_members": "update ops.org_members set role = 'viewer' where {where}",
    "org_repo_roots": "update ops.org_repo_roots set path = '/' where {where}",
    "project_members": "update ops.project_members set role = 'viewer' where {where}",
    "api_tokens": "update ops.api_tokens set revoked_at = now() where {where}",
    "sessions": "update ops.sessions set last_seen_at = now() where {where}",
    "projects": "update ops.projects set name = 'pwned' where {where}",
    "branches": "update ops.branches set stage = 'staging' where {where} and stage = 'development'",
    "runs": "update ops.runs set status = 'canceled' where {where}",
    "run_events": "update ops.run_events set message = 'pwned' where {where}",
    "artifacts": "update ops.artifacts set name = 'pwned' where {where}",
    "hooks": "update ops.hooks set salt = 'known' where {where}",
    "hook_deliveries": "update ops.hook_deliveries set status = 'done' where {where}",
    "ingest_tokens": "update ops.ingest_tokens set revoked_at = now() where {where}",
    "metrics": "update ops.metrics set value = 0 where {where}",
    "metrics_minutely": "update ops.metrics_minutely set count = 0 where {where}",
    "environments": "update ops.environments set address = 'evil.test:80' where {where}",
    "mail_events": "update ops.mail_events set subject = 'pwned' where {where}",
    "database_copies": "update ops.database_copies set database = 'pwned' where {where}",
    "updates": "update ops.updates set status = 'succeeded' where {where}",
    "environment_domains": "update ops.environment_domains set branch_id = branch_id where {where}",
}
INSERTS = {
    "orgs": "insert into ops.orgs (slug, name) values ('acme2', 'x')",
    "users": "insert into ops.users (email) values ('mallory@evil.test')",
    "org_members": "insert into ops.org_members (org_id, user_id, role) values (%(acme)s, %(eve)s, 'owner')",
    "org_repo_roots": "insert into ops.org_repo_roots (org_id, path) values (%(acme)s, '/')",
    "project_members": "insert into ops.project_members (project_id, user_id, role) values (%(shop)s, %(eve)s, 'owner')",
    "api_tokens": "insert into ops.api_tokens (user_id, name, token_hash) values (%(alice)s, 'x', 'stolen')",
    "sessions": "insert into ops.sessions (user_id, token_hash) values (%(alice)s, 'stolen')",
    "projects": "insert into ops.projects (org_id, slug, name, repo_url) values (%(acme)s, 'p', 'p', 'r')",
    "branches": "insert into ops.branches (project_id, name) values (%(shop)s, 'sneaky')",
    "runs": f"insert into ops.runs (project_id, branch_id, commit_sha) values (%(shop)s, %(dev)s, '{SHA}')",
    "run_events": "insert into ops.run_events (run_id, seq, message) values (%(shop_dev_run)s, 99, 'x')",
    "artifacts": f"insert into ops.artifacts (run_id, name, sha256, size, storage_uri) "
                 f"values (%(shop_dev_run)s, 'x', '{'b' * 64}', 1, 'x')",
    "workers": "insert into ops.workers (hostname, pid, version) values ('x', 1, 'x')",
    "run_transitions": "insert into ops.run_transitions values ('succeeded', 'queued')",
    "login_failures": "delete from ops.login_failures",
    "hooks": "insert into ops.hooks (project_id) values (%(shop)s)",
    "hook_deliveries": "insert into ops.hook_deliveries (host, hook_id, project_id, delivery_id, event, headers, body) "
                       "select 'github', id, project_id, 'forged', 'push', '{}', '' from ops.hooks",
    "hook_effects": "delete from ops.hook_effects",
    "project_secrets": "insert into ops.project_secrets (project_id, name, unsealed) values (%(shop)s, 'X', 'x')",
    "password_resets": "insert into ops.password_resets (user_id, token_hash, expires_at)"
                       " values (%(alice)s, 'known', now() + interval '1 day')",
    "test_results": "insert into ops.test_results (run_id, n, attempt, module, test_class, method, outcome)"
                    " values (%(shop_dev_run)s, 1, 1, 'm', 'C', 'test_forged', 'pass')",
    "ingest_tokens": "insert into ops.ingest_tokens (project_id, name, token_hash) values (%(shop)s, 'x', 'stolen')",
    "metrics": "insert into ops.metrics (project_id, ts, metric, value) values (%(shop)s, now(), 'x', 1)",
    "metrics_minutely": "insert into ops.metrics_minutely values (%(shop)s, 'x', now(), %(main)s, 1, 1, 1, 1)",
    "environments": "insert into ops.environments (project_id, branch_id, label) values (%(shop)s, %(main)s, 'x')",
    "connect_tokens": "insert into ops.connect_tokens (environment_id, token_sha256, login, expires_at) "
                      "select id, 'forged', 'admin', now() + interval '1 minute' from ops.environments",
    "mail_events": "insert into ops.mail_events (environment_id, project_id, branch_id, size_bytes, sha256) "
                   "select id, project_id, branch_id, 1, repeat('c', 64) from ops.environments",
    "database_copies": "insert into ops.database_copies (project_id, branch_id, kind, database) "
                       "values (%(shop)s, %(main)s, 'snapshot', 'forged')",
    "updates": "insert into ops.updates (project_id, branch_id, build_id, status) "
               "select project_id, branch_id, id, 'succeeded' from ops.runs where project_id = %(shop)s limit 1",
    "environment_domains": "insert into ops.environment_domains (domain, project_id, branch_id) "
                           "values ('hijack.example.com', %(shop)s, %(main)s)",
}


@pytest.fixture
def world(owner_db):
    return seed(owner_db)


def params(world) -> dict:
    return {**vars(world), "shop_dev_run": world.shop_runs["development"]}


def ops_tables(owner_db) -> set[str]:
    with owner_conn(owner_db) as conn:
        rows = conn.execute("select relname from pg_class where relnamespace = 'ops'::regnamespace "
                            "and relkind in ('r', 'p') and relname <> 'schema_migrations'").fetchall()
    return {r["relname"] for r in rows}


def outcome(app_db: str, actor: Actor, sql: str, args: dict) -> str:
    """'rows' when the statement read or touched rows, 'none' when it found
    none, 'refused: …' when the database raised a permission or policy error."""
    with acting(app_db, actor) as conn:
        try:
            cur = conn.execute(sql, args)
        except psycopg.Error as exc:
            if exc.sqlstate in ("42501", "OP001", "OP002", "OP003"):
                return f"refused: {exc.diag.message_primary}"
            raise
        return "rows" if cur.rowcount > 0 else "none"


def test_every_table_is_covered(owner_db):
    assert ops_tables(owner_db) == set(ACME_ROWS) | SHARED | PRIVATE


@pytest.mark.parametrize("table", sorted(ACME_ROWS))
def test_stranger_reads_nothing_of_another_tenant(app_db, world, table):
    eve, alice = Actor.user(world.eve), Actor.user(world.alice)
    where = ACME_ROWS[table]
    sql = f"select count(*) as n from ops.{table} where {where}"
    with acting(app_db, alice) as conn:
        assert conn.execute(sql, params(world)).fetchone()["n"] > 0, "the owner sees her own rows"
    with acting(app_db, eve) as conn:
        assert conn.execute(sql, params(world)).fetchone()["n"] == 0


@pytest.mark.parametrize("table", sorted(ACME_ROWS))
def test_stranger_changes_nothing_of_another_tenant(app_db, owner_db, world, table):
    eve = Actor.user(world.eve)
    where = ACME_ROWS[table]
    update = outcome(app_db, eve, UPDATES[table].format(where=where), params(world))
    delete = outcome(app_db, eve, f"delete from ops.{table} where {where}", params(world))
    insert = outcome(app_db, eve, INSERTS[table], params(world))
    assert update != "rows" and delete != "rows"
    assert insert.startswith("refused")
    with owner_conn(owner_db) as conn:  # and Acme's rows are all still there, untouched
        rows = conn.execute(f"select count(*) as n from ops.{table} where {where}", params(world)).fetchone()["n"]
        assert rows > 0


@pytest.mark.parametrize("table", sorted(SHARED))
def test_shared_tables_are_read_only_for_users(app_db, world, table):
    result = outcome(app_db, Actor.user(world.alice), INSERTS[table], params(world))
    assert result.startswith("refused")
    with acting(app_db, Actor.user(world.eve)) as conn:
        assert conn.execute(f"select count(*) as n from ops.{table}").fetchone()["n"] > 0


@pytest.mark.parametrize("table", sorted(PRIVATE))
def test_private_tables_are_closed_to_users(app_db, world, table):
    for who in (world.alice, world.eve):
        assert outcome(app_db, Actor.user(who), INSERTS[table], params(world)).startswith("refused")
        with acting(app_db, Actor.user(who)) as conn, pytest.raises(errors.InsufficientPrivilege):
            conn.execute(f"select * from ops.{table}")


def test_sessions_show_their_owner_no_token_hash_and_begin_only_by_login(app_db, world):
    with acting(app_db, Actor.user(world.alice)) as conn:
        assert conn.execute("select count(*) as n from ops.sessions").fetchone()["n"] == 1
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute("select token_hash from ops.sessions")
    for name in ("login_begin('alice@acme.test', 'x')", "session_actor('x')",
                 "login_succeeded(1, %(alice)s, 'x', 'x', 'x')"):
        with acting(app_db, Actor.user(world.alice)) as conn, pytest.raises(errors.InsufficientPrivilege):
            conn.execute(f"select * from ops.{name}", params(world))


def test_password_hashes_only_through_login_begin_as_the_control_plane(app_db, owner_db, world):
    with owner_conn(owner_db) as conn:
        conn.execute("update ops.users set password_hash = 'h' where id = %s", (world.alice,))
    with acting(app_db, Actor.anonymous()) as conn, pytest.raises(errors.InsufficientPrivilege):
        conn.execute("select * from ops.login_begin('Alice@acme.test', '10.0.0.1')")
    with acting(app_db, Actor.service()) as conn:
        row = conn.execute("select * from ops.login_begin('Alice@acme.test', '10.0.0.1')").fetchone()
    assert row["password_hash"] == "h" and row["user_id"] == world.alice and row["attempt_id"]
    with acting(app_db, Actor.service()) as conn, pytest.raises(errors.InsufficientPrivilege):
        conn.execute("select * from ops.login_succeeded(-1, %s, 'x', 'x', 'x')", (world.alice,))


@pytest.mark.parametrize("table", sorted(ACME_ROWS) + sorted(SHARED) + sorted(PRIVATE))
def test_anonymous_sees_nothing(app_db, world, table):
    with acting(app_db, Actor.anonymous()) as conn:
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute(f"select * from ops.{table}")


def test_no_claims_as_authenticated_sees_nothing(app_db, world):
    with acting(app_db, Actor("authenticated")) as conn:
        assert conn.execute("select count(*) as n from ops.projects").fetchone()["n"] == 0
        assert conn.execute("select count(*) as n from ops.runs").fetchone()["n"] == 0


def test_service_role_sees_every_tenant(app_db, world):
    with acting(app_db, Actor.service()) as conn:
        assert conn.execute("select count(*) as n from ops.orgs").fetchone()["n"] == 2


def test_users_see_teammates_but_not_strangers_or_password_hashes(app_db, world):
    with acting(app_db, Actor.user(world.bob)) as conn:
        seen = {r["id"] for r in conn.execute("select id from ops.users")}
    assert seen == {world.alice, world.bob}
    with acting(app_db, Actor.user(world.bob)) as conn:
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute("select password_hash from ops.users")


def test_inactive_user_loses_access(app_db, owner_db, world):
    with owner_conn(owner_db) as conn:
        conn.execute("update ops.users set is_active = false where id = %s", (world.alice,))
    with acting(app_db, Actor.user(world.alice)) as conn:
        assert conn.execute("select count(*) as n from ops.projects").fetchone()["n"] == 0


# What each role may do, with the least role that may do it (None: nobody).
ACTIONS = {
    "read the project": ("select 1 from ops.projects where id = %(shop)s", "viewer"),
    "read run logs": ("select 1 from ops.build_logs(%(shop_dev_run)s)", "viewer"),
    "rename the project": ("update ops.projects set name = 'New' where id = %(shop)s", "admin"),
    "delete the project": ("delete from ops.projects where id = %(shop)s", "owner"),
    "add a branch": ("insert into ops.branches (project_id, name) values (%(shop)s, 'feature')", "admin"),
    "move a branch to staging": ("update ops.branches set stage = 'staging' where id = %(dev)s", "admin"),
    "build a development branch": (f"select * from ops.request_build(%(dev)s, '{SHA}')", "developer"),
    "build the staging branch": (f"select * from ops.request_build(%(staging)s, '{SHA}')", "admin"),
    "build the production branch": (f"select * from ops.request_build(%(main)s, '{SHA}')", "admin"),
    "insert a development run directly": (
        f"insert into ops.runs (project_id, branch_id, commit_sha) values (%(shop)s, %(dev)s, '{SHA}')", "developer"),
    "cancel a development run": ("select * from ops.cancel_run(%(shop_dev_run)s)", "developer"),
    "cancel a production run": ("select * from ops.cancel_run(%(shop_prod_run)s)", "admin"),
    "claim a run as if a worker": ("update ops.runs set status = 'claimed' where id = %(shop_dev_run)s", None),
    "delete a run": ("delete from ops.runs where id = %(shop_dev_run)s", "owner"),
    "write a log line": ("insert into ops.run_events (run_id, seq, message) values (%(shop_dev_run)s, 9, 'x')", None),
    "add a developer to the org": (
        "insert into ops.org_members (org_id, user_id, role) values (%(acme)s, %(carol)s, 'developer')", "admin"),
    "add an owner to the org": (
        "insert into ops.org_members (org_id, user_id, role) values (%(acme)s, %(carol)s, 'owner')", "owner"),
    "add a project member": (
        "insert into ops.project_members (project_id, user_id, role) values (%(shop)s, %(carol)s, 'viewer')", "admin"),
    "give the org a folder of the host": ("insert into ops.org_repo_roots (org_id, path) values (%(acme)s, '/')", None),
    "rename the org": ("update ops.orgs set name = 'New' where id = %(acme)s", "admin"),
    "delete the org": ("delete from ops.orgs where id = %(acme)s", "owner"),
    "create a project in the org": (
        "insert into ops.projects (org_id, slug, name, repo_url) values (%(acme)s, 'new', 'New', 'r')", "admin"),
    "read the metrics": ("select 1 from ops.metrics where project_id = %(shop)s", "viewer"),
    "write a metric sample directly": (
        "insert into ops.metrics (project_id, ts, metric, value) values (%(shop)s, now(), 'x', 1)", None),
    "see the ingest tokens": ("select 1 from ops.ingest_tokens where project_id = %(shop)s", "admin"),
    "create an ingest token": (
        "insert into ops.ingest_tokens (project_id, name, token_hash) values (%(shop)s, 'x', 'h2')", "admin"),
    "revoke an ingest token": ("update ops.ingest_tokens set revoked_at = now() where project_id = %(shop)s", "admin"),
    "read the environments": ("select 1 from ops.environments where project_id = %(shop)s", "viewer"),
    "stop a development environment": ("select * from ops.environment_control(%(dev)s, 'stop')", "developer"),
    "restart the staging environment": ("select * from ops.environment_control(%(staging)s, 'restart')", "admin"),
    "restart the production environment": ("select * from ops.environment_control(%(main)s, 'restart')", "admin"),
    "connect as admin on development": (
        "select * from ops.create_connect_token(%(dev)s, 'admin', 'new', 60)", "admin"),
    "connect as admin on production (not allowed by default)": (
        "select * from ops.create_connect_token(%(main)s, 'admin', 'new', 60)", None),
    "see who connected as whom": ("select * from ops.environment_connections(%(dev)s)", "admin"),
    "take a connect token as if the router": ("select ops.use_connect_token(%(shop)s, 'seeded', 'x')", None),
    "mark an environment up as if a runner": (
        "update ops.environments set address = 'evil.test:80' where project_id = %(shop)s", None),
}
RANKS = ["viewer", "developer", "admin", "owner"]


def allowed(role: str | None, least: str | None) -> bool:
    return role is not None and least is not None and RANKS.index(role) >= RANKS.index(least)


@pytest.mark.parametrize("role", RANKS + [None], ids=RANKS + ["stranger"])
@pytest.mark.parametrize("action", sorted(ACTIONS))
def test_role_matrix(owner_db, app_db, role, action):
    world = seed(owner_db, bob_role=role)
    sql, least = ACTIONS[action]
    args = {**params(world), "shop_prod_run": world.shop_runs["production"]}
    result = outcome(app_db, Actor.user(world.bob), sql, args)
    assert (result == "rows") == allowed(role, least), result


def test_project_role_overrides_org_role(app_db, owner_db, world):
    with owner_conn(owner_db) as conn:
        conn.execute("update ops.org_members set role = 'viewer' where user_id = %s", (world.bob,))
        conn.execute("insert into ops.project_members values (%s, %s, 'admin')", (world.shop, world.bob))
    sql = "update ops.branches set stage = 'staging' where id = %(dev)s"
    assert outcome(app_db, Actor.user(world.bob), sql, params(world)) == "rows"
    with owner_conn(owner_db) as conn:
        conn.execute("update ops.org_members set role = 'admin' where user_id = %s", (world.bob,))
        conn.execute("update ops.project_members set role = 'viewer' where user_id = %s", (world.bob,))
    assert outcome(app_db, Actor.user(world.bob), sql, params(world)) == "none"


def test_admin_cannot_touch_owners(app_db, owner_db):
    world = seed(owner_db, bob_role="admin")
    demote = "update ops.org_members set role = 'viewer' where user_id = %(alice)s"
    assert outcome(app_db, Actor.user(world.bob), demote, params(world)) == "none"
    promote = "update ops.org_members set role = 'owner' where user_id = %(bob)s"
    assert outcome(app_db, Actor.user(world.bob), promote, params(world)).startswith("refused")


def test_last_owner_cannot_leave(app_db, world):
    with acting(app_db, Actor.user(world.alice)) as conn:
        with pytest.raises(psycopg.Error, match="at least one owner"):
            conn.execute("delete from ops.org_members where user_id = %s", (world.alice,))


def test_create_org_makes_the_caller_owner(app_db, world):
    with acting(app_db, Actor.user(world.carol)) as conn:
        org = conn.execute("select * from ops.create_org('carols', 'Carol''s')").fetchone()
        role = conn.execute("select ops.org_role(%s) as r", (org["id"],)).fetchone()["r"]
    assert role == "owner"
    with acting(app_db, Actor("authenticated")) as conn, pytest.raises(errors.InsufficientPrivilege):
        conn.execute("select * from ops.create_org('nobody', 'x')")


LOG_READS = {
    "logs": "select count(*) as n from ops.build_logs(%(run)s, 0, 100)",
    "tail": "select count(*) as n from ops.build_log_tail(%(run)s, 100)",
    "phases": "select count(*) as n from ops.build_phases(%(run)s)",
    "artifacts": "select count(*) as n from ops.build_artifacts(%(run)s)",
}


@pytest.mark.parametrize("read", sorted(LOG_READS))
def test_log_reads_check_the_run_once_for_owner_teammate_and_stranger(app_db, owner_db, world, read):
    """The security-definer log readers (0012) see what the policies would: the
    run's members read its log and files, a stranger and no one at all nothing."""
    run = world.shop_runs["production"]
    with owner_conn(owner_db) as conn:
        conn.execute("insert into ops.run_events (run_id, seq, phase, message) values (%s, 3, 'checkout', 'hi')", (run,))
    seen = {}
    for name, actor in (("alice", Actor.user(world.alice)), ("bob", Actor.user(world.bob)),
                        ("eve", Actor.user(world.eve)), ("no claims", Actor("authenticated")),
                        ("service", Actor.service())):
        with acting(app_db, actor) as conn:
            seen[name] = conn.execute(LOG_READS[read], {"run": run}).fetchone()["n"]
    assert seen["alice"] == seen["bob"] == seen["service"] > 0
    assert seen["eve"] == seen["no claims"] == 0
    with acting(app_db, Actor.anonymous()) as conn, pytest.raises(errors.InsufficientPrivilege):
        conn.execute(LOG_READS[read], {"run": run})


def test_the_queue_shows_each_their_own_runs(app_db, world):
    """ops.queue() is security definer (0013): it names the caller's projects itself."""
    seen = {}
    for name, actor in (("alice", Actor.user(world.alice)), ("bob", Actor.user(world.bob)),
                        ("eve", Actor.user(world.eve)), ("carol", Actor.user(world.carol)),
                        ("no claims", Actor("authenticated")), ("service", Actor.service())):
        with acting(app_db, actor) as conn:
            seen[name] = {r["id"] for r in conn.execute("select id from ops.queue()")}
    shop = set(world.shop_runs.values())
    assert seen["alice"] == seen["bob"] == shop
    assert seen["eve"] == {world.lab_run}
    assert seen["carol"] == seen["no claims"] == set()
    assert seen["service"] == shop | {world.lab_run}
