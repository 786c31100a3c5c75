"""The template cache on a real embedded environments' server (one for the
module). No Odoo: a template's build makes a table and a sequence and writes a
filestore file, as the template's own role."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import uuid
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from odooops import runtime
from odooops.errors import NotFound
from odooops.odoo import envdb
from odooops.odoo.templates import PREFIX, TemplateCache
from odooops.settings import Secret, Settings

ATTACHMENT = b"an attachment of the template"


def run(coro):
    return asyncio.run(coro)


@pytest.fixture(scope="module")
def env_settings(tmp_path_factory) -> Settings:
    return Settings(data_dir=tmp_path_factory.mktemp("templates") / "data",
                    secret_key=Secret(secrets.token_urlsafe(16)))


@pytest.fixture(scope="module")
def env(env_settings):
    server = envdb.start(env_settings)
    yield server
    envdb.stop(env_settings)


@pytest.fixture
def cache(env, env_settings) -> TemplateCache:
    return TemplateCache(env, runtime.secret_key(env_settings))


def superuser(env):
    return psycopg.connect(env.conninfo.reveal(), autocommit=True)


class Builds:
    """A template build that counts its calls: as the template's role, a
    table with a sequence and a row, and one file in the filestore."""

    def __init__(self, env, ok: bool = True, delay: float = 0.0, during=None):
        self.env, self.ok, self.delay, self.during = env, ok, delay, during
        self.calls: list[str] = []

    async def __call__(self, database, role, password, data_dir) -> bool:
        self.calls.append(database)
        conn = await psycopg.AsyncConnection.connect(self.env.role_conninfo(role, password, database),
                                                     autocommit=True)
        async with conn:
            await conn.execute("create table partner (id serial primary key, name text)")
            await conn.execute("insert into partner (name) values ('Azure Interior')")
            await conn.execute("create table ir_config_parameter (key text primary key, value text)")
            await conn.execute("insert into ir_config_parameter values ('database.uuid', 'u'), "
                               "('database.secret', 's'), ('database.create_date', 'd'), ('other', 'o')")
        stored = data_dir / "filestore" / database / "ab" / "abcdef0123"
        stored.parent.mkdir(parents=True, exist_ok=True)
        stored.write_bytes(ATTACHMENT)
        await asyncio.sleep(self.delay)
        if self.during:
            await self.during(database)
        if self.ok == "raise":
            raise RuntimeError("the install broke")
        return self.ok


def branch(env, env_settings, name="feature"):
    branch_id = uuid.uuid4()
    role = envdb.role_name("acme", "shop", name, branch_id)
    password = envdb.role_password(runtime.secret_key(env_settings), branch_id)
    run(env.ensure_role(role, password, branch_id=branch_id))
    return role, password


def database_exists(env, name) -> bool:
    with superuser(env) as conn:
        return conn.execute("select 1 from pg_database where datname = %s", (name,)).fetchone() is not None


def role_exists(env, name) -> bool:
    with superuser(env) as conn:
        return conn.execute("select 1 from pg_roles where rolname = %s", (name,)).fetchone() is not None


def used_days_ago(env, name, days):
    with superuser(env) as conn:
        (comment,) = conn.execute("select shobj_description(oid, 'pg_database') from pg_database "
                                  "where datname = %s", (name,)).fetchone()
        record = json.loads(comment)
        record["last_used_at"] = (datetime.now(UTC) - timedelta(days=days)).isoformat()
        conn.execute(psycopg.sql.SQL("comment on database {} is {}").format(
            psycopg.sql.Identifier(name), psycopg.sql.Literal(json.dumps(record))))


def test_a_miss_then_a_hit(env, cache):
    key = uuid.uuid4().hex
    build = Builds(env)
    assert run(cache.lookup(key)) is None
    made = run(cache.ensure(key, build, modules=["base", "sale"]))
    assert made is not None and build.calls == [made.database] and made.database == cache.name(key)
    assert made.key == key and made.modules == ("base", "sale") and made.role == made.database
    assert made.size > 0 and made.filestore_size == len(ATTACHMENT) and made.created_at == made.last_used_at
    assert run(cache.lookup(key)) == made
    assert run(cache.ensure(key, build)) == made and len(build.calls) == 1
    with superuser(env) as conn:
        owner, allowed = conn.execute("select pg_get_userbyid(datdba), datallowconn from pg_database "
                                      "where datname = %s", (made.database,)).fetchone()
    assert owner == "postgres" and not allowed  # the superuser's, and nobody may connect to copy it
    assert made in run(cache.list_all())


def test_a_clone_belongs_to_the_branch(env, env_settings, cache):
    key = uuid.uuid4().hex
    template = run(cache.ensure(key, Builds(env)))
    role, password = branch(env, env_settings)
    other, other_password = branch(env, env_settings, "other")
    name = envdb.database_name("acme", "shop", "feature", 100)
    made = run(cache.clone(key, name, role))
    assert made.owner == role and made.filestore == env.data_dir / role / "filestore" / name

    with psycopg.connect(env.role_conninfo(role, password, name), autocommit=True) as conn:
        assert conn.execute("select name from partner").fetchall() == [("Azure Interior",)]
        owners = conn.execute("select relkind, pg_get_userbyid(relowner) from pg_class c "
                              "join pg_namespace n on n.oid = c.relnamespace where n.nspname = 'public' "
                              "order by relkind").fetchall()
        assert {kind for kind, _ in owners} >= {"r", "S", "i"} and {o for _, o in owners} == {role}
        assert conn.execute("select pg_get_userbyid(nspowner) from pg_namespace where nspname = 'public'"
                            ).fetchone() == (role,)
        assert conn.execute("select pg_get_userbyid(datdba) from pg_database where datname = %s",
                            (name,)).fetchone() == (role,)
        conn.execute("create table mine (id serial)")  # the branch's to change
        conn.execute("insert into partner (name) values ('Deco Addict')")
        conn.execute("drop table partner")
    with superuser(env) as conn:
        left = conn.execute("select count(*) from pg_shdepend where refobjid = "
                            "(select oid from pg_roles where rolname = %s) and dbid in "
                            "(0, (select oid from pg_database where datname = %s))",
                            (template.role, name)).fetchone()
        assert left == (0,)  # nothing of the template's role in the clone, nor any right outside it
    for who, pw in ((other, other_password), (template.role, "guess")):
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(env.role_conninfo(who, pw, name))

    source, copy = template.filestore / "ab" / "abcdef0123", made.filestore / "ab" / "abcdef0123"
    assert copy.read_bytes() == ATTACHMENT
    assert os.stat(source).st_ino == os.stat(copy).st_ino  # a hard link, not a copy
    assert not os.stat(copy).st_mode & 0o222  # read-only: it is the template's too
    later = run(cache.lookup(key))
    assert later.last_used_at > template.last_used_at and later.created_at == template.created_at

    # the template itself is untouched by what the clone did
    second = envdb.database_name("acme", "shop", "feature", 101)
    run(cache.clone(key, second, role))
    identities = []
    for database in (name, second):
        with psycopg.connect(env.role_conninfo(role, password, database)) as conn:
            identities.append(dict(conn.execute("select key, value from ir_config_parameter").fetchall()))
    with psycopg.connect(env.role_conninfo(role, password, second)) as conn:
        assert conn.execute("select count(*) from partner").fetchone() == (1,)
    # each copy is a database of its own to Odoo (uuid, secret), the rest as the template has it
    first, again = identities
    assert first["other"] == again["other"] == "o"
    for parameter, template_value in (("database.uuid", "u"), ("database.secret", "s")):
        assert template_value != first[parameter] != again[parameter] != template_value
    assert first["database.create_date"] != "d" and again["database.create_date"] != "d"


def test_concurrent_ensures_build_once(env, env_settings, cache):
    key = uuid.uuid4().hex
    build = Builds(env, delay=0.5)
    # two caches: two runners sharing the server
    other = TemplateCache(env, runtime.secret_key(env_settings))

    async def all_at_once():
        return await asyncio.gather(*(c.ensure(key, build) for c in (cache, other, cache, other, cache)))

    made = run(all_at_once())
    assert len(build.calls) == 1
    assert len({t.database for t in made}) == 1 and all(t is not None for t in made)

    role, password = branch(env, env_settings)
    names = [envdb.database_name("acme", "shop", "feature", 150 + n) for n in range(3)]

    async def clones():
        return await asyncio.gather(*(c.clone(key, n, role) for c, n in zip((cache, other, cache), names,
                                                                              strict=True)))

    assert [d.name for d in run(clones())] == names
    for name in names:
        with psycopg.connect(env.role_conninfo(role, password, name)) as conn:
            assert conn.execute("select count(*) from partner").fetchone() == (1,)


@pytest.mark.parametrize("outcome", [False, "raise"])
def test_a_failed_build_leaves_nothing(env, cache, outcome):
    key = uuid.uuid4().hex
    name = cache.name(key)
    if outcome == "raise":
        with pytest.raises(RuntimeError, match="the install broke"):
            run(cache.ensure(key, Builds(env, ok=outcome)))
    else:
        assert run(cache.ensure(key, Builds(env, ok=outcome))) is None
    assert not database_exists(env, name) and not role_exists(env, name)
    assert not (env.data_dir / name).exists()
    assert run(cache.lookup(key)) is None
    again = Builds(env)
    assert run(cache.ensure(key, again)) is not None and len(again.calls) == 1


def test_a_lookup_misses_when_this_host_lacks_the_filestore(env, cache):
    key = uuid.uuid4().hex
    build = Builds(env)
    template = run(cache.ensure(key, build))
    shutil.rmtree(template.filestore)
    assert run(cache.lookup(key)) is None
    with pytest.raises(NotFound):
        run(cache.clone(key, envdb.database_name("acme", "shop", "x", 200), "nobody"))
    rebuilt = run(cache.ensure(key, build))
    assert len(build.calls) == 2 and rebuilt.created_at > template.created_at
    assert run(cache.lookup(key)) == rebuilt


def test_eviction_by_count_and_by_age(env, env_settings, cache):
    run(cache.evict(0, 14))  # what earlier tests left
    keys = [uuid.uuid4().hex for _ in range(3)]
    templates = [run(cache.ensure(k, Builds(env))) for k in keys]
    role, password = branch(env, env_settings)
    clones = []
    for n, k in enumerate((keys[1], keys[0])):  # keys[0] the most recently used, then keys[1]
        clones.append(envdb.database_name("acme", "shop", "evict", 300 + n))
        run(cache.clone(k, clones[-1], role))

    assert run(cache.evict(2, 14)) == [keys[2]]
    assert [t.key for t in run(cache.list_all())] == [keys[0], keys[1]]
    used_days_ago(env, templates[1].database, 20)
    assert run(cache.evict(2, 14)) == [keys[1]]
    for t in templates[1:]:
        assert not database_exists(env, t.database) and not role_exists(env, t.role) and not t.data_dir.exists()
    assert run(cache.lookup(keys[0])) is not None
    # the clones outlive their templates, still the branch's
    with psycopg.connect(env.role_conninfo(role, password, clones[0])) as conn:
        assert conn.execute("select count(*) from partner").fetchone() == (1,)


def test_eviction_spares_a_template_being_built_or_cloned(env, cache):
    async def evict_everything(database):
        await cache.evict(0, 0)
        assert database_exists(env, database) and (env.data_dir / database).is_dir()

    key = uuid.uuid4().hex
    template = run(cache.ensure(key, Builds(env, during=evict_everything)))
    assert template is not None and run(cache.lookup(key)) == template

    async def while_cloning():
        async with cache._lock(template.database, shared=True):  # as a clone holds it
            return await cache.evict(0, 14)

    assert key not in run(while_cloning())
    assert database_exists(env, template.database)
    assert key in run(cache.evict(0, 14))


def test_eviction_clears_what_crashed_builds_left(env, cache):
    leftover = PREFIX + "0" * 24
    with superuser(env) as conn:
        conn.execute(f'create database "{leftover}"')  # a build that died before it was sealed
    orphan = env.data_dir / (PREFIX + "f" * 24) / "filestore"
    orphan.mkdir(parents=True)
    assert run(cache.evict(10, 14)) == []
    assert not database_exists(env, leftover) and not orphan.parent.exists()
