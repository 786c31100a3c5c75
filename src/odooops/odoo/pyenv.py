"""The Python environment an Odoo build runs in: one virtualenv per (Python
version, Odoo's requirements, the project's and extra repositories'
requirements), made once per host and reused by every build that wants the
same, with pip's own progress in the build's log."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from odooops.odoo.sources import digest

# Requirements that need system headers to build from source: replaced by a
# binary wheel of the same versions, or left out (python-ldap serves only the
# auth_ldap module). NAME=REPLACEMENT, an empty replacement drops the line, a
# replacement with a version (gevent=gevent==22.10.2) replaces the pin too.
DEFAULT_SUBSTITUTES = "psycopg2=psycopg2-binary,python-ldap="
# gevent before 24 (Odoo 16.0-18.0 below Python 3.12) finds its plugins with
# the pkg_resources of the virtualenv's own setuptools, which does not know
# zope.interface 7+ nor zope.event 5.1+ by their names (and zope.event 5.1
# pulls a setuptools without pkg_resources): the gevent process of prefork
# mode (workers, /websocket) then dies at start. Pinned to what those gevents
# were released with.
GEVENT_PINS = ('# added by OdooOps: what gevent < 24 works with\n'
               'zope.interface<7 ; python_version < "3.12"\nzope.event<5.1 ; python_version < "3.12"\n')
_GEVENT = re.compile(r"^\s*gevent\s*==\s*(1\d|2[0-3])\.", re.M)
_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)(.*)$", re.S)
# what pip says when a requirement does not install, the package named first
PIP_FAILURES = (
    re.compile(r"No matching distribution found for ([^\s;]+)"),
    re.compile(r"Could not find a version that satisfies the requirement ([^\s;]+)"),
    re.compile(r"Failed to build (?:installable wheels for some pyproject\.toml based projects )?\(?([^\s)]+)"),
    re.compile(r"Failed building wheel for ([^\s]+)"),
)
VERSIONED = re.compile(r"[=<>!~]")
_COLLECTING = re.compile(r"^Collecting ([A-Za-z0-9][A-Za-z0-9._-]*)")


def parse_substitutes(raw: str) -> dict[str, str]:
    pairs = (p.split("=", 1) for p in raw.split(",") if p.strip())
    return {_canonical(k): v.strip() for k, v in pairs}


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name.strip()).lower()


def substituted(text: str, substitutes: dict[str, str]) -> str:
    """Requirements text with the substitutes applied, versions and markers kept."""
    out = []
    for line in text.splitlines():
        match = _NAME.match(line)
        if match and not line.lstrip().startswith(("#", "-")) and _canonical(match[1]) in substitutes:
            replacement = substitutes[_canonical(match[1])]
            if not replacement:
                out.append(f"# left out by OdooOps: {line.strip()}")
                continue
            # a replacement with its own version replaces the pin; the markers stay
            rest = match[2] if not VERSIONED.search(replacement) else (";" + match[2].split(";", 1)[1]
                                                                       if ";" in match[2] else "")
            line = replacement + rest
        out.append(line)
    return "\n".join(out) + "\n"


@dataclass(frozen=True)
class Requirements:
    """The files a virtualenv installs, by label, with their text."""

    files: list[tuple[str, str]]
    python: str = sys.executable

    @property
    def key(self) -> str:
        version = sys.version if self.python == sys.executable else os.path.realpath(self.python)
        return digest(b"odoo-venv", self.python.encode(), version.encode(),
                      *(label.encode() + b"\0" + text.encode() for label, text in self.files))[:24]


def parse_pythons(raw: str) -> dict[str, str]:
    """ODOOOPS_ODOO_PYTHON: `16.0=/usr/bin/python3.10,…`, the interpreter of each Odoo version."""
    pairs = (p.split("=", 1) for p in raw.split(",") if "=" in p)
    return {version.strip(): path.strip() for version, path in pairs if path.strip()}


def gather(odoo: Path, others: Iterable[tuple[str, Path]], substitutes: dict[str, str],
           python: str = sys.executable) -> Requirements:
    """Odoo's requirements.txt (substituted), then each other repository's."""
    files = []
    if (odoo / "requirements.txt").is_file():
        text = substituted((odoo / "requirements.txt").read_text(errors="replace"), substitutes)
        files.append(("odoo", text + (GEVENT_PINS if _GEVENT.search(text) else "")))
    for label, root in others:
        if (root / "requirements.txt").is_file():
            files.append((label, (root / "requirements.txt").read_text(errors="replace")))
    return Requirements(files, python)


class PipWatch:
    """Reads pip's output for the requirement that failed."""

    def __init__(self) -> None:
        self.failed: str | None = None
        self.collecting: str | None = None

    def feed(self, line: str) -> None:
        if match := _COLLECTING.match(line):
            self.collecting = match[1]
        for pattern in PIP_FAILURES:
            if self.failed is None and (match := pattern.search(line)):
                self.failed = match[1].rstrip(",")

    def reason(self, label: str) -> str:
        package = self.failed or self.collecting
        where = f" (from the {label} requirements)" if label else ""
        if package:
            return f"the requirement {package}{where} did not install: pip's output above says why"
        return f"pip could not install the {label} requirements: its output above says why"
