"""Which functions of schema ops the user-facing roles may execute. Where ops is
exposed through PostgREST (a Supabase database), every function `anon` or
`authenticated` may execute is an endpoint, so these are the reviewed lists:
a new grant is a conscious change of this file.

`anon` may execute nothing. Before the caller is known (a login, a cookie, a
bearer or ingest token), the control plane resolves them as `service_role`:
`ops.login_begin` returns a password hash and `ops.login_succeeded` mints a
session, so either one in a stranger's hands takes over any account.

`authenticated` may execute what a user may call directly and what checks the
caller's rights itself, and what the row-level security policies (and column
defaults) that hold the role call as the caller. Helpers that only security
definer functions call need no grant: inside those, the owner executes them."""

from __future__ import annotations

import psycopg
import pytest
from conftest import acting, owner_conn
from psycopg import errors
from world import seed

from odooops.db import Actor

ANON: dict[str, str] = {}

AUTHENTICATED = {
    # called by policies and column defaults as the caller: they only tell the caller about themselves
    "ops.current_user_id()": "the caller; policies and the created_by defaults",
    "ops.my_orgs()": "policies: the caller's orgs",
    "ops.my_projects()": "policies: the caller's projects",
    "ops.my_teammates()": "policies: whom the caller may see in ops.users",
    "ops.org_role(uuid)": "policies: the caller's role in an org",
    "ops.project_role(uuid)": "policies and managers: the caller's role in a project",
    "ops.can_operate_branch(uuid)": "policies of ops.runs: whether the caller may start or cancel work there",
    "ops.caller_is_service()": "managers' rights checks in the caller's transaction: whether the caller is the control plane",
    # reads under row-level security (security invoker), or definer reads that check the run once
    "ops.list_projects(boolean)": "invoker: the caller's projects",
    "ops.project_page(text,integer,integer)": "invoker: a page of the caller's projects",
    "ops.project_branches_v2(uuid,boolean)": "invoker: a project's branches",
    "ops.branch_builds(uuid,bigint,integer)": "invoker: a branch's builds",
    "ops.queue()": "definer, names the caller's projects itself",
    "ops.build_logs(bigint,integer,integer)": "definer, checks ops.can_read_run",
    "ops.build_log_tail(bigint,integer)": "definer, checks ops.can_read_run",
    "ops.build_phases(bigint)": "definer, checks ops.can_read_run",
    "ops.build_artifacts(bigint)": "definer, checks ops.can_read_run",
    "ops.build_tests(bigint)": "definer, checks ops.can_read_run",
    "ops.project_secret_names(uuid)": "definer, members only: names of secrets, never values",
    # actions, each checking the caller's role itself
    "ops.create_org(text,text)": "any signed-in user, who becomes its owner",
    "ops.add_org_member(uuid,text,ops.member_role)": "org admins (owners add owners)",
    "ops.request_build(uuid,text,ops.run_trigger,text,integer,jsonb)":
        "by stage role; a pull request waits for an admin unless an admin asks",
    "ops.rebuild(bigint)": "as ops.request_build",
    "ops.cancel_run(bigint)": "by stage role",
    "ops.authorize_run(bigint)": "project admins",
    "ops.environment_control(uuid,text)": "start, stop, restart an environment: by stage role, as builds",
    "ops.create_connect_token(uuid,text,bytea,integer)":
        "project admins; production only where the project allows it",
    "ops.environment_connections(uuid,integer)": "definer, project admins: who connected as whom",
    "ops.environment_mails(uuid,text,integer,bigint)":
        "definer, checks once that the caller may read the environment: its caught mails",
    "ops.mail_counts(uuid[])": "definer, counts the caught mails of the environments the caller may read",
    "ops.add_domain(uuid,text)": "project admins; a domain another project has is refused",
    "ops.remove_domain(uuid,text)": "project admins",
    "ops.refresh_snapshot(uuid)": "those who may operate production: a new snapshot pauses it a few seconds",
    "ops.rotate_hook(uuid)": "project admins",
    "ops.archive_branch(uuid)": "project admins",
    "ops.archive_project(uuid)": "project owners",
    "ops.put_project_secret(uuid,text,bytea,bytea)": "project admins; the value is sealed by the control plane",
    "ops.drop_project_secrets(uuid,text[])": "project admins",
}

