"""Odoo builds end to end: a real runner process builds an Odoo addons
repository with no .odooops.toml against the stand-in odoo-bin (and, in the
real-Odoo lane, real Odoo): sources, virtualenv, a database per build on the
environments' server, install and test, Odoo's verdict, each test's result,
the template cache, and what fails clearly before anything runs."""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.types.json import Jsonb

from conftest import APP_PASSWORD, owner_conn
from helpers import SERVICE, call, commit, git, make_repo, recipe, wait_until
from odoo_world import LANE, LANE_17, ODOO_SOURCES, odoo_timeout, source_path
from odooops import demo
from odooops.managers.branches import Branches
from odooops.managers.orgs import Orgs
from odooops.managers.projects import Projects
from odooops.managers.runs import Runs
from odooops.odoo import envdb
from odooops.repos import Host

FAST = {"ODOOOPS_POLL_SECONDS": "0.2", "ODOOOPS_HEARTBEAT_SECONDS": "0.5", "ODOOOPS_LEASE_SECONDS": "10"}

MANIFEST = """{{
    "name": "{name}",
    "version": "{version}.1.0.0",
    "license": "LGPL-3",
    "depends": {depends},
    "data": ["security/ir.model.access.csv"],
    "installable": True,
}}
"""
ACCESS = ("id,name,model_id:id,group_id:id,perm_read,perm_write,perm_create,perm_unlink\n"
          "access_{model_}_user,{model} user,model_{model_},base.group_user,1,1,1,1\n")
MODEL = '''from odoo import api, fields, models


class Note(models.Model):
    _name = "{model}"
    _description = "Note"

    name = fields.Char(required=True)
    body = fields.Text()
    words = fields.Integer(compute="_compute_words", store=True)

    @api.depends("body")
    def _compute_words(self):
        for note in self:
            note.words = len((note.body or "").split())
'''
PASSING = '''from odoo.tests.common import TransactionCase


class TestNote(TransactionCase):
    def test_words_counted(self):
        note = self.env["{model}"].create({{"name": "a", "body": "one two three"}})
        self.assertEqual(note.words, 3)

    def test_empty_note(self):
        self.assertEqual(self.env["{model}"].create({{"name": "b"}}).words, 0)
'''
MIXED = '''from odoo.tests.common import TransactionCase


class TestNote(TransactionCase):
    def test_words_counted(self):
        note = self.env["{model}"].create({{"name": "a", "body": "one two three"}})
        self.assertEqual(note.words, 3)

    def test_deliberately_fails(self):
        self.fail("this test fails on purpose")

    def test_raises(self):
        raise ValueError("boom")

    def test_skipped(self):
        self.skipTest("not on this machine")
'''


def module(name: str, tests: str = PASSING, depends: tuple[str, ...] = ("base",), version: str = "17.0") \
        -> dict[str, str]:
    model = name.replace("_", ".", 1)
    return {
        f"{name}/__init__.py": "from . import models\n",
        f"{name}/__manifest__.py": MANIFEST.format(name=name, depends=list(depends), version=version),
        f"{name}/models/__init__.py": "from . import note\n",
        f"{name}/models/note.py": MODEL.format(model=model),
        f"{name}/security/ir.model.access.csv": ACCESS.format(model=model, model_=model.replace(".", "_")),
        f"{name}/tests/__init__.py": "from . import test_note\n",
        f"{name}/tests/test_note.py": tests.format(model=model),
    }


@pytest.fixture
def odoo_source():
    """The stand-in; tests marked LANE run on each real source too."""
    return ODOO_SOURCES[0]


@pytest.fixture
def odoo_cache(tmp_path_factory):
    """Mirrors, checkouts and virtualenvs shared by every test of the session
    (each host keeps its own as a runner does)."""
    cache = tmp_path_factory.getbasetemp().parent / "odoo-cache"
    cache.mkdir(exist_ok=True)
    return cache


