"""What a new commit does to a branch's database, as Odoo.sh's stages have it
(odoo/stages.py does it): development, a fresh database with demo data and
tests; staging, a fresh copy of production's snapshot (or, by the branch
setting staging_data, an update of its previous database); production, an
update in place, or a new database at its first build. Then the snapshot
staging builds clone, production's last updates with their reverts, and its
pre-update copies: on the lanes' cards, and on a branch's Database page.
The database decides who may refresh the snapshot; a hidden button is a
courtesy."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import Response

from odooops.console.builds import branch_url
from odooops.console.environments import briefly, page_path
from odooops.console.render import page
from odooops.console.rights import is_admin, may_operate
from odooops.console.session import Seen
from odooops.console.shell import shell
from odooops.db import Actor, Database
from odooops.errors import NotFound
from odooops.managers.branches import Branches
from odooops.managers.environments import Environments
from odooops.managers.projects import Projects
from odooops.managers.updates import Updates, copy_view
from odooops.managers.vocabulary import update_label

router = APIRouter(include_in_schema=False)
FACTS_SECONDS = 15   # the lanes' live stream reads these facts again at least this often
UPDATES_SHOWN = 20   # on a production branch's Database page
MODULES_SHOWN = 4    # named on a card; the Database page names them all

# what a new commit does (the mode), in a card's words and in the Database page's
NEXT = {
    "fresh": "fresh database with demo data, tests",
    "first": "first build: new database",
    "update": "update in place",
    "copy": "fresh copy of production",
    "previous": "update of its previous database",
    "new": "fresh database: production has none yet",
}
EXPLAINED = {
    "fresh": "A new database with Odoo's demo data, the branch's modules installed and their tests run.",
    "first": "Production has no database yet: its first build makes one, without demo data and without "
             "tests, then an idle snapshot of it for staging builds.",
    "update": "The same database, updated in place behind a maintenance page: the server stops, a pre-update "
              "copy is taken, the modules that need it are updated, the new code starts and must be healthy. "
              "If any step fails, the copy becomes the database again and the previous build serves again.",
    "copy": "A fresh copy of production's snapshot, taken in seconds, neutralized (crons off, mail to the "
            "catcher, payment and delivery in test mode) and verified, then updated as production would be.",
    "previous": "The branch's previous database, updated in place as production's is (branch setting "
                "staging_data = previous).",
    "new": "Production has no database yet, so this staging build starts from a fresh database without "
           "demo data, as production's first build does.",
}


def has_database(env: Mapping[str, Any] | None) -> bool:
    """Whether an environment holds a database a build may update in place
    (the rule of Stages.mode)."""
    return bool(env and env.get("build_id") and env.get("database") and env.get("collected_at") is None)


def mode(stage: str, staging_data: str, own: Mapping | None, production: Mapping | None) -> str:
    """What a new commit of a branch does to its database (a key of NEXT)."""
    if stage == "development":
        return "fresh"
    if stage == "production":
        return "update" if has_database(own) else "first"
    if staging_data == "previous" and has_database(own):
        return "previous"
    return "copy" if has_database(production) else "new"


def age(moment: datetime, now: datetime | None = None) -> str:
    """'2 h', '5 min', '3 d': how old something is, at a glance."""
    seconds = ((now or datetime.now(UTC)) - moment).total_seconds()
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{int(seconds // size)} {unit}"
    return "under a minute"


def until(moment: datetime | None, now: datetime | None = None) -> str:
    """When a pre-update copy is dropped: 'in 6 d', 'due now'; '' for never."""
    if moment is None:
        return ""
    if moment <= (now or datetime.now(UTC)):
        return "due now"
    return "in " + age(now or datetime.now(UTC), moment)


def named(modules: list[str], most: int | None = MODULES_SHOWN) -> str:
    """'sale, stock and 3 more'."""
    if most is None or len(modules) <= most:
        return ", ".join(modules)
    return ", ".join(modules[:most]) + f" and {len(modules) - most} more"


def seconds(value: Any) -> float | None:
    """A numeric column (maintenance_seconds) as a float."""
    return None if value is None else float(value)


def update_shown(row: Mapping[str, Any], most: int | None = MODULES_SHOWN) -> dict:
    """One production update as a card or the Database page says it."""
    step, detail = row.get("failed_step"), row.get("detail")
    why = ": ".join(str(part) for part in (step, detail) if part)
    label = update_label(row["status"])
    return {"id": row["id"], "status": row["status"], "label": label.word, "tone": label.tone,
            "build_id": row["build_id"], "previous_build_id": row.get("previous_build_id"),
            "updated": named(list(row["updated_modules"] or []), most),
            "installed": named(list(row["installed_modules"] or []), most),
            "at": row.get("finished_at") or row["created_at"], "seconds": seconds(row.get("maintenance_seconds")),
            "reverted": (f"reverted: {why}" if row["status"] == "reverted" else
                         f"not reverted: {why}" if row["status"] == "failed" else "")}


def copy_shown(row: Mapping[str, Any]) -> dict:
    return {**copy_view(row), "expires": until(row.get("expires_at"))}


@dataclass(frozen=True)
class ProjectFacts:
    """What the cards of one project need besides branches and environments."""

    production_id: UUID | None
    snapshot: dict | None
    last_update: dict | None
    staging_data: dict[str, str] = field(default_factory=dict)  # staging branch → its setting


async def project_facts(db: Database, actor: Actor, ref: str, project_id: UUID,
                        branches: Iterable[Mapping]) -> ProjectFacts:
    updates = Updates(db, actor)
    live = [b for b in branches if b.get("archived_at") is None]
    production = next((b["id"] for b in live if b["stage"] == "production"), None)
    last = await updates.of_branch(production, 1) if production else []
    staging = {b["name"]: str((await Branches(db, actor).settings_of(ref, b["name"])).get("staging_data")
                              or "production")
               for b in live if b["stage"] == "staging"}
    return ProjectFacts(production, await updates.snapshot(project_id), last[0] if last else None, staging)


def database_path(ref: str, branch: str) -> str:
    return f"/p/{ref}/database/{quote(branch, safe='/')}"


def branch_facts(ref: str, role: str | None, branch: Mapping, environments: Mapping[UUID, Mapping],
                 facts: ProjectFacts, now: datetime | None = None) -> dict:
    """One branch's card facts: what a new commit does, the snapshot's age
    where it matters, production's last update, whether to offer a refresh."""
    stage = str(branch["stage"])
    production = environments.get(facts.production_id) if facts.production_id else None
    how = mode(stage, facts.staging_data.get(branch["name"], "production"), environments.get(branch["id"]),
               production)
    snapshot_matters = (stage == "production" and has_database(production)) or how == "copy"
    snap = facts.snapshot
    return {"mode": how, "next": NEXT[how], "explained": EXPLAINED[how],
            "href": database_path(ref, branch["name"]) if stage != "development" else None,
            "snapshot": ({"age": age(snap["created_at"], now), "at": snap["created_at"],
                          "build_id": snap.get("build_id")} if snap else None) if snapshot_matters else None,
            "snapshot_shown": snapshot_matters,
            "last_update": update_shown(facts.last_update) if stage == "production" and facts.last_update else None,
            "refresh": snapshot_matters and may_operate(role, "production")}


