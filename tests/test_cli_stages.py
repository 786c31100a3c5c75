"""`odooops staging refresh`, `branch updates` and `branch copies`, the real
command in a subprocess: on this host's database as a user (--as), and
logged in to a remote server over the API (proven remote by a database URL
that leads nowhere), with the same words and the same JSON."""

from __future__ import annotations

import json
from datetime import timedelta

import httpx
from conftest import owner_conn
from helpers import as_
from test_console_stages import GB, copy, environment, update

NOWHERE = {"ODOOOPS_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/nothing"}
ALICE, BOB, EVE = ({"ODOOOPS_AS": f"{n}@{'evil' if n == 'eve' else 'acme'}.test"} for n in ("alice", "bob", "eve"))
REFUSED = "refreshing staging data pauses production: you may not operate production"


def seed(settings) -> tuple[dict, dict, dict]:
    environment(settings, "main")
    snapshot = copy(settings, "snapshot", timedelta(hours=5), expires=None)
    pre = copy(settings, "update", timedelta(hours=1), size=2 * GB, files=GB)
    update(settings, "succeeded", timedelta(days=1), ["sale_custom"], seconds=40)
    reverted = update(settings, "reverted", timedelta(hours=1), ["stock_custom"], "update",
                      "stock_custom: KeyError 'x'", seconds=7)
    return snapshot, pre, reverted


def snapshot_runs(settings) -> list[int]:
    with owner_conn(settings.database_url.reveal()) as conn:
        return [r["id"] for r in conn.execute("select id from ops.runs where kind = 'snapshot' order by id")]


def test_locally_as_a_user(cli, tenants, settings):
    assert "production has no database yet" in cli("staging", "refresh", "acme/shop", env=ALICE).stderr
    snapshot, pre, reverted = seed(settings)

    listed = cli("branch", "updates", "acme/shop", "main", env=ALICE)
    assert listed.returncode == 0, listed.stderr
    lines = [line for line in listed.stdout.splitlines() if line.strip()]
    assert "Reverted" in lines[1] and "stock_custom" in lines[1] and "update: stock_custom: KeyError 'x'" in lines[1]
    assert "7.0 s" in lines[1] and "Updated" in lines[2] and "40.0 s" in lines[2] and "website_sale" in lines[2]
    rows = json.loads(cli("branch", "updates", "acme/shop", "main", "--limit", "1", "--json", env=ALICE).stdout)
    assert [(r["id"], r["status_label"], r["maintenance_seconds"]) for r in rows] == [(reverted["id"], "Reverted", 7.0)]

    copies = cli("branch", "copies", "acme/shop", "main", env=ALICE)
    assert copies.returncode == 0, copies.stderr
    assert snapshot["database"] in copies.stdout and pre["database"] in copies.stdout
    assert "2048 MiB" in copies.stdout and "1024 MiB" in copies.stdout and "snapshot" in copies.stdout
    found = json.loads(cli("branch", "copies", "acme/shop", "main", "--json", env=ALICE).stdout)
    assert [c["id"] for c in found["copies"]] == [pre["id"]] and found["snapshot"]["id"] == snapshot["id"]

    asked = cli("staging", "refresh", "acme/shop", env=ALICE)
    assert asked.returncode == 0, asked.stderr
    [run_id] = snapshot_runs(settings)
    assert f"snapshot run {run_id} of acme/shop's production is queued" in asked.stdout
    assert f"odooops logs {run_id}" in asked.stdout

    refused = cli("staging", "refresh", "acme/shop", env=BOB)
    assert refused.returncode == 1 and REFUSED in refused.stderr
    for args in (("staging", "refresh", "acme/shop"), ("branch", "updates", "acme/shop", "main"),
                 ("branch", "copies", "acme/shop", "main")):
        hidden = cli(*args, env=EVE)
        assert hidden.returncode == 1 and "no project 'acme/shop'" in hidden.stderr, hidden.stderr
    assert snapshot_runs(settings) == [run_id]


def test_no_snapshot_yet_is_said(cli, tenants, settings):
    environment(settings, "main")
    answer = cli("branch", "copies", "acme/shop", "main", env=ALICE)
    assert answer.returncode == 0 and "no snapshot of production yet: the next staging build takes one" in answer.stdout


def test_remotely_over_the_api(cli, api, tenants, settings):
    _, pre, reverted = seed(settings)
    logged = cli("login", api, "--token-stdin", input=tenants["alice"] + "\n", env=NOWHERE)
    assert logged.returncode == 0, logged.stderr
    remote = lambda *args: cli(*args, env=NOWHERE)  # noqa: E731

    rows = json.loads(remote("branch", "updates", "acme/shop", "main", "--json").stdout)
    over_http = httpx.get(f"{api}/api/v1/projects/acme/shop/branches/main/updates",
                          headers=as_(tenants["alice"])).json()
    assert [r["id"] for r in rows] == [r["id"] for r in over_http] and rows[0]["id"] == reverted["id"]
    local = json.loads(cli("branch", "updates", "acme/shop", "main", "--json", env=ALICE | {"XDG_CONFIG_HOME": str(
        settings.data_dir.parent / "elsewhere")}).stdout)
    assert local == rows  # the same fields against a remote server as locally
    assert "Reverted" in remote("branch", "updates", "acme/shop", "main").stdout
    assert pre["database"] in remote("branch", "copies", "acme/shop", "main").stdout

    asked = remote("staging", "refresh", "acme/shop")
    assert asked.returncode == 0, asked.stderr
    [run_id] = snapshot_runs(settings)
    assert f"snapshot run {run_id} of acme/shop's production is queued" in asked.stdout
    hidden = remote("staging", "refresh", "evil/lab")
    assert hidden.returncode == 1 and "no project 'evil/lab'" in hidden.stderr

    assert remote("logout").returncode == 0
    logged = cli("login", api, "--token-stdin", input=tenants["bob"] + "\n", env=NOWHERE)
    assert logged.returncode == 0, logged.stderr
    refused = remote("staging", "refresh", "acme/shop")
    assert refused.returncode == 1 and REFUSED in refused.stderr
    assert snapshot_runs(settings) == [run_id]
