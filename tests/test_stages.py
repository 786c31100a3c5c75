"""Production and staging end to end, with a real runner on the stand-in
(and real Odoo in the real-Odoo lane): production's first build without
demo data or tests; updates in place of the modules whose version rose,
behind the maintenance page; each failure point reverted, code and
database; staging builds on a neutralized copy of production's snapshot;
its mail caught, attributed, and never sent to production's real server."""

from __future__ import annotations

import json
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import httpx
import psycopg
from aiosmtpd.controller import Controller
from psycopg.conninfo import make_conninfo
from psycopg.rows import dict_row

from conftest import free_port, owner_conn
from helpers import SERVICE, call, git, wait_until
from odoo_world import LANE, odoo_timeout
from odooops.managers.branches import Branches
from odooops.managers.environments import Environments
from odooops.managers.updates import Updates
from odooops.odoo import envdb
from test_environments import commit_on, fetch_run, serve_logs, through
from test_odoo_build import build, finished, log_of, module, odoo_cache, odoo_project, odoo_runner, odoo_source, text

__all__ = ["odoo_cache", "odoo_project", "odoo_runner", "odoo_source"]  # fixtures, used by name

MANIFEST = """{{
    "name": "{name}",
    "version": "{version}",
    "license": "LGPL-3",
    "depends": {depends},
    "data": {data},
    "installable": True,
}}
"""


def addon(name: str, series: str, version: str = "1.0.0", depends: tuple[str, ...] = ("base",),
          data: dict[str, str] | None = None) -> dict[str, str]:
    """A module at a manifest version, with extra data files (listed in the manifest)."""
    files = module(name, depends=depends, version=series)
    data = data or {}
    listed = ["security/ir.model.access.csv", *data]
    files[f"{name}/__manifest__.py"] = MANIFEST.format(name=name, version=f"{series}.{version}",
                                                      depends=list(depends), data=json.dumps(listed))
    files.update({f"{name}/{path}": content for path, content in data.items()})
    return files


def odoo_rows(settings, database: str, query: str, params: tuple = ()) -> list[dict]:
    server = envdb.start(settings)
    with psycopg.connect(make_conninfo(server.conninfo.reveal(), dbname=database), row_factory=dict_row) as conn:
        return conn.execute(query, params).fetchall()  # type: ignore[arg-type]


def versions(settings, database: str) -> dict[str, str]:
    return {r["name"]: r["latest_version"] for r in odoo_rows(
        settings, database, "select name, latest_version from ir_module_module where state = 'installed'")}


def environment_of(settings, branch: str) -> dict:
    with owner_conn(settings.database_url.reveal()) as conn:
        return conn.execute("select e.* from ops.environments e join ops.branches b on b.id = e.branch_id "
                            "where b.name = %s", (branch,)).fetchone()


def production_serving(settings, build_id: int, timeout: float = 120) -> dict:
    def ready():
        e = environment_of(settings, "main")
        if not (e and e["status"] == "running" and e["address"] and e["serve_run_id"]):
            return None
        return e if fetch_run(settings, e["serve_run_id"])["params"]["build_id"] == build_id else None
    try:
        return wait_until(ready, timeout, f"production to serve build {build_id}")
    except AssertionError:
        raise AssertionError(f"{environment_of(settings, 'main')}\n{serve_logs(settings)}") from None


def rows(settings, query: str, params: tuple = ()) -> list[dict]:
    with owner_conn(settings.database_url.reveal()) as conn:
        return conn.execute(query, params).fetchall()


def first_production(settings, odoo_project, odoo_runner, odoo_source, files: dict[str, str], **project_settings):
    odoo_project(files, **project_settings)
    odoo_runner()
    run = finished(settings, build(settings, "main"), odoo_timeout(odoo_source))
    assert run["status"] == "succeeded", text(log_of(settings, run["id"]))
    return run, production_serving(settings, run["id"], odoo_timeout(odoo_source))


