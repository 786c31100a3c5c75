"""What the router needs to know of environments, whoever keeps them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol
from uuid import UUID


@dataclass(frozen=True)
class Route:
    environment_id: UUID
    hostname: str
    status: str             # starting | running | sleeping | stopped | crashed | maintenance
    http: str | None        # "host:port" of its HTTP server, None unless running
    websocket: str | None   # "host:port" for /websocket (16+) and /longpolling/ (older); None: the same as http
    stage: str              # production | staging | development
    branch: str


class Routes(Protocol):
    async def resolve(self, hostname: str) -> Route | None: ...
    async def wake(self, environment_id: UUID) -> None: ...
    async def touched(self, environment_id: UUID) -> None: ...
    async def connect(self, environment_id: UUID, token: str) -> str | None: ...
