"""/healthz tells a load balancer, at once, whether this API host works: its
database answers and its webhook processor is alive. A real server on a
database of its own that the test stops, and the app in process for a
processor whose task died."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

import httpx

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # starlette would rather have httpx2
    from starlette.testclient import TestClient

from conftest import _wait_healthy, free_port
from helpers import wait_until

from odooops.api.app import create_app
from odooops.db import embedded

CHECKS = ("database", "webhook deliveries")


def test_healthy_says_what_it_checked(api):
    answer = httpx.get(f"{api}/healthz")
    assert answer.status_code == 200
    assert answer.json() == {"ok": True, "checks": {name: "ok" for name in CHECKS}}


def test_a_dead_webhook_processor_is_reported(settings):
    with TestClient(create_app(settings)) as client:
        assert client.get("/healthz").status_code == 200
        client.portal.call(client.app.state.hook_processor.stop)
        answer = client.get("/healthz")
    assert answer.status_code == 503
    body = answer.json()
    assert (body["ok"], body["code"], body["checks"]["database"]) == (False, "unhealthy", "ok")
    assert "not running" in body["checks"]["webhook deliveries"] and "webhook" in body["error"]


def test_a_stuck_webhook_processor_is_reported(settings):
    with TestClient(create_app(settings)) as client:
        processor = client.app.state.hook_processor

        async def never() -> None:
            await asyncio.Event().wait()
        # a round that never ends (setting busy_since by hand races the rounds under way)
        processor.hooks.process_next = never
        processor.stuck_after = 0.5
        client.portal.call(processor.wake)
        wait_until(lambda: processor.busy_since is not None
                   and time.monotonic() - processor.busy_since > processor.stuck_after, 15, "a stuck round")
        answer = client.get("/healthz")
    assert answer.status_code == 503
    assert "stuck" in answer.json()["checks"]["webhook deliveries"]


def test_503_at_once_while_the_database_is_down(tmp_path: Path):
    """The server's own embedded PostgreSQL, stopped under it: /healthz must
    answer within the client's bounded wait, every time, not hang on the pool."""
    data = tmp_path / "data"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ODOOOPS_")}
    env.update({"ODOOOPS_DATA_DIR": str(data), "ODOOOPS_PORT": str(port)})
    log = tmp_path / "serve.log"
    with log.open("w") as output:
        proc = subprocess.Popen([sys.executable, "-m", "odooops", "serve"], env=env,
                                stdout=output, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(proc, base, log)
        assert embedded.stop(data)
        for _ in range(5):  # the first ones find broken connections, the next ones an empty pool
            answer = httpx.get(f"{base}/healthz", timeout=5)
            assert answer.status_code == 503, answer.text
            body = answer.json()
            assert body["ok"] is False and body["checks"]["database"] != "ok", body
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        embedded.stop(data)