@LANE
def test_production_first_build_has_no_demo_data_no_tests_and_a_snapshot(settings, odoo_project, odoo_runner,
                                                                          odoo_source, serve_api):
    run, env = first_production(settings, odoo_project, odoo_runner, odoo_source,
                                addon("acme_notes", odoo_source.version))
    # its custom domain reaches it through the router
    call(settings, lambda db: Environments(db, SERVICE).add_domain(env["branch_id"], "shop.example.com"))
    answer = through(serve_api(), "/web/login", host="shop.example.com")
    assert answer.status_code == 200 and "login" in answer.text.lower()
    log = text(log_of(settings, run["id"]))
    assert "production's first build: a new database without demo data" in log
    assert "--test-enable" not in log and "--without-demo=all" in log, log
    assert not any(r["demo"] for r in odoo_rows(settings, env["database"],
                                                "select demo from ir_module_module where state = 'installed'"))
    assert versions(settings, env["database"])["acme_notes"] == f"{odoo_source.version}.1.0.0"
    snapshot = rows(settings, "select * from ops.database_copies where kind = 'snapshot'")
    assert len(snapshot) == 1 and snapshot[0]["build_id"] == run["id"] and snapshot[0]["size_bytes"] > 0
    assert httpx.get(f"http://{env['address']}/web/health", timeout=10).status_code == 200


def test_refresh_staging_data_takes_a_new_snapshot_with_a_short_pause(settings, odoo_project, odoo_runner,
                                                                      odoo_source):
    first, env = first_production(settings, odoo_project, odoo_runner, odoo_source,
                                  addon("acme_notes", odoo_source.version))
    run = call(settings, lambda db: Updates(db, SERVICE).refresh_snapshot(env["project_id"]))
    assert run["kind"] == "snapshot"
    done = finished(settings, run["id"], odoo_timeout(odoo_source))
    log = text(log_of(settings, run["id"]))
    assert done["status"] == "succeeded" and "production paused" in log, log
    snapshots = rows(settings, "select run_id, build_id from ops.database_copies where kind = 'snapshot' order by id")
    assert [s["run_id"] for s in snapshots] == [first["id"], run["id"]] and snapshots[-1]["build_id"] == first["id"]
    back = production_serving(settings, first["id"])
    assert httpx.get(f"http://{back['address']}/web/health", timeout=10).status_code == 200


@LANE
def test_an_update_updates_the_modules_whose_version_rose_behind_the_maintenance_page(
        settings, odoo_project, odoo_runner, odoo_source, serve_api, tmp_path):
    v = odoo_source.version
    first, env = first_production(settings, odoo_project, odoo_runner, odoo_source,
                                  {**addon("acme_notes", v), **addon("acme_board", v, depends=("acme_notes",))})
    base = serve_api()
    repo = tmp_path / "repos" / "shop"
    bumped = addon("acme_notes", v, "1.1.0")["acme_notes/__manifest__.py"]
    commit_on(repo, "main", {"acme_notes/__manifest__.py": bumped, "acme_board/README.md": "no version bump\n"})
    seen: list[tuple[int, str | None]] = []
    with watching(base, "main-shop-acme.localhost", seen):
        second = finished(settings, build(settings, "main"), odoo_timeout(odoo_source))
        log = text(log_of(settings, second["id"]))
        assert second["status"] == "succeeded", log
        production_serving(settings, second["id"])
    assert "manifest version rose: acme_notes" in log and "--update acme_notes" in log, log
    now = versions(settings, env["database"])
    assert now["acme_notes"] == f"{v}.1.1.0" and now["acme_board"] == f"{v}.1.0.0"
    assert environment_of(settings, "main")["database"] == env["database"]  # the same database, updated
    update = rows(settings, "select * from ops.updates")[0]
    assert (update["status"], update["updated_modules"], update["previous_build_id"]) == \
           ("succeeded", ["acme_notes"], first["id"])
    copy = rows(settings, "select * from ops.database_copies where kind = 'update'")[0]
    assert copy["build_id"] == first["id"] and (copy["expires_at"] - copy["created_at"]).days == 7
    assert (503, "5") in seen, seen  # the maintenance page, with Retry-After
    assert (200, None) in seen, seen


