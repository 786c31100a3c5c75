"""Webhooks: how fast a delivery is answered, and how fast deliveries are applied.

    .venv/bin/python bench/webhooks.py [--deliveries 2000] [--clients 8] [--quick]

Starts its own embedded PostgreSQL and a real `odooops serve`, makes a project
with a webhook, then posts --deliveries signed GitHub push events (each to a new
branch, so each is applied in full: ledger row, branch created in development,
build queued) from --clients concurrent httpx clients:

  delivery_answer_p50/p95/max  a delivery's round trip, as the git host sees it
                               (verified, recorded in the ledger, answered)
  deliveries_applied_per_second  from the first post to the last delivery applied
  storm_answer_p95             1,000 redeliveries of one push at once

Prints one JSON line per figure on stdout, progress on stderr."""

import os
import sys

# bench/queue.py would shadow the standard library's queue module: put this
# folder last, so `import queue` finds the stdlib while `import _common` works.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path = [p for p in sys.path if os.path.abspath(p or ".") != _HERE] + [_HERE]

import argparse  # noqa: E402
import asyncio  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402

import httpx  # noqa: E402
import psycopg  # noqa: E402
from _common import embedded_postgres, emit, free_port, info, percentile, serve  # noqa: E402

from odooops import runtime  # noqa: E402
from odooops.db import Actor  # noqa: E402
from odooops.hooks.verify import hook_secret, signed_headers  # noqa: E402
from odooops.managers.hooks import Hooks  # noqa: E402
from odooops.managers.orgs import Orgs  # noqa: E402
from odooops.managers.projects import Projects  # noqa: E402
from odooops.settings import Settings  # noqa: E402

SERVICE = Actor.service()


def push(n: int) -> bytes:
    return json.dumps({"ref": f"refs/heads/bench-{n}", "before": "0" * 40, "after": f"{n + 1:040x}",
                       "repository": {"clone_url": "https://git.example.com/bench/shop.git"}}).encode()


async def post_all(url: str, secret: str, bodies: list[tuple[bytes, str]], clients: int) -> list[float]:
    """Post every (body, delivery id) with `clients` at once; each answer's time in ms."""
    pending = list(reversed(bodies))
    times: list[float] = []

    async def client(http: httpx.AsyncClient) -> None:
        while pending:
            body, delivery = pending.pop()
            start = time.perf_counter()
            response = await http.post(url, content=body, headers=signed_headers("github", secret, body, "push", delivery))
            times.append((time.perf_counter() - start) * 1000)
            if response.status_code != 200:
                raise SystemExit(f"delivery refused: {response.status_code} {response.text}")

    async with httpx.AsyncClient(timeout=60) as http:
        await asyncio.gather(*(client(http) for _ in range(clients)))
    return times


def applied(owner: str) -> tuple[int, int]:
    with psycopg.connect(owner, autocommit=True) as conn:
        pending, runs = conn.execute("select (select count(*) from ops.hook_deliveries where status = 'pending'), "
                                     "(select count(*) from ops.runs)").fetchone()
    return pending, runs


async def main(args: argparse.Namespace) -> None:
    with embedded_postgres() as (data_dir, _):
        settings = Settings(data_dir=data_dir)
        owner = await runtime.prepare(settings)
        async with runtime.database(settings) as db:
            await Orgs(db, SERVICE).create("bench")
            await Projects(db, SERVICE).create("bench/shop", "https://git.example.com/bench/shop.git", check=False)
            hook = await Hooks(db, SERVICE).rotate("bench/shop")
        secret = hook_secret(runtime.secret_key(settings).reveal(), hook["id"], hook["salt"])
        port = free_port()
        server = serve(data_dir, port)
        url = f"http://127.0.0.1:{port}/api/v1/hooks/github/{hook['id']}"
        try:
            info(f"{args.deliveries} deliveries from {args.clients} clients (load average {os.getloadavg()[0]:.1f})")
            start = time.perf_counter()
            times = await post_all(url, secret, [(push(n), f"d-{n}") for n in range(args.deliveries)], args.clients)
            while applied(owner)[0]:
                await asyncio.sleep(0.05)
            took = time.perf_counter() - start
            info(f"  answered and applied in {took:.1f} s; {applied(owner)[1]} builds queued")
            emit("delivery_answer_p50", "odooops", percentile(times, 50), "ms")
            emit("delivery_answer_p95", "odooops", percentile(times, 95), "ms")
            emit("delivery_answer_max", "odooops", max(times), "ms")
            emit("deliveries_applied_per_second", "odooops", args.deliveries / took, "deliveries/s")

            before = applied(owner)[1]
            storm = await post_all(url, secret, [(push(args.deliveries), "storm")] * 1000, args.clients * 4)
            while applied(owner)[0]:
                await asyncio.sleep(0.05)
            info(f"  storm: 1,000 redeliveries made {applied(owner)[1] - before} build(s)")
            emit("storm_answer_p95", "odooops", percentile(storm, 95), "ms")
        finally:
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--deliveries", type=int, default=2000, help="distinct deliveries to post (default 2000)")
    p.add_argument("--clients", type=int, default=8, help="concurrent httpx clients (default 8)")
    p.add_argument("--quick", action="store_true", help="smoke run: 200 deliveries")
    args = p.parse_args()
    if args.quick:
        args.deliveries = 200
    asyncio.run(main(args))
