"""An environment under maintenance (an update in place, or a snapshot for
staging) is the maintenance run's: people's start, stop and restart wait,
with a refusal that says why."""

from __future__ import annotations

import httpx
from conftest import owner_conn
from helpers import as_, envelope

BASE = "/api/v1/projects/acme/shop/branches/main/environment"


def test_start_stop_restart_are_refused_during_maintenance(api, tenants, settings):
    alice = as_(tenants["alice"])
    with owner_conn(settings.database_url.reveal()) as conn:
        branch = conn.execute("select b.id, b.project_id from ops.branches b join ops.projects p on p.id = b.project_id "
                              "where p.slug = 'shop' and b.name = 'main'").fetchone()
        run = conn.execute("insert into ops.runs (project_id, branch_id, commit_sha) "
                           "values (%s, %s, 'abcdef1') returning id", (branch["project_id"], branch["id"])).fetchone()
        conn.execute("insert into ops.environments (project_id, branch_id, label, status, build_id) "
                     "values (%s, %s, 'main-shop-acme', 'maintenance', %s)",
                     (branch["project_id"], branch["id"], run["id"]))
    for action in ("start", "stop", "restart"):
        said = envelope(httpx.post(f"{api}{BASE}/{action}", headers=alice), 409, "rule_violation")
        assert "under maintenance" in said
    with owner_conn(settings.database_url.reveal()) as conn:
        env = conn.execute("select status, wanted from ops.environments").fetchone()
    assert (env["status"], env["wanted"]) == ("maintenance", "running")  # nothing changed
