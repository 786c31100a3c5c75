"""The stand-in odoo-bin (tests/standin, a test double) against real Odoo 17.0.

Always against what real 17.0 printed (tests/fixtures/odoo/17.0 and 17.0-cli),
and side by side with real Odoo when ODOOOPS_TEST_ODOO_SOURCES names trees
(`17.0=/path[,16.0=/path]`) and ODOOOPS_TEST_ODOO_PYTHON the python of a
virtualenv that runs them (one path for all, or `17.0=/path,...`). Every check
taking `odoo` runs once on the stand-in and once on each real tree; without
the variable, on the stand-in only. Each implementation gets a PostgreSQL role
of its own (real Odoo refuses `postgres`) on the session's server, and its
databases: a fresh one made by odoo-bin itself (base), a clone with
standin_notes installed, and clones of those for each check."""

from __future__ import annotations

import ast
import getpass
import hashlib
import importlib.util
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from odoo_world import standin_tree

from odooops.odoo import odoobin

HERE = Path(__file__).parent
STANDIN = HERE / "standin"
ADDONS = HERE / "fixtures" / "odoo" / "addons"
BROKEN = HERE / "fixtures" / "odoo" / "addons_broken"
CAPTURED = HERE / "fixtures" / "odoo" / "17.0"
CAPTURED_CLI = HERE / "fixtures" / "odoo" / "17.0-cli"
ROLE, ROLE_PASSWORD = "odooops_standin_odoo", "odoo-test"

# what OdooOps passes to odoo-bin (odooops.odoo.odoobin), which every Odoo it runs must know
OPTIONS_ODOOOPS_PASSES = [
    "-d", "--database", "-i", "--init", "-u", "--update", "--addons-path", "-D", "--data-dir", "--db_host",
    "--db_port", "--db_user", "--db_password", "--test-enable", "--test-tags", "--stop-after-init", "--log-level",
    "--max-cron-threads", "--db-filter", "--no-database-list", "--http-port", "--http-interface", "--gevent-port",
    "--proxy-mode", "--workers", "--limit-memory-hard", "--limit-memory-soft", "--limit-time-real",
    "--limit-time-cpu", "--limit-request", "--load-language", "--log-handler", "--log-sql",
    "--osv-memory-count-limit", "--screenshots", "--screencasts",
]
RECORD = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) (\d+) (DEBUG|INFO|WARNING|ERROR|CRITICAL) (\S+) "
                    r"([\w.]+): (.*)$")


# --- reading a log ------------------------------------------------------------------------------------------


@dataclass
class Record:
    level: str
    db: str
    logger: str
    message: str                      # the first line, with Odoo's trailing space
    more: list[str] = field(default_factory=list)  # continuation lines (a traceback)

    @property
    def text(self) -> str:
        return self.message.rstrip()


def records(text: str) -> list[Record]:
    found: list[Record] = []
    for line in text.splitlines():
        match = RECORD.match(line)
        if match:
            found.append(Record(match[3], match[4], match[5], match[6]))
        elif found:
            found[-1].more.append(line)
    return found


def messages(text: str, logger: str | None = None) -> list[str]:
    return [r.text for r in records(text) if logger is None or r.logger == logger]


def shape(text: str, module: str) -> list[tuple]:
    """A log as comparable across runs, machines and implementations: level,
    logger and message with numbers, times, names and paths made generic;
    a traceback reduced to its first line;
    the lines a module's own data files make left out."""
    result = []
    for r in records(text):
        message = r.text
        if r.logger == "odoo" or (r.logger == "odoo.modules.loading" and (
                message.startswith(f"loading {module}/") or message == f"Module {module}: loading demo")):
            continue
        if r.logger == "odoo.addons.base.models.ir_actions_report":
            continue
        message = message.replace(f"'{r.db}'", "'DB'").replace(f"`{r.db}`", "`DB`").replace(module, "MODULE")
        message = re.sub(r"\['[^\]]+'\]", "['NAME']", message)  # a module's name, as its manifest says it
        message = re.sub(r"running on \S+:", "running on HOST:", message)
        message = re.sub(r"\d+(\.\d+)?", "N", message)
        logger = r.logger.replace(module, "MODULE")
        tail = [line for line in r.more if line.strip()]
        result.append((r.level, logger, message, tail[0] if tail else None))
    return result


def last_traceback_line(record: Record) -> str:
    return [line for line in record.more if line.strip()][-1]


# --- the implementations ------------------------------------------------------------------------------------


@dataclass
class Odoo:
    """One odoo-bin to run: the stand-in or a real tree, with its python and
    the environment that points libpq at this session's server."""

    name: str
    version: str
    tree: Path
    python: Path
    env: dict
    data_dir: Path
    standin: bool

    @property
    def major(self) -> int:
        return int(self.version.split(".")[0])

    def addons_path(self, *folders: Path) -> str:
        """What OdooOps gives: the tree's addons/ when it has one (a source
        checkout), then the project's folders."""
        own = [self.tree / "addons"] if (self.tree / "addons").is_dir() else []
        return ",".join(str(p) for p in [*own, *folders])

    def argv(self, *args: str) -> list[str]:
        return [str(self.python), str(odoobin.script(self.tree)), *args]

    def run(self, *args: str, env: dict | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
        return subprocess.run(self.argv(*args), env={**self.env, **(env or {})}, capture_output=True, text=True,
                              timeout=timeout)

    def install(self, db: str, *args: str, addons: tuple = (ADDONS,), env: dict | None = None):
        """odoo-bin as OdooOps runs a build: stop after init, no crons, its own data dir."""
        return self.run("--database", db, "--addons-path", self.addons_path(*addons), "--data-dir",
                        str(self.data_dir), "--max-cron-threads=0", "--stop-after-init", *args, env=env)


def real_trees() -> list:
    """The real 17.0 trees named: the stand-in imitates 17.0 (and the differences of other versions it
    knows, from their sources), so it is checked against 17.0; builds on other versions are checked by
    tests/test_odoo_build.py."""
    trees = []
    for item in os.environ.get("ODOOOPS_TEST_ODOO_SOURCES", "").split(","):
        if item.strip():
            version, _, path = item.strip().partition("=")
            if version.strip() == "17.0":
                trees.append(pytest.param((version, Path(path)), id=f"odoo-{version}"))
    return trees


def real_python(version: str) -> Path:
    value = os.environ.get("ODOOOPS_TEST_ODOO_PYTHON", "")
    if "=" in value:
        value = dict(item.split("=", 1) for item in value.split(",") if item).get(version, "")
    if not value:
        pytest.fail(f"ODOOOPS_TEST_ODOO_SOURCES names Odoo {version}: set ODOOOPS_TEST_ODOO_PYTHON to the python "
                    "of a virtualenv that has that tree's requirements (a path, or 17.0=/path,...)")
    return Path(value)


@pytest.fixture(scope="session")
def standin_python(tmp_path_factory) -> Path:
    """A virtualenv with psycopg2-binary, as OdooOps installs the stand-in's requirements."""
    venv = tmp_path_factory.mktemp("standin-venv")
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check",
                    "psycopg2-binary==2.9.10"], check=True, timeout=600)
    return venv / "bin" / "python"


