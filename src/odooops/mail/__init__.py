"""The mail catcher: an SMTP server that takes every mail a non-production
environment sends, stores it whole and records it, attributed to the
environment whose credentials sent it; nothing it takes is sent on."""

from __future__ import annotations

import hmac
import re
from uuid import UUID

from odooops.odoo.envdb import derived_password
from odooops.settings import Secret, Settings, host_port

USERNAME = re.compile(r"env-([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})")


def password(secret_key: Secret, environment_id: UUID | str) -> str:
    return derived_password(secret_key, f"smtp:{environment_id}")


def credentials(secret_key: Secret, environment_id: UUID | str) -> tuple[str, str]:
    """The SMTP username and password of an environment's catcher account:
    derived from the server key, never stored."""
    return f"env-{environment_id}", password(secret_key, environment_id)


def checked(secret_key: Secret, login: str, given: str) -> UUID | None:
    """The environment a username and password are the credentials of, or
    None; the password compared in constant time."""
    found = USERNAME.fullmatch(login.strip().lower())
    if found is None:
        return None
    environment_id = UUID(found.group(1))
    if not hmac.compare_digest(password(secret_key, environment_id).encode(), given.encode()):
        return None
    return environment_id


def address(settings: Settings) -> tuple[str, int]:
    """Where the catcher listens: ODOOOPS_MAIL_CATCHER_ADDRESS as host and port."""
    return host_port(settings.mail_catcher_address, "ODOOOPS_MAIL_CATCHER_ADDRESS")


__all__ = ["address", "checked", "credentials", "password"]