def with_facts(ref: str, role: str | None, rows: list[dict], environments: Iterable[Mapping],
               facts: ProjectFacts) -> list[dict]:
    """The lanes' rows, each with its stage facts."""
    by_branch = {e["branch_id"]: e for e in environments}
    return [{**r, "stage_facts": branch_facts(ref, role, r, by_branch, facts)} for r in rows]


@router.get("/p/{org}/{project}/database/{branch:path}")
async def database_page(request: Request, who: Seen, org: str, project: str, branch: str) -> Response:
    """A branch's Database page: what a new commit does to it; for staging
    and production the snapshot and Refresh staging data; for production its
    recent updates and its pre-update copies."""
    ref, db = f"{org}/{project}", request.app.state.db
    found = await Projects(db, who.actor).seen(ref)  # a stranger's project: NotFound, a 404 page
    branches = await Branches(db, who.actor).list_all(ref)
    row = next((b for b in branches if b["name"] == branch), None)
    if row is None:
        raise NotFound(f"project has no branch {branch!r}")
    envs = await Environments(db, who.actor).of_project(found["id"])
    facts = await project_facts(db, who.actor, ref, found["id"], branches)
    card = branch_facts(ref, found["my_role"], row, {e["branch_id"]: e for e in envs}, facts)
    updates = Updates(db, who.actor)
    production = row["stage"] == "production"
    history = [update_shown(u, None) for u in await updates.of_branch(row["id"], UPDATES_SHOWN)] if production else []
    copies = [copy_shown(c) for c in await updates.copies(row["id"]) if c["kind"] == "update"] if production else []
    here = database_path(ref, branch)
    own = next((e for e in envs if e["branch_id"] == row["id"]), None)
    return page(request, "database.html", project=found, ref=ref, branch=row, facts=card, updates=history,
                copies=copies, here=here, builds_href=branch_url(ref, branch), is_admin=is_admin(found["my_role"]),
                staging_data=facts.staging_data.get(branch, "production"),
                environment=briefly(request.app.state.settings, own), environments_href=page_path(ref),
                shell=shell(ref, found, "branches", ((branch, branch_url(ref, branch)), ("Database", here))))
