"""Settings, read once from `ODOOOPS_*` environment variables. CLI flags are
twins of these variables and override them."""

from __future__ import annotations

import os
import re
import socket
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import platformdirs

from odooops.errors import InvalidInput


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


MAIL_MAX_BYTES = 25 * 1024 * 1024

# Every setting, with its default and meaning; a test holds docs/configuration.md to this list.
DOCUMENTED = [
    ("ODOOOPS_DATA_DIR", "<user data dir>/odooops",
     "Where OdooOps keeps the embedded PostgreSQL, generated secrets and artifacts."),
    ("ODOOOPS_DATABASE_URL", "(embedded)",
     "PostgreSQL 14+ URL of the owner role (runs migrations). Unset: an embedded server in the data dir."),
    ("ODOOOPS_ENV_DATABASE_URL", "(embedded)",
     "PostgreSQL 14+ URL of a role that may create roles and databases, for Odoo's databases (never the "
     "control plane's). Unset: a second embedded server in the data dir, reached over a Unix socket only."),
    ("ODOOOPS_TEMPLATE_CACHE_SIZE", "10",
     "How many database templates (a project's dependencies installed) the environments' server keeps."),
    ("ODOOOPS_TEMPLATE_MAX_AGE_DAYS", "14", "A database template unused for this many days is dropped."),
    ("ODOOOPS_CACHE_DIR", "<data dir>",
     "Where a runner keeps what builds share on its host: git mirrors, Odoo source checkouts and virtualenvs."),
    ("ODOOOPS_ODOO_REQUIREMENT_SUBSTITUTES", "psycopg2=psycopg2-binary,python-ldap=",
     "Requirements of Odoo's requirements.txt replaced when its virtualenv is made (NAME=REPLACEMENT, "
     "comma-separated; an empty replacement leaves the line out): those that need system headers to build."),
    ("ODOOOPS_ODOO_PYTHON", "(the runner's own)",
     "The Python interpreter of each Odoo version's virtualenvs, comma-separated VERSION=PATH pairs (e.g. "
     "16.0=/usr/bin/python3.10): an Odoo version's requirements pin what that version supports."),
    ("ODOOOPS_APP_ROLE", "odooops_app",
     "Login role the application connects as; it can only SET ROLE to anon, authenticated, service_role."),
    ("ODOOOPS_APP_PASSWORD", "(generated)",
     "Password of the application role. Unset: generated once and kept in the data dir."),
    ("ODOOOPS_REPO_ROOTS", "(none)",
     "Folders (colon-separated, absolute) whose local git repositories projects may use: each org only "
     "inside the roots the operator assigned it (`odooops org allow-path`). Unset: remote repositories "
     "only (and the demo's)."),
    ("ODOOOPS_SECRET_KEY", "(generated)",
     "Key the webhook secrets are derived from and project secrets are sealed with; every API host and "
     "runner of one database needs the same. Unset: generated once and kept in the data dir."),
    ("ODOOOPS_POOL_SIZE", "10", "Largest number of database connections one process opens."),
    ("ODOOOPS_AS", "(none)",
     "Email of the user the CLI acts as, under row-level security. Unset: the local operator "
     "(service_role)."),
    ("ODOOOPS_DEMO", "(off)", "`odooops up --demo`: also create the demo project."),
    ("ODOOOPS_HOST", "127.0.0.1", "Address the HTTP server listens on."),
    ("ODOOOPS_PORT", "8600", "Port of the HTTP server (API, and the console as it lands)."),
    ("ODOOOPS_PUBLIC_URL", "http://HOST:PORT",
     "Address people and git hosts reach the server at (scheme, host and port), used in the links and "
     "webhook URLs OdooOps prints. Unset: the address the server listens on."),
    ("ODOOOPS_SECURE_COOKIES", "auto",
     "Secure flag of the console session cookie: auto (Secure unless the request came over plain http), "
     "always, never."),
    ("ODOOOPS_FORWARDED_ALLOW_IPS", "127.0.0.1",
     "Proxies whose X-Forwarded-For/-Proto headers are believed (comma-separated addresses, or *)."),
    ("ODOOOPS_RUNNER_CONCURRENCY", "2", "How many runs one runner executes at once."),
    ("ODOOOPS_RUNNER_KINDS", "build,cleanup,serve,snapshot",
     "Comma-separated kinds of run a runner claims (cleanup: an archived branch's Odoo databases dropped; "
     "serve: the environments' Odoo servers)."),
    ("ODOOOPS_RUNNER_HOST", "(this host's name)",
     "The name of the runner's host: an environment's server, its databases and their cleanup run on the "
     "host that built it. Runners of one host share it (and the data dir)."),
    ("ODOOOPS_RUNNER_ADDRESS", "127.0.0.1",
     "Address this runner's environments listen on, as the router (and a proxy in front) reach them: "
     "loopback when the control plane runs on the same host, else an address of this host they can reach."),
    ("ODOOOPS_ENVIRONMENT_DOMAIN", "localhost",
     "Environments' URLs are <branch>-<project>-<org>.DOMAIN, on ODOOOPS_PUBLIC_URL's scheme and port "
     "(browsers send *.localhost to this machine, so the default needs no DNS); a wildcard DNS record "
     "for *.DOMAIN points at the control plane or its proxy."),
    ("ODOOOPS_ENVIRONMENT_IDLE_MINUTES", "30",
     "A development or staging environment with no request for this long sleeps (0: never); the next "
     "request wakes it."),
    ("ODOOOPS_ENVIRONMENT_GC_DAYS", "3",
     "A development branch's databases and filestores are dropped this many days after its last build."),
    ("ODOOOPS_POLL_SECONDS", "2", "How often an idle runner looks for work when no notification woke it."),
    ("ODOOOPS_HEARTBEAT_SECONDS", "5", "How often a runner renews its leases and reaps those of dead workers."),
    ("ODOOOPS_LEASE_SECONDS", "30",
     "How long a claim lasts without a heartbeat before another runner may take the run."),
    ("ODOOOPS_SHUTDOWN_GRACE_SECONDS", "30",
     "On SIGTERM, how long running phases may take before their runs are handed back."),
    ("ODOOOPS_RETRY_BASE_SECONDS", "5",
     "Backoff before the first retry of a run whose worker was lost; doubles each attempt."),
    ("ODOOOPS_RETRY_CAP_SECONDS", "300", "Longest backoff between retries."),
    ("ODOOOPS_MAIL_CATCHER_ADDRESS", "127.0.0.1:8625",
     "HOST:PORT the mail catcher (SMTP) listens on, where non-production environments send their mail; "
     "loopback by default, as it takes AUTH without TLS."),
    ("ODOOOPS_MAIL_RETENTION_DAYS", "30", "Caught mails older than this many days are pruned, with their .eml files."),
    ("ODOOOPS_MAIL_MAX_BYTES", "26214400", "Largest mail the catcher takes (25 MiB); a bigger one is refused (552)."),
]