@pytest.fixture(scope="session")
def pg(server: str) -> dict:
    """The libpq environment of a role Odoo may use (CREATEDB, not a superuser)."""
    with psycopg.connect(server, autocommit=True) as conn:
        exists = conn.execute("select 1 from pg_roles where rolname = %s", (ROLE,)).fetchone()
        verb = "alter" if exists else "create"
        conn.execute(f"{verb} role {ROLE} login createdb password '{ROLE_PASSWORD}'")
    info = conninfo_to_dict(server)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update({"PGHOST": info.get("host") or "localhost", "PGPORT": str(info.get("port") or 5432),
                "PGUSER": ROLE, "PGPASSWORD": ROLE_PASSWORD, "PYTHONDONTWRITEBYTECODE": "1"})
    return env


@pytest.fixture(scope="session", params=[pytest.param(None, id="standin"), *real_trees()])
def odoo(request, pg, tmp_path_factory) -> Odoo:
    if request.param is None:
        python = request.getfixturevalue("standin_python")
        name, version, standin = "standin", "17.0", True
        tree = standin_tree(tmp_path_factory.mktemp("standin-tree") / "odoo", version)
    else:
        version, tree = request.param
        name, python, standin = f"odoo{version.replace('.', '')}", real_python(version), False
    return Odoo(name, version, tree, python, pg, tmp_path_factory.mktemp(f"data-{name}"), standin)


class Databases:
    """This session's databases, by an owner connection to the server."""

    def __init__(self, server: str):
        self.server = server

    def name(self, odoo: Odoo, what: str) -> str:
        return f"sti_{odoo.name}_{what}_{uuid.uuid4().hex[:6]}"

    def connect(self, db: str) -> psycopg.Connection:
        return psycopg.connect(make_conninfo(self.server, dbname=db), autocommit=True)

    def rows(self, db: str, query: str, params=()) -> list[tuple]:
        with self.connect(db) as conn:
            return conn.execute(query, params).fetchall()

    def clone(self, odoo: Odoo, source: str, what: str) -> str:
        """A copy of a database and its filestore, as OdooOps makes them."""
        target = self.name(odoo, what)
        with self.connect("postgres") as conn:
            conn.execute(f'create database "{target}" template "{source}" owner {ROLE}')
        filestore = odoo.data_dir / "filestore"
        if (filestore / source).is_dir():
            shutil.copytree(filestore / source, filestore / target)
        return target

    def create_empty(self, odoo: Odoo, what: str) -> str:
        target = self.name(odoo, what)
        with self.connect("postgres") as conn:
            conn.execute(f'create database "{target}" owner {ROLE}')
        return target

    def drop_all(self) -> None:
        with self.connect("postgres") as conn:
            for (name,) in conn.execute("select datname from pg_database where datname like 'sti\\_%'").fetchall():
                conn.execute(f'drop database if exists "{name}" with (force)')


@pytest.fixture(scope="session")
def dbs(server: str):
    databases = Databases(server)
    yield databases
    if os.environ.get("ODOOOPS_TEST_DATABASE_URL"):  # the embedded server goes with the session's temp dir
        databases.drop_all()


@dataclass
class Run:
    db: str
    proc: subprocess.CompletedProcess

    @property
    def log(self) -> str:
        return self.proc.stderr


@pytest.fixture(scope="session")
def fresh(odoo, dbs) -> Run:
    """A database odoo-bin made itself: `-i base` on a name that did not exist."""
    db = dbs.name(odoo, "fresh")
    return Run(db, odoo.install(db, "-i", "base"))


@pytest.fixture(scope="session")
def notes(odoo, dbs, fresh) -> Run:
    """standin_notes installed on a clone of the fresh database, with the
    tests of the captured run (TestNote: one passes, one fails, one raises)."""
    db = dbs.clone(odoo, fresh.db, "notes")
    return Run(db, odoo.install(db, "-i", "standin_notes", "--test-enable", "--log-level=test",
                                "--test-tags", "/standin_notes:TestNote", "--http-port", str(free_port())))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def captured(name: str) -> str:
    """A capture without the `exit=N` line the capture added."""
    return "\n".join(line for line in (CAPTURED / name).read_text().splitlines() if not line.startswith("exit="))


def option_names(help_text: str) -> list[str]:
    """The option names of an `odoo-bin --help`, in order."""
    names = []
    for line in help_text.splitlines():
        match = re.match(r"^ {2,4}(-\S.*?)(?:  |$)", line)
        if match:
            names += [re.match(r"--?[A-Za-z0-9][\w-]*", part)[0] for part in match[1].split(", ")]
    return names


def as_root() -> bool:
    return getpass.getuser() == "root"


# --- the command line ---------------------------------------------------------------------------------------


def test_the_standin_accepts_the_option_names_of_17_0s_help():
    captured_names = option_names((CAPTURED_CLI / "odoo-bin-help.txt").read_text())
    spec = importlib.util.spec_from_file_location("standin_options", STANDIN / "odoo" / "options.py")
    options = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(options)  # the stand-in's option table, as data
    assert options.option_names(17) == captured_names
    assert len(captured_names) == 89


def test_help_lists_the_options(odoo):
    help_run = odoo.run("--help")
    assert help_run.returncode == 0
    assert help_run.stdout.startswith("Usage: odoo-bin server [options]\n")
    names = option_names(help_run.stdout)
    assert set(OPTIONS_ODOOOPS_PASSES) <= set(names)
    if odoo.version == "17.0":
        assert names == option_names((CAPTURED_CLI / "odoo-bin-help.txt").read_text())
    version = odoo.run("--version")
    assert version.returncode == 0 and version.stdout.startswith(f"Odoo Server {odoo.version}")


