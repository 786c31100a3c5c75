"""Running environments end to end: a real runner builds a development
branch with the stand-in odoo-bin (and real Odoo in the real-Odoo lane),
then serves it: supervised, health-checked, swapped without downtime,
put to sleep and woken, restarted after a crash, collected."""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
import websockets

from conftest import owner_conn
from helpers import SERVICE, call, commit, git, wait_until
from odoo_world import LANE, odoo_timeout
from odooops.managers.branches import Branches
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


def through(base: str, path: str = "/web/health", host: str = "feature-shop-acme.localhost",
            headers: dict[str, str] | None = None, **kw) -> httpx.Response:
    port = base.rsplit(":", 1)[1]
    return httpx.get(base + path, headers={**(headers or {}), "Host": f"{host}:{port}"}, timeout=30, **kw)


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


def session_uid(page: str) -> int | None:
    found = re.search(r'"uid":\s*(\d+)', page)
    return int(found[1]) if found else None


@LANE
def test_connect_as_opens_the_environment_as_its_admin_once(settings, odoo_project, odoo_runner, odoo_source,
                                                            serve_api):
    odoo_project(module("acme_notes", version=odoo_source.version))
    odoo_runner()
    base = serve_api()
    run = finished(settings, build(settings, "feature"), odoo_timeout(odoo_source))
    serving(settings, run["id"], odoo_timeout(odoo_source))

    async def token(db):
        envs = Environments(db, SERVICE)
        return await envs.connect_token(await envs.branch_id("acme/shop", "feature"), "admin")
    link = f"/odooops/connect?token={call(settings, token)}"
    assert through(base, "/web").status_code in (302, 303)  # no session: Odoo's own login page first
    opened = through(base, link)
    assert opened.status_code in (302, 303) and opened.headers["location"].endswith("/web"), opened.text
    cookie = opened.cookies["session_id"]
    page = through(base, "/web", cookies={"session_id": cookie})
    assert page.status_code == 200 and session_uid(page.text) == 2, page.text[:2000]  # admin is uid 2
    again = through(base, link)
    assert again.status_code == 403 and "used or has expired" in again.text
    with owner_conn(settings.database_url.reveal()) as conn:
        uses = conn.execute("select login, used_at, created_by from ops.connect_tokens").fetchall()
    assert [u["login"] for u in uses] == ["admin"] and uses[0]["used_at"] is not None
    forged = through(base, "/web", headers={"X-OdooOps-Connect": "v1.YWRtaW4.9999999999.00.00"})
    assert forged.status_code in (302, 303)  # a header of one's own opens nothing


def test_websocket_through_the_router(settings, odoo_project, odoo_runner, odoo_source, serve_api):
    odoo_project(module("acme_notes", version=odoo_source.version))
    odoo_runner()
    base = serve_api()
    serving(settings, finished(settings, build(settings, "feature"), odoo_timeout(odoo_source))["id"])
    port = int(base.rsplit(":", 1)[1])
    host = f"feature-shop-acme.localhost:{port}"

    async def echo():
        async with websockets.connect(f"ws://{host}/websocket", host="127.0.0.1", port=port,
                                      origin=f"http://{host}") as ws:
            await ws.send("hello")
            text = await ws.recv()
            await ws.send(b"\x00\x01")
            return text, await ws.recv()
    assert asyncio.run(echo()) == ("hello", b"\x00\x01")


def test_no_request_is_refused_while_a_new_build_swaps_in(settings, odoo_project, odoo_runner, odoo_source,
                                                          serve_api, tmp_path):
    odoo_project(module("acme_notes", version=odoo_source.version))
    odoo_runner()
    base = serve_api()
    serving(settings, finished(settings, build(settings, "feature"), odoo_timeout(odoo_source))["id"])
    answers: list[int | str] = []
    done = threading.Event()

    def hammer():
        with httpx.Client(timeout=30) as client:
            port = base.rsplit(":", 1)[1]
            while not done.is_set():
                try:
                    answers.append(client.get(f"{base}/web/health",
                                              headers={"Host": f"feature-shop-acme.localhost:{port}"}).status_code)
                except httpx.HTTPError as exc:  # refused, cut off, or no answer in 30 s
                    answers.append(type(exc).__name__)
    worker = threading.Thread(target=hammer)
    worker.start()
    try:
        commit_on(tmp_path / "repos" / "shop", "feature", {"acme_notes/README.md": "v2\n"})
        second = finished(settings, build(settings, "feature"), odoo_timeout(odoo_source))
        serving(settings, second["id"])
        old = next(r for r in serve_runs(settings) if r["params"]["build_id"] != second["id"])
        wait_until(lambda: fetch_run(settings, old["id"])["status"] == "succeeded", 30, "the old server to stop")
        time.sleep(3)  # past the router's cache of the old address
    finally:
        done.set()
        worker.join()
    assert len(answers) > 20 and set(answers) == {200}, Counter(answers)


