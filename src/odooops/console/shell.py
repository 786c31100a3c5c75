"""The frame every project page plugs into: the project's sections (one list,
so a new page is one more entry), breadcrumbs and the page header with the
project's Odoo version and, where a branch runs somewhere, its URL."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from odooops.console.rights import is_admin

Project = Mapping[str, Any]


@dataclass(frozen=True)
class Section:
    """One page of a project: `key` is what a page says it is, `path` its
    address under /p/ORG/PROJECT, `shown` whether this caller's role sees it."""

    key: str
    label: str
    path: Callable[[Project], str]
    shown: Callable[[str | None], bool] = lambda role: True


def branch_path(name: str) -> str:
    return "/b/" + quote(name, safe="/")


# Only pages that exist are here: a section whose page is not built yet is
# not shown at all, rather than as a link to nowhere.
SECTIONS: tuple[Section, ...] = (
    Section("branches", "Branches", lambda p: ""),
    Section("builds", "Builds", lambda p: branch_path(p["default_branch"])),
    Section("environments", "Environments", lambda p: "/environments"),
    Section("settings", "Settings", lambda p: "/settings"),
)


@dataclass(frozen=True)
class Link:
    label: str
    href: str
    current: bool = False


def sections(base: str, project: Project, current: str) -> list[Link]:
    """The project's navigation for this caller, `current` marked."""
    role = project.get("my_role")
    return [Link(s.label, base + s.path(project), s.key == current) for s in SECTIONS if s.shown(role)]


def shell(ref: str, project: Project, current: str, trail: tuple[tuple[str, str], ...] = (),
          url: str | None = None) -> dict[str, Any]:
    """What base.html needs to frame a project page: breadcrumbs (Projects,
    the org, the project, then `trail`, the last one the page itself), the
    sections with `current` marked, and the header's facts. `url` is where
    the branch shown runs, once it has an environment."""
    base = f"/p/{ref}"
    org, _, slug = ref.partition("/")
    crumbs = [Link("Projects", "/"), Link(org, "/?q=" + quote(org + "/", safe="")), Link(slug, base)]
    crumbs += [Link(label, href) for label, href in trail]
    crumbs[-1] = Link(crumbs[-1].label, crumbs[-1].href, True)
    return {"base": base, "ref": ref, "crumbs": crumbs, "nav": sections(base, project, current),
            "name": project.get("name") or slug, "odoo_version": project.get("odoo_version"),
            "repo_url": project.get("repo_url"), "archived": bool(project.get("archived_at")),
            "role": project.get("my_role"), "admin": is_admin(project.get("my_role")), "url": url}
