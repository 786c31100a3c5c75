"""A demo project: a small Odoo module in a local git repository, an org, and
the three stages of branches, so a new user has something to look at."""

from __future__ import annotations

import subprocess
from pathlib import Path

from odooops import repos
from odooops.db import Actor, Database
from odooops.errors import Conflict
from odooops.managers.branches import Branches
from odooops.managers.orgs import Orgs
from odooops.managers.projects import Projects
from odooops.managers.runs import Runs

PROJECT = "demo/hello-odoo"
FILES = {
    "hello_odoo/__init__.py": "",
    "hello_odoo/__manifest__.py": (
        "{\n    'name': 'Hello Odoo',\n    'version': '17.0.1.0.0',\n    'depends': ['base'],\n"
        "    'data': [],\n    'installable': True,\n    'license': 'LGPL-3',\n}\n"),
    ".odooops.toml": (
        "# The phases a build runs, in order.\n[[phases]]\nname = \"lint\"\n"
        "command = \"python3 -m py_compile hello_odoo/__manifest__.py\"\n"),
    "README.md": "# Hello Odoo\n\nA demo project for OdooOps.\n",
}


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


def make_repo(path: Path) -> Path:
    """A git repository with branches main, staging and feature-hello."""
    if (path / ".git").exists():
        return path
    path.mkdir(parents=True, exist_ok=True)
    _git(path, "init", "-q", "-b", "main")
    for name, text in FILES.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(text)
    _git(path, "add", "-A")
    _git(path, "-c", "user.name=OdooOps demo", "-c", "user.email=demo@odooops.invalid",
         "commit", "-q", "-m", "Hello Odoo")
    _git(path, "branch", "staging")
    _git(path, "branch", "feature-hello")
    return path


async def create(db: Database, data_dir: Path) -> str:
    """Create the demo project if it is not there yet; return its name."""
    actor = Actor.service()
    repo = make_repo(data_dir / "demo" / "hello-odoo")
    try:
        await Orgs(db, actor).create("demo", "Demo")
    except Conflict:
        pass
    # the demo's folder is the operator's to give, even with no ODOOOPS_REPO_ROOTS
    await Orgs(db, actor).allow_path("demo", str(repo.parent), repos.Host((), data_dir))
    try:
        await Projects(db, actor).create(PROJECT, str(repo), name="Hello Odoo")
    except Conflict:
        return PROJECT
    await Branches(db, actor).add(PROJECT, "staging", "staging")
    await Branches(db, actor).add(PROJECT, "feature-hello", "development")
    for branch in ("main", "staging", "feature-hello"):
        await Runs(db, actor).trigger_build(PROJECT, branch)
    return PROJECT
