"""Properties of the schema as a whole, read from the catalog."""

from __future__ import annotations

from conftest import APP_ROLE, owner_conn


def test_every_ops_table_has_row_security_enabled_and_forced(owner_db):
    with owner_conn(owner_db) as conn:
        rows = conn.execute("select relname, relrowsecurity, relforcerowsecurity from pg_class "
                            "where relnamespace = 'ops'::regnamespace and relkind in ('r', 'p')").fetchall()
    assert len(rows) >= 12
    assert [r["relname"] for r in rows if not (r["relrowsecurity"] and r["relforcerowsecurity"])] == []


def test_security_definer_functions_pin_an_empty_search_path(owner_db):
    with owner_conn(owner_db) as conn:
        rows = conn.execute("select proname, proconfig from pg_proc "
                            "where pronamespace = 'ops'::regnamespace and prosecdef").fetchall()
    assert rows, "the membership helpers are security definer"
    assert [r["proname"] for r in rows if 'search_path=""' not in (r["proconfig"] or [])] == []


def test_no_ops_function_is_executable_by_public(owner_db):
    with owner_conn(owner_db) as conn:
        rows = conn.execute("select proname from pg_proc where pronamespace = 'ops'::regnamespace "
                            "and has_function_privilege('public', oid, 'execute')").fetchall()
    assert rows == []


def test_app_role_can_only_become_the_three_roles(owner_db):
    with owner_conn(owner_db) as conn:
        role = conn.execute("select rolsuper, rolinherit, rolbypassrls, rolcreaterole, rolcreatedb, rolcanlogin "
                            "from pg_roles where rolname = %s", (APP_ROLE,)).fetchone()
        granted = conn.execute("select r.rolname from pg_auth_members m join pg_roles r on r.oid = m.roleid "
                               "join pg_roles u on u.oid = m.member where u.rolname = %s", (APP_ROLE,)).fetchall()
        owns = conn.execute("select count(*) as n from pg_class c join pg_roles r on r.oid = c.relowner "
                            "where r.rolname = %s", (APP_ROLE,)).fetchone()["n"]
    assert role == {"rolsuper": False, "rolinherit": False, "rolbypassrls": False, "rolcreaterole": False,
                    "rolcreatedb": False, "rolcanlogin": True}
    assert sorted(r["rolname"] for r in granted) == ["anon", "authenticated", "service_role"]
    assert owns == 0


def test_app_role_without_a_role_set_can_read_nothing(app_db):
    import psycopg
    import pytest

    with psycopg.connect(app_db) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("select * from ops.projects")


def test_one_production_branch_per_project(owner_db):
    import psycopg
    import pytest
    from world import seed

    world = seed(owner_db)
    with owner_conn(owner_db) as conn:
        with pytest.raises(psycopg.errors.UniqueViolation, match="branches_one_production"):
            conn.execute("insert into ops.branches (project_id, name, stage) values (%s, 'other', 'production')",
                         (world.shop,))
        # an archived production branch makes room for a new one
        conn.execute("update ops.branches set archived_at = now() where id = %s", (world.main,))
        conn.execute("insert into ops.branches (project_id, name, stage) values (%s, 'other', 'production')",
                     (world.shop,))


def test_a_run_cannot_name_a_branch_of_another_project(owner_db):
    import psycopg
    import pytest
    from world import SHA, seed

    world = seed(owner_db)
    with owner_conn(owner_db) as conn, pytest.raises(psycopg.errors.ForeignKeyViolation):
        conn.execute("insert into ops.runs (project_id, branch_id, commit_sha) values (%s, %s, %s)",
                     (world.lab, world.dev, SHA))


def test_run_events_are_append_only_for_the_control_plane(app_db, owner_db):
    import psycopg
    import pytest
    from conftest import acting
    from world import seed

    from odooops.db import Actor

    world = seed(owner_db)
    with acting(app_db, Actor.service()) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("update ops.run_events set message = 'rewritten'")
