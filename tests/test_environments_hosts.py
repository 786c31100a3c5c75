"""A runner on a second host: a network namespace with its own address, its
own data dir and environments' database server, reaching the control
plane's PostgreSQL over TCP. It builds a branch, serves it there, and the
router on the first host reaches that environment at the second's address."""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from conftest import APP_PASSWORD
from helpers import wait_until
from odooops import runtime
from odooops.environments import bridge
from odooops.odoo import envdb
from odooops.settings import Settings
from test_environments import environment, serving, through
from test_odoo_build import FAST, build, finished, log_of, module, odoo_cache, odoo_project, odoo_runner, odoo_source, \
    text

__all__ = ["odoo_cache", "odoo_project", "odoo_runner", "odoo_source"]  # fixtures, used by name


def ip(*args: str) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise AssertionError(f"ip {' '.join(args)}: {done.stderr.strip()} (this test makes a network namespace: "
                             "it needs root and iproute2)")


@pytest.fixture
def second_host():
    """A network namespace joined to this one by a veth pair: (name, its address, ours)."""
    n = random.randrange(1, 250)
    name, here, there = f"odooops-h{os.getpid()}", f"10.213.{n}.1", f"10.213.{n}.2"
    outer, inner = f"oo{os.getpid()}a"[:15], f"oo{os.getpid()}b"[:15]
    ip("netns", "add", name)
    try:
        ip("link", "add", outer, "type", "veth", "peer", "name", inner)
        ip("link", "set", inner, "netns", name)
        ip("addr", "add", f"{here}/24", "dev", outer)
        ip("link", "set", outer, "up")
        for args in (("addr", "add", f"{there}/24", "dev", inner), ("link", "set", inner, "up"),
                     ("link", "set", "lo", "up")):
            ip("netns", "exec", name, "ip", *args)
        yield name, there, here
    finally:
        subprocess.run(["ip", "link", "del", outer], capture_output=True)
        subprocess.run(["ip", "netns", "del", name], capture_output=True)


@pytest.fixture
def tcp_database(settings, second_host):
    """The control plane's PostgreSQL over TCP on our side of the veth: a
    forwarder to its socket, as a server listening there would be."""
    _, _, here = second_host
    parts = conninfo_to_dict(settings.database_url.reveal())
    socket_path = Path(parts["host"]) / f".s.PGSQL.{parts.get('port') or 5432}"
    loop = asyncio.new_event_loop()
    exposed = loop.run_until_complete(bridge.expose(socket_path, here))
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield make_conninfo(settings.database_url.reveal(), host=here, port=exposed.port)
    asyncio.run_coroutine_threadsafe(exposed.close(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


def test_a_runner_on_another_host_serves_there_and_the_router_reaches_it(
        settings, odoo_project, odoo_runner, odoo_source, odoo_cache, serve_api, second_host, tcp_database, tmp_path):
    name, there, _ = second_host
    odoo_project(module("acme_notes", version=odoo_source.version))
    first = odoo_runner()  # on this host: it makes the Odoo virtualenv (the other host has no network to PyPI)
    prepared = finished(settings, build(settings, "main"), 240)
    assert prepared["status"] == "succeeded", text(log_of(settings, prepared["id"]))
    first.terminate()
    first.wait(timeout=60)
    base = serve_api()
    other = Settings(data_dir=tmp_path / "host2")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ODOOOPS_")}
    env.update({"ODOOOPS_DATA_DIR": str(other.data_dir), "ODOOOPS_DATABASE_URL": tcp_database,
                "ODOOOPS_APP_PASSWORD": APP_PASSWORD, "ODOOOPS_CACHE_DIR": str(odoo_cache),
                "ODOOOPS_SECRET_KEY": runtime.secret_key(settings).reveal(),
                "ODOOOPS_REPO_ROOTS": os.pathsep.join(str(r) for r in odoo_project.roots),
                "ODOOOPS_RUNNER_HOST": "host2", "ODOOOPS_RUNNER_ADDRESS": there, **FAST})
    with (tmp_path / "host2.log").open("w") as log:
        runner = subprocess.Popen(["ip", "netns", "exec", name, sys.executable, "-m", "odooops", "runner"],
                                  env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        run = finished(settings, build(settings, "feature"), 240)
        assert run["status"] == "succeeded", text(log_of(settings, run["id"]))
        served = serving(settings, run["id"])
        assert served["host"] == "host2" and served["address"].startswith(f"{there}:"), served
        answer = through(base)  # the router, on this host, to the environment on the other
        assert answer.status_code == 200 and answer.json()["status"] == "pass"
        assert environment(settings)["host"] == "host2"
    finally:
        runner.terminate()
        runner.wait(timeout=60)
        envdb.stop(other)
    wait_until(lambda: environment(settings)["status"] in ("starting", "stopped"), 30, "its server handed back")
