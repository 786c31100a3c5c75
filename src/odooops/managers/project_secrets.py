"""A project's secret settings (`secret_env`): kept in ops.project_secrets,
which no user role can read, sealed with a key derived from the server key
(odooops.sealing). Members learn their names; admins set and drop them through
functions that check their role; the control plane alone opens them, for the
phases of a build."""

from __future__ import annotations

from uuid import UUID

from odooops.db import Actor, Database, queries_beside
from odooops.managers import Manager
from odooops.sealing import SecretBox

Q = queries_beside(__file__)
MASK = "********"


async def names(conn, project_id: UUID) -> list[str]:
    """The names of the project's secrets, for any member (none for others)."""
    return [r["name"] for r in await (await conn.execute(Q["names"], {"project_id": project_id})).fetchall()]


async def put(conn, box: SecretBox, project_id: UUID, values: dict[str, str]) -> None:
    """Seal and set secrets by name, in the caller's transaction (admins)."""
    for name, value in values.items():
        nonce, ciphertext = box.seal(project_id, name, value)
        await conn.execute(Q["put"], {"project_id": project_id, "name": name, "nonce": nonce,
                                      "ciphertext": ciphertext})


async def drop(conn, project_id: UUID, which: list[str] | None = None) -> None:
    """Forget the named secrets, or all of them (admins)."""
    await conn.execute(Q["drop"], {"project_id": project_id, "names": which})


class ProjectSecrets(Manager):
    """The control plane's side: the values themselves."""

    def __init__(self, db: Database, actor: Actor, box: SecretBox):
        super().__init__(db, actor)
        self.box = box

    async def reveal(self, project_id: UUID) -> dict[str, str]:
        """Every secret of the project in clear; SecretUnreadable when one was
        sealed under another server key or for another project."""
        rows = await self.all(Q["of_project"], {"project_id": project_id})
        return {r["name"]: r["unsealed"] if r["unsealed"] is not None
                else self.box.open(project_id, r["name"], r["nonce"], r["ciphertext"]) for r in rows}

    async def seal_unsealed(self) -> int:
        """Seal the clear values migration 0015 moved out of the projects'
        settings (they wait in ops.project_secrets, closed to users); how many."""
        async with self.tx() as conn:
            rows = await (await conn.execute(Q["unsealed"])).fetchall()
            for r in rows:
                nonce, ciphertext = self.box.seal(r["project_id"], r["name"], r["unsealed"])
                await conn.execute(Q["seal"], {"project_id": r["project_id"], "name": r["name"], "nonce": nonce,
                                               "ciphertext": ciphertext})
        return len(rows)
