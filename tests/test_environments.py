"""Running environments end to end: a real runner builds a development
branch with the stand-in odoo-bin (and real Odoo in the real-Odoo lane),
then serves it: supervised, health-checked, swapped without downtime,
put to sleep and woken, restarted after a crash, collected."""

from __future__ import annotations

import httpx
import pytest

from conftest import owner_conn
from helpers import SERVICE, call, commit, git, wait_until
from odoo_world import LANE, odoo_timeout
from odooops.managers.environments import Environments
from test_odoo_build import build, finished, log_of, module, odoo_cache, odoo_project, odoo_runner, odoo_source, text

__all__ = ["odoo_cache", "odoo_project", "odoo_runner", "odoo_source"]  # fixtures, used by name


def environment(settings) -> dict | None:
    with owner_conn(settings.database_url.reveal()) as conn:
        return conn.execute("select e.*, b.name from ops.environments e join ops.branches b on b.id = e.branch_id "
                            "where b.name = 'feature'").fetchone()


def serving(settings, build_id: int, timeout: float = 120) -> dict:
    def ready():
        e = environment(settings)
        if not (e and e["status"] == "running" and e["address"] and e["serve_run_id"]):
            return None
        return e if fetch_run(settings, e["serve_run_id"])["params"]["build_id"] == build_id else None
    try:
        return wait_until(ready, timeout, f"the environment to serve build {build_id}")
    except AssertionError:
        raise AssertionError(f"no environment serving build {build_id}: {environment(settings)}\n"
                             f"{serve_logs(settings)}") from None


def serve_logs(settings) -> str:
    return "\n\n".join(f"serve run {r['id']} ({r['status']}):\n" + text(log_of(settings, r["id"]))
                       for r in serve_runs(settings))


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


def test_a_new_build_swaps_in_once_healthy_and_a_failed_one_changes_nothing(settings, odoo_project, odoo_runner,
                                                                            odoo_source, tmp_path):
    odoo_project(module("acme_notes", version=odoo_source.version))
    odoo_runner()
    first = finished(settings, build(settings, "feature"), odoo_timeout(odoo_source))
    old = serving(settings, first["id"])
    repo = tmp_path / "repos" / "shop"
    commit_on(repo, "feature", {"acme_notes/README.md": "again\n"})
    second = finished(settings, build(settings, "feature"), odoo_timeout(odoo_source))
    new = serving(settings, second["id"])
    assert new["address"] != old["address"] and new["label"] == old["label"]
    runs = serve_runs(settings)
    first_serve = next(r for r in runs if r["params"]["build_id"] == first["id"])
    wait_until(lambda: fetch_run(settings, first_serve["id"])["status"] == "succeeded", 30, "the old server to stop")
    assert "stopped: a newer build's server is healthy" in text(log_of(settings, first_serve["id"]))
    # a build that fails leaves the environment as it was
    commit_on(repo, "feature", {"acme_notes/__manifest__.py": "{'name': broken"})
    third = finished(settings, build(settings, "feature"), odoo_timeout(odoo_source))
    assert third["status"] == "failed"
    env = environment(settings)
    assert (env["build_id"], env["status"], env["address"]) == (second["id"], "running", new["address"])
    assert httpx.get(f"http://{env['address']}/web/health", timeout=10).status_code == 200


def test_an_idle_environment_sleeps_and_wakes(settings, odoo_project, odoo_runner, odoo_source):
    odoo_project(module("acme_notes", version=odoo_source.version))
    odoo_runner()
    run = finished(settings, build(settings, "feature"), odoo_timeout(odoo_source))
    env = serving(settings, run["id"])
    with owner_conn(settings.database_url.reveal()) as conn:  # as if no request came for an hour
        conn.execute("update ops.environments set last_request_at = now() - interval '1 hour', "
                     "started_at = now() - interval '1 hour'")
    wait_until(lambda: environment(settings)["status"] == "sleeping", 30, "the environment to sleep")
    serve = serve_runs(settings)[-1]
    wait_until(lambda: fetch_run(settings, serve["id"])["status"] == "succeeded", 30, "its server to stop")
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://{env['address']}/web/health", timeout=3)
    call(settings, lambda db: Environments(db, SERVICE).wake(env["id"]))
    woken = serving(settings, run["id"])
    assert httpx.get(f"http://{woken['address']}/web/health", timeout=10).status_code == 200


def commit_on(repo, branch: str, files: dict[str, str]) -> str:
    git(repo, "checkout", "-q", branch)
    try:
        return commit(repo, files, "a change")
    finally:
        git(repo, "checkout", "-q", "main")


def fetch_run(settings, run_id: int) -> dict:
    with owner_conn(settings.database_url.reveal()) as conn:
        return conn.execute("select * from ops.runs where id = %s", (run_id,)).fetchone()


def through(base: str, path: str = "/web/health", host: str = "feature-shop-acme.localhost", **kw) -> httpx.Response:
    port = base.rsplit(":", 1)[1]
    return httpx.get(base + path, headers={"Host": f"{host}:{port}"}, timeout=30, **kw)


@LANE
def test_the_router_serves_an_environment_by_host_and_wakes_it(settings, odoo_project, odoo_runner, odoo_source,
                                                               serve_api):
    odoo_project(module("acme_notes", version=odoo_source.version))
    odoo_runner()
    base = serve_api()
    run = finished(settings, build(settings, "feature"), odoo_timeout(odoo_source))
    serving(settings, run["id"])
    answer = through(base)
    assert answer.status_code == 200 and answer.json()["status"] == "pass"
    assert through(base, host="nothing-here-acme.localhost").status_code == 404
    assert through(base, "/healthz", host="localhost").status_code == 200  # the control plane's own
    with owner_conn(settings.database_url.reveal()) as conn:
        touched = conn.execute("select last_request_at from ops.environments").fetchone()["last_request_at"]
        conn.execute("update ops.environments set last_request_at = now() - interval '1 hour', "
                     "started_at = now() - interval '1 hour'")
    assert touched is not None
    wait_until(lambda: environment(settings)["status"] == "sleeping", 30, "the environment to sleep")
    # the next request wakes it: held, or a page that refreshes itself, until it is up
    first = through(base)
    assert first.status_code in (200, 503), first.text
    woken = wait_until(lambda: (r := through(base)).status_code == 200 and r, 60, "the woken environment")
    assert woken.json()["status"] == "pass"