def test_an_unknown_option_fails_as_optparse_does(odoo):
    result = odoo.run("--no-such-option")
    assert result.returncode == 2
    assert result.stderr.endswith("Usage: odoo-bin server [options]\n\n"
                                  "odoo-bin server: error: no such option: --no-such-option\n")
    assert result.stderr.startswith("Running as user 'root' is a security risk.\n") == as_root()
    assert odoo.run("-d", "x", "--http-port", "eighty").stderr.endswith(
        "odoo-bin server: error: option --http-port: invalid integer value: 'eighty'\n")
    assert odoo.run("-d", "x", "stray").stderr.endswith("odoo-bin server: error: unrecognized parameters: 'stray'\n")
    unknown = odoo.run("frobnicate")
    assert (unknown.returncode, unknown.stderr) == (1, "Unknown command 'frobnicate'\n")


def test_demo_options_up_to_18_0(odoo):
    if odoo.major >= 19:
        assert odoo.run("--with-demo", "--help").returncode == 0
        return
    with_demo = odoo.run("--with-demo", "-d", "x")
    assert with_demo.returncode == 2 and with_demo.stderr.endswith("error: no such option: --with-demo\n")
    bare = odoo.run("-d", "x", "--without-demo")
    assert bare.returncode == 2 and bare.stderr.endswith("error: --without-demo option requires 1 argument\n")


def test_addons_paths_are_checked(odoo, tmp_path):
    missing = odoo.run("--addons-path", str(tmp_path / "nowhere"), "-d", "x")
    assert missing.returncode == 2
    assert missing.stderr.endswith(f"error: option --addons-path: no such directory: '{tmp_path / 'nowhere'}'\n")
    not_addons = odoo.run("--addons-path", str(tmp_path), "-d", "x")
    assert not_addons.returncode == 2
    assert not_addons.stderr.endswith(f"error: option --addons-path: the path '{tmp_path}' is not a valid "
                                      "addons directory\n")


def test_the_postgres_user_is_refused(odoo):
    for result in (odoo.run("-d", "x", "--db_user", "postgres"), odoo.run("-d", "x", env={"PGUSER": "postgres"})):
        assert result.returncode == 1
        assert result.stderr.endswith("Using the database user 'postgres' is a security risk, aborting.")


# --- a new database -----------------------------------------------------------------------------------------


def test_a_new_database_is_created_and_base_installed_with_demo_data(odoo, fresh, dbs, pg):
    assert fresh.proc.returncode == 0, fresh.log
    assert fresh.proc.stdout == ""
    log = records(fresh.log)
    serie = odoo.version
    assert log[0].logger == "odoo" and log[0].text.startswith(f"Odoo version {serie}")
    paths = ast.literal_eval(log[1].text.removeprefix("addons paths: "))
    assert paths[:2] == [str(odoo.tree / "odoo" / "addons"), str(odoo.data_dir / "addons" / serie)]
    assert paths[-1] == str(ADDONS)
    assert log[2].text == f"database: {ROLE}@{pg['PGHOST']}:{pg['PGPORT']}"
    init = next(r for r in log if r.text == "init db")
    assert (init.level, init.db, init.logger) == ("INFO", "?", "odoo.modules.loading")
    loading = messages(fresh.log, "odoo.modules.loading")
    assert loading[loading.index("init db") + 1:][:2] == ["loading 1 modules...", "Loading module base (1/1)"]
    assert "Module base: loading demo" in loading
    assert "updating modules list" in loading and loading[-1] == "Modules loaded."
    assert not any(r.level in ("WARNING", "ERROR", "CRITICAL") for r in log)
    assert [r.text for r in log[-3:]] == ["Initiating shutdown",
                                         "Hit CTRL-C again or send a second signal to force the shutdown.",
                                         log[-1].text]
    assert re.fullmatch(r"ConnectionPool\(used=0/count=0/max=64\): Closed \d+ connections", log[-1].text)
    assert log[-1].message.endswith("connections  ")  # Odoo's two trailing spaces
    assert all(r.db == fresh.db for r in log[log.index(init) + 1:])

    modules = dict(dbs.rows(fresh.db, "select name, state from ir_module_module"))
    assert modules["base"] == modules["web"] == modules["bus"] == modules["base_setup"] == "installed"  # auto-install
    assert modules["mail"] == modules["standin_notes"] == "uninstalled"
    assert dbs.rows(fresh.db, "select latest_version, demo from ir_module_module where name = 'base'") == [
        (f"{serie}.1.3", True)]
    assert (odoo.data_dir / "addons" / serie).is_dir()


def test_base_leaves_the_rows_odooops_reads(fresh, dbs):
    users = dict(dbs.rows(fresh.db, "select login, active from res_users"))
    assert users["admin"] is True and users["__system__"] is False and "demo" in users  # demo data
    [(password,)] = dbs.rows(fresh.db, "select password from res_users where login = 'admin'")
    assert password.startswith("$pbkdf2-sha512$600000$")
    keys = dict(dbs.rows(fresh.db, "select key, value from ir_config_parameter"))
    assert {"database.uuid", "database.secret", "database.create_date", "web.base.url"} <= set(keys)
    assert keys["web.base.url"] == "http://localhost:8069"
    crons = dbs.rows(fresh.db, "select c.cron_name, c.active from ir_cron c join ir_model_data d "
                               "on d.res_id = c.id and d.model = 'ir.cron' and d.module = 'base' "
                               "and d.name = 'autovacuum_job'")
    assert crons == [("Base: Auto-vacuum internal data", True)]
    assert dbs.rows(fresh.db, "select count(*) from ir_mail_server") == [(0,)]
    columns = {t: {c for (c,) in dbs.rows(fresh.db, "select column_name from information_schema.columns "
                                                    "where table_name = %s", (t,))}
               for t in ("ir_module_module", "ir_cron", "ir_mail_server", "ir_config_parameter", "res_users")}
    assert {"id", "name", "state", "latest_version", "demo"} <= columns["ir_module_module"]
    assert {"id", "cron_name", "active", "ir_actions_server_id"} <= columns["ir_cron"]
    assert {"id", "name", "smtp_host", "smtp_port", "smtp_user", "smtp_pass", "active"} <= columns["ir_mail_server"]
    assert {"key", "value"} <= columns["ir_config_parameter"]
    assert {"id", "login", "password", "active"} <= columns["res_users"]