@dataclass(frozen=True)
class Settings:
    data_dir: Path = field(default_factory=default_data_dir)
    database_url: Secret | None = None
    env_database_url: Secret | None = None
    app_role: str = "odooops_app"
    app_password: Secret | None = None
    secret_key: Secret | None = None
    repo_roots: tuple[Path, ...] = ()
    pool_size: int = 10
    acting_as: str | None = None
    host: str = "127.0.0.1"
    port: int = 8600
    public_url: str | None = None
    secure_cookies: str = "auto"
    forwarded_allow_ips: str = "127.0.0.1"
    runner_concurrency: int = 2
    runner_kinds: tuple[str, ...] = ("build", "cleanup", "serve", "snapshot")
    runner_host: str = field(default_factory=socket.gethostname)
    runner_address: str = "127.0.0.1"
    environment_domain: str = "localhost"
    environment_idle_minutes: int = 30
    environment_gc_days: int = 3
    poll_seconds: float = 2.0
    heartbeat_seconds: float = 5.0
    lease_seconds: int = 30
    grace_seconds: float = 30.0
    retry_base_seconds: int = 5
    retry_cap_seconds: int = 300
    template_cache_size: int = 10
    cache_dir: Path | None = None
    odoo_requirement_substitutes: str = "psycopg2=psycopg2-binary,python-ldap="
    odoo_python: str = ""
    template_max_age_days: int = 14
    mail_catcher_address: str = "127.0.0.1:8625"
    mail_retention_days: int = 30
    mail_max_bytes: int = MAIL_MAX_BYTES

    @classmethod
    def from_env(cls) -> Settings:
        env = os.environ
        return cls(
            data_dir=Path(env["ODOOOPS_DATA_DIR"]) if env.get("ODOOOPS_DATA_DIR") else default_data_dir(),
            database_url=_secret("ODOOOPS_DATABASE_URL"),
            env_database_url=_secret("ODOOOPS_ENV_DATABASE_URL"),
            app_role=env.get("ODOOOPS_APP_ROLE") or "odooops_app",
            app_password=_secret("ODOOOPS_APP_PASSWORD"),
            secret_key=_secret("ODOOOPS_SECRET_KEY"),
            repo_roots=_paths(env, "ODOOOPS_REPO_ROOTS"),
            pool_size=_number(env, "ODOOOPS_POOL_SIZE", 10, int),
            acting_as=env.get("ODOOOPS_AS") or None,
            host=env.get("ODOOOPS_HOST") or "127.0.0.1",
            port=_number(env, "ODOOOPS_PORT", 8600, int),
            public_url=checked_url(env.get("ODOOOPS_PUBLIC_URL"), "ODOOOPS_PUBLIC_URL"),
            secure_cookies=_choice(env, "ODOOOPS_SECURE_COOKIES", ("auto", "always", "never")),
            forwarded_allow_ips=env.get("ODOOOPS_FORWARDED_ALLOW_IPS") or "127.0.0.1",
            runner_concurrency=_number(env, "ODOOOPS_RUNNER_CONCURRENCY", 2, int),
            runner_kinds=tuple(k.strip() for k in env.get("ODOOOPS_RUNNER_KINDS",
                                                          "build,cleanup,serve,snapshot").split(",")
                               if k.strip()),
            runner_host=env.get("ODOOOPS_RUNNER_HOST") or socket.gethostname(),
            runner_address=env.get("ODOOOPS_RUNNER_ADDRESS") or "127.0.0.1",
            environment_domain=_domain(env.get("ODOOOPS_ENVIRONMENT_DOMAIN") or "localhost"),
            environment_idle_minutes=_number(env, "ODOOOPS_ENVIRONMENT_IDLE_MINUTES", 30, int, minimum=0),
            environment_gc_days=_number(env, "ODOOOPS_ENVIRONMENT_GC_DAYS", 3, int),
            poll_seconds=_number(env, "ODOOOPS_POLL_SECONDS", 2.0, float),
            heartbeat_seconds=_number(env, "ODOOOPS_HEARTBEAT_SECONDS", 5.0, float),
            lease_seconds=_number(env, "ODOOOPS_LEASE_SECONDS", 30, int),
            grace_seconds=_number(env, "ODOOOPS_SHUTDOWN_GRACE_SECONDS", 30.0, float),
            retry_base_seconds=_number(env, "ODOOOPS_RETRY_BASE_SECONDS", 5, int, minimum=0),
            retry_cap_seconds=_number(env, "ODOOOPS_RETRY_CAP_SECONDS", 300, int, minimum=0),
            template_cache_size=_number(env, "ODOOOPS_TEMPLATE_CACHE_SIZE", 10, int, minimum=0),
            cache_dir=Path(env["ODOOOPS_CACHE_DIR"]) if env.get("ODOOOPS_CACHE_DIR") else None,
            odoo_requirement_substitutes=env.get("ODOOOPS_ODOO_REQUIREMENT_SUBSTITUTES",
                                                 "psycopg2=psycopg2-binary,python-ldap="),
            odoo_python=env.get("ODOOOPS_ODOO_PYTHON", ""),
            template_max_age_days=_number(env, "ODOOOPS_TEMPLATE_MAX_AGE_DAYS", 14, int),
            mail_catcher_address=_address(env, "ODOOOPS_MAIL_CATCHER_ADDRESS", "127.0.0.1:8625"),
            mail_retention_days=_number(env, "ODOOOPS_MAIL_RETENTION_DAYS", 30, int),
            mail_max_bytes=_number(env, "ODOOOPS_MAIL_MAX_BYTES", MAIL_MAX_BYTES, int),
        )

    def with_overrides(self, **values: Any) -> Settings:
        return replace(self, **{k: v for k, v in values.items() if v is not None})


