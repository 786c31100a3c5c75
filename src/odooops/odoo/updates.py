"""Which modules an update in place updates, as Odoo.sh decides it (the
modules whose manifest version rose) or, by the project setting
update_modules=checksum, as click-odoo-update does (those whose files
changed since the database last saw them); every module when the Python
requirements changed. OdooOps keeps what it last saw in the database's own
ir_config_parameter, so a copy of the database carries it along."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from odooops.db.queries import queries_beside
from odooops.odoo import addons as graph
from odooops.odoo.envdb import Connection

Q = queries_beside(__file__)
CHECKSUMS = "odooops.module_checksums"
PYTHON = "odooops.python_environment"
SKIPPED = re.compile(r"(^|/)(__pycache__|\.[^/]*)(/|$)|\.(pyc|pyo)$|~$")


@dataclass(frozen=True)
class Plan:
    update: list[str]   # odoo-bin -u (["all"]: every installed module)
    install: list[str]  # odoo-bin -i: modules to run that the database does not have yet
    why: list[str]      # one line per reason, for the log


def version_key(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", version))


def checksum(folder: Path) -> str:
    """A module's files, as click-odoo-update sums them: every file but
    compiled Python, dotfiles and editor backups, by relative path and content."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        relative = path.relative_to(folder).as_posix()
        if SKIPPED.search(relative):
            continue
        digest.update(relative.encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


async def seen(conn: Connection) -> tuple[dict[str, str | None], dict[str, str], str | None]:
    """The installed modules with their versions, the checksums OdooOps last
    recorded and the Python environment the database last ran under."""
    installed = {r["name"]: r["latest_version"] for r in await (await conn.execute(Q["installed"])).fetchall()}
    params = {r["key"]: r["value"] for r in await (await conn.execute(Q["parameters"], ([CHECKSUMS, PYTHON],)))
              .fetchall()}
    try:
        sums = json.loads(params.get(CHECKSUMS) or "{}")
    except ValueError:
        sums = {}
    return installed, sums if isinstance(sums, dict) else {}, params.get(PYTHON)


def plan(addons: graph.Addons, targets: Iterable[str], series: str, installed: dict[str, str | None],
         sums: dict[str, str], python_was: str | None, python_now: str, rule: str) -> Plan:
    install = [m for m in targets if m not in installed]
    why = [f"to install (new): {', '.join(install)}"] if install else []
    if python_was is not None and python_was != python_now:
        return Plan(["all"], install, [*why, "the Python requirements changed: every module is updated"])
    update = []
    for name, was in sorted(installed.items()):
        module = addons.modules.get(name)
        if module is None:
            continue
        if rule == "checksum":
            if sums.get(name) != checksum(module.path):
                update.append(name)
        elif was is None or version_key(graph.adapt_version(module.version, series)) > version_key(was):
            update.append(name)
    if update:
        why.append(("files changed" if rule == "checksum" else "manifest version rose") + ": " + ", ".join(update))
    else:
        why.append("no module's " + ("files changed" if rule == "checksum" else "manifest version rose"))
    return Plan(update, install, why)


async def remember(conn: Connection, addons: graph.Addons, python_now: str) -> None:
    """After a successful update: what the database now runs."""
    installed = [r["name"] for r in await (await conn.execute(Q["installed"])).fetchall()]
    sums = {n: checksum(addons.modules[n].path) for n in installed if n in addons.modules}
    await conn.execute(Q["set_parameter"], {"key": CHECKSUMS, "value": json.dumps(sums, sort_keys=True)})
    await conn.execute(Q["set_parameter"], {"key": PYTHON, "value": python_now})