def test_the_filestore_holds_attachments_by_sha1(odoo, fresh, dbs):
    filestore = odoo.data_dir / "filestore" / fresh.db
    files = [p for p in filestore.rglob("*") if p.is_file() and "checklist" not in p.parts]
    assert files
    stored = {name for (name,) in dbs.rows(fresh.db, "select store_fname from ir_attachment "
                                                     "where store_fname is not null")}
    for path in files:
        assert hashlib.sha1(path.read_bytes()).hexdigest() == path.name  # Odoo names filestore files so
        assert path.parent.name == path.name[:2]
        assert f"{path.parent.name}/{path.name}" in stored


def test_without_demo_a_new_database_has_no_demo_data(odoo, dbs):
    db = dbs.name(odoo, "nodemo")
    flag = [] if odoo.major >= 19 else ["--without-demo=all"]
    result = odoo.install(db, "-i", "base", *flag)
    assert result.returncode == 0, result.stderr
    assert "Module base: loading demo" not in messages(result.stderr)
    assert dbs.rows(db, "select demo from ir_module_module where name = 'base'") == [(False,)]
    assert dbs.rows(db, "select count(*) from res_users where login = 'demo'") == [(0,)]


def test_a_database_that_is_not_initialized_is_left_alone(odoo, dbs):
    db = dbs.create_empty(odoo, "empty")
    result = odoo.install(db)
    assert result.returncode == 0
    [error] = [r for r in records(result.stderr) if r.level == "ERROR"]
    assert (error.db, error.logger, error.text) == (
        "?", "odoo.modules.loading", f"Database {db} not initialized, you can force it with `-i base`")
    assert "Modules loaded." not in messages(result.stderr)


def test_a_role_that_may_not_create_the_database(odoo, dbs, server):
    with psycopg.connect(server, autocommit=True) as conn:
        if not conn.execute("select 1 from pg_roles where rolname = 'odooops_standin_nocreate'").fetchone():
            conn.execute("create role odooops_standin_nocreate login password 'x'")
    db = dbs.name(odoo, "nocreate")
    result = odoo.install(db, env={"PGUSER": "odooops_standin_nocreate", "PGPASSWORD": "x"})
    assert result.returncode == 255
    log = records(result.stderr)
    bad = next(r for r in log if r.level == "ERROR")
    assert bad.logger == "odoo.sql_db" and bad.text.startswith(f'bad query: CREATE DATABASE "{db}" ENCODING')
    assert any(r.text.startswith(f"Could not determine if database {db} exists, skipping auto-creation: "
                                 "permission denied to create database") for r in log)
    critical = next(r for r in log if r.level == "CRITICAL")
    assert (critical.logger, critical.text) == ("odoo.service.server", f"Failed to initialize database `{db}`.")
    assert last_traceback_line(critical).startswith("psycopg2.OperationalError: ")
    assert f'database "{db}" does not exist' in "\n".join(critical.more)


# --- installing, testing, updating --------------------------------------------------------------------------


def test_an_install_with_failing_tests_logs_as_the_capture(odoo, notes):
    assert notes.proc.returncode == 1
    assert shape(notes.log, "standin_notes") == shape(captured("install-tests-failing.log"), "fixture_notes")


def test_the_test_markers(notes):
    log = records(notes.log)
    test_logger = "odoo.addons.standin_notes.tests.test_note"
    fail = next(r for r in log if r.text == "FAIL: TestNote.test_words_deliberately_wrong")
    error = next(r for r in log if r.text == "ERROR: TestNote.test_raises_error")
    assert fail.level == error.level == "ERROR" and fail.logger == error.logger == test_logger
    test_file = ADDONS / "standin_notes" / "tests" / "test_note.py"
    assert fail.more[:4] == ["Traceback (most recent call last):",
                             f'  File "{test_file}", line 15, in test_words_deliberately_wrong',
                             '    self.fail("this test fails on purpose")',
                             "AssertionError: this test fails on purpose"]
    assert fail.more[-1] == " "  # Odoo's empty perf field after the traceback
    assert last_traceback_line(error) == "ValueError: this test raises on purpose"
    assert "Module standin_notes: 1 failures, 1 errors of 3 tests" in messages(notes.log, "odoo.modules.loading")
    summary = log[-4]
    assert (summary.level, summary.logger, summary.text) == (
        "ERROR", "odoo.tests.result", f"1 failed, 1 error(s) of 3 tests when loading database '{notes.db}'")


def test_an_install_whose_tests_pass_logs_as_the_capture(odoo, fresh, dbs):
    db = dbs.clone(odoo, fresh.db, "passing")
    result = odoo.install(db, "-i", "standin_notes", "--test-enable", "--log-level=test", "--http-port",
                          str(free_port()), "--test-tags", "/standin_notes:TestNote.test_words_counted")
    assert result.returncode == 0, result.stderr
    assert shape(result.stderr, "standin_notes") == shape(captured("install-tests-passing.log"), "fixture_notes")
    [summary] = [r for r in records(result.stderr) if r.logger == "odoo.tests.result"]
    assert (summary.level, summary.text) == ("INFO", f"0 failed, 0 error(s) of 1 tests when loading database '{db}'")


def test_the_installed_module(odoo, notes, dbs):
    assert dbs.rows(notes.db, "select state, latest_version, demo from ir_module_module "
                              "where name = 'standin_notes'") == [("installed", f"{odoo.version}.1.0.0", True)]
    assert dbs.rows(notes.db, "select c.cron_name, c.active from ir_cron c join ir_model_data d on d.res_id = c.id "
                              "and d.module = 'standin_notes' and d.name = 'ir_cron_recount_words' "
                              "and d.model = 'ir.cron'") == [("Stand-in Notes: recount words", True)]
    loading = messages(notes.log, "odoo.modules.loading")
    assert "Loading module standin_notes (2/" in "\n".join(loading)
    assert loading.index("loading standin_notes/security/ir.model.access.csv") < loading.index(
        "Module standin_notes: loading demo") < loading.index("loading standin_notes/demo/note_demo.xml")


def test_skips_post_install_tests_and_exclusions(odoo, notes, dbs):
    db = dbs.clone(odoo, notes.db, "tags")
    result = odoo.install(db, "-u", "standin_notes", "--log-level=test", "--http-port", str(free_port()),
                          "--test-tags", "/standin_notes,-/standin_notes:TestNote")
    assert result.returncode == 0, result.stderr
    log = records(result.stderr)
    test_logger = "odoo.addons.standin_notes.tests.test_note"
    assert [r.text for r in log if r.logger == test_logger] == [
        "Starting TestNoteSkipped.test_skipped_deliberately ...",
        "skipped TestNoteSkipped.test_skipped_deliberately : this test is skipped on purpose",
        "Starting TestNoteAfterInstall.test_model_registered ..."]
    server = messages(result.stderr, "odoo.service.server")
    post = next(m for m in server if "post-tests" in m)
    assert server.index("Starting post tests") < server.index(post)
    assert re.fullmatch(r"1 post-tests in \d+\.\d\ds, \d+ queries", post)
    assert re.fullmatch(r"standin_notes: \d+ tests \d+\.\d\ds \d+ queries", messages(result.stderr,
                                                                                      "odoo.tests.stats")[0])
    assert messages(result.stderr, "odoo.tests.result") == [f"0 failed, 0 error(s) of 2 tests when loading "
                                                            f"database '{db}'"]


