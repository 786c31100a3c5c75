"""A demo project: a real Odoo addons repository (two modules, one depending
on the other, with a model, views, access rules, demo data and tests) on the
public Odoo repository at 17.0, an org, and the three stages of branches.
Where the public repository cannot be reached, its builds fail saying so and
how to point the project at a local Odoo source."""

from __future__ import annotations

import shutil
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
FILES = Path(__file__).with_name("demo_repo")  # a real Odoo 17.0 addons repository, no .odooops.toml


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


def make_repo(path: Path) -> Path:
    """A git repository with branches main, staging and feature-hello."""
    if (path / ".git").exists():
        return path
    path.mkdir(parents=True, exist_ok=True)
    _git(path, "init", "-q", "-b", "main")
    shutil.copytree(FILES, path, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
    _git(path, "add", "-A")
    _git(path, "-c", "user.name=OdooOps demo", "-c", "user.email=demo@odooops.invalid",
         "commit", "-q", "-m", "Hello Notes and Hello Board")
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
