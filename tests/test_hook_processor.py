"""The webhook processor against a real database, with faults injected into
our own code (never the database's): a delivery whose applying raises
anything is failed with its reason and the next one is applied; a loop that
dies starts again and says so."""

from __future__ import annotations

import asyncio
import json
import logging
import time

from conftest import owner_conn
from helpers import SERVICE, call

from odooops.hooks.processor import HookProcessor
from odooops.managers import hooks as hooks_manager
from odooops.managers.hooks import Hooks

BOOM = b'{"boom": true}'


def push(branch: str, sha: str) -> bytes:
    return json.dumps({"ref": f"refs/heads/{branch}", "before": "0" * 40, "after": sha,
                       "repository": {"clone_url": "https://git.example.com/acme/shop.git"}}).encode()


async def settled(hooks: Hooks, count: int) -> list[dict]:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        rows = await hooks.deliveries("acme/shop", 50)
        if len(rows) >= count and all(r["status"] != "pending" for r in rows):
            return rows
        await asyncio.sleep(0.05)
    raise AssertionError(f"deliveries still pending: {rows}")


def test_any_exception_fails_one_delivery_and_a_dead_loop_restarts(settings, tenants, monkeypatch, caplog):
    real_parse = hooks_manager.parse

    def faulty_parse(host: str, event: str, body: bytes):
        if body == BOOM:
            raise RuntimeError("a fault nobody foresaw")
        return real_parse(host, event, body)

    monkeypatch.setattr(hooks_manager, "parse", faulty_parse)
    caplog.set_level(logging.INFO, logger="odooops.hooks")
    with owner_conn(settings.database_url.reveal()) as conn:
        conn.execute("update ops.projects set repo_url = 'https://git.example.com/acme/shop.git'")

    async def work(db):
        hooks = Hooks(db, SERVICE)
        hook = await hooks.rotate("acme/shop")
        record = lambda n, body: hooks.record("github", hook, f"d{n}", "push", {}, body)  # noqa: E731
        processor = HookProcessor(db, poll_seconds=0.05)
        processor.start()
        try:
            await record(1, BOOM)
            await record(2, push("after-boom", "a" * 40))
            first = await settled(hooks, 2)
            assert processor.problem() is None

            dying = processor.drain

            async def dies_once():
                processor.drain = dying
                raise RuntimeError("the loop's own fault")

            processor.drain = dies_once
            await record(3, push("after-restart", "b" * 40))
            return first, await settled(hooks, 3), processor.problem()
        finally:
            await processor.stop()

    first, last, problem = call(settings, work)
    by_id = {r["delivery_id"]: r for r in last}
    assert (by_id["d1"]["status"], by_id["d1"]["attempts"]) == ("failed", 1)
    assert "RuntimeError: a fault nobody foresaw" in by_id["d1"]["outcome"]
    assert by_id["d2"]["status"] == by_id["d3"]["status"] == "done"
    assert problem is None
    assert any("starting it again" in r.getMessage() for r in caplog.records)
