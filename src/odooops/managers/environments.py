"""Environments as people, the router and the runners see them."""

from __future__ import annotations

import hashlib
import secrets
from typing import TypedDict
from uuid import UUID

from odooops.db import queries_beside
from odooops.errors import InvalidInput
from odooops.managers import Manager, lookup

Q = queries_beside(__file__)
ACTIONS = ("start", "stop", "restart")
CONNECT_TTL_SECONDS = 60


class RoutingRow(TypedDict):
    label: str
    status: str
    address: str | None
    websocket_address: str | None
    domains: list[str]


def token_digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class Environments(Manager):
    # people (row-level security and the functions' own checks)

    async def project_id(self, project_ref: str) -> UUID:
        async with self.tx() as conn:
            return (await lookup.project(conn, project_ref))["id"]

    async def branch_id(self, project_ref: str, branch: str) -> UUID:
        async with self.tx() as conn:
            return (await lookup.branch(conn, await lookup.project(conn, project_ref), branch))["id"]

    async def of_project(self, project_id: UUID) -> list[dict]:
        return await self.all(Q["of_project"], {"project_id": project_id})

    async def of_branch(self, branch_id: UUID) -> dict | None:
        return await self.one(Q["of_branch"], {"branch_id": branch_id})

    async def control(self, branch_id: UUID, action: str) -> dict:
        if action not in ACTIONS:
            raise InvalidInput(f"an environment is started, stopped or restarted, not {action!r}")
        return await self.row(Q["control"], {"branch_id": branch_id, "action": action})

    async def connect_token(self, branch_id: UUID, login: str, ttl: int = CONNECT_TTL_SECONDS) -> str:
        """A single-use token to open the environment as the Odoo user `login`;
        only its digest is stored."""
        login = login.strip()
        if not 0 < len(login) <= 255:
            raise InvalidInput("say which Odoo user to connect as (its login)")
        token = secrets.token_urlsafe(32)
        await self.row(Q["create_connect_token"], {"branch_id": branch_id, "login": login,
                                                   "sha256": token_digest(token), "ttl": ttl})
        return token

    async def domains(self, branch_id: UUID) -> list[dict]:
        return await self.all(Q["domains"], {"branch_id": branch_id})

    async def add_domain(self, branch_id: UUID, domain: str) -> dict:
        """A custom domain for the branch's environment (project admins; a
        domain another project has is refused)."""
        return await self.row(Q["add_domain"], {"branch_id": branch_id, "domain": domain})

    async def remove_domain(self, branch_id: UUID, domain: str) -> bool:
        return bool((await self.row(Q["remove_domain"], {"branch_id": branch_id, "domain": domain}))["removed"])

    async def connections(self, branch_id: UUID, limit: int = 20) -> list[dict]:
        return await self.all(Q["connections"], {"branch_id": branch_id, "limit": limit})

    # runners (service), fenced by the serve run's attempt

    async def up(self, run_id: int, attempt: int, address: str, websocket: str | None, database: str) -> dict:
        return await self.row(Q["up"], {"run_id": run_id, "attempt": attempt, "address": address,
                                        "websocket": websocket, "database": database})

    async def check(self, run_id: int, attempt: int, idle_seconds: int) -> str:
        """serve, replaced, stopped or sleep: what the serve run does now."""
        return (await self.row(Q["check"], {"run_id": run_id, "attempt": attempt,
                                            "idle_seconds": idle_seconds}))["action"]

    async def report(self, run_id: int, attempt: int, *, status: str | None = None, health: str | None = None,
                     detail: str | None = None, memory: int | None = None, restarts: int | None = None) -> None:
        await self.one(Q["report"], {"run_id": run_id, "attempt": attempt, "status": status, "health": health,
                                     "detail": detail, "memory": memory, "restarts": restarts})

    async def collect(self, host: str, days: int) -> list[dict]:
        return await self.all(Q["collect"], {"host": host, "days": days})

    # the router (service)

    async def route(self, label: str) -> dict | None:
        return await self.one(Q["route"], {"label": label})

    async def route_domain(self, domain: str) -> dict | None:
        return await self.one(Q["route_domain"], {"domain": domain})

    async def wake(self, environment_id: UUID) -> None:
        await self.one(Q["wake"], {"id": environment_id})

    async def touch(self, environment_id: UUID) -> None:
        await self.one(Q["touch"], {"id": environment_id})

    async def use_token(self, environment_id: UUID, token: str, client: str) -> str | None:
        """The login a Connect as token was for, once: None when it is unknown, used or expired."""
        row = await self.one(Q["use_token"], {"id": environment_id, "sha256": token_digest(token), "from": client})
        return row["login"] if row else None

    async def routing_table(self) -> list[RoutingRow]:
        return [RoutingRow(label=r["label"], status=str(r["status"]), address=r["address"],
                           websocket_address=r["websocket_address"], domains=list(r["domains"] or []))
                for r in await self.all(Q["routing_table"])]
