"""The router's view of environments, kept in the control plane's database,
and the URL each environment is reached at."""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import urlsplit
from uuid import UUID

from odooops.db import Actor, Database
from odooops.errors import InvalidInput
from odooops.managers.environments import Environments
from odooops.settings import Secret, Settings, public_url

from . import connect
from .routes import Route
from .serve import connect_secret

LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]([a-z0-9-]{0,61}[a-z0-9])?$")


def checked_domain(settings: Settings, domain: str) -> str:
    """A custom domain as OdooOps keeps it (lowercase, ASCII: IDNA for
    others, no trailing dot), or InvalidInput saying why not: not a
    hostname, one of the control plane's own, or under the environments'
    base domain (those are the branches' own names)."""
    name = domain.strip().rstrip(".").lower()
    try:
        name = name.encode("idna").decode("ascii")
    except UnicodeError:
        raise InvalidInput(f"{domain!r} is not a domain name") from None
    if not DOMAIN.match(name):
        raise InvalidInput(f"{domain!r} is not a domain name such as shop.example.com")
    if name in own_hosts(settings) or name == settings.environment_domain:
        raise InvalidInput(f"{name} is the control plane's own name")
    if name.endswith("." + settings.environment_domain):
        raise InvalidInput(f"{name} is under {settings.environment_domain}, where each branch has its own name "
                           "already")
    return name


def environment_url(settings: Settings, label: str) -> str:
    """`<scheme>://<label>.<domain>[:<port>]/`, on the public URL's scheme and port."""
    parts = urlsplit(public_url(settings))
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{label}.{settings.environment_domain}{port}/"


def described(settings: Settings, row: dict) -> dict:
    """An environment as the API, the CLI and the console show it: with its
    URL and, for a development branch, when its databases are collected."""
    shown = {k: v for k, v in row.items() if k not in ("address", "websocket_address")}
    shown["url"] = environment_url(settings, row["label"])
    shown["status"] = str(row["status"])
    collect_on = None
    if str(row.get("stage")) == "development" and row.get("last_build_at"):
        collect_on = row["last_build_at"] + timedelta(days=settings.environment_gc_days)
    shown["collect_on"] = row.get("collected_at") or collect_on
    return shown


def own_hosts(settings: Settings) -> set[str]:
    """The control plane's own names: requests for them are the console's and the API's."""
    hosts = {"localhost", "127.0.0.1", "::1", settings.host.lower()}
    hosts.add((urlsplit(public_url(settings)).hostname or "").lower())
    return hosts - {""}


class DatabaseRoutes:
    def __init__(self, db: Database, settings: Settings, secret_key: Secret):
        self.environments = Environments(db, Actor.service())
        self.suffix = "." + settings.environment_domain
        self.secret_key = secret_key

    async def resolve(self, hostname: str) -> Route | None:
        if not hostname.endswith(self.suffix):
            row = await self.environments.route_domain(hostname) if DOMAIN.match(hostname) else None
        else:
            label = hostname[:-len(self.suffix)]
            row = await self.environments.route(label) if LABEL.match(label) else None
        if row is None:
            return None
        running = row["status"] == "running"
        return Route(row["id"], hostname, str(row["status"]), row["address"] if running else None,
                     row["websocket_address"] if running else None, str(row["stage"]), row["branch"])

    async def wake(self, environment_id: UUID) -> None:
        await self.environments.wake(environment_id)

    async def touched(self, environment_id: UUID) -> None:
        await self.environments.touch(environment_id)

    async def connect(self, environment_id: UUID, token: str) -> str | None:
        login = await self.environments.use_token(environment_id, token, "router")
        if login is None:
            return None
        return connect.sign(connect_secret(self.secret_key, environment_id), login)