def test_an_update_rewrites_the_version(odoo, notes, dbs, tmp_path):
    addons = tmp_path / "addons"
    shutil.copytree(ADDONS, addons)
    manifest = addons / "standin_notes" / "__manifest__.py"
    manifest.write_text(manifest.read_text().replace('"1.0.0"', '"1.1.0"'))
    db = dbs.clone(odoo, notes.db, "update")
    result = odoo.install(db, "-u", "standin_notes", addons=(addons,))
    assert result.returncode == 0, result.stderr
    text = messages(result.stderr)
    assert "ALLOW access to module.button_upgrade on ['Stand-in Notes'] to user __system__ #1 via n/a" in text
    assert "Module standin_notes: loading demo" in text and "Modules loaded." in text
    assert "verifying fields for every extended model" in text
    assert dbs.rows(db, "select state, latest_version from ir_module_module where name = 'standin_notes'") == [
        ("installed", f"{odoo.version}.1.1.0")]


def test_a_module_name_that_does_not_exist_is_ignored_with_a_warning(odoo, fresh, dbs):
    db = dbs.clone(odoo, fresh.db, "nosuch")
    result = odoo.install(db, "-i", "standin_no_such_module")
    assert result.returncode == 0
    [warning] = [r for r in records(result.stderr) if r.level == "WARNING"]
    assert (warning.logger, warning.text) == ("odoo.modules.loading",
                                              "invalid module names, ignored: standin_no_such_module")
    assert messages(result.stderr)[-5] == "Modules loaded."


def test_an_uninstallable_module_is_not_installed(odoo, fresh, dbs):
    db = dbs.clone(odoo, fresh.db, "uninstallable")
    result = odoo.install(db, "-i", "standin_uninstallable", addons=(BROKEN,))
    assert result.returncode == 0
    assert not [r for r in records(result.stderr) if r.level != "INFO"]
    assert not any("button_install" in m for m in messages(result.stderr))
    assert dbs.rows(db, "select state from ir_module_module where name = 'standin_uninstallable'") == [
        ("uninstallable",)]


def test_a_missing_data_file_fails_the_install(odoo, fresh, dbs):
    db = dbs.clone(odoo, fresh.db, "missing")
    result = odoo.install(db, "-i", "standin_missing_data", addons=(BROKEN,))
    assert result.returncode == 255
    log = records(result.stderr)
    problems = [(r.level, r.logger, r.text) for r in log if r.level != "INFO"]
    assert problems == [("WARNING", "odoo.modules.loading", "Transient module states were reset"),
                        ("ERROR", "odoo.modules.registry", "Failed to load registry"),
                        ("CRITICAL", "odoo.service.server", f"Failed to initialize database `{db}`.")]
    for record in log:
        if record.level in ("ERROR", "CRITICAL"):
            assert record.more[0] == "Traceback (most recent call last):"
            assert last_traceback_line(record) == (
                "FileNotFoundError: File not found: standin_missing_data/views/missing_views.xml")
    assert "loading standin_missing_data/views/missing_views.xml" in messages(result.stderr)
    assert "Modules loaded." not in messages(result.stderr)
    assert messages(result.stderr)[-3:-1] == ["Initiating shutdown",
                                              "Hit CTRL-C again or send a second signal to force the shutdown."]
    # the run's transaction rolled back, the modules list it had updated with it
    assert dbs.rows(db, "select state from ir_module_module where name = 'standin_missing_data'") == []


def test_a_missing_dependency_fails_the_install(odoo, fresh, dbs):
    db = dbs.clone(odoo, fresh.db, "baddeps")
    result = odoo.install(db, "-i", "standin_bad_depends", addons=(BROKEN,))
    assert result.returncode == 255
    critical = next(r for r in records(result.stderr) if r.level == "CRITICAL")
    tail = [line for line in critical.more if line.strip()][-2:]
    assert tail == ["odoo.exceptions.UserError: You try to install module 'standin_bad_depends' that depends on "
                    "module 'standin_no_such_dependency'.", "But the latter module is not available in your system."]


def test_tests_without_tags_are_every_installed_modules(odoo, dbs, tmp_path):
    """The capture of a fresh install with --test-enable and no --test-tags
    shows Odoo's own modules tested with the project's; the stand-in's
    modules have no tests, so a second project module stands for them."""
    cut = captured("install-fresh-all-tests.cut.log")
    assert {r.logger.split(".")[2] for r in records(cut) if r.logger.startswith("odoo.addons.")
            and ".tests." in r.logger} >= {"base", "fixture_notes"}
    if not odoo.standin:
        return  # a real Odoo runs 1,162 tests here for two minutes: the capture is that run
    addons = tmp_path / "addons"
    shutil.copytree(ADDONS, addons)
    extra = addons / "standin_extra"
    (extra / "tests").mkdir(parents=True)
    (extra / "__init__.py").write_text("")
    (extra / "__manifest__.py").write_text(repr({"name": "Extra", "depends": ["base"], "license": "LGPL-3"}))
    (extra / "tests" / "__init__.py").write_text("from . import test_extra\n")
    (extra / "tests" / "test_extra.py").write_text(
        "from odoo.tests.common import TransactionCase\n\n\nclass TestExtra(TransactionCase):\n"
        "    def test_nothing(self):\n        pass\n")
    db = dbs.name(odoo, "alltests")
    result = odoo.install(db, "-i", "standin_notes,standin_extra", "--test-enable", "--http-port", str(free_port()),
                          addons=(addons,))
    loggers = {r.logger for r in records(result.stderr)
               if r.logger.startswith("odoo.addons.") and ".tests." in r.logger}
    assert loggers == {"odoo.addons.standin_notes.tests.test_note", "odoo.addons.standin_extra.tests.test_extra"}
    assert result.returncode == 1


# --- serving ------------------------------------------------------------------------------------------------


