"""Append-only migrations: once, in order, refused when changed, one migrator at a time."""

from __future__ import annotations

import asyncio
import shutil
import subprocess

import pytest
from conftest import APP_PASSWORD, owner_conn

from odooops.db import migrate
from odooops.errors import MigrationError


def applied_names(conninfo: str) -> list[str]:
    with owner_conn(conninfo) as conn:
        return [r["name"] for r in conn.execute("select name from ops.schema_migrations order by name")]


def test_fresh_database_gets_every_migration_then_nothing(make_db):
    db = make_db(migrated=False)
    first = asyncio.run(migrate.migrate(db))
    assert first == [m.name for m in migrate.available()] and first
    assert asyncio.run(migrate.migrate(db)) == []
    assert applied_names(db) == first
    states = asyncio.run(migrate.status(db))
    assert {s.state for s in states} == {"applied"}


def test_pending_migrations_are_listed(make_db, tmp_path):
    db = make_db(migrated=False)
    every = migrate.available()
    asyncio.run(migrate.migrate(db, every[:2]))
    states = asyncio.run(migrate.status(db))
    assert [s.state for s in states] == ["applied"] * 2 + ["pending"] * (len(every) - 2)


def test_changed_migration_is_refused(make_db, tmp_path):
    db = make_db(migrated=False)
    folder = tmp_path / "migrations"
    shutil.copytree(migrate.MIGRATIONS_DIR, folder)
    asyncio.run(migrate.migrate(db, migrate.available(folder)))
    first = sorted(folder.glob("*.sql"))[0]
    first.write_text(first.read_text() + "\n-- an edit\n")
    with pytest.raises(MigrationError, match=f"{first.stem} was changed after it was applied"):
        asyncio.run(migrate.migrate(db, migrate.available(folder)))
    assert {s.state for s in asyncio.run(migrate.status(db, migrate.available(folder))) if s.name == first.stem} == {"changed"}


def test_failed_migration_leaves_nothing_behind(make_db, tmp_path):
    db = make_db(migrated=False)
    folder = tmp_path / "migrations"
    shutil.copytree(migrate.MIGRATIONS_DIR, folder)
    (folder / "9999_broken.sql").write_text("create table ops.half_done (id int);\nselect 1/0;\n")
    with pytest.raises(MigrationError, match="9999_broken failed: division by zero"):
        asyncio.run(migrate.migrate(db, migrate.available(folder)))
    assert "9999_broken" not in applied_names(db)
    with owner_conn(db) as conn:
        assert conn.execute("select to_regclass('ops.half_done') as t").fetchone()["t"] is None


def test_concurrent_migrators_take_turns(make_db, cli):
    db = make_db(migrated=False)
    env = {"ODOOOPS_DATABASE_URL": db}
    import os
    import sys

    base = {k: v for k, v in os.environ.items() if not k.startswith("ODOOOPS_")}
    procs = [subprocess.Popen([sys.executable, "-m", "odooops", "db", "migrate"],
                              env={**base, **env, "ODOOOPS_APP_PASSWORD": APP_PASSWORD, "COLUMNS": "200"},
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(3)]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], outputs
    applied = [out.count("applied ") for out, _ in outputs]
    assert sorted(applied) == [0, 0, len(migrate.available())]
    assert applied_names(db) == [m.name for m in migrate.available()]