# Steps of the control plane before it knows the caller, and its password steps: service_role only.
CONTROL_PLANE_ONLY = [
    "login_begin('alice@acme.test', '10.0.0.1')",
    "login_succeeded(1, %(alice)s, 'x', 'x', 'x')",
    "session_actor('x')",
    "token_actor('x')",
    "ingest_token_project('x')",
    # a new password, and the one-time links that set one
    "set_password(%(alice)s, 'x')",
    "start_password_reset(%(alice)s, 'x', 60)",
    "password_reset_user('x')",
    "finish_password_reset('x', 'x')",
]

# What a runner records of a build, fenced by its attempt: service_role only.
RUNNER_ONLY = {
    "ops.record_sources(bigint,integer,jsonb)": "the revisions of the Odoo sources an attempt built on",
    "ops.record_test_results(bigint,integer,jsonb)": "each test's result, replacing an earlier attempt's",
}


def executable_by(owner_db: str, role: str) -> list[str]:
    with owner_conn(owner_db) as conn:
        rows = conn.execute(
            "select p.oid::regprocedure::text as f from pg_proc p join pg_namespace n on n.oid = p.pronamespace"
            " where n.nspname = 'ops' and has_function_privilege(%s, p.oid, 'execute') order by 1", (role,))
        return [r["f"] for r in rows]


def test_anon_may_execute_only_the_reviewed_functions(owner_db):
    assert executable_by(owner_db, "anon") == sorted(ANON)


def test_authenticated_may_execute_only_the_reviewed_functions(owner_db):
    assert executable_by(owner_db, "authenticated") == sorted(AUTHENTICATED)


@pytest.mark.parametrize("function", sorted(RUNNER_ONLY))
def test_what_a_runner_records_only_the_control_plane_may(owner_db, app_db, function):
    assert function in executable_by(owner_db, "service_role")
    assert function not in executable_by(owner_db, "anon") + executable_by(owner_db, "authenticated")
    name = function.split("(")[0]
    with acting(app_db, Actor("authenticated")) as conn, pytest.raises(errors.InsufficientPrivilege):
        conn.execute(f"select * from {name}(1, 1, '[]')")


def test_new_functions_are_not_executable_by_default(owner_db):
    """A migration that forgets its revoke grants nothing to PUBLIC."""
    with owner_conn(owner_db) as conn:
        conn.execute("create function ops.forgotten() returns int language sql as 'select 1'")
    assert "ops.forgotten()" not in executable_by(owner_db, "anon") + executable_by(owner_db, "authenticated")


@pytest.fixture
def world(owner_db):
    return seed(owner_db)


@pytest.mark.parametrize("call", CONTROL_PLANE_ONLY, ids=lambda c: c.split("(")[0])
@pytest.mark.parametrize("who", ["anon", "authenticated"])
def test_login_and_token_steps_are_refused_to_users(app_db, world, who, call):
    actor = Actor.anonymous() if who == "anon" else Actor.user(world.alice)
    with acting(app_db, actor) as conn, pytest.raises(errors.InsufficientPrivilege, match="permission denied"):
        conn.execute(f"select * from ops.{call}", {"alice": world.alice})


def test_the_control_plane_runs_the_login_steps(app_db, owner_db, world):
    with owner_conn(owner_db) as conn:
        conn.execute("update ops.users set password_hash = 'h' where id = %s", (world.alice,))
    with acting(app_db, Actor.service()) as conn:
        row = conn.execute("select * from ops.login_begin('Alice@acme.test', '10.0.0.1')").fetchone()
        assert row["password_hash"] == "h" and row["user_id"] == world.alice and row["attempt_id"]
        session = conn.execute("select * from ops.login_succeeded(%s, %s, 'hash', '10.0.0.1', 'test')",
                               (row["attempt_id"], world.alice)).fetchone()
        assert session["session_id"]
        with pytest.raises(psycopg.errors.InsufficientPrivilege):  # and still only for a real attempt
            conn.execute("select * from ops.login_succeeded(-1, %s, 'x', 'x', 'x')", (world.alice,))