def test_the_server_answers_health_and_login_and_stops_on_sigterm(odoo, notes, dbs, tmp_path):
    db = dbs.clone(odoo, notes.db, "serve")
    port = free_port()
    log = tmp_path / "server.log"
    with log.open("w") as err:
        proc = subprocess.Popen(odoo.argv("-d", db, "--addons-path", odoo.addons_path(ADDONS), "--data-dir",
                                          str(odoo.data_dir), "--db-filter", f"^{db}$", "--no-database-list",
                                          "--http-port", str(port), "--gevent-port", str(free_port()),
                                          "--max-cron-threads=0", "--proxy-mode", "--http-interface", "127.0.0.1"),
                                env=odoo.env, stdout=subprocess.DEVNULL, stderr=err)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while "Modules loaded." not in log.read_text():
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        health = httpx.get(f"{base}/web/health")
        assert (health.status_code, health.text) == (200, '{"status": "pass"}')
        assert health.headers["content-type"] == "application/json"
        assert health.headers["cache-control"] == "no-store"
        with_db = httpx.get(f"{base}/web/health", params={"db_server_status": "1"})
        if odoo.major < 18:
            assert (with_db.status_code, with_db.json()) == (200, {"status": "pass"})
        login = httpx.get(f"{base}/web/login")
        assert login.status_code == 200 and login.headers["content-type"].startswith("text/html")
        assert "<form" in login.text and 'name="password"' in login.text
    finally:
        proc.send_signal(signal.SIGTERM)
        returncode = proc.wait(timeout=60)
    assert returncode == 0
    text = log.read_text()
    lines = records(text)
    assert next(r for r in lines if r.logger == "odoo.service.server").text == \
        f"HTTP service (werkzeug) running on {_server_name('127.0.0.1')}:{port}"
    requests = [r for r in lines if r.logger == "werkzeug"]
    assert len(requests) == 3 and all(r.db == db for r in requests)
    werkzeug = re.compile(r'127\.0\.0\.1 - - \[\d\d/\w{3}/\d{4} \d\d:\d\d:\d\d\] "GET (\S+) HTTP/1\.1" 200 - '
                          r'\d+ \d+\.\d{3} \d+\.\d{3}')
    assert [werkzeug.fullmatch(r.text)[1] for r in requests] == [
        "/web/health", "/web/health?db_server_status=1", "/web/login"]
    if odoo.major < 18:
        [warning] = [r for r in lines if r.level == "WARNING"]
        assert (warning.logger, warning.text) == (
            "odoo.http", "<function odoo.addons.web.controllers.home.health> called ignoring args "
                         "{'db_server_status'}")
    assert [r.text for r in lines[-3:-1]] == ["Initiating shutdown",
                                             "Hit CTRL-C again or send a second signal to force the shutdown."]
    ours, capture = shape(text, "standin_notes"), shape(captured("server.log"), "fixture_notes")
    assert ours[:6] == capture[:6]  # HTTP service running, the modules loaded, "Modules loaded."
    assert ours[-3:] == capture[-3:]  # the shutdown


def _server_name(host: str) -> str:
    return socket.getfqdn(host)


def test_the_capture_of_health_ignores_db_server_status():
    text = (CAPTURED_CLI / "web-health.txt").read_text()
    assert text.count('{"status": "pass"}') == 2 and "db_server_status=1" in text


# --- neutralize ---------------------------------------------------------------------------------------------


def test_neutralize(odoo, notes, dbs):
    db = dbs.clone(odoo, notes.db, "neutral")
    addons = ["--addons-path", odoo.addons_path(ADDONS)]
    printed = odoo.run("neutralize", "-d", db, "--stdout", *addons)
    assert printed.returncode == 0 and printed.stderr == ""
    lines = printed.stdout.splitlines()
    assert lines[0] == "BEGIN;" and lines[-1] == "COMMIT;" and "UPDATE ir_cron" in printed.stdout
    assert dbs.rows(db, "select count(*) from ir_cron where not active") == [(0,)]  # printed, not applied

    applied = odoo.run("neutralize", "-d", db, *addons)
    assert applied.returncode == 0 and applied.stdout == ""
    assert [(r.level, r.db, r.logger, r.text) for r in records(applied.stderr)] == [
        ("INFO", "?", "odoo.cli.neutralize", f"Starting {db} database neutralization"),
        ("INFO", "?", "odoo.modules.neutralize", "Neutralization finished")]
    assert [(r.level, r.logger) for r in records(applied.stderr)] == [
        (r.level, r.logger) for r in records((CAPTURED_CLI / "neutralize.log").read_text())]
    active = dbs.rows(db, "select c.cron_name from ir_cron c where c.active")
    assert active == [("Base: Auto-vacuum internal data",)]
    assert dbs.rows(db, "select smtp_host, smtp_port from ir_mail_server where active") == [("invalid", 1025)]
    assert dbs.rows(db, "select value from ir_config_parameter where key = 'database.is_neutralized'") == [
        ("true",)]

    nameless = odoo.run("neutralize")
    assert nameless.returncode == 1
    assert messages(nameless.stderr) == ['Neutralize command needs a database name. Use "-d" argument']
    gone = odoo.run("neutralize", "-d", dbs.name(odoo, "gone"))
    assert gone.returncode == 1
    assert records(gone.stderr)[-1].text == (
        "An error occurred during the neutralization. THE DATABASE IS NOT NEUTRALIZED!")


# --- the stand-in itself ------------------------------------------------------------------------------------


def test_the_standin_is_labelled_and_src_does_not_know_it(tmp_path):
    assert "TEST DOUBLE" in (STANDIN / "odoo-bin").read_text()
    assert "**This is not Odoo.**" in (STANDIN / "README.md").read_text()
    assert os.access(STANDIN / "odoo-bin", os.X_OK)
    assert (STANDIN / "requirements.txt").read_text() == "psycopg2==2.9.10\n"
    release = (standin_tree(tmp_path / "tree") / "odoo" / "release.py").read_text()
    assert "version_info = (17, 0, 0, 'final', 0, '')" in release
    for path in (HERE.parent / "src").rglob("*"):
        if path.is_file() and path.suffix in (".py", ".sql", ".html", ".toml", ".md", ".js"):
            assert not re.search(r"\bstandin\b|tests/standin", path.read_text(errors="replace").lower()), path


