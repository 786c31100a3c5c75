"""Shared helpers for tests that need the application's managers or a real
git repository with a recipe."""

from __future__ import annotations

import asyncio
import subprocess
import time
from pathlib import Path

import httpx

from odooops import runtime
from odooops.db import Actor
from odooops.settings import Settings


def call(settings: Settings, work):
    """Run `await work(db)` on the application database of `settings`."""

    async def main():
        async with runtime.database(settings) as db:
            return await work(db)

    return asyncio.run(main())


SERVICE = Actor.service()
PASSWORD = "correct horse battery"  # every test person's, where they sign in


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout.strip()


def make_repo(path: Path, files: dict[str, str], branches: tuple[str, ...] = ()) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q", "-b", "main")
    commit(path, files, "first")
    for branch in branches:
        git(path, "branch", branch)
    return path


def commit(path: Path, files: dict[str, str], message: str) -> str:
    for name, text in files.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(text)
    git(path, "add", "-A")
    git(path, "-c", "user.name=t", "-c", "user.email=t@t.test", "commit", "-q", "--allow-empty", "-m", message)
    return git(path, "rev-parse", "HEAD")


def wait_until(predicate, timeout: float = 60, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def recipe(*phases: dict) -> str:
    """A .odooops.toml with the given phases."""
    out = []
    for p in phases:
        out.append("[[phases]]")
        for key, value in p.items():
            if isinstance(value, bool):
                out.append(f"{key} = {'true' if value else 'false'}")
            elif isinstance(value, (int, float)):
                out.append(f"{key} = {value}")
            elif isinstance(value, dict):
                out.append(f"{key} = {{ " + ", ".join(f'{k} = "{v}"' for k, v in value.items()) + " }")
            else:
                out.append(f"{key} = '''{value}'''")
    return "\n".join(out) + "\n"


def as_(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def envelope(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["ok"] is False and body["code"] == code and body["error"]
    return body["error"]


def sse(response: httpx.Response) -> list[dict]:
    events, current = [], {}
    for line in response.iter_lines():
        if not line:
            if current:
                events.append(current)
            current = {}
            continue
        key, _, value = line.partition(": ")
        current[key] = value
    return events
