"""Which repositories a project may name, and how git reads them: no tenant may
make OdooOps read a repository it could not read itself.

Tenants name remote repositories (https://, http://, ssh://, git:// and
scp-like user@host:path). A local path is the operator's to give: it must lie,
symlinks and `..` resolved, inside a root the operator assigned to the
project's org, and on the runner also inside ODOOOPS_REPO_ROOTS and outside the
data directory (the demo's folder aside). The same check runs when a project
is created or changed and again before every fetch, so a row written any other
way is refused where it would be read."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import SplitResult, urlsplit

from odooops.errors import InvalidInput

REMOTE_SCHEMES = ("https", "http", "ssh", "git")
REMOTE_PROTOCOLS = ":".join(REMOTE_SCHEMES)  # for GIT_ALLOW_PROTOCOL; `file` only for an allowed path
SCP_LIKE = re.compile(r"(?P<user>[A-Za-z0-9._-]+)@(?P<host>[A-Za-z0-9][A-Za-z0-9.-]*):(?P<path>[^\s]+)")
TRANSPORT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*::")  # git's <transport>::<address>: ext::, fd::, …
DEMO_FOLDER = "demo"
# Git reads no configuration of the host (credential helpers, url.insteadOf,
# protocol overrides) and ssh uses none of the host's keys, agent or config:
# those are the operator's credentials, never a tenant's.
SSH = "ssh -F /dev/null -o IdentitiesOnly=yes -o IdentityFile=/dev/null -o IdentityAgent=none -o BatchMode=yes"
GIT_ENV = {"GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "/bin/true", "GIT_CONFIG_NOSYSTEM": "1",
           "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_SSH_COMMAND": SSH, "GIT_ALLOW_PROTOCOL": REMOTE_PROTOCOLS}


@dataclass(frozen=True)
class Source:
    """A repository a project may read: `url` is what git is given (a local
    path resolved), `local` says whether it is on this host's disk."""

    url: str
    local: bool

    @property
    def credentialed(self) -> bool:
        return credentialed(self.url)

    def git_env(self) -> dict[str, str]:
        """Git's environment to fetch this repository: local paths only for a
        local repository, which was allowed."""
        return {**GIT_ENV, "GIT_ALLOW_PROTOCOL": REMOTE_PROTOCOLS + (":file" if self.local else "")}


@dataclass(frozen=True)
class Host:
    """What this host lets projects read from its disk."""

    roots: tuple[Path, ...]   # ODOOOPS_REPO_ROOTS
    data_dir: Path

    @classmethod
    def of(cls, settings) -> Host:
        return cls(tuple(settings.repo_roots), settings.data_dir)

    def refusal(self, path: Path) -> str | None:
        """Why `path` (resolved) may not be read here, or None."""
        data, demo = real(self.data_dir), real(self.data_dir / DEMO_FOLDER)
        if _inside(path, data) and not _inside(path, demo):
            return f"{path} is inside the control plane's data directory"
        if not (_inside(path, demo) or any(_inside(path, real(r)) for r in self.roots)):
            return f"{path} is not inside ODOOOPS_REPO_ROOTS"
        return None

    def root(self, path: str) -> Path:
        """A folder the operator may assign to an org: absolute, inside
        ODOOOPS_REPO_ROOTS, neither inside nor around the data directory."""
        if not path.startswith("/"):
            raise InvalidInput(f"a root is an absolute path, not {path!r}")
        folder = real(Path(path))
        reason = self.refusal(folder)
        if reason is None and _inside(real(self.data_dir), folder):
            reason = f"{folder} holds the control plane's data directory"
        if reason:
            raise InvalidInput(f"cannot assign {path}: {reason}")
        return folder


def real(path: Path) -> Path:
    """The path with symlinks and `..` resolved (whether or not it exists)."""
    return Path(os.path.realpath(path))


def _inside(path: Path, root: Path) -> bool:
    return path == root or path.is_relative_to(root)


def check(url: str, org_roots: Iterable[str], host: Host | None = None) -> Source:
    """The repository `url` names, if a project whose org was assigned
    `org_roots` may read it (and, given `host`, this host allows it); else
    InvalidInput saying why."""
    url = url.strip()
    if TRANSPORT.match(url):
        raise InvalidInput(f"git transport {url.split('::')[0]}:: is not allowed; use https://, http://, ssh:// or git://")
    if url.startswith("-"):
        raise InvalidInput(f"a repository URL cannot start with '-': {display(url)}")
    if not url or any(c.isspace() or ord(c) < 32 for c in url):
        raise InvalidInput("a repository URL has no spaces or control characters")
    if url.startswith("/"):
        return _local(url, org_roots, host)
    if (scp := SCP_LIKE.fullmatch(url)) and not scp["path"].startswith("-"):
        return Source(url, local=False)
    parts = urlsplit(url) if "://" in url else None
    if parts is None or parts.scheme.lower() not in REMOTE_SCHEMES:
        scheme = parts.scheme + "://" if parts else None
        raise InvalidInput((f"{scheme} URLs are not allowed" if scheme else f"{display(url)} is not a repository URL")
                           + "; use https://, http://, ssh://, git:// or user@host:path"
                           + " (a local repository: its absolute path, in a root the operator gave your org)")
    _check_remote(url, parts)
    return Source(url, local=False)


def _check_remote(url: str, parts: SplitResult) -> None:
    try:
        host, user = parts.hostname, parts.username
    except ValueError:
        host, user = None, None
    if not host or host.startswith("-") or (user or "").startswith("-"):
        raise InvalidInput(f"{display(url)} names no host git may reach")


def _local(url: str, org_roots: Iterable[str], host: Host | None) -> Source:
    path = real(Path(url))
    if not any(_inside(path, real(Path(r))) for r in org_roots):
        raise InvalidInput(f"{url} is not inside a folder the operator gave this org; "
                           "name a remote repository, or ask the operator: odooops org allow-path ORG PATH")
    reason = host and host.refusal(path)
    if reason:
        raise InvalidInput(f"{url} may not be read on this host: {reason}")
    return Source(str(path), local=True)


def credentialed(url: str) -> bool:
    """Whether the URL carries a credential: a password, or for http(s) any
    user name (a token is often given as one)."""
    if "://" not in url:
        return False
    parts = urlsplit(url)
    return parts.password is not None or (parts.scheme in ("http", "https") and bool(parts.username))


def display(url: str) -> str:
    """The URL fit to show: its credential masked."""
    if not credentialed(url):
        return url
    parts = urlsplit(url)
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user, sep, _ = userinfo.partition(":")
    shown = f"{user}:********" if sep else "********"
    return parts._replace(netloc=f"{shown}@{hostport}").geturl()


def mirror_name(project_id: object, source: Source) -> str:
    """The bare mirror's folder name: shared by every project naming the same
    URL when no credential fetches it, one project's own otherwise (a
    credential, or a local path, serves its project only)."""
    if source.local or source.credentialed:
        key = f"project {project_id}\0{source.url}"
        return "p-" + hashlib.sha256(key.encode()).hexdigest()[:24] + ".git"
    return hashlib.sha256(source.url.encode()).hexdigest()[:24] + ".git"
