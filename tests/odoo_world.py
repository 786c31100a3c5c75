"""Odoo for the tests: the stand-in (tests/standin, a test double of
odoo-bin) as a git repository, and real Odoo source trees when
ODOOOPS_TEST_ODOO_SOURCES names them (`17.0=/path/to/odoo17[,16.0=/path]`),
the real-Odoo lane. Tests parametrized with `ODOO_SOURCES` run once per
source; without the variable, against the stand-in only."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers import git

STANDIN = Path(__file__).with_name("standin")


@dataclass(frozen=True)
class OdooSource:
    version: str
    path: Path | None  # None: the stand-in, made into a repository per session
    real: bool

    @property
    def id(self) -> str:
        return f"{'odoo' if self.real else 'standin'}-{self.version}"


def real_sources() -> list[OdooSource]:
    raw = os.environ.get("ODOOOPS_TEST_ODOO_SOURCES", "")
    found = []
    for part in filter(None, (p.strip() for p in raw.split(","))):
        version, _, path = part.partition("=")
        found.append(OdooSource(version.strip(), Path(path.strip()), True))
    return found


ODOO_SOURCES = [OdooSource("17.0", None, False), *real_sources()]
LANE = pytest.mark.parametrize("odoo_source", ODOO_SOURCES, ids=[s.id for s in ODOO_SOURCES])
_SEVENTEEN = [s for s in ODOO_SOURCES if s.version == "17.0"]
LANE_17 = pytest.mark.parametrize("odoo_source", _SEVENTEEN, ids=[s.id for s in _SEVENTEEN])  # the demo is 17.0's


RELEASE = '''"""The version this stand-in tree claims (a test double: tests/standin/README.md).
Written when the tree is made: odoo-bin, and OdooOps, read it as they read a real tree's."""

version_info = ({major}, {minor}, 0, 'final', 0, '')
version = series = serie = major_version = '{major}.{minor}'
product_name = 'Odoo'
description = 'Odoo Server (stand-in)'
'''


def standin_tree(dest: Path, version: str = "17.0") -> Path:
    """The stand-in laid out as an Odoo source tree, claiming `version`. The
    repository keeps its parts apart (its code under standin/odoo, its modules
    under standin/modules), so that none of its files stands where Odoo's do."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("odoo-bin", "requirements.txt", "README.md"):
        shutil.copy2(STANDIN / name, dest / name)
    shutil.copytree(STANDIN / "odoo", dest / "odoo", ignore=ignore)
    (dest / "odoo" / "addons").mkdir()
    (dest / "odoo" / "addons" / "__init__.py").write_text("")
    for module in sorted((STANDIN / "modules").iterdir()):
        # base lives in odoo/addons, the others in addons/, as in Odoo's tree
        target = dest / ("odoo/addons" if module.name == "base" else "addons") / module.name
        shutil.copytree(module, target, ignore=ignore)
        (target / "manifest.py").rename(target / "__manifest__.py")
    major, minor = version.split(".")
    (dest / "odoo" / "release.py").write_text(RELEASE.format(major=major, minor=minor))
    return dest


def standin_repo(where: Path, version: str = "17.0") -> Path:
    """A git repository of the stand-in, claiming `version`."""
    repo = where / f"standin-{version}"
    if (repo / ".git").exists():
        return repo
    standin_tree(repo, version)
    git(repo, "init", "-q", "-b", version)
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@t.test", "commit", "-q", "-m", f"stand-in {version}")
    return repo


def source_path(source: OdooSource, where: Path) -> Path:
    """The source as a project names it: a local git repository."""
    return source.path if source.path is not None else standin_repo(where, source.version)


def odoo_timeout(source: OdooSource) -> float:
    """How long a build may take: real Odoo installs base in a minute or so
    here, more with its virtualenv to make the first time."""
    return 1200 if source.real else 240
