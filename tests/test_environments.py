"""Running environments end to end: a real runner builds a development
branch with the stand-in odoo-bin (and real Odoo in the real-Odoo lane),
then serves it: supervised, health-checked, swapped without downtime,
put to sleep and woken, restarted after a crash, collected."""

from __future__ import annotations

import httpx
import pytest

from conftest import owner_conn
from helpers import SERVICE, call, commit, wait_until
from odoo_world import LANE, odoo_timeout
from odooops.managers.environments import Environments
from test_odoo_build import build, finished, log_of, module, odoo_cache, odoo_project, odoo_runner, odoo_source, text

__all__ = ["odoo_cache", "odoo_project", "odoo_runner", "odoo_source"]  # fixtures, used by name


def environment(settings) -> dict | None:
    with owner_conn(settings.database_url.reveal()) as conn:
        return conn.execute("select * from ops.environments e join ops.branches b on b.id = e.branch_id "
                            "where b.name = 'feature'").fetchone()


def serving(settings, build_id: int, timeout: float = 120) -> dict:
    def ready():
        e = environment(settings)
        return e if e and e["status"] == "running" and e["build_id"] == build_id and e["address"] else None
    try:
        return wait_until(ready, timeout, f"the environment to serve build {build_id}")
    except AssertionError:
        logs = "\n\n".join(f"serve run {r['id']} ({r['status']}):\n" + text(log_of(settings, r["id"]))
                            for r in serve_runs(settings))
        raise AssertionError(f"no environment serving build {build_id}: {environment(settings)}\n{logs}") from None


def serve_runs(settings) -> list[dict]:
    with owner_conn(settings.database_url.reveal()) as conn:
        return conn.execute("select * from ops.runs where kind = 'serve' order by id").fetchall()


@LANE
def test_a_successful_build_leaves_its_environment_running(settings, odoo_project, odoo_runner, odoo_source):
    odoo_project(module("acme_notes", version=odoo_source.version))
    odoo_runner()
    run = finished(settings, build(settings, "feature"), odoo_timeout(odoo_source))
    assert run["status"] == "succeeded", text(log_of(settings, run["id"]))
    env = serving(settings, run["id"], odoo_timeout(odoo_source))
    assert env["label"] == "feature-shop-acme"
    health = httpx.get(f"http://{env['address']}/web/health", timeout=10)
    assert health.status_code == 200 and health.json()["status"] == "pass"
    serve = serve_runs(settings)[-1]
    assert serve["status"] == "running" and serve["params"]["build_id"] == run["id"]
    log = wait_until(lambda: (t := text(log_of(settings, serve["id"]))) and "Odoo is up at" in t and t, 10,
                     "the serve run's log")
    assert "--db-filter=^acme-shop-feature-1$" in log and "--max-cron-threads=0" in log and "--proxy-mode" in log, log
