"""Policy gates: a scratch database of the test server stands for one of
Odoo's (tables, sequences and an ir_mail_server table made as Odoo makes
them), and repositories in temp dirs for the addons path drift."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import dict_row

from odooops.odoo.policy import Finding, addons_drift, database_findings, declared_addons_path

MAIL_SERVERS = """
create table ir_mail_server (
    id serial primary key, name varchar not null, smtp_host varchar not null, smtp_port integer not null,
    sequence integer default 10, active boolean default true)
"""


def findings(conninfo: str, settings: dict) -> list[Finding]:
    async def go() -> list[Finding]:
        conn = await psycopg.AsyncConnection.connect(conninfo, autocommit=True, row_factory=dict_row)
        async with conn:
            return await database_findings(conn, settings)

    return asyncio.run(go())


@pytest.fixture
def odoo_db(make_db) -> str:
    """An empty database (not the control plane's schema), as its owner."""
    return make_db(migrated=False)


def sql(conninfo: str, *statements: str) -> None:
    with psycopg.connect(conninfo, autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)


def make_tables(conninfo: str, tables: int, sequences: int = 0) -> None:
    """`tables` tables with a serial id (a table and its sequence each, as
    Odoo's models have) and `sequences` sequences of their own."""
    sql(conninfo, "do $$ begin"
        f" for i in 1..{tables} loop execute format('create table m_%s (id serial primary key)', i); end loop;"
        f" for i in 1..{sequences} loop execute format('create sequence s_%s', i); end loop;"
        " end $$")


# tables and sequences


def test_an_empty_database_passes_every_gate(odoo_db):
    assert findings(odoo_db, {}) == []


def test_more_tables_and_sequences_than_the_setting_fail_naming_it(odoo_db):
    make_tables(odoo_db, 50, 1)  # 50 tables, 51 sequences
    (error,) = findings(odoo_db, {"max_tables": 100})
    name = conninfo_to_dict(odoo_db)["dbname"]
    assert error == Finding("max_tables", "error",
                            f"database {name} has 101 tables and sequences, more than the 100 the project's "
                            "max_tables setting allows; the project setting max_tables raises the ceiling")
    assert findings(odoo_db, {"max_tables": 101}) == []
    assert findings(odoo_db, {}) == []  # Odoo.sh's 10,000


def test_views_indexes_and_catalogs_do_not_count_but_every_schema_and_partitioned_tables_do(odoo_db):
    make_tables(odoo_db, 49, 0)  # 98: every table has a sequence
    sql(odoo_db, "create view v as select 1", "create materialized view mv as select 1",
        "create index on m_1 (id)", "create schema other", "create table other.t (x int)")
    assert findings(odoo_db, {"max_tables": 100}) == []  # 99
    sql(odoo_db, "create table p (x int) partition by range (x)",
        "create table p_1 partition of p for values from (0) to (10)")
    (error,) = findings(odoo_db, {"max_tables": 100})
    assert error.gate == "max_tables" and " has 101 tables and sequences" in error.message


# outgoing mail on port 25


def test_no_mail_server_table_is_no_finding(odoo_db):
    sql(odoo_db, "create table res_partner (id serial primary key)")
    assert findings(odoo_db, {}) == []


def test_an_active_outgoing_mail_server_on_port_25_is_refused_naming_it(odoo_db):
    sql(odoo_db, MAIL_SERVERS, "insert into ir_mail_server (name, smtp_host, smtp_port, sequence) values"
        " ('Relay', 'relay.example.com', 25, 5), ('Submission', 'smtp.example.com', 587, 1)")
    (error,) = findings(odoo_db, {})
    assert error.gate == "smtp_port_25" and error.level == "error"
    assert "the outgoing mail server 'Relay' (relay.example.com:25) uses port 25" in error.message
    assert "Submission" not in error.message
    assert "the project setting allow_smtp_port_25 allows it" in error.message
    assert findings(odoo_db, {"allow_smtp_port_25": True}) == []
    assert findings(odoo_db, {"allow_smtp_port_25": False}) == [error]


def test_every_server_on_port_25_is_named_and_inactive_ones_are_not(odoo_db):
    sql(odoo_db, MAIL_SERVERS, "insert into ir_mail_server (name, smtp_host, smtp_port, sequence, active) values"
        " ('Second', 'b.example.com', 25, 20, true), ('First', 'a.example.com', 25, 10, true),"
        " ('Old', 'old.example.com', 25, 1, false)")
    (error,) = findings(odoo_db, {})
    assert "mail servers 'First' (a.example.com:25), 'Second' (b.example.com:25) use port 25" in error.message
    assert "Old" not in error.message
    sql(odoo_db, "update ir_mail_server set active = false")
    assert findings(odoo_db, {}) == []


def test_both_database_gates_at_once(odoo_db):
    make_tables(odoo_db, 50)
    sql(odoo_db, MAIL_SERVERS, "insert into ir_mail_server (name, smtp_host, smtp_port) values ('M', 'm', 25)")
    assert [f.gate for f in findings(odoo_db, {"max_tables": 100})] == ["max_tables", "smtp_port_25"]


# addons path drift


def repo(tmp_path: Path, config: str | None = None, name: str = "odoo.conf", folders=("addons",)) -> Path:
    src = tmp_path / "repo"
    for folder in folders:
        (src / folder).mkdir(parents=True, exist_ok=True)
    src.mkdir(exist_ok=True)
    if config is not None:
        (src / name).write_text(config)
    return src


ODOO = Path("/opt/odoo/odoo/addons")  # Odoo's own, outside the repository: never compared


def test_no_config_file_declares_nothing(tmp_path):
    src = repo(tmp_path)
    assert declared_addons_path(src) is None
    assert addons_drift(None, [src / "addons", ODOO], src) is None


@pytest.mark.parametrize("name", ["odoo.conf", ".odoorc", "odoo.cfg"])
def test_a_declared_path_as_found_is_no_drift(tmp_path, name):
    src = repo(tmp_path, "[options]\naddons_path = addons, ./extra ,/usr/lib/python3/odoo/addons,\n", name,
               folders=("addons", "extra"))
    declared = declared_addons_path(src)
    assert declared == [str(src / "addons"), str(src / "extra"), "/usr/lib/python3/odoo/addons"]
    assert addons_drift(declared, [ODOO, src / "extra", src / "addons"], src) is None


def test_drift_lists_what_is_declared_but_not_found_and_found_but_not_declared(tmp_path):
    src = repo(tmp_path, "[options]\naddons_path = addons,old/addons,../other/addons\ndb_name = x\n",
               folders=("addons", "old/addons", "new"))
    drift = addons_drift(declared_addons_path(src), [src / "addons", src / "new", ODOO], src)
    assert drift is not None and drift.gate == "addons_drift" and drift.level == "warning"
    assert "declared but not found: old/addons; found but not declared: new." in drift.message
    assert "other" not in drift.message and "odoo.conf/.odoorc/odoo.cfg" in drift.message


def test_the_repository_root_as_an_addons_path(tmp_path):
    src = repo(tmp_path, "[options]\naddons_path = .\n")
    assert addons_drift(declared_addons_path(src), [src], src) is None
    drift = addons_drift(declared_addons_path(src), [src / "addons"], src)
    assert drift is not None and "declared but not found: .; found but not declared: addons." in drift.message


def test_a_declared_path_with_nothing_inside_the_repository_is_not_compared(tmp_path):
    """A container's layout (`/mnt/extra-addons`), a developer's home: folders of another machine."""
    src = repo(tmp_path, "[options]\naddons_path = /mnt/extra-addons,~/odoo/addons,$ADDONS/x\n")
    declared = declared_addons_path(src)
    assert declared == ["/mnt/extra-addons", "~/odoo/addons", "$ADDONS/x"]
    assert addons_drift(declared, [src / "addons"], src) is None


def test_symlinks_are_compared_by_where_they_lead(tmp_path):
    src = repo(tmp_path, "[options]\naddons_path = link\n")
    os.symlink("addons", src / "link")
    assert addons_drift(declared_addons_path(src), [src / "addons"], src) is None
    assert addons_drift(declared_addons_path(src), [src / "link"], src.parent / "repo" / ".") is None


def test_the_first_config_file_that_declares_one_wins(tmp_path):
    src = repo(tmp_path, "[options]\nworkers = 2\n", "odoo.conf", folders=("a", "b"))
    (src / ".odoorc").write_text("[options]\naddons_path = a\n")
    (src / "odoo.cfg").write_text("[options]\naddons_path = b\n")
    assert declared_addons_path(src) == [str(src / "a")]


@pytest.mark.parametrize("content", [
    b"addons_path = addons\n",                                # no section
    b"[options]\naddons_path = a\n[options]\nx = %(y)s\n[",   # broken
    b"\xff\xfe\x00binary",                                    # not text
    b"[other]\naddons_path = addons\n",                       # not in [options]
])
def test_an_unreadable_config_file_is_no_finding(tmp_path, content):
    src = repo(tmp_path)
    (src / "odoo.conf").write_bytes(content)
    assert declared_addons_path(src) is None


def test_a_config_file_that_cannot_be_read_is_passed_over(tmp_path):
    src = repo(tmp_path, folders=("addons", "odoo.conf"))  # a folder by that name
    (src / ".odoorc").symlink_to(src / "missing")           # dangling
    (src / "odoo.cfg").write_text("[options]\naddons_path = addons\nlog = %(nope)s\n")  # no interpolation
    assert declared_addons_path(src) == [str(src / "addons")]