def test_the_checksum_rule_updates_the_modules_whose_files_changed(settings, odoo_project, odoo_runner,
                                                                   odoo_source, tmp_path):
    v = odoo_source.version
    first_production(settings, odoo_project, odoo_runner, odoo_source,
                     {**addon("acme_notes", v), **addon("acme_board", v, depends=("acme_notes",))},
                     update_modules="checksum")
    commit_on(tmp_path / "repos" / "shop", "main", {"acme_board/README.md": "changed, no version bump\n"})
    second = finished(settings, build(settings, "main"), odoo_timeout(odoo_source))
    log = text(log_of(settings, second["id"]))
    assert second["status"] == "succeeded", log
    assert "files changed: acme_board" in log and "--update acme_board" in log, log
    # past its days, the pre-update copy is dropped by its host's runner (at its start, then every 5 min)
    with owner_conn(settings.database_url.reveal()) as conn:
        conn.execute("update ops.database_copies set expires_at = now() - interval '1 minute' where kind = 'update'")
    odoo_runner()
    copy = wait_until(lambda: (c := rows(settings, "select * from ops.database_copies where kind = 'update'")[0])
                      ["dropped_at"] and c, 60, "the expired copy to be dropped")
    server = envdb.start(settings)
    with psycopg.connect(server.conninfo.reveal()) as conn:
        assert conn.execute("select 1 from pg_database where datname = %s", (copy["database"],)).fetchone() is None
    snapshots = rows(settings, "select dropped_at from ops.database_copies where kind = 'snapshot' order by id")
    assert snapshots[0]["dropped_at"] is not None and snapshots[-1]["dropped_at"] is None  # the newest stays


@LANE
def test_a_failed_update_reverts_code_and_database(settings, odoo_project, odoo_runner, odoo_source, tmp_path):
    v = odoo_source.version
    first, env = first_production(settings, odoo_project, odoo_runner, odoo_source,
                                  {**addon("acme_notes", v), **addon("acme_board", v, depends=("acme_notes",))})
    # acme_notes updates fine, then acme_board's update fails: its data file is missing
    broken = addon("acme_board", v, "1.1.0", depends=("acme_notes",), data={"data/board.xml": "<odoo/>\n"})
    commit_on(tmp_path / "repos" / "shop", "main", {
        "acme_notes/__manifest__.py": addon("acme_notes", v, "1.1.0")["acme_notes/__manifest__.py"],
        "acme_board/__manifest__.py": broken["acme_board/__manifest__.py"]})
    second = finished(settings, build(settings, "main"), odoo_timeout(odoo_source))
    log = text(log_of(settings, second["id"]))
    assert second["status"] == "failed" and "reverted to build" in (second["error"] or ""), log
    assert "the database is the pre-update copy" in log and f"reverted: build {first['id']} serves again" in log
    back = production_serving(settings, first["id"])
    assert back["database"] == env["database"]
    assert versions(settings, env["database"])["acme_notes"] == f"{v}.1.0.0"  # acme_notes' update undone too
    assert httpx.get(f"http://{back['address']}/web/health", timeout=10).status_code == 200
    update = rows(settings, "select * from ops.updates")[0]
    assert (update["status"], update["failed_step"]) == ("reverted", "update")


def test_a_new_server_that_does_not_start_is_reverted_too(settings, odoo_project, odoo_runner, odoo_source,
                                                         tmp_path):
    """The stand-in's STANDIN_SERVER_FAILS (tests/standin/README.md): the
    update succeeds, the new code's server dies at every start."""
    v = odoo_source.version
    first, _ = first_production(settings, odoo_project, odoo_runner, odoo_source, addon("acme_notes", v))
    commit_on(tmp_path / "repos" / "shop", "main", {
        "acme_notes/__manifest__.py": addon("acme_notes", v, "1.1.0")["acme_notes/__manifest__.py"],
        "STANDIN_SERVER_FAILS": "\n"})
    second = finished(settings, build(settings, "main"), odoo_timeout(odoo_source) + 60)
    log = text(log_of(settings, second["id"]))
    assert second["status"] == "failed" and "the new server did not come up healthy" in log, log
    back = production_serving(settings, first["id"])
    assert versions(settings, back["database"])["acme_notes"] == f"{v}.1.0.0"
    assert rows(settings, "select failed_step from ops.updates")[0]["failed_step"] == "health"


MAIL_DATA = """<odoo>
    <record id="real_smtp" model="ir.mail_server">
        <field name="name">Real SMTP</field>
        <field name="smtp_host">127.0.0.1</field>
        <field name="smtp_port">{port}</field>
        <field name="smtp_encryption">none</field>
    </record>
    <record id="count_notes" model="ir.cron">
        <field name="name">Count notes</field>
        <field name="model_id" ref="model_acme_notes"/>
        <field name="state">code</field>
        <field name="code">model.search_count([])</field>
        <field name="interval_number">1</field>
        <field name="interval_type">days</field>
        <field name="active" eval="True"/>
    </record>
</odoo>
"""


