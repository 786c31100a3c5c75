"""The Odoo sources a project builds on: Odoo itself, optionally enterprise,
and extra addons repositories (OCA and the like), each a URL or a local
path and a ref.

Each is mirrored once per host in a bare repository that holds only what
builds asked for (one ref at depth 1, never the whole history: the public
Odoo repository is many GB with it), and checked out once per commit into a
folder every build of that commit shares, read-only. A build records the
commit of each; a rebuild asks for those commits again."""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import shutil
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from odooops import repos
from odooops.errors import InvalidInput
from odooops.locks import locked

PUBLIC_ODOO = "https://github.com/odoo/odoo.git"
SUPPORTED_VERSIONS = ("16.0", "17.0", "18.0", "19.0")
ENTERPRISE_TOKEN = "ODOO_ENTERPRISE_TOKEN"  # noqa: S105 - a secret_env name: fetches enterprise, kept from phases
SOURCE_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
REF = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,199}$")
SHA = re.compile(r"^[0-9a-f]{40}$")
PROGRESS_SECONDS = 15.0
COMPLETE = ".odooops-complete"

Git = Callable[..., Awaitable[int]]  # (*args, env=...) -> exit code, its output in the build's log


@dataclass(frozen=True)
class Spec:
    """One source as the project names it."""

    name: str      # odoo | enterprise | an extra repository's name
    url: str
    ref: str
    commit: str | None = None  # pinned by a rebuild
    default_ref: bool = False  # the ref was not set: a local copy without that branch builds its HEAD


@dataclass(frozen=True)
class Checkout:
    spec: Spec
    commit: str
    path: Path

    def record(self) -> dict:
        return {"name": self.spec.name, "url": repos.display(self.spec.url), "ref": self.spec.ref,
                "commit": self.commit}


def check_settings(value: object) -> bool:
    """Whether `extra_addons` is a list of {name, repository, ref}."""
    if not isinstance(value, list) or len(value) > 50:
        return False
    names = [a.get("name") for a in value if isinstance(a, dict)]
    return len(names) == len(value) == len(set(names)) and all(
        isinstance(a.get("name"), str) and SOURCE_NAME.match(a["name"]) and a["name"] not in ("odoo", "enterprise")
        and isinstance(a.get("repository"), str) and a["repository"].strip()
        and isinstance(a.get("ref"), str) and REF.match(a["ref"]) for a in value)


def specs(settings: dict, version: str, pinned: list[dict] | None = None) -> list[Spec]:
    """The sources of a project, in addons path order after the project's own
    (extra repositories, enterprise, Odoo), each at its pinned commit if any."""
    if version not in SUPPORTED_VERSIONS:
        raise InvalidInput(f"Odoo {version} is not supported: choose one of {', '.join(SUPPORTED_VERSIONS)}")
    found = [Spec(a["name"], a["repository"], a["ref"]) for a in settings.get("extra_addons") or []]
    if settings.get("enterprise_repository"):
        found.append(Spec("enterprise", settings["enterprise_repository"], settings.get("enterprise_ref") or version,
                          default_ref=not settings.get("enterprise_ref")))
    found.append(Spec("odoo", settings.get("odoo_repository") or PUBLIC_ODOO, settings.get("odoo_ref") or version,
                      default_ref=not settings.get("odoo_ref")))
    pins = {(p.get("name"), p.get("ref")): p.get("commit") for p in pinned or []}
    return [Spec(s.name, s.url, s.ref, pins.get((s.name, s.ref)), s.default_ref) for s in found]


