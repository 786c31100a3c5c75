"""Tests run against a real PostgreSQL: one embedded server per test session,
a template database migrated once, and a fresh clone of it for each test."""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psycopg
import pytest
from helpers import PASSWORD, SERVICE, call, make_repo, recipe
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import dict_row

from odooops import runtime
from odooops.db import Actor, embedded, migrate
from odooops.managers.branches import Branches
from odooops.odoo import envdb
from odooops.managers.orgs import Orgs
from odooops.managers.projects import Projects
from odooops.managers.tokens import Tokens
from odooops.managers.users import Users, hash_password
from odooops.repos import Host
from odooops.settings import Secret, Settings

pytest_plugins = ["browser"]  # browser, page, screenshots, shoot: see tests/browser.py

TEMPLATE = "ops_template"
APP_ROLE = "odooops_app"
APP_PASSWORD = secrets.token_urlsafe(16)


def with_db(conninfo: str, dbname: str) -> str:
    return make_conninfo(conninfo, dbname=dbname)


@pytest.fixture(scope="session")
def server(tmp_path_factory) -> Iterator[str]:
    """Owner conninfo of the test server's maintenance database."""
    url = os.environ.get("ODOOOPS_TEST_DATABASE_URL")
    if url:
        yield make_conninfo(url)
        return
    data_dir = tmp_path_factory.mktemp("pg")
    conninfo = embedded.start(data_dir)
    yield with_db(conninfo, "postgres")
    embedded.stop(data_dir)


def create_database(server: str, name: str, template: str | None = None) -> str:
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'drop database if exists "{name}" with (force)')
        if template:
            conn.execute(f'create database "{name}" template "{template}" strategy file_copy')
        else:
            conn.execute(f'create database "{name}"')
    return with_db(server, name)


def drop_database(server: str, name: str) -> None:
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'drop database if exists "{name}" with (force)')


@pytest.fixture(scope="session")
def template(server: str) -> str:
    owner = create_database(server, TEMPLATE)
    asyncio.run(migrate.migrate(owner))
    asyncio.run(migrate.ensure_app_role(owner, APP_ROLE, APP_PASSWORD))
    return owner


@pytest.fixture
def make_db(server: str, template: str):
    """Factory of fresh migrated databases; returns the owner conninfo."""
    made: list[str] = []

    def make(migrated: bool = True) -> str:
        name = f"t_{uuid.uuid4().hex[:12]}"
        made.append(name)
        return create_database(server, name, TEMPLATE if migrated else None)

    yield make
    for name in made:
        drop_database(server, name)


@pytest.fixture
def owner_db(make_db) -> str:
    """Owner conninfo of this test's own migrated database."""
    return make_db()


@pytest.fixture
def settings(owner_db: str, tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", database_url=Secret(owner_db),
                    app_role=APP_ROLE, app_password=Secret(APP_PASSWORD), repo_roots=(tmp_path,))


def repo_roots(settings: Settings) -> str:
    """ODOOOPS_REPO_ROOTS of a process on this test's settings: its temp dir."""
    return os.pathsep.join(str(p) for p in settings.repo_roots)


def allow_path(db, settings: Settings, org: str, path) -> Awaitable[dict]:
    """As the operator, let `org`'s projects use local repositories inside `path`."""
    return Orgs(db, SERVICE).allow_path(org, str(path), Host.of(settings))


@pytest.fixture
def app_db(settings: Settings, owner_db: str) -> str:
    """Conninfo of the application login role on this test's database."""
    return runtime.app_conninfo(settings, owner_db)


@contextmanager
def acting(app_conninfo: str, actor: Actor) -> Iterator[psycopg.Connection]:
    """One transaction as `actor`, the way the application opens them; rolled
    back at the end so each check leaves nothing behind."""
    with psycopg.connect(app_conninfo, row_factory=dict_row) as conn:
        conn.execute("select set_config('role', %s, true), set_config('request.jwt.claims', %s, true)",
                     (actor.role, actor.claims()))
        yield conn
        conn.rollback()


def owner_conn(owner_conninfo: str) -> psycopg.Connection:
    return psycopg.connect(owner_conninfo, autocommit=True, row_factory=dict_row)


@pytest.fixture(autouse=True, scope="session")
def no_stored_login(tmp_path_factory) -> None:
    """Commands the tests start must not find a developer's `odooops login`
    and go to that server: each session gets an empty config directory."""
    os.environ["XDG_CONFIG_HOME"] = str(tmp_path_factory.mktemp("config"))


@pytest.fixture
def cli(settings: Settings):
    """Run the real `odooops` command in a subprocess against this test's database."""

    def run(*args: str, input: str | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("ODOOOPS_")}
        full_env.update({
            "ODOOOPS_DATA_DIR": str(settings.data_dir),
            "ODOOOPS_DATABASE_URL": settings.database_url.reveal(),
            "ODOOOPS_APP_PASSWORD": APP_PASSWORD,
            "ODOOOPS_REPO_ROOTS": repo_roots(settings),
            "COLUMNS": "200",
            "XDG_CONFIG_HOME": str(settings.data_dir.parent / "config"),  # where `odooops login` keeps its token
        })
        full_env.update(env or {})
        return subprocess.run([sys.executable, "-m", "odooops", *args], input=input, env=full_env,
                              capture_output=True, text=True, timeout=120)

    return run


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(proc: subprocess.Popen, base: str, log: Path | None = None) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/healthz").status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    raise AssertionError(log.read_text() if log else proc.stdout.read())