@pytest.fixture
def odoo_project(settings, tmp_path, odoo_source, tmp_path_factory):
    """Make `acme/shop` on an addons repository of `files`, on the Odoo source."""
    sources_dir = tmp_path_factory.getbasetemp().parent / "odoo-sources"
    sources_dir.mkdir(exist_ok=True)
    odoo = source_path(odoo_source, sources_dir)
    roots = (tmp_path, odoo.parent)

    def make(files: dict[str, str] | None, **project_settings) -> str:
        """A repository of `files`, or the demo's when None."""
        where = tmp_path / "repos" / "shop"
        repo = make_repo(where, files, branches=("feature",)) if files is not None else demo.make_repo(where)
        if files is None:
            git(repo, "branch", "feature")

        async def work(db):
            await Orgs(db, SERVICE).create("acme")
            host = Host(roots, settings.data_dir)
            for root in (repo.parent, odoo.parent):
                await Orgs(db, SERVICE).allow_path("acme", str(root), host)
            await Projects(db, SERVICE).create("acme/shop", str(repo), odoo_version=odoo_source.version,
                                               check=False)
            await Branches(db, SERVICE).add("acme/shop", "feature", "development", check=False)
        call(settings, work)
        with owner_conn(settings.database_url.reveal()) as conn:
            conn.execute("update ops.projects set settings = %s",
                         (Jsonb({"odoo_repository": str(odoo), **project_settings}),))
        return str(repo)

    make.roots = roots
    make.odoo = odoo
    return make


@pytest.fixture
def odoo_runner(settings, odoo_project, odoo_cache):
    started: list[subprocess.Popen] = []

    def start(**env: str) -> subprocess.Popen:
        full = {k: v for k, v in os.environ.items() if not k.startswith("ODOOOPS_")}
        full.update({"ODOOOPS_DATA_DIR": str(settings.data_dir), "ODOOOPS_DATABASE_URL": settings.database_url.reveal(),
                     "ODOOOPS_APP_PASSWORD": APP_PASSWORD, "ODOOOPS_CACHE_DIR": str(odoo_cache),
                     "ODOOOPS_REPO_ROOTS": os.pathsep.join(str(r) for r in odoo_project.roots),
                     # the real-Odoo lane's host settings: interpreters (16.0=/usr/bin/python3.10), pins
                     **{k: os.environ[k] for k in ("ODOOOPS_ODOO_PYTHON", "ODOOOPS_ODOO_REQUIREMENT_SUBSTITUTES")
                        if k in os.environ}, **FAST, **env})
        log = (settings.data_dir.parent / "runner.log").open("a")
        proc = subprocess.Popen([sys.executable, "-m", "odooops", "runner", "--concurrency", "2"], env=full,
                                stdout=log, stderr=subprocess.STDOUT)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.terminate()
        proc.wait(timeout=60)
    envdb.stop(settings)


def build(settings, branch: str = "feature") -> int:
    """A build of the branch: by default `feature`, a development branch
    (fresh database, demo data, tests); `main` is production (test_stages.py)."""
    return call(settings, lambda db: Runs(db, SERVICE).trigger_build("acme/shop", branch))["id"]


def finished(settings, run_id: int, timeout: float) -> dict:
    def done():
        with owner_conn(settings.database_url.reveal()) as conn:
            row = conn.execute("select * from ops.runs where id = %s", (run_id,)).fetchone()
        return row if row["status"] in ("succeeded", "failed", "canceled") else None
    return wait_until(done, timeout, f"build {run_id} to finish")


def log_of(settings, run_id: int) -> list[dict]:
    with owner_conn(settings.database_url.reveal()) as conn:
        return conn.execute("select seq, phase, level, message from ops.run_events where run_id = %s order by seq",
                            (run_id,)).fetchall()


def text(events: list[dict]) -> str:
    return "\n".join(e["message"] for e in events)


def phases(events: list[dict]) -> list[str]:
    return [e["phase"] for e in events if e["message"] == f"phase {e['phase']} started"]


def results_of(settings, run_id: int) -> list[dict]:
    return call(settings, lambda db: Runs(db, SERVICE).tests(run_id))


