"""The few git questions the control plane asks, answered by the git command."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

from odooops import repos
from odooops.errors import InvalidInput

GIT_TIMEOUT = 30
CHECK_TIMEOUT = 15  # what a project or branch being created waits for its repository


async def _git(*args: str, too_slow: str, env: dict[str, str] = repos.GIT_ENV,
               timeout: float = GIT_TIMEOUT) -> tuple[int, str, str]:
    """Run git with no prompt, none of the host's configuration or credentials,
    and a time limit (past it, InvalidInput(too_slow)): its exit code, stdout and stderr."""
    proc = await asyncio.create_subprocess_exec(
        "git", *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        stdin=asyncio.subprocess.DEVNULL, start_new_session=True,
        env={**env, "PATH": os.environ.get("PATH", "/usr/bin:/bin")})
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        _kill_group(proc.pid)  # ssh or a remote helper git started goes with it
        await proc.wait()
        raise InvalidInput(too_slow) from None
    code = await proc.wait()
    return code, out.decode(errors="replace"), err.decode(errors="replace")


async def resolve_head(source: repos.Source, branch: str) -> str:
    """The commit at the head of `branch` in the repository `source`."""
    repo_url = repos.display(source.url)
    code, out, err = await _git("ls-remote", "--heads", "--", source.url, f"refs/heads/{branch}",
                                too_slow=f"git ls-remote {repo_url} took over {GIT_TIMEOUT}s; pass --commit",
                                env=source.git_env())
    if code != 0:
        raise InvalidInput(f"cannot read branch {branch!r} of {repo_url}: {_reason(err, source.url)}")
    line = out.split()
    if not line:
        raise InvalidInput(f"{repo_url} has no branch {branch!r}")
    return line[0]


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _scrubbed(text: str, url: str) -> str:
    """Git's words with the URL's credential masked, whatever git itself hid."""
    text = text.replace(url, repos.display(url))
    if repos.credentialed(url):
        parts = urlsplit(url)
        for secret in (parts.password, parts.username):
            if secret and len(secret) >= 4:
                text = text.replace(secret, "********")
    return text


def _reason(err: str, url: str) -> str:
    """Git's own reason it failed, in one line, credential masked."""
    lines = [x for x in err.strip().splitlines() if x.strip()] or ["git failed"]
    reason = next((x for x in lines if x.startswith("fatal:")), lines[-1]).removeprefix("fatal: ")
    return _scrubbed(reason.strip(), url)


async def check_branches(source: repos.Source, branches: Sequence[str], *, timeout: float = CHECK_TIMEOUT) -> None:
    """That git can read the repository `source` and that it has every branch
    of `branches` (names compared exactly, not as ls-remote's patterns), asked
    with one `git ls-remote` bounded by `timeout`; else
    InvalidInput saying what is wrong, no credential in it."""
    url = repos.display(source.url)
    skip = "if it is not reachable from here yet, create it without the check"
    code, out, err = await _git(
        "ls-remote", "--heads", "--", source.url,
        too_slow=f"repository did not answer within {timeout:g} s: {url}; {skip}",
        env=source.git_env(), timeout=timeout)
    if code != 0:
        raise InvalidInput(f"repository not found or not readable: {url} ({_reason(err, source.url)}); {skip}")
    heads = {ref.removeprefix("refs/heads/") for _, _, ref in (line.partition("\t") for line in out.splitlines())}
    for branch in branches:
        if branch not in heads:
            empty = " (the repository has no branches yet: push one first)" if not heads else ""
            raise InvalidInput(f"branch {branch!r} not found in {url}{empty}")


async def describe_head(checkout: Path) -> tuple[str, str]:
    """The subject and author name of the commit checked out in `checkout`."""
    code, out, err = await _git("-C", str(checkout), "log", "-1", "--no-show-signature", "--format=%s%x00%an",
                                too_slow=f"git log took over {GIT_TIMEOUT}s")
    subject, sep, author = out.rstrip("\n").partition("\0")
    if code != 0 or not sep:
        raise InvalidInput(err.strip() or "git log said nothing")
    return subject, author
