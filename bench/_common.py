"""What the benches share: one embedded PostgreSQL in a temp dir, figures as
JSON lines on stdout (progress goes to stderr, so stdout stays machine-readable)."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import httpx
import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from odooops.db import embedded


def info(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def emit(figure: str, system: str, value: float, unit: str) -> None:
    value = round(value, 2) if unit == "ms" else round(value)
    print(json.dumps({"figure": figure, "system": system, "value": value, "unit": unit}), flush=True)


def median(values: list[float]) -> float:
    return statistics.median(values)


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile: a value that was actually observed."""
    ordered = sorted(values)
    return ordered[max(0, round(p / 100 * len(ordered) + 0.5) - 1)]


async def seconds(work: Awaitable) -> float:
    start = time.perf_counter()
    await work
    return time.perf_counter() - start


@contextmanager
def embedded_postgres() -> Iterator[tuple[Path, str]]:
    """An embedded server in a fresh temp dir, stopped and removed afterwards.
    Yields the data dir (for odooops Settings) and the owner's conninfo."""
    with tempfile.TemporaryDirectory(prefix="odooops-bench-") as tmp:
        data_dir = Path(tmp)
        os.chmod(data_dir, 0o755)  # as root the server runs as its own user, which must reach it
        owner = embedded.start(data_dir)
        try:
            yield data_dir, owner
        finally:
            embedded.stop(data_dir)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(data_dir, port: int) -> subprocess.Popen:
    """A real `odooops serve` on the data dir's embedded server, once it answers."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ODOOOPS_")}
    env.update({"ODOOOPS_DATA_DIR": str(data_dir), "ODOOOPS_PORT": str(port)})
    proc = subprocess.Popen([sys.executable, "-m", "odooops", "serve"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("odooops serve did not come up")


def create_database(owner: str, name: str) -> str:
    """A new empty database on the owner's server; returns its conninfo."""
    with psycopg.connect(owner, autocommit=True) as conn:
        conn.execute(f"drop database if exists {name}")  # a constant name, not input
        conn.execute(f"create database {name}")
    return make_conninfo(owner, dbname=name)


async def execute(conninfo: str, sql: str) -> None:
    """One statement on a connection of its own (as the owner: truncations)."""
    async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
        await conn.execute(sql)


def as_url(conninfo: str) -> str:
    """A postgresql:// URL for drivers that take no libpq conninfo (asyncpg)."""
    p = conninfo_to_dict(conninfo)
    return f"postgresql://{quote(p['user'])}@/{quote(p['dbname'])}?host={quote(p['host'])}"


class Probe:
    """What the no-op handlers call: counts runs and, when armed, stamps the
    moment one starts, so the enqueuer can time the pick-up."""

    def __init__(self) -> None:
        self.count = 0
        self._started = asyncio.Event()
        self._at = 0.0

    def hit(self) -> None:
        self.count += 1
        self._at = time.perf_counter()
        self._started.set()

    def arm(self) -> None:
        self._started.clear()

    async def started(self, timeout: float = 10.0) -> float:
        await asyncio.wait_for(self._started.wait(), timeout)
        return self._at