class Sources:
    """Mirrors and checkouts under `cache` (this host's), fetched with `git`,
    the pipeline's way of running git with its output in the build's log."""

    def __init__(self, cache: Path, git: Git, say: Callable[[str, str], None], org_roots: list[str],
                 host: repos.Host, project_id: object, project_ref: str = "PROJECT"):
        self.project_ref = project_ref
        self.cache = cache
        self.git = git
        self.say = say  # (message, level)
        self.org_roots = org_roots
        self.host = host
        self.project_id = project_id

    async def get(self, spec: Spec, auth: dict[str, str] | None = None) -> Checkout:
        try:
            source = repos.check(spec.url, self.org_roots, self.host)
        except InvalidInput as exc:
            raise InvalidInput(f"the {spec.name} source cannot be used: {exc}") from exc
        if source.local and not (Path(source.url) / ".git").exists() and not (Path(source.url) / "HEAD").exists():
            raise InvalidInput(f"the {spec.name} source {source.url} is not a git repository")
        mirror = self.cache / "git" / ("odoo-" + repos.mirror_name(self.project_id, source))
        mirror.parent.mkdir(parents=True, exist_ok=True)
        async with locked(mirror.with_suffix(".lock")):
            commit = await self._fetch(spec, source, mirror, auth or {})
        return Checkout(spec, commit, await self._checkout(spec, mirror, commit))

    async def _fetch(self, spec: Spec, source: repos.Source, mirror: Path, auth: dict[str, str]) -> str:
        # a remote that stalls fails the fetch instead of holding the build until its timeout
        env = {**source.git_env(), "GIT_HTTP_LOW_SPEED_LIMIT": "1000", "GIT_HTTP_LOW_SPEED_TIME": "60", **auth}
        url = ("file://" + source.url) if source.local else source.url
        if not (mirror / "HEAD").exists():
            if await self.git("init", "--quiet", "--bare", str(mirror)) != 0:
                raise InvalidInput(f"could not create the mirror of the {spec.name} source")
        if spec.commit and await self._has(mirror, spec.commit):
            self.say(f"{spec.name}: {spec.ref} at {spec.commit[:12]}, already here", "info")
            return spec.commit
        want = spec.commit or spec.ref
        tracking = f"refs/odooops/{spec.name}"
        self.say(f"{spec.name}: fetching {want} from {repos.display(spec.url)} (one ref, depth 1)", "info")
        began = time.monotonic()
        code = await self._fetch_ref(spec.name, mirror, url, want, tracking, env)
        if code != 0 and source.local and spec.default_ref and not spec.commit:
            self.say(f"{spec.name}: the local copy has no branch {spec.ref}: building what it has checked out (HEAD)",
                     "warning")
            code = await self._fetch_ref(spec.name, mirror, url, "HEAD", tracking, env)
        if code != 0:
            raise InvalidInput(
                f"could not fetch the {spec.name} source {repos.display(spec.url)} at {want} (git said why above); "
                f"check the URL and ref, or point the project at a local copy: `odooops project set {self.project_ref} "
                f"{_setting(spec.name)}=/path/to/a/clone` (inside a folder the operator allowed the org)")
        commit = await self._rev_parse(mirror, tracking)
        size = _size(mirror)
        self.say(f"{spec.name}: {spec.ref} is {commit[:12]}, fetched in {time.monotonic() - began:.1f} s "
                 f"(mirror {size / 1e6:.0f} MB)", "info")
        return commit

    async def _fetch_ref(self, name: str, mirror: Path, url: str, want: str, tracking: str,
                         env: dict[str, str]) -> int:
        watcher = asyncio.create_task(self._progress(name, mirror))
        try:
            return await self.git("--git-dir", str(mirror), "fetch", "--quiet", "--depth", "1", "--no-tags",
                                  "--force", "--", url, f"+{want}:{tracking}", env=env)
        finally:
            watcher.cancel()

    async def _progress(self, name: str, mirror: Path) -> None:
        while True:
            await asyncio.sleep(PROGRESS_SECONDS)
            self.say(f"{name}: still fetching, {_size(mirror) / 1e6:.0f} MB so far", "info")

    async def _has(self, mirror: Path, commit: str) -> bool:
        code, _ = await _quiet("--git-dir", str(mirror), "cat-file", "-e", f"{commit}^{{commit}}")
        return code == 0

    async def _rev_parse(self, mirror: Path, ref: str) -> str:
        code, out = await _quiet("--git-dir", str(mirror), "rev-parse", "--verify", f"{ref}^{{commit}}")
        if code != 0 or not SHA.match(out.strip()):
            raise InvalidInput(f"could not read the commit of {ref} in the mirror")
        return out.strip()

    async def _checkout(self, spec: Spec, mirror: Path, commit: str) -> Path:
        """The commit's files, once per host: checked out beside, then moved
        into place, so a half-made folder is never used."""
        target = self.cache / "sources" / mirror.stem / commit
        if (target / COMPLETE).exists():
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        async with locked(target.with_suffix(".lock")):
            if (target / COMPLETE).exists():
                return target
            partial = target.with_suffix(".partial")
            shutil.rmtree(partial, ignore_errors=True)
            partial.mkdir()
            index = target.with_suffix(".index")
            began = time.monotonic()
            code = await self.git("--git-dir", str(mirror), "--work-tree", str(partial), "checkout", "--quiet",
                                  "--force", commit, "--", ".", env={"GIT_INDEX_FILE": str(index)})
            await asyncio.to_thread(index.unlink, missing_ok=True)
            if code != 0:
                shutil.rmtree(partial, ignore_errors=True)
                raise InvalidInput(f"could not check out the {spec.name} source at {commit[:12]}")
            (partial / COMPLETE).touch()
            partial.rename(target)
            self.say(f"{spec.name}: checked out {commit[:12]} in {time.monotonic() - began:.1f} s "
                     f"({_size(target) / 1e6:.0f} MB, shared by every build of it)", "info")
        return target


def enterprise_auth(token: str | None) -> dict[str, str]:
    """Git's environment to fetch enterprise with a token (GitHub's way: a
    basic credential), as a header: never in a URL, a log or a mirror's config."""
    if not token:
        return {}
    import base64

    basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
    return {"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "http.extraHeader",
            "GIT_CONFIG_VALUE_0": f"Authorization: Basic {basic}"}


async def _quiet(*args: str) -> tuple[int, str]:
    """A git command on our own mirror, its output for us, not the log."""
    env = {**repos.GIT_ENV, "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    proc = await asyncio.create_subprocess_exec("git", *args, env=env,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
    out, _ = await proc.communicate()
    return proc.returncode or 0, out.decode(errors="replace")


def _setting(name: str) -> str:
    return {"odoo": "odoo_repository", "enterprise": "enterprise_repository"}.get(name, "extra_addons")


def _size(path: Path) -> int:
    total = 0
    for p in path.rglob("*"):
        try:
            if p.is_file() and not p.is_symlink():
                total += p.stat().st_size
        except OSError:
            pass
    return total


def digest(*parts: bytes) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part + b"\0")
    return h.hexdigest()