def process_env(settings: Settings, **more: str) -> dict:
    """The environment of an `odooops` process on this test's database (and
    no ODOOOPS_* setting of the developer's own)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ODOOOPS_")}
    env.update({"ODOOOPS_DATA_DIR": str(settings.data_dir), "ODOOOPS_DATABASE_URL": settings.database_url.reveal(),
                "ODOOOPS_APP_PASSWORD": APP_PASSWORD, "ODOOOPS_REPO_ROOTS": repo_roots(settings),
                # each process its own mail catcher: never another test's
                "ODOOOPS_MAIL_CATCHER_ADDRESS": f"127.0.0.1:{free_port()}", **more})
    return env


@pytest.fixture
def runner(settings):
    """A real `odooops runner` on this test's database, polling every 0.5 s;
    its output in runner.log beside the data dir."""
    with (settings.data_dir.parent / "runner.log").open("w") as output:
        proc = subprocess.Popen([sys.executable, "-m", "odooops", "runner"],
                                env=process_env(settings, ODOOOPS_POLL_SECONDS="0.5"),
                                stdout=output, stderr=subprocess.STDOUT)
    yield proc
    proc.terminate()
    proc.wait(timeout=60)
    envdb.stop(settings)  # the environments' server, if a build started it


@pytest.fixture
def serve_api(settings):
    """Start a real `odooops serve` on this test's database, with extra
    environment variables if given; returns its base URL. All are stopped
    when the test ends."""
    started: list[subprocess.Popen] = []

    def start(env: dict | None = None) -> str:
        port = free_port()
        full_env = process_env(settings, ODOOOPS_PORT=str(port), **(env or {}))
        # to a file: a pipe nobody reads would fill with the access log and stop the server
        log = settings.data_dir.parent / f"serve-{port}.log"
        with log.open("w") as output:
            proc = subprocess.Popen([sys.executable, "-m", "odooops", "serve"], env=full_env,
                                    stdout=output, stderr=subprocess.STDOUT, text=True)
        started.append(proc)
        base = f"http://127.0.0.1:{port}"
        _wait_healthy(proc, base, log)
        return base

    yield start
    for proc in started:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def api(serve_api) -> str:
    """A running `odooops serve`; its base URL."""
    return serve_api()


def dbname(conninfo: str) -> str:
    return conninfo_to_dict(conninfo)["dbname"]


@pytest.fixture
def tenants(settings, tmp_path):
    """Alice owns acme/shop, Bob is a viewer there, Eve owns evil/lab; each has a read+write token."""
    repo = str(make_repo(tmp_path / "repo", {".odooops.toml": recipe({"name": "ok", "command": "true"})},
                         branches=("feature",)))

    async def work(db):
        emails = {"alice": "alice@acme.test", "bob": "bob@acme.test", "eve": "eve@evil.test"}
        for email in emails.values():
            await Users(db, SERVICE).create(email)
        await Orgs(db, SERVICE).create("acme", owner_email=emails["alice"])
        await Orgs(db, SERVICE).create("evil", owner_email=emails["eve"])
        await Orgs(db, SERVICE).add_member("acme", emails["bob"], "viewer")
        for org in ("acme", "evil"):
            await allow_path(db, settings, org, repo)
        await Projects(db, SERVICE).create("acme/shop", repo)
        await Projects(db, SERVICE).create("evil/lab", repo)
        await Branches(db, SERVICE).add("acme/shop", "feature")
        tokens = {name: (await Tokens(db, SERVICE).create(email, "test", ["read", "write"]))[1]
                  for name, email in emails.items()}
        tokens["alice_read"] = (await Tokens(db, SERVICE).create(emails["alice"], "ro", ["read"]))[1]
        return tokens

    return call(settings, work)



@pytest.fixture
def people(tenants, settings):
    """The tenants' people can also sign in to the console, with PASSWORD."""
    with owner_conn(settings.database_url.reveal()) as conn:
        conn.execute("update ops.users set password_hash = %s", (hash_password(PASSWORD),))
    return tenants


@pytest.fixture
def console(api, people):
    """Sign in to the console at `api` as alice, bob or eve: an httpx client
    holding the session cookie, with its CSRF token as `client.csrf`."""
    clients = []

    def sign_in(name: str) -> httpx.Client:
        client = httpx.Client(base_url=api, follow_redirects=False)
        clients.append(client)
        answer = client.post("/login", data={"email": f"{name}@{'evil' if name == 'eve' else 'acme'}.test",
                                             "password": PASSWORD})
        assert answer.status_code == 303, answer.text
        client.csrf = client.get("/api/v1/auth/session").json()["csrf_token"]
        return client

    yield sign_in
    for client in clients:
        client.close()


def pytest_terminal_summary(terminalreporter) -> None:
    """Say which Odoo the Odoo tests ran against: the stand-in only, or real trees too."""
    from odoo_world import real_sources

    real = real_sources()
    if real:
        named = ", ".join(f"{s.version} at {s.path}" for s in real)
        terminalreporter.write_line(f"Odoo: the stand-in and real Odoo ({named}): the real-Odoo lane ran")
    else:
        terminalreporter.write_line("Odoo: the stand-in only (tests/standin); set ODOOOPS_TEST_ODOO_SOURCES="
                                    "17.0=/path/to/odoo17 to run the real-Odoo lane too (DEVELOPERS.md)")