def artifact(settings, run_id: int, name: str) -> bytes:
    with owner_conn(settings.database_url.reveal()) as conn:
        row = conn.execute("select sha256 from ops.artifacts where run_id = %s and name = %s", (run_id, name)).fetchone()
    assert row, f"no artifact {name}"
    return (settings.data_dir / "artifacts" / row["sha256"][:2] / row["sha256"]).read_bytes()


@LANE
def test_an_addons_repository_is_found_installed_and_tested(settings, odoo_project, odoo_runner, odoo_source):
    """No .odooops.toml: the modules are found, installed with demo data on a
    fresh database and tested; the verdict and each test's result are Odoo's."""
    odoo_project({**module("acme_notes", MIXED, version=odoo_source.version), "README.md": "shop\n"})
    odoo_runner()
    run = finished(settings, build(settings), odoo_timeout(odoo_source))
    events = log_of(settings, run["id"])
    log = text(events)
    assert phases(events) == ["checkout", "sources", "install", "database", "odoo"], log
    assert (run["status"], run["result"]) == ("failed", "ko"), log
    assert "modules under test: acme_notes" in log
    outcomes = {t["method"]: t["outcome"] for t in results_of(settings, run["id"])}
    assert outcomes == {"test_words_counted": "pass", "test_deliberately_fails": "fail", "test_raises": "error",
                        "test_skipped": "skip"}, log
    found = results_of(settings, run["id"])
    assert [t["outcome"] for t in found][:2] in (["fail", "error"], ["error", "fail"])  # failures first
    by_seq = {e["seq"]: e["message"] for e in events}
    failed = next(t for t in found if t["outcome"] == "fail")
    assert "FAIL: TestNote.test_deliberately_fails" in by_seq[failed["log_seq"]]
    assert "this test fails on purpose" in failed["traceback"] and failed["fingerprint"]
    assert (failed["module"], failed["test_class"]) == ("acme_notes", "TestNote")
    suites = ET.fromstring(artifact(settings, run["id"], "junit.xml"))
    cases = {c.get("name"): c for c in suites.iter("testcase")}
    assert cases["test_deliberately_fails"].find("failure") is not None
    assert cases["test_raises"].find("error") is not None and cases["test_skipped"].find("skipped") is not None
    assert [s["name"] for s in run["sources"]] == ["odoo"]
    assert run["sources"][0]["commit"] == git(odoo_project.odoo, "rev-parse", "HEAD")
    assert "Odoo's verdict: ko" in log


@LANE
def test_a_second_build_clones_the_template_and_gets_the_same_results(settings, odoo_project, odoo_runner,
                                                                     odoo_source, tmp_path):
    v = odoo_source.version
    odoo_project({**module("acme_notes", version=v), **module("acme_board", depends=("acme_notes",), version=v)})
    odoo_runner()
    first = finished(settings, build(settings), odoo_timeout(odoo_source))
    log = text(log_of(settings, first["id"]))
    assert (first["status"], first["result"]) in (("succeeded", "ok"), ("succeeded", "warn")), log
    assert "template miss" in log
    commit(tmp_path / "repos" / "shop", {"acme_board/tests/test_note.py": PASSING.format(model="acme.board") + "\n# again\n"},
           "only the project's modules change")
    second = finished(settings, build(settings), odoo_timeout(odoo_source))
    log2 = text(log_of(settings, second["id"]))
    assert "template hit" in log2 and second["status"] == "succeeded", log2
    with owner_conn(settings.database_url.reveal()) as conn:
        conn.execute("update ops.projects set settings = settings || '{\"template_cache\": false}'")
    third = finished(settings, build(settings), odoo_timeout(odoo_source))
    assert "template cache off" in text(log_of(settings, third["id"]))
    shape = lambda run: sorted((t["module"], t["test_class"], t["method"], t["outcome"])  # noqa: E731
                               for t in results_of(settings, run["id"]))
    assert shape(first) == shape(second) == shape(third)
    assert len(shape(first)) == 4


