"""The few git questions the control plane asks, answered by the git command."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from odooops import repos
from odooops.errors import InvalidInput

GIT_TIMEOUT = 30


async def _git(*args: str, too_slow: str, env: dict[str, str] = repos.GIT_ENV) -> tuple[int, str, str]:
    """Run git with no prompt, none of the host's configuration or credentials,
    and a time limit (past it, InvalidInput(too_slow)): its exit code, stdout and stderr."""
    proc = await asyncio.create_subprocess_exec(
        "git", *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**env, "PATH": os.environ.get("PATH", "/usr/bin:/bin")})
    try:
        out, err = await asyncio.wait_for(proc.communicate(), GIT_TIMEOUT)
    except TimeoutError:
        proc.kill()
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
        lines = err.strip().splitlines() or ["git failed"]
        reason = next((x for x in lines if x.startswith("fatal:")), lines[0]).removeprefix("fatal: ")
        raise InvalidInput(f"cannot read branch {branch!r} of {repo_url}: {reason}")
    line = out.split()
    if not line:
        raise InvalidInput(f"{repo_url} has no branch {branch!r}")
    return line[0]


async def describe_head(checkout: Path) -> tuple[str, str]:
    """The subject and author name of the commit checked out in `checkout`."""
    code, out, err = await _git("-C", str(checkout), "log", "-1", "--no-show-signature", "--format=%s%x00%an",
                                too_slow=f"git log took over {GIT_TIMEOUT}s")
    subject, sep, author = out.rstrip("\n").partition("\0")
    if code != 0 or not sep:
        raise InvalidInput(err.strip() or "git log said nothing")
    return subject, author
