"""Finding things by the names people type, inside a manager's transaction.
What row-level security hides is reported exactly like what does not exist."""

from __future__ import annotations

from odooops.db import queries_beside
from odooops.errors import InvalidInput, NotFound

Q = queries_beside(__file__)


def split_project_ref(ref: str) -> tuple[str, str]:
    org_slug, sep, slug = ref.partition("/")
    if not sep or not org_slug or not slug or "/" in slug:
        raise InvalidInput(f"name a project as ORG/PROJECT, not {ref!r}")
    return org_slug, slug


async def _one(conn, name: str, params: dict, missing: str) -> dict:
    row = await (await conn.execute(Q[name], params)).fetchone()
    if row is None:
        raise NotFound(missing)
    return row


async def user(conn, email: str) -> dict:
    return await _one(conn, "user", {"email": email.strip()}, f"no user with email {email}")


async def org(conn, slug: str) -> dict:
    return await _one(conn, "org", {"slug": slug}, f"no org {slug!r}")


async def project(conn, ref: str) -> dict:
    org_slug, slug = split_project_ref(ref)
    return await _one(conn, "project", {"org_slug": org_slug, "slug": slug}, f"no project {ref!r}")


async def branch(conn, project_row: dict, name: str) -> dict:
    return await _one(conn, "branch", {"project_id": project_row["id"], "name": name},
                      f"project has no branch {name!r}")