@contextmanager
def real_smtp():
    """"The real one": an SMTP server production's database is configured with."""
    received: list[bytes] = []

    class Keep:
        async def handle_DATA(self, server, session, envelope):
            received.append(envelope.content)
            return "250 OK"

    controller = Controller(Keep(), hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield controller.port, received
    finally:
        controller.stop()


@contextmanager
def watching(base: str, host: str, seen: list[tuple[int, str | None]]):
    """Ask the router for `host` again and again meanwhile, keeping each answer's status and Retry-After."""
    done = threading.Event()

    def ask():
        while not done.is_set():
            try:
                answer = through(base, "/web/health", host=host)
                seen.append((answer.status_code, answer.headers.get("retry-after")))
            except httpx.HTTPError as exc:
                seen.append((0, type(exc).__name__))
            time.sleep(0.1)

    worker = threading.Thread(target=ask, daemon=True)
    worker.start()
    try:
        yield
    finally:
        done.set()
        worker.join(timeout=40)


def send_from(env: dict, odoo_source, to: str) -> dict:
    """One mail sent by the environment's Odoo: mail.mail over JSON-RPC on
    real Odoo, the stand-in's /standin/send_mail on the stand-in."""
    base = f"http://{env['address']}"
    if not odoo_source.real:
        return httpx.get(f"{base}/standin/send_mail", params={"to": to, "subject": "from staging"}, timeout=30).json()
    with httpx.Client(base_url=base, timeout=60) as client:
        def rpc(path: str, params: dict) -> object:
            answer = client.post(path, json={"jsonrpc": "2.0", "method": "call", "params": params}).json()
            assert "error" not in answer, answer
            return answer.get("result")  # Odoo leaves a null result out
        rpc("/web/session/authenticate", {"db": env["database"], "login": "admin", "password": "admin"})
        values = {"subject": "from staging", "email_to": to, "email_from": "admin@example.com",
                  "body_html": "<p>sent by Odoo</p>"}
        mail_id = rpc("/web/dataset/call_kw", {"model": "mail.mail", "method": "create", "args": [values],
                                               "kwargs": {}})
        rpc("/web/dataset/call_kw", {"model": "mail.mail", "method": "send", "args": [[mail_id]], "kwargs": {}})
        return {"sent": True}


@LANE
def test_staging_builds_on_a_neutralized_copy_of_production_and_its_mail_is_caught(
        settings, odoo_project, odoo_runner, odoo_source, serve_api, tmp_path):
    v = odoo_source.version
    catcher_port = free_port()
    serve_api({"ODOOOPS_MAIL_CATCHER_ADDRESS": f"127.0.0.1:{catcher_port}"})
    with real_smtp() as (real_port, received):
        files = {**addon("acme_notes", v, depends=("mail",), data={"data/mail.xml": MAIL_DATA.format(port=real_port)}),
                 # a module whose neutralize.sql fails: named, and the build goes on
                 **addon("acme_shipping", v, data={}), "acme_shipping/data/neutralize.sql":
                 "UPDATE acme_no_such_table SET active = false;\n"}
        repo = odoo_project(files, neutralization_sql="UPDATE res_partner SET email = 'x@example.com' WHERE id = 1;")
        git(Path(repo), "branch", "staging")
        call(settings, lambda db: Branches(db, SERVICE).add("acme/shop", "staging", "staging", check=False))
        odoo_runner(ODOOOPS_MAIL_CATCHER_ADDRESS=f"127.0.0.1:{catcher_port}")
        prod = finished(settings, build(settings, "main"), odoo_timeout(odoo_source))
        assert prod["status"] == "succeeded", text(log_of(settings, prod["id"]))
        production = production_serving(settings, prod["id"], odoo_timeout(odoo_source))
        staged = finished(settings, build(settings, "staging"), odoo_timeout(odoo_source))
        log = text(log_of(settings, staged["id"]))
        assert staged["status"] == "succeeded", log
        assert "staging copy" in log and "(hard links)" in log and "neutralized and verified" in log, log
        assert "acme_shipping's data/neutralize.sql failed" in log, log
        env = wait_until(lambda: (e := environment_of(settings, "staging")) and e["status"] == "running"
                         and e["address"] and e, odoo_timeout(odoo_source), "the staging environment")
        database = env["database"]
        assert database != production["database"]
        servers = odoo_rows(settings, database, "select name, active, smtp_host from ir_mail_server order by id")
        assert [s["name"] for s in servers if s["active"]] == ["OdooOps mail catcher"], servers
        active_crons = odoo_rows(settings, database, "select c.id from ir_cron c where c.active and c.id not in "
                                 "(select res_id from ir_model_data where model = 'ir.cron' "
                                 "and name = 'autovacuum_job')")
        assert active_crons == []
        flag = odoo_rows(settings, database, "select value from ir_config_parameter "
                                             "where key = 'database.is_neutralized'")
        assert flag and flag[0]["value"].lower() == "true"
        # production is untouched: its real server and its cron still active
        prod_servers = odoo_rows(settings, production["database"],
                                 "select name from ir_mail_server where active order by id")
        assert [s["name"] for s in prod_servers] == ["Real SMTP"]
        # staging's mail reaches the catcher, attributed, and never the real server
        sent = send_from(env, odoo_source, "customer@example.com")
        assert sent.get("sent"), sent
        mails = wait_until(lambda: rows(settings, "select * from ops.mail_events") or None, 30, "a caught mail")
        assert mails[0]["environment_id"] == env["id"] and mails[0]["subject"] == "from staging"
        assert "customer@example.com" in mails[0]["rcpt_to"]
        time.sleep(1)
        assert received == []


def test_production_keeps_its_own_mail_servers(settings, odoo_project, odoo_runner, odoo_source):
    """Production keeps its own mail servers: no catcher account is written there."""
    _, env = first_production(settings, odoo_project, odoo_runner, odoo_source,
                              addon("acme_notes", odoo_source.version))
    names = [r["name"] for r in odoo_rows(settings, env["database"], "select name from ir_mail_server")]
    assert "OdooOps mail catcher" not in names



PORT_25 = """<odoo>
    <record id="port_25" model="ir.mail_server">
        <field name="name">Old relay</field>
        <field name="smtp_host">relay.example.com</field>
        <field name="smtp_port">25</field>
        <field name="smtp_encryption">none</field>
    </record>
</odoo>
"""


def test_a_mail_server_on_port_25_fails_the_build_unless_allowed(settings, odoo_project, odoo_runner, odoo_source,
                                                                 tmp_path):
    odoo_project(addon("acme_notes", odoo_source.version, data={"data/relay.xml": PORT_25}))
    odoo_runner()
    run = finished(settings, build(settings, "main"), odoo_timeout(odoo_source))
    log = text(log_of(settings, run["id"]))
    assert run["status"] == "failed" and "policy smtp_port_25" in log and "Old relay" in log, log
    with owner_conn(settings.database_url.reveal()) as conn:
        conn.execute("update ops.projects set settings = settings || '{\"allow_smtp_port_25\": true}'")
    again = finished(settings, build(settings, "feature"), odoo_timeout(odoo_source))
    assert again["status"] == "succeeded", text(log_of(settings, again["id"]))


def test_a_staging_branch_set_to_previous_updates_its_own_database(settings, odoo_project, odoo_runner, odoo_source,
                                                                   tmp_path):
    v = odoo_source.version
    repo = Path(odoo_project(addon("acme_notes", v)))
    git(repo, "branch", "staging")
    call(settings, lambda db: Branches(db, SERVICE).add("acme/shop", "staging", "staging", check=False))
    call(settings, lambda db: Branches(db, SERVICE).set_settings("acme/shop", "staging", {"staging_data": "previous"}))
    odoo_runner()
    first = finished(settings, build(settings, "staging"), odoo_timeout(odoo_source))
    log = text(log_of(settings, first["id"]))
    assert first["status"] == "succeeded" and "production has no database yet" in log, log
    env = wait_until(lambda: (e := environment_of(settings, "staging")) and e["status"] == "running" and e, 60,
                     "the staging environment")
    commit_on(repo, "staging", {"acme_notes/__manifest__.py": addon("acme_notes", v, "1.1.0")[
        "acme_notes/__manifest__.py"]})
    second = finished(settings, build(settings, "staging"), odoo_timeout(odoo_source))
    log = text(log_of(settings, second["id"]))
    assert second["status"] == "succeeded", log
    assert "an update in place" in log and "neutralized and verified" in log and "--update acme_notes" in log, log
    again = wait_until(lambda: (e := environment_of(settings, "staging")) and e["status"] == "running"
                       and e["build_id"] == second["id"] and e, 60, "the staging environment on the update")
    assert again["database"] == env["database"]
    assert versions(settings, env["database"])["acme_notes"] == f"{v}.1.1.0"