def test_the_standin_modules_depend_as_the_real_ones(tmp_path):
    tree = standin_tree(tmp_path / "tree")
    depends = {}
    for manifest in [*tree.glob("odoo/addons/*/__manifest__.py"), *tree.glob("addons/*/__manifest__.py")]:
        depends[manifest.parent.name] = ast.literal_eval(manifest.read_text()).get("depends", [])
    assert depends == {"base": [], "web": ["base"], "bus": ["base", "web"], "base_setup": ["base", "web"],
                       "web_tour": ["web"], "mail": ["base", "base_setup", "bus", "web_tour"]}


def standin_copy(tmp_path: Path, version: tuple) -> Path:
    return standin_tree(tmp_path / f"odoo-{version[0]}", f"{version[0]}.{version[1]}")


@pytest.mark.parametrize("series", ["16.0", "18.0", "19.0"])
def test_a_standin_copy_pretends_to_be_another_series(series, standin_python, pg, dbs, tmp_path):
    major = int(series.split(".")[0])
    tree = standin_copy(tmp_path, (major, 0, 0, "final", 0, ""))
    odoo = Odoo(f"standin{major}", series, tree, standin_python, pg, tmp_path / "data", True)
    assert odoo.run("--version").stdout == f"Odoo Server {series}\n"
    db = dbs.name(odoo, "series")
    demo_flag = ["--with-demo"] if major >= 19 else []
    result = odoo.install(db, "-i", "base", *demo_flag)
    assert result.returncode == 0, result.stderr
    assert messages(result.stderr, "odoo")[0] == f"Odoo version {series}"
    assert dbs.rows(db, "select latest_version, demo from ir_module_module where name = 'base'") == [
        (f"{series}.1.3", True)]
    assert (odoo.data_dir / "addons" / series).is_dir()
    with_demo = odoo.run("--with-demo", "--help")
    assert (with_demo.returncode == 0) == (major >= 19)
    longpolling = odoo.run("--longpolling-port", "8072", "--help")
    assert (longpolling.returncode == 2) == (major >= 19)
    if major >= 19:
        check_19_0(odoo, dbs)


def check_19_0(odoo: Odoo, dbs: Databases) -> None:
    """What 19.0 changed, as its --help and config.py say (no real 19.0 ran here)."""
    assert odoo.run("--help").stdout.startswith("Usage: odoo-bin [--addons-path=PATH,...] server [options]\n")
    assert odoo.run("--reinit", "base", "--skip-auto-install", "--db_app_name", "x", "--help").returncode == 0
    plain = dbs.name(odoo, "plain")
    result = odoo.install(plain, "-i", "base")
    assert result.returncode == 0
    assert dbs.rows(plain, "select demo from ir_module_module where name = 'base'") == [(False,)]
    [warning] = [r for r in records(result.stderr) if r.level == "WARNING"]
    assert (warning.logger, warning.text) == ("odoo.tools.config", "missing --http-interface/http_interface, "
                                              "using 0.0.0.0 by default, will change to 127.0.0.1 in 20.0")
    for flag, warns in (("--without-demo", False), ("--without-demo=all", True)):
        db = dbs.name(odoo, "without")
        result = odoo.install(db, "-i", "base", flag, "--http-interface", "127.0.0.1")
        assert result.returncode == 0
        assert dbs.rows(db, "select demo from ir_module_module where name = 'base'") == [(False,)]
        expected = ["option --without-demo: since 19.0, invalid boolean value: 'all', assume True"] if warns else []
        assert [r.text for r in records(result.stderr) if r.level == "WARNING"] == expected
    tests = odoo.run("-d", plain, "--test-enable", "--http-port", str(free_port()), "--http-interface", "127.0.0.1",
                     "--data-dir", str(odoo.data_dir), timeout=60)  # stops by itself: it implies --stop-after-init
    assert tests.returncode == 0 and "Initiating shutdown" in messages(tests.stderr)
    skipped = odoo.run("-d", plain, "--addons-path", str(odoo.tree / "nowhere"), "--stop-after-init",
                       "--data-dir", str(odoo.data_dir), "--http-interface", "127.0.0.1")
    assert skipped.returncode == 0
    assert f"option --addons-path, no such directory '{odoo.tree / 'nowhere'}', skipped" in messages(skipped.stderr)


