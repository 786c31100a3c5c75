"""Is a delivery about the project's repository? A git host names one
repository in many ways (https and ssh clone URLs, its web page, scp-like
`git@host:owner/name.git`); they all come down to one identity: the host
(lowercase, without user or port) and the path (without `.git`, slashes
at either end or case, as git hosts ignore it). A local repository is
its path with symlinks and `..` resolved."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from urllib.parse import unquote, urlsplit

SCP_LIKE = re.compile(r"(?:[^@/\s]+@)?(?P<host>[A-Za-z0-9][A-Za-z0-9.-]*):(?P<path>[^\s]+)")


def identity(url: str) -> str | None:
    """What names the repository whatever form `url` takes; None for nothing."""
    url = url.strip()
    if not url:
        return None
    if url.startswith("file://"):
        return _local(unquote(urlsplit(url).path))
    if url.startswith(("/", "~", ".")):
        return _local(url)
    if "://" in url:
        parts = urlsplit(url)
        try:
            host = parts.hostname
        except ValueError:
            return None
        return _remote(host, unquote(parts.path)) if host else None
    if scp := SCP_LIKE.fullmatch(url):
        return _remote(scp["host"], scp["path"])
    return None


def _remote(host: str, path: str) -> str:
    path = path.strip("/").lower()
    path = path.removesuffix(".git").rstrip("/")
    return f"{host.lower().rstrip('.')}/{path}"


def _local(path: str) -> str:
    real = os.path.realpath(os.path.expanduser(path))
    # a working copy's .git folder is the working copy's repository
    return "file:" + (os.path.dirname(real) if os.path.basename(real) == ".git" else real)


def same_repository(project_url: str, names: Iterable[str]) -> bool:
    """Whether any of the names a payload gives its repository is the project's."""
    mine = identity(project_url)
    return mine is not None and any(identity(name) == mine for name in names)


def shown(url: str, limit: int = 200) -> str:
    """A URL fit for a delivery's outcome: no user or password, not too long."""
    if "://" in url:
        parts = urlsplit(url)
        url = parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()
    return url if len(url) <= limit else url[:limit - 1] + "…"