def _number(env, name: str, default, kind, minimum=None):
    """A positive number (or at least `minimum`) from the environment."""
    raw = env.get(name)
    if not raw:
        return default
    try:
        value = kind(raw)
    except ValueError:
        value = None
    low = minimum if minimum is not None else 0
    if value is None or value < low or (minimum is None and value == 0):
        raise InvalidInput(f"{name} must be a {'positive ' if minimum is None else ''}number, not {raw!r}")
    return value


def host_port(raw: str, name: str) -> tuple[str, int]:
    """HOST:PORT (an IPv6 host in brackets) as a host and a port number."""
    host, sep, port = raw.strip().rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise InvalidInput(f"{name} is HOST:PORT, such as 127.0.0.1:8625, not {raw!r}")
    return host, int(port)


def _address(env, name: str, default: str) -> str:
    raw = env.get(name) or default
    host_port(raw, name)
    return raw.strip()


DOMAIN = re.compile(r"^(?=.{1,190}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$")


def _domain(raw: str) -> str:
    domain = raw.strip().lower().strip(".")
    if not DOMAIN.match(domain):
        raise InvalidInput(f"ODOOOPS_ENVIRONMENT_DOMAIN is a DNS name such as odoo.example.com, not {raw!r}")
    return domain


def _paths(env, name: str) -> tuple[Path, ...]:
    """Absolute paths, separated by colons."""
    paths = tuple(Path(p) for p in (env.get(name) or "").split(os.pathsep) if p.strip())
    if not all(p.is_absolute() for p in paths):
        raise InvalidInput(f"{name} is a colon-separated list of absolute paths, not {env[name]!r}")
    return paths


def _choice(env, name: str, choices: tuple[str, ...]) -> str:
    """One of `choices` from the environment; the first when unset."""
    raw = (env.get(name) or choices[0]).strip().lower()
    if raw not in choices:
        raise InvalidInput(f"{name} must be one of {', '.join(choices)}, not {raw!r}")
    return raw


def checked_url(raw: str | None, name: str) -> str | None:
    """An http(s) URL with a host, without its trailing slash; None when unset."""
    if not raw or not raw.strip():
        return None
    url = raw.strip().rstrip("/")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - a port that is not a number raises here
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise InvalidInput(f"{name} is an http:// or https:// URL such as https://ops.example.com, not {raw!r}")
    return url


def public_url(settings: Settings) -> str:
    """Where people and git hosts reach the server, for every link and URL
    OdooOps prints or sends: ODOOOPS_PUBLIC_URL, else the address `serve`
    and `up` listen on (this host's name when that is every address)."""
    if settings.public_url:
        return settings.public_url
    host = settings.host
    if host in ("", "0.0.0.0", "::"):  # noqa: S104 - not a bind: the address of a server bound to all
        host = socket.gethostname()
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.port}"