def test_a_server_that_keeps_dying_is_restarted_then_crashed(settings, odoo_project, odoo_runner, odoo_source):
    odoo_project(module("acme_notes", version=odoo_source.version))
    odoo_runner()
    run = finished(settings, build(settings, "feature"), odoo_timeout(odoo_source))
    for death in range(3):
        env = serving(settings, run["id"])
        with pytest.raises(httpx.HTTPError):  # it dies without answering
            httpx.get(f"http://{env['address']}/standin/exit", timeout=10)
        if death < 2:
            wait_until(lambda: (e := environment(settings))["status"] == "starting" or e["address"] != env["address"],
                       30, "the restart")
    crashed = wait_until(lambda: (e := environment(settings))["status"] == "crashed" and e, 60, "crashed")
    assert crashed["restarts"] == 3 and "died 3 times" in crashed["health_detail"]
    serve = serve_runs(settings)[-1]
    assert wait_until(lambda: fetch_run(settings, serve["id"])["status"] == "failed", 30, "the serve run to fail")
    log = text(log_of(settings, serve["id"]))
    assert "restarting in 1 s" in log and "restarting in 2 s" in log and "crashed: Odoo died 3 times" in log


def test_an_old_development_environment_is_collected(settings, odoo_project, odoo_runner, odoo_source):
    odoo_project(module("acme_notes", version=odoo_source.version))
    odoo_runner()
    run = finished(settings, build(settings, "feature"), odoo_timeout(odoo_source))
    env = serving(settings, run["id"])
    with owner_conn(settings.database_url.reveal()) as conn:
        conn.execute("update ops.runs set finished_at = now() - interval '4 days' where kind = 'build'")
    collected = call(settings, lambda db: Environments(db, SERVICE).collect(env["host"], 3))
    assert [e["label"] for e in collected] == ["feature-shop-acme"]
    wait_until(lambda: environment(settings)["status"] == "stopped", 30, "the environment to stop")
    with owner_conn(settings.database_url.reveal()) as conn:
        cleanup = conn.execute("select id from ops.runs where kind = 'cleanup'").fetchone()
    done = finished(settings, cleanup["id"], 60)
    assert done["status"] == "succeeded" and "acme-shop-feature-1" in text(log_of(settings, done["id"]))
    assert environment(settings)["collected_at"] is not None
    assert call(settings, lambda db: Environments(db, SERVICE).collect(env["host"], 3)) == []  # once


@LANE
def test_a_browser_logs_in_through_the_router_and_opens_a_menu(settings, odoo_project, odoo_runner, odoo_source,
                                                               serve_api, page):
    """Odoo's own login page at the environment's URL, Odoo's own admin (demo
    data: admin/admin), then a menu of the web client."""
    odoo_project(module("acme_notes", version=odoo_source.version))
    odoo_runner()
    base = serve_api()
    serving(settings, finished(settings, build(settings, "feature"), odoo_timeout(odoo_source))["id"],
            odoo_timeout(odoo_source))
    url = f"http://feature-shop-acme.localhost:{base.rsplit(':', 1)[1]}"  # Chromium sends *.localhost here
    page.goto(f"{url}/web/login")
    page.fill("input[name=login]", "admin")
    page.fill("input[name=password]", "admin")
    page.click("button[type=submit]")
    if odoo_source.real:
        page.click(".o_navbar_apps_menu button", timeout=60_000)
        page.click(".o_navbar_apps_menu .o_app >> nth=0")
        page.wait_for_selector(".o_action_manager .o_action", timeout=60_000)
        assert page.url.startswith(url)
    else:
        page.click("a.o_menu")
        assert "menu_id=" in page.url and page.url.startswith(url)


def test_an_environment_reaches_its_own_database_only(settings, odoo_project, odoo_runner, odoo_source):
    """Its server cannot reach another branch's database, nor the control
    plane's (whose socket is in the hidden data dir), nor anything on the network."""
    odoo_project(module("acme_notes", version=odoo_source.version))
    call(settings, lambda db: Branches(db, SERVICE).add("acme/shop", "other", "development", check=False))
    git(Path(odoo_project.roots[0]) / "repos" / "shop", "branch", "other")
    odoo_runner()
    other = finished(settings, build(settings, "other"), odoo_timeout(odoo_source))
    feature = finished(settings, build(settings, "feature"), odoo_timeout(odoo_source))
    assert (other["status"], feature["status"]) == ("succeeded", "succeeded")
    env = serving(settings, feature["id"])

    def reach(**query: str) -> dict:
        return httpx.get(f"http://{env['address']}/standin/reach", params=query, timeout=30).json()
    assert reach(database=env["database"])["reached"] is True, reach(database=env["database"])  # its own
    theirs = reach(database=f"acme-shop-other-{other['id']}")
    assert theirs["reached"] is False and "permission denied" in theirs["error"], theirs
    control = reach(dsn=settings.database_url.reveal())
    assert control["reached"] is False, control
    network = reach(dsn="host=127.0.0.1 port=5432 dbname=postgres user=postgres")
    assert network["reached"] is False, network
