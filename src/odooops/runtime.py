"""From settings to connections: which server, which roles, which secrets."""

from __future__ import annotations

import functools
import json
import os
import secrets
from pathlib import Path

from psycopg.conninfo import conninfo_to_dict, make_conninfo

from odooops.db import embedded, migrate
from odooops.db.database import Actor, Database
from odooops.managers.project_secrets import ProjectSecrets
from odooops.sealing import SecretBox
from odooops.settings import Secret, Settings

SECRETS_FILE = "secrets.json"


@functools.cache
def owner_conninfo(settings: Settings) -> str:
    """The owner role's connection: the configured URL, else the embedded server
    (started once per process, however many parts ask)."""
    if settings.database_url is not None:
        return make_conninfo(settings.database_url.reveal())
    return make_conninfo(embedded.start(settings.data_dir))


def app_password(settings: Settings) -> Secret:
    """The application role's password: configured, else generated once and
    kept (mode 0600) in the data directory."""
    return settings.app_password or _kept_secret(settings, "app_password")


def secret_key(settings: Settings) -> Secret:
    """The server's key (webhook secrets are derived from it): configured, else
    generated once and kept beside the application role's password."""
    return settings.secret_key or _kept_secret(settings, "secret_key")


def env_superuser_password(settings: Settings) -> Secret:
    """The password of the embedded environments' server's superuser (Odoo's
    databases): generated once and kept beside the other generated secrets."""
    return _kept_secret(settings, "env_superuser_password")


def secret_box(settings: Settings) -> SecretBox:
    """What seals and opens project secrets, under a key derived from the server key."""
    return SecretBox(secret_key(settings))


def _kept_secret(settings: Settings, name: str) -> Secret:
    path = settings.data_dir / SECRETS_FILE
    stored = _read_secrets(path)
    if name not in stored:
        stored[name] = secrets.token_urlsafe(32)
        _write_secrets(path, stored)
    return Secret(stored[name])


def app_conninfo(settings: Settings, owner: str) -> str:
    """Same server and database as the owner, logged in as the application role."""
    params = conninfo_to_dict(owner)
    params.update(user=settings.app_role, password=app_password(settings).reveal())
    return make_conninfo("", **params)


def display_url(conninfo: str) -> str:
    """A postgresql:// URL for people and scripts (the password included)."""
    from urllib.parse import quote, urlencode

    p = {k: str(v) for k, v in conninfo_to_dict(conninfo).items() if v is not None}
    auth = quote(p.pop("user", "") or "", safe="")
    if p.get("password"):
        auth += ":" + quote(p.pop("password"), safe="")
    host = p.pop("host", "") or ""
    port = p.pop("port", None)
    dbname = p.pop("dbname", "") or ""
    netloc = host if host and not host.startswith("/") else ""
    if host.startswith("/"):
        p["host"] = host
    if port and netloc:
        netloc += f":{port}"
    query = ("?" + urlencode(p)) if p else ""
    return f"postgresql://{auth}@{netloc}/{quote(dbname, safe='')}{query}"


async def prepare(settings: Settings, *, always: bool = False) -> str:
    """Start the server if embedded; migrate and provision the application role
    when needed (or `always`); return the owner conninfo."""
    owner = owner_conninfo(settings)
    if always or not await migrate.up_to_date(owner, settings.app_role):
        await migrate.migrate(owner)
        await migrate.ensure_app_role(owner, settings.app_role, app_password(settings).reveal())
        await seal_secrets(settings)
    return owner


async def seal_secrets(settings: Settings) -> int:
    """Seal what migration 0015 moved in clear out of the projects' settings:
    the database cannot, as the key is the control plane's. Done after every
    migration, at once; how many were sealed."""
    async with Database(app_conninfo(settings, owner_conninfo(settings)), max_size=1) as db:
        return await ProjectSecrets(db, Actor.service(), secret_box(settings)).seal_unsealed()


def database(settings: Settings) -> Database:
    """The application's database, as the application role (not yet opened)."""
    owner = owner_conninfo(settings)
    return Database(app_conninfo(settings, owner), max_size=settings.pool_size)


def runner(settings: Settings, db: Database, executor=None):
    """A runner on `db`, configured from settings; it listens for wake-ups on a
    connection of its own and masks the database passwords in every log."""
    from odooops.runner.worker import Runner

    owner = owner_conninfo(settings)
    secrets = [app_password(settings).reveal()]
    if settings.database_url is not None:
        secrets.append(str(conninfo_to_dict(owner).get("password") or ""))
    return Runner(db, app_conninfo(settings, owner), settings, executor, secrets)


def _read_secrets(path: Path) -> dict[str, str]:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return {}


def _write_secrets(path: Path, values: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(values, f)
    os.replace(tmp, path)
