"""/api/v1 over real HTTP: a branch's updates in place and copies of
production (pre-update copies, the snapshot), and Refresh staging data
(202 with the snapshot run); an owner, a teammate (a viewer, then a
developer: both read, neither refreshes), a read-only token and a stranger
(404 for everything, in the error shape)."""

from __future__ import annotations

from datetime import timedelta

import httpx
from conftest import owner_conn
from helpers import as_, envelope
from test_console_stages import GB, copy, environment, update

BASE = "/api/v1/projects/acme/shop"
REFUSED = "refreshing staging data pauses production: you may not operate production"


def test_updates_of_a_branch_newest_first(api, tenants, settings):
    alice, bob, eve = (as_(tenants[n]) for n in ("alice", "bob", "eve"))
    assert httpx.get(f"{api}{BASE}/branches/main/updates", headers=alice).json() == []
    environment(settings, "main")
    done = update(settings, "succeeded", timedelta(days=1), ["sale_custom"], seconds=61.25)
    reverted = update(settings, "reverted", timedelta(hours=1), ["stock_custom"], "start", "port in use", seconds=9)

    answer = httpx.get(f"{api}{BASE}/branches/main/updates", headers=alice)
    assert answer.status_code == 200, answer.text
    rows = answer.json()
    assert [(u["id"], u["status"], u["status_label"]) for u in rows] == [
        (reverted["id"], "reverted", "Reverted"), (done["id"], "succeeded", "Updated")]
    assert rows[0]["failed_step"] == "start" and rows[0]["detail"] == "port in use"
    assert rows[0]["maintenance_seconds"] == 9.0 and rows[1]["maintenance_seconds"] == 61.25
    assert rows[1]["updated_modules"] == ["sale_custom"] and rows[1]["installed_modules"] == ["website_sale"]
    assert rows[1]["build_id"] == done["build_id"] and rows[1]["finished_at"]
    assert [u["id"] for u in httpx.get(f"{api}{BASE}/branches/main/updates?limit=1", headers=alice).json()] == [
        reverted["id"]]
    for limit in ("0", "101", "x"):
        envelope(httpx.get(f"{api}{BASE}/branches/main/updates?limit={limit}", headers=alice), 422, "invalid_input")

    assert httpx.get(f"{api}{BASE}/branches/main/updates", headers=bob).json() == rows  # a viewer reads them
    assert httpx.get(f"{api}{BASE}/branches/feature/updates", headers=alice).json() == []
    assert "no branch" in envelope(httpx.get(f"{api}{BASE}/branches/nope/updates", headers=alice), 404, "not_found")
    hidden = envelope(httpx.get(f"{api}{BASE}/branches/main/updates", headers=eve), 404, "not_found")
    assert "shop" in hidden and "stock_custom" not in hidden


def test_copies_of_production_and_the_snapshot(api, tenants, settings):
    alice, bob, eve = (as_(tenants[n]) for n in ("alice", "bob", "eve"))
    assert httpx.get(f"{api}{BASE}/branches/main/copies", headers=alice).json() == {"copies": [], "snapshot": None}
    environment(settings, "main")
    old = copy(settings, "update", timedelta(days=3))
    new = copy(settings, "update", timedelta(hours=2), size=GB, files=None)
    snapshot = copy(settings, "snapshot", timedelta(minutes=10), expires=None)

    answer = httpx.get(f"{api}{BASE}/branches/main/copies", headers=alice)
    assert answer.status_code == 200, answer.text
    found = answer.json()
    assert [c["id"] for c in found["copies"]] == [new["id"], old["id"]]
    assert found["copies"][1]["total_bytes"] == 3 * GB and found["copies"][1]["size_bytes"] == 2 * GB
    assert found["copies"][0]["total_bytes"] == GB and found["copies"][0]["filestore_bytes"] is None
    assert all(c["kind"] == "update" and c["expires_at"] for c in found["copies"])
    assert found["snapshot"]["id"] == snapshot["id"] and found["snapshot"]["database"] == snapshot["database"]

    assert httpx.get(f"{api}{BASE}/branches/main/copies", headers=bob).json() == found
    # another branch has no copies of its own; the snapshot is the project's
    assert httpx.get(f"{api}{BASE}/branches/feature/copies", headers=alice).json() == {
        "copies": [], "snapshot": found["snapshot"]}
    hidden = envelope(httpx.get(f"{api}{BASE}/branches/main/copies", headers=eve), 404, "not_found")
    assert snapshot["database"] not in hidden
    assert httpx.get(f"{api}/api/v1/projects/evil/lab/branches/main/copies", headers=eve).json() == {
        "copies": [], "snapshot": None}


def test_refresh_staging_data(api, tenants, settings):
    alice = as_(tenants["alice"])
    no_database = httpx.post(f"{api}{BASE}/staging/refresh", headers=alice)
    assert "production has no database yet" in envelope(no_database, 409, "rule_violation")
    environment(settings, "main")

    asked = httpx.post(f"{api}{BASE}/staging/refresh", headers=alice)
    assert asked.status_code == 202, asked.text
    run = asked.json()
    assert run["kind"] == "snapshot" and run["status"] == "queued" and run["status_label"] == "Queued"
    assert run["trigger"] == "manual" and run["params"]["build_id"]
    again = httpx.post(f"{api}{BASE}/staging/refresh", headers=alice)
    assert again.status_code == 202 and again.json()["id"] == run["id"]  # the one already queued
    with owner_conn(settings.database_url.reveal()) as conn:
        assert conn.execute("select count(*) as n from ops.runs where kind = 'snapshot'").fetchone()["n"] == 1


def test_who_may_refresh_staging_data(api, tenants, settings):
    environment(settings, "main")
    url = f"{api}{BASE}/staging/refresh"
    assert envelope(httpx.post(url, headers=as_(tenants["bob"])), 403, "forbidden") == REFUSED  # a viewer
    with owner_conn(settings.database_url.reveal()) as conn:
        conn.execute("update ops.org_members set role = 'developer' where user_id = "
                     "(select id from ops.users where email = 'bob@acme.test')")
    assert envelope(httpx.post(url, headers=as_(tenants["bob"])), 403, "forbidden") == REFUSED  # a developer
    assert "write scope" in envelope(httpx.post(url, headers=as_(tenants["alice_read"])), 403, "forbidden")
    hidden = envelope(httpx.post(url, headers=as_(tenants["eve"])), 404, "not_found")
    assert "production" not in hidden
    envelope(httpx.post(url), 401, "unauthenticated")
    with owner_conn(settings.database_url.reveal()) as conn:
        assert conn.execute("select count(*) as n from ops.runs where kind = 'snapshot'").fetchone()["n"] == 0
