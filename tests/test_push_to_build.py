"""The whole path, as a team with a plain git server lives it: `git push` to
a bare repository whose post-receive hook (`odooops hook post-receive`)
posts a signed GitHub-style delivery; the branch appears in development, a
runner builds it, the API lists the build and its log streams over SSE."""

from __future__ import annotations

import subprocess
import sys
import time

import httpx
from conftest import allow_path, process_env
from helpers import as_, call, commit, git, make_repo, recipe, sse


def test_git_push_builds_and_streams(api, tenants, settings, tmp_path):
    alice = as_(tenants["alice"])
    origin = tmp_path / "origin.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(origin)], check=True)
    work = make_repo(tmp_path / "work", {".odooops.toml": recipe({"name": "greet", "command": "echo hello from a push"})})
    git(work, "remote", "add", "origin", str(origin))
    git(work, "push", "-q", "origin", "main")
    call(settings, lambda db: allow_path(db, settings, "acme", origin))  # the operator gives acme its git server's folder
    assert httpx.patch(f"{api}/api/v1/projects/acme/shop", json={"repo_url": str(origin)}, headers=alice).status_code == 200

    hook = httpx.post(f"{api}/api/v1/projects/acme/shop/hook", headers=alice).json()
    (tmp_path / "hook.secret").write_text(hook["secret"])
    script = origin / "hooks" / "post-receive"
    script.write_text(f"#!/bin/sh\nexec {sys.executable} -m odooops hook post-receive {hook['urls']['github']} "
                      f"--secret-file {tmp_path / 'hook.secret'} --repository {origin}\n")
    script.chmod(0o755)

    env = process_env(settings, ODOOOPS_POLL_SECONDS="0.5")
    runner = subprocess.Popen([sys.executable, "-m", "odooops", "runner"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        git(work, "checkout", "-q", "-b", "feature-push")
        sha = commit(work, {"README.md": "pushed\n"}, "a change")
        pushed = subprocess.run(["git", "-C", str(work), "push", "origin", "feature-push"],
                                capture_output=True, text=True, check=True)
        assert "odooops: refs/heads/feature-push delivered" in pushed.stderr

        build = wait_for_build(api, alice, "feature-push")
        assert build["commit_sha"] == sha and build["trigger"] == "push"
        branches = httpx.get(f"{api}/api/v1/projects/acme/shop/branches", headers=alice).json()
        assert {b["name"]: b["stage"] for b in branches}["feature-push"] == "development"
        with httpx.stream("GET", f"{api}/api/v1/runs/{build['id']}/logs/stream", headers=alice,
                          timeout=120) as response:
            events = sse(response)
        lines = [e["data"] for e in events if e["event"] == "line"]
        assert any("hello from a push" in line for line in lines), lines
        assert events[-1]["event"] == "end" and '"succeeded"' in events[-1]["data"], events[-1]
    finally:
        runner.terminate()
        runner.wait(timeout=30)


def wait_for_build(api: str, headers: dict, branch: str) -> dict:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        builds = httpx.get(f"{api}/api/v1/projects/acme/shop/builds?branch={branch}", headers=headers)
        if builds.status_code == 200 and builds.json():
            return builds.json()[0]
        time.sleep(0.2)
    raise AssertionError(f"no build of {branch} appeared")
