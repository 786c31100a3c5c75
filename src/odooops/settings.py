"""Settings, read once from `ODOOOPS_*` environment variables. CLI flags are
twins of these variables and override them."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

import platformdirs


class Secret:
    """A value that never shows itself in logs, reprs or tracebacks."""

    def __init__(self, value: str):
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


def _secret(name: str) -> Secret | None:
    value = os.environ.get(name)
    return Secret(value) if value else None


def default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir("odooops", appauthor=False))


# Every setting, with its default and meaning; a test holds the README to this list.
DOCUMENTED = [
    ("ODOOOPS_DATA_DIR", "<user data dir>/odooops", "Where OdooOps keeps the embedded PostgreSQL, generated secrets and artifacts."),
    ("ODOOOPS_DATABASE_URL", "(embedded)", "PostgreSQL 14+ URL of the owner role (runs migrations). Unset: an embedded server in the data dir."),
    ("ODOOOPS_APP_ROLE", "odooops_app", "Login role the application connects as; it can only SET ROLE to anon, authenticated, service_role."),
    ("ODOOOPS_APP_PASSWORD", "(generated)", "Password of the application role. Unset: generated once and kept in the data dir."),
    ("ODOOOPS_POOL_SIZE", "10", "Largest number of database connections one process opens."),
    ("ODOOOPS_AS", "(none)", "Email of the user the CLI acts as, under row-level security. Unset: the local operator (service_role)."),
    ("ODOOOPS_DEMO", "(off)", "`odooops up --demo`: also create the demo project."),
]


@dataclass(frozen=True)
class Settings:
    data_dir: Path = field(default_factory=default_data_dir)
    database_url: Secret | None = None
    app_role: str = "odooops_app"
    app_password: Secret | None = None
    pool_size: int = 10
    acting_as: str | None = None

    @classmethod
    def from_env(cls) -> Settings:
        env = os.environ
        return cls(
            data_dir=Path(env["ODOOOPS_DATA_DIR"]) if env.get("ODOOOPS_DATA_DIR") else default_data_dir(),
            database_url=_secret("ODOOOPS_DATABASE_URL"),
            app_role=env.get("ODOOOPS_APP_ROLE") or "odooops_app",
            app_password=_secret("ODOOOPS_APP_PASSWORD"),
            pool_size=_positive_int(env.get("ODOOOPS_POOL_SIZE"), 10, "ODOOOPS_POOL_SIZE"),
            acting_as=env.get("ODOOOPS_AS") or None,
        )

    def with_overrides(self, **values: object) -> Settings:
        return replace(self, **{k: v for k, v in values.items() if v is not None})


def _positive_int(raw: str | None, default: int, name: str) -> int:
    from odooops.errors import InvalidInput

    if not raw:
        return default
    if not raw.isdigit() or int(raw) < 1:
        raise InvalidInput(f"{name} must be a positive whole number, not {raw!r}")
    return int(raw)