def test_from_18_0_health_asks_postgresql_for_db_server_status(standin_python, pg, tmp_path):
    tree = standin_copy(tmp_path, (18, 0, 0, "final", 0, ""))
    odoo = Odoo("standin18", "18.0", tree, standin_python, pg, tmp_path / "data", True)
    port = free_port()
    proc = subprocess.Popen(odoo.argv("--http-port", str(port), "--http-interface", "127.0.0.1", "--data-dir",
                                      str(odoo.data_dir)), env=odoo.env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/web/health", params={"db_server_status": "1"})
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline
                time.sleep(0.1)
        assert (answer.status_code, answer.json()) == (200, {"status": "pass", "db_server_status": True})
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0


# --- more of what a build meets -----------------------------------------------------------------------------


def test_the_db_options_override_libpq_s_environment(odoo, fresh, dbs, pg):
    db = dbs.clone(odoo, fresh.db, "dbopts")
    env = {"PGHOST": "", "PGPORT": "", "PGUSER": "", "PGPASSWORD": ""}
    result = odoo.install(db, "--db_host", pg["PGHOST"], "--db_port", pg["PGPORT"], "--db_user", ROLE,
                          "--db_password", ROLE_PASSWORD, env=env)
    assert result.returncode == 0, result.stderr
    assert f"database: {ROLE}@{pg['PGHOST']}:{pg['PGPORT']}" in messages(result.stderr)
    assert "Modules loaded." in messages(result.stderr)


def test_log_level_log_handler_and_logfile(odoo, fresh, dbs, tmp_path):
    db = dbs.clone(odoo, fresh.db, "quiet")
    quiet = odoo.install(db, "--log-level=warn")
    assert quiet.returncode == 0 and records(quiet.stderr) == []
    handled = odoo.install(db, "--log-handler", "odoo.modules.loading:WARNING")
    assert not any(r.logger == "odoo.modules.loading" for r in records(handled.stderr))
    assert any(r.logger == "odoo.modules.registry" for r in records(handled.stderr))
    logfile = tmp_path / "logs" / "odoo.log"
    to_file = odoo.install(db, "--logfile", str(logfile))
    assert records(to_file.stderr) == [] and "Modules loaded." in messages(logfile.read_text())


def test_installing_an_installed_module_loads_and_tests_it_again(odoo, notes, dbs):
    db = dbs.clone(odoo, notes.db, "again")
    result = odoo.install(db, "-i", "standin_notes", "--http-port", str(free_port()),
                          "--test-tags", "/standin_notes:TestNote.test_words_counted")
    assert result.returncode == 0, result.stderr
    text = messages(result.stderr)
    assert not any("button_install" in m for m in text)
    assert any(re.fullmatch(r"Loading module standin_notes \(2/\d+\)", m) for m in text)
    assert "Starting TestNote.test_words_counted ..." in text


def test_a_module_gone_from_the_addons_path(odoo, notes, dbs):
    db = dbs.clone(odoo, notes.db, "gone")
    result = odoo.install(db, addons=(BROKEN,))  # an addons path without standin_notes
    assert result.returncode == 0
    problems = [(r.level, r.logger, r.text) for r in records(result.stderr) if r.level != "INFO"]
    assert problems == [
        ("WARNING", "odoo.modules.graph", "module standin_notes: not installable, skipped"),
        ("ERROR", "odoo.modules.loading",
         "Some modules are not loaded, some dependencies or manifest may be missing: ['standin_notes']")]


def test_a_port_in_use_kills_the_http_thread_only(odoo, notes, dbs):
    db = dbs.clone(odoo, notes.db, "busyport")
    with socket.socket() as busy:
        busy.bind(("0.0.0.0", 0))
        busy.listen()
        result = odoo.install(db, "--http-port", str(busy.getsockname()[1]), "--test-tags", "/standin_no_tests")
    assert result.returncode == 0, result.stderr
    assert "Exception in thread odoo.service.httpd:\nTraceback (most recent call last):\n" in result.stderr
    assert "\nOSError: [Errno 98] Address already in use\n" in result.stderr
    assert "Modules loaded." in messages(result.stderr)
    [summary] = [r for r in records(result.stderr) if r.logger == "odoo.tests.result"]
    assert (summary.level, summary.text) == ("WARNING", f"0 failed, 0 error(s) of 0 tests when loading database '{db}'")


def test_a_new_module_follows_the_database_s_demo_data(odoo, fresh, dbs):
    """Up to 18.0 --without-demo matters to a new database only: on one with
    demo data, a module installed later gets its demo data all the same."""
    if odoo.major >= 19:
        return  # 19.0 reads demo data from --with-demo; not covered by a real tree here
    db = dbs.clone(odoo, fresh.db, "demodb")
    result = odoo.install(db, "-i", "standin_notes", "--without-demo=all")
    assert result.returncode == 0, result.stderr
    assert "Module standin_notes: loading demo" in messages(result.stderr)
    assert dbs.rows(db, "select demo from ir_module_module where name = 'standin_notes'") == [(True,)]


RULES = '''from odoo.exceptions import UserError
from odoo.tests.common import TransactionCase, tagged


class TestRulesBase(TransactionCase):
    def test_inherited(self):
        self.assertTrue(True)


class TestRules(TestRulesBase):
    def test_bare_fail(self):
        self.fail()

    def test_bare_raise(self):
        raise KeyError

    def test_odoo_error(self):
        raise UserError("no such thing")

    def test_nested_raise_passes(self):
        with self.assertRaises(ZeroDivisionError):
            raise ZeroDivisionError("expected")


@tagged("post_install", "-at_install")
class TestRulesAfterInstall(TransactionCase):
    def test_post_fails(self):
        self.fail("after install")
'''


def test_the_outcome_rule_reads_as_odoo_runs(odoo, fresh, dbs, tmp_path):
    """README.md's rule on a module written for it: inherited tests, bare
    fail and raise, Odoo's own exception, a nested raise that passes, and a
    post-install failure after "Modules loaded."."""
    module = tmp_path / "addons" / "standin_rules"
    (module / "tests").mkdir(parents=True)
    (module / "__init__.py").write_text("")
    (module / "__manifest__.py").write_text(repr({"name": "Rules", "depends": ["base"], "license": "LGPL-3"}))
    (module / "tests" / "__init__.py").write_text("from . import test_rules\n")
    (module / "tests" / "test_rules.py").write_text(RULES)
    db = dbs.clone(odoo, fresh.db, "rules")
    port = str(free_port())

    post = odoo.install(db, "-i", "standin_rules", "--http-port", port, "--test-tags",
                        "/standin_rules:TestRulesAfterInstall", addons=(module.parent,))
    assert post.returncode == 1
    text = messages(post.stderr)
    assert text.index("Modules loaded.") < text.index("Starting post tests")
    assert "FAIL: TestRulesAfterInstall.test_post_fails" in text
    assert f"1 failed, 0 error(s) of 1 tests when loading database '{db}'" in text

    rules = odoo.install(db, "-u", "standin_rules", "--http-port", port, "--test-tags", "/standin_rules",
                         addons=(module.parent,))
    assert rules.returncode == 1
    log = records(rules.stderr)
    started = [r.text for r in log if r.text.startswith("Starting Test")]
    assert started == [f"Starting {name} ..." for name in (
        "TestRules.test_bare_fail", "TestRules.test_bare_raise", "TestRules.test_inherited",
        "TestRules.test_nested_raise_passes", "TestRules.test_odoo_error", "TestRulesBase.test_inherited",
        "TestRulesAfterInstall.test_post_fails")]
    outcomes = {r.text: last_traceback_line(r) for r in log if r.text.startswith(("FAIL: ", "ERROR: "))}
    assert outcomes == {"FAIL: TestRules.test_bare_fail": "AssertionError: None",
                        "ERROR: TestRules.test_bare_raise": "KeyError",
                        "ERROR: TestRules.test_odoo_error": "odoo.exceptions.UserError: no such thing",
                        "FAIL: TestRulesAfterInstall.test_post_fails": "AssertionError: after install"}
    assert "Module standin_rules: 1 failures, 2 errors of 6 tests" in messages(rules.stderr)
    assert f"2 failed, 2 error(s) of 7 tests when loading database '{db}'" in messages(rules.stderr)


def test_update_all_upgrades_base_and_every_installed_module(odoo, notes, dbs):
    db = dbs.clone(odoo, notes.db, "all")
    result = odoo.install(db, "-u", "all")
    assert result.returncode == 0, result.stderr
    assert not [r for r in records(result.stderr) if r.level != "INFO"]
    text = messages(result.stderr)
    assert "ALLOW access to module.button_upgrade on ['Base'] to user __system__ #1 via n/a" in text
    installed = {name for (name,) in dbs.rows(db, "select name from ir_module_module where state = 'installed'")}
    loaded = {m.split()[2] for m in text if m.startswith("Loading module ")}
    assert loaded == installed
