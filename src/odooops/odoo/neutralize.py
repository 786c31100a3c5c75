"""What makes a copy of production safe to run as staging.

First Odoo's own: `odoo-bin neutralize` (16.0+), each installed module's
data/neutralize.sql in one transaction. When it fails (one bad statement of
one module undoes all of it), OdooOps runs each module's script on its own
to say which one failed and keep the others. Then OdooOps' safety net, for
every version and for modules that ship no neutralize.sql: every outgoing
mail server off but the mail catcher's, every cron off but the autovacuum,
incoming mail servers off, payment providers and delivery carriers in test
mode, server actions' webhooks disabled, `database.is_neutralized` set; then
the project's own SQL (the project setting neutralization_sql). Then the
verification, which fails the build with what it found.

All of it runs as the branch's role, never as a superuser: the project's SQL
may do what the branch's Odoo may, nothing more."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import psycopg
from psycopg.rows import dict_row

from odooops.db.queries import queries_beside
from odooops.odoo import addons as graph
from odooops.odoo.envdb import Connection

Q = queries_beside(__file__)
CATCHER = "OdooOps mail catcher"
# Until an environment's server fills them in, the catcher's server goes nowhere (as Odoo's own does).
NOWHERE = ("invalid", 1025)
# (table, column or None, statement): the safety net, in order
NET = (("ir_mail_server", None, "mail_servers_off"), ("ir_cron", None, "crons_off"),
       ("fetchmail_server", None, "fetchmail_off"), ("mail_template", "mail_server_id", "templates_server_off"),
       ("payment_provider", "state", "payment_test"), ("payment_acquirer", "state", "acquirer_test"),
       ("delivery_carrier", "prod_environment", "delivery_test"), ("ir_act_server", "webhook_url", "webhooks_off"),
       ("ir_config_parameter", None, "neutralized_flag"))


@dataclass
class Report:
    warnings: list[str] = field(default_factory=list)  # shown, the build goes on
    problems: list[str] = field(default_factory=list)  # the verification's: the build fails


async def connect(conninfo: str) -> Connection:
    return await psycopg.AsyncConnection.connect(conninfo, autocommit=True, row_factory=dict_row)


async def module_scripts(conn: Connection, addons: graph.Addons) -> list[str]:
    """Each installed module's data/neutralize.sql on its own (a savepoint
    each); what failed, by module."""
    failed = []
    for row in await (await conn.execute(Q["installed_modules"])).fetchall():
        module = addons.modules.get(row["name"])
        script = module.path / "data" / "neutralize.sql" if module else None
        if script is None or not script.is_file():
            continue
        try:
            async with conn.transaction():
                await conn.execute(script.read_text(errors="replace").encode())
        except psycopg.Error as exc:
            failed.append(f"{row['name']}'s data/neutralize.sql failed: {_cause(exc)}")
    return failed


async def safety_net(conn: Connection, extra_sql: str | None) -> list[str]:
    """OdooOps' neutralization, then the project's SQL; warnings."""
    async with conn.transaction():
        for table, column, statement in NET:
            if await _exists(conn, table, column):
                await conn.execute(Q[statement], {"name": CATCHER})
        if await _exists(conn, "ir_mail_server", None):
            await ensure_catcher(conn, *NOWHERE, None, None)
    if not extra_sql:
        return []
    try:
        async with conn.transaction():
            await conn.execute(extra_sql.encode())
    except psycopg.Error as exc:
        return [f"the project's neutralization_sql failed, and was undone: {_cause(exc)}"]
    return []


async def ensure_catcher(conn: Connection, host: str, port: int, user: str | None, password: str | None) -> int:
    """The mail catcher's outgoing mail server, made or set to this address
    and these credentials; its id. The others are left as they are."""
    values = {"name": CATCHER, "host": host, "port": port, "user": user, "password": password}
    row = await (await conn.execute(Q["catcher"], values)).fetchone()
    if row is not None:
        await conn.execute(Q["catcher_update"], {**values, "id": row["id"]})
        return int(row["id"])
    insert = ("catcher_insert_with_authentication" if await _exists(conn, "ir_mail_server", "smtp_authentication")
              else "catcher_insert")
    row = await (await conn.execute(Q[insert], values)).fetchone()
    return int(row["id"]) if row else 0


async def verify(conn: Connection) -> list[str]:
    """What must not be active in a neutralized copy; empty when all is well."""
    problems = []
    if await _exists(conn, "ir_mail_server", None):
        catcher = await (await conn.execute(Q["catcher"], {"name": CATCHER})).fetchone()
        others = await (await conn.execute(Q["other_mail_servers"],
                                           {"id": catcher["id"] if catcher else 0})).fetchall()
        if catcher is None:
            problems.append("there is no mail catcher server")
        if others:
            problems.append("outgoing mail servers other than the catcher are active: " + _listed(
                f"{r['name']} ({r['smtp_host']}:{r['smtp_port']})" for r in others))
    if await _exists(conn, "ir_cron", None):
        query = "other_crons" if await _exists(conn, "ir_cron", "cron_name") else "other_crons_no_name"
        crons = await (await conn.execute(Q[query])).fetchall()
        if crons:
            problems.append("crons other than the autovacuum are active: "
                            + _listed(f"{r['name']} (id {r['id']})" for r in crons))
    return problems


async def _exists(conn: Connection, table: str, column: str | None) -> bool:
    if column is None:
        row = await (await conn.execute(Q["has_table"], (f"public.{table}",))).fetchone()
    else:
        row = await (await conn.execute(Q["has_column"], (table, column))).fetchone()
    return bool(row and row["found"])


def _listed(items: Iterable[str]) -> str:
    names = list(items)
    return ", ".join(names[:10]) + (f" and {len(names) - 10} more" if len(names) > 10 else "")


def _cause(exc: psycopg.Error) -> str:
    return (exc.diag.message_primary or str(exc)).splitlines()[0][:300]