def test_a_broken_dependency_graph_fails_before_anything_runs(settings, odoo_project, odoo_runner, tmp_path):
    odoo_project({**module("acme_notes", depends=("acme_missing",)),
                  **module("acme_a", depends=("acme_b",)), **module("acme_b", depends=("acme_a",))})
    odoo_runner()
    run = finished(settings, build(settings), 240)
    events = log_of(settings, run["id"])
    log = text(events)
    assert run["status"] == "failed" and phases(events) == ["checkout", "sources"], log
    assert "acme_notes needs acme_missing, found in no addons path" in log
    assert "acme_a → acme_b → acme_a" in log or "acme_b → acme_a → acme_b" in log


def test_a_source_that_cannot_be_fetched_says_so_and_how_to_use_a_local_copy(settings, odoo_project, odoo_runner):
    odoo_project(module("acme_notes"), odoo_repository="https://127.0.0.1:9/odoo.git")
    odoo_runner()
    run = finished(settings, build(settings), 120)
    log = text(log_of(settings, run["id"]))
    assert run["status"] == "failed", log
    assert "could not fetch the odoo source https://127.0.0.1:9/odoo.git at 17.0" in log
    assert "odooops project set acme/shop odoo_repository=/path/to/a/clone" in log


def test_a_requirement_that_does_not_install_fails_the_install_phase_naming_it(settings, odoo_project, odoo_runner):
    odoo_project({**module("acme_notes"), "requirements.txt": "odooops-no-such-package-anywhere==0.0.1\n"})
    odoo_runner()
    run = finished(settings, build(settings), 300)
    events = log_of(settings, run["id"])
    log = text(events)
    assert run["status"] == "failed" and phases(events)[-1] == "install", log
    assert "the requirement odooops-no-such-package-anywhere==0.0.1 did not install" in log


ISOLATION = '''
import os, sys
import psycopg2
psycopg2.connect("").close()  # its own database, from PGHOST, PGDATABASE, PGUSER, PGPASSWORD
if not os.environ.get("OTHER_DB"):
    sys.exit(0)  # the first build, that makes the other branch's database
refused = 0
for target in ("dbname=" + os.environ["OTHER_DB"], os.environ["CONTROL_PLANE"]):
    try:
        psycopg2.connect(target).close()
        print("connected:", target)
    except psycopg2.OperationalError as exc:
        refused += 1
        print("refused:", target, str(exc).strip().splitlines()[-1])
sys.exit(0 if refused == 2 else 1)
'''


def test_recipe_phases_around_odoo_and_a_branch_role_reaches_only_its_database(settings, odoo_project, odoo_runner):
    """.odooops.toml adds phases before and after the Odoo phases; one runs
    with the build's database credentials, as Odoo does, and can open its
    own database but neither another branch's nor the control plane's."""
    files = {**module("acme_notes"), "isolation.py": ISOLATION, ".odooops.toml": "[odoo]\nmodules = \"own\"\n\n" + recipe(
        {"name": "lint", "command": "echo linting", "when": "before-odoo"},
        {"name": "probe", "command": "python isolation.py"})}
    odoo_project(files)
    odoo_runner()
    feature = finished(settings, build(settings, "feature"), 240)
    assert feature["status"] == "succeeded", text(log_of(settings, feature["id"]))
    other = [e["message"] for e in log_of(settings, feature["id"]) if e["message"].startswith("database ")][0].split()[1]
    cp = conninfo_to_dict(settings.database_url.reveal())  # the control plane's server, as the branch's role
    control = make_conninfo("", host=cp.get("host"), port=cp.get("port"), dbname=cp.get("dbname"))
    with owner_conn(settings.database_url.reveal()) as conn:
        conn.execute("update ops.projects set settings = settings || %s",
                     (Jsonb({"env": {"OTHER_DB": other, "CONTROL_PLANE": control}}),))
    run = finished(settings, build(settings, "main"), 240)  # production's first build: and a snapshot
    events = log_of(settings, run["id"])
    log = text(events)
    assert phases(events) == ["checkout", "sources", "install", "lint", "database", "odoo", "snapshot", "probe"], log
    assert run["status"] == "succeeded", log
    assert log.count("refused:") == 2, log
    assert f"permission denied for database \"{other}\"" in log or "not have CONNECT privilege" in log, log


@LANE_17
def test_the_demo_project_builds_green(settings, odoo_project, odoo_runner, odoo_source):
    """The demo of `up --demo`: two modules, hello_board depending on
    hello_notes (which inherits mail.thread), all their tests passing."""
    odoo_project(None)
    odoo_runner()
    run = finished(settings, build(settings), odoo_timeout(odoo_source))
    log = text(log_of(settings, run["id"]))
    assert (run["status"], run["result"]) in (("succeeded", "ok"), ("succeeded", "warn")), log
    assert "modules under test: hello_board, hello_notes" in log
    found = {(t["module"], t["method"]): t["outcome"] for t in results_of(settings, run["id"])}
    assert found == {("hello_notes", "test_words_counted"): "pass", ("hello_notes", "test_words_follow_the_body"): "pass",
                     ("hello_notes", "test_demo_note"): "pass", ("hello_board", "test_board_counts_its_notes"): "pass"}, log


def test_a_rebuild_uses_the_same_odoo_revision(settings, odoo_project, odoo_runner, tmp_path):
    odoo = tmp_path / "repos" / "odoo"
    git(tmp_path, "clone", "-q", "--branch", "17.0", str(odoo_project.odoo), str(odoo))
    odoo_project(module("acme_notes"), odoo_repository=str(odoo))
    odoo_runner()
    first = finished(settings, build(settings), 240)
    assert first["status"] == "succeeded", text(log_of(settings, first["id"]))
    moved = commit(odoo, {"NEWS.md": "Odoo moved on\n"}, "a later Odoo")
    again = finished(settings, call(settings, lambda db: Runs(db, SERVICE).rebuild(first["id"]))["id"], 240)
    fresh = finished(settings, build(settings), 240)
    assert again["sources"][0]["commit"] == first["sources"][0]["commit"] != moved
    assert fresh["sources"][0]["commit"] == moved


def test_archiving_a_branch_drops_its_databases_and_role(settings, odoo_project, odoo_runner):
    odoo_project(module("acme_notes"))
    odoo_runner()
    run = finished(settings, build(settings, "feature"), 240)
    database = next(e["message"] for e in log_of(settings, run["id"]) if e["message"].startswith("database "))
    name, role = database.split()[1], database.split()[3].rstrip(")")
    call(settings, lambda db: Branches(db, SERVICE).archive("acme/shop", "feature"))
    with owner_conn(settings.database_url.reveal()) as conn:
        cleanup = conn.execute("select id from ops.runs where kind = 'cleanup'").fetchone()
    done = finished(settings, cleanup["id"], 120)
    log = text(log_of(settings, cleanup["id"]))
    assert done["status"] == "succeeded" and f"dropped 1 database(s): {name} and role {role}" in log, log
    server = envdb.start(settings)
    with psycopg.connect(server.conninfo.reveal()) as conn:
        assert conn.execute("select 1 from pg_database where datname = %s", (name,)).fetchone() is None
        assert conn.execute("select 1 from pg_roles where rolname = %s", (role,)).fetchone() is None


def test_extra_addons_repositories_are_fetched_recorded_and_on_the_addons_path(settings, odoo_project, odoo_runner,
                                                                              tmp_path):
    """An OCA-like repository at a ref: its modules are dependencies the
    project's own can use; `all` would also test them, `own` does not."""
    extra = make_repo(tmp_path / "repos" / "oca-tools", module("oca_base_notes"))
    git(extra, "branch", "-m", "17.0")
    odoo_project(module("acme_notes", depends=("oca_base_notes",)),
                 extra_addons=[{"name": "oca-tools", "repository": str(extra), "ref": "17.0"}])
    odoo_runner()
    run = finished(settings, build(settings), 240)
    log = text(log_of(settings, run["id"]))
    assert run["status"] == "succeeded", log
    assert [s["name"] for s in run["sources"]] == ["oca-tools", "odoo"]
    assert run["sources"][0]["commit"] == git(extra, "rev-parse", "HEAD")
    assert "modules under test: acme_notes" in log and "template miss" in log
    assert {t["module"] for t in results_of(settings, run["id"])} == {"acme_notes"}
