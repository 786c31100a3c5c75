"""Managing through the API: members, project settings and archiving,
branch archiving, rebuilds, build filters and a run's phases — each with
the owner, a teammate and a stranger."""

from __future__ import annotations

import httpx
from conftest import owner_conn
from helpers import as_, envelope


def test_members_add_change_remove(api, tenants):
    alice, bob, eve = (as_(tenants[n]) for n in ("alice", "bob", "eve"))
    url = f"{api}/api/v1/orgs/acme/members"
    assert {m["email"]: m["role"] for m in httpx.get(url, headers=bob).json()} == \
        {"alice@acme.test": "owner", "bob@acme.test": "viewer"}
    envelope(httpx.get(url, headers=eve), 404, "not_found")
    # an address with an account and one without answer alike
    known = httpx.post(url, json={"email": "eve@evil.test", "role": "developer"}, headers=alice)
    unknown = httpx.post(url, json={"email": "new@elsewhere.test", "role": "developer"}, headers=alice)
    assert known.status_code == unknown.status_code == 201
    assert set(known.json()) == set(unknown.json()) and known.json()["role"] == "developer"
    envelope(httpx.post(url, json={"email": "eve@evil.test", "role": "viewer"}, headers=alice), 409, "rule_violation")
    envelope(httpx.post(url, json={"email": "x@y.test", "role": "viewer"}, headers=bob), 403, "forbidden")
    envelope(httpx.post(f"{api}/api/v1/orgs/evil/members", json={"email": "x@y.test"}, headers=alice),
             404, "not_found")
    envelope(httpx.post(url, json={"email": "not-an-email"}, headers=alice), 422, "invalid_input")
    eve_id = known.json()["user_id"]
    assert httpx.patch(f"{url}/{eve_id}", json={"role": "admin"}, headers=alice).json()["role"] == "admin"
    envelope(httpx.patch(f"{url}/{eve_id}", json={"role": "viewer"}, headers=bob), 403, "forbidden")
    alice_id = next(m["user_id"] for m in httpx.get(url, headers=alice).json() if m["email"] == "alice@acme.test")
    # the last owner stays
    envelope(httpx.delete(f"{url}/{alice_id}", headers=alice), 409, "rule_violation")
    assert httpx.delete(f"{url}/{eve_id}", headers=alice).status_code == 200
    assert "eve@evil.test" not in {m["email"] for m in httpx.get(url, headers=alice).json()}
    envelope(httpx.delete(f"{url}/{eve_id}", headers=alice), 404, "not_found")


def test_project_update_and_archive(api, tenants):
    alice, bob, eve = (as_(tenants[n]) for n in ("alice", "bob", "eve"))
    url = f"{api}/api/v1/projects/acme/shop"
    changed = httpx.patch(url, json={"name": "Shop 2", "settings": {"coalesce_seconds": 5,
                                                                    "secret_env": {"TOKEN": "s3cret"}}}, headers=alice)
    assert changed.status_code == 200, changed.text
    assert changed.json()["name"] == "Shop 2" and changed.json()["settings"]["coalesce_seconds"] == 5
    assert "s3cret" not in changed.text
    envelope(httpx.patch(url, json={"settings": {"nope": 1}}, headers=alice), 422, "invalid_input")
    envelope(httpx.patch(url, json={"name": "x"}, headers=bob), 403, "forbidden")
    envelope(httpx.patch(url, json={"name": "x"}, headers=eve), 404, "not_found")
    assert httpx.get(url, headers=alice).json()["name"] == "Shop 2"
    build = httpx.post(f"{url}/branches/feature/builds", headers=alice).json()
    envelope(httpx.post(f"{url}/archive", headers=bob), 403, "forbidden")
    envelope(httpx.post(f"{url}/archive", headers=eve), 404, "not_found")
    assert httpx.post(f"{url}/archive", headers=alice).json()["archived_at"] is not None
    got = httpx.get(f"{api}/api/v1/runs/{build['build_id']}", headers=alice)
    assert got.json().get("status") == "canceled", got.text
    assert "archived" in envelope(httpx.post(f"{url}/branches/feature/builds", headers=alice), 409, "rule_violation")
    assert httpx.get(f"{api}/api/v1/projects", headers=alice).json() == []


def test_branch_archive(api, tenants):
    alice, bob = as_(tenants["alice"]), as_(tenants["bob"])
    url = f"{api}/api/v1/projects/acme/shop/branches"
    envelope(httpx.post(f"{url}/feature/archive", headers=bob), 403, "forbidden")
    envelope(httpx.post(f"{url}/feature/archive", headers=as_(tenants["eve"])), 404, "not_found")
    assert "production" in envelope(httpx.post(f"{url}/main/archive", headers=alice), 409, "rule_violation")
    assert httpx.post(f"{url}/feature/archive", headers=alice).json()["archived_at"] is not None
    assert [b["name"] for b in httpx.get(url, headers=alice).json()] == ["main"]
    assert {b["name"] for b in httpx.get(f"{url}?include_archived=true", headers=alice).json()} == {"main", "feature"}


def test_rebuild_filters_and_phases(api, tenants, owner_db):
    alice = as_(tenants["alice"])
    base = f"{api}/api/v1/projects/acme/shop"
    first = httpx.post(f"{base}/branches/feature/builds", headers=alice).json()["build_id"]
    envelope(httpx.post(f"{api}/api/v1/runs/{first}/rebuild", headers=as_(tenants["eve"])), 404, "not_found")
    envelope(httpx.post(f"{api}/api/v1/runs/{first}/rebuild", headers=as_(tenants["bob"])), 403, "forbidden")
    # still queued: asking again gives the same build
    assert httpx.post(f"{api}/api/v1/runs/{first}/rebuild", headers=alice).json()["build_id"] == first
    with owner_conn(owner_db) as conn:
        conn.execute("update ops.runs set status = 'canceled' where id = %s", (first,))
        conn.execute("insert into ops.run_events (run_id, seq, ts, phase, stream, level, message) values "
                     "(%(r)s, 1, now() - interval '3 s', 'checkout', 'system', 'info', 'phase checkout started'),"
                     "(%(r)s, 2, now() - interval '1 s', 'checkout', 'system', 'info', 'phase checkout succeeded in 2.0 s'),"
                     "(%(r)s, 3, now(), 'tests', 'stderr', 'error', 'boom'),"
                     "(%(r)s, 4, now(), 'tests', 'system', 'error', 'phase tests failed with exit code 1 in 0.1 s'),"
                     "(%(r)s, 5, now(), null, 'system', 'info', 'phase lint skipped')", {"r": first})
    second = httpx.post(f"{api}/api/v1/runs/{first}/rebuild", headers=alice)
    assert second.status_code == 201 and second.json()["build_id"] != first
    run = httpx.get(f"{api}/api/v1/runs/{second.json()['build_id']}", headers=alice).json()
    assert run["trigger"] == "rebuild" and run["phases"] == []
    phases = httpx.get(f"{api}/api/v1/runs/{first}", headers=alice).json()["phases"]
    assert [(p["name"], p["status"]) for p in phases] == [("checkout", "ok"), ("tests", "failed"), ("lint", "skipped")]
    assert phases[0]["seconds"] >= 1.9 and phases[1]["errors"] == 2
    ids = lambda q: [b["id"] for b in httpx.get(f"{base}/builds?{q}", headers=alice).json()]  # noqa: E731
    assert ids("status=canceled") == [first]
    assert ids("status=queued&status=canceled") == [second.json()["build_id"], first]
    assert ids("branch=main") == [] and ids("kind=backup") == []
    assert ids("since=2999-01-01T00:00:00Z") == []
    assert ids(f"before={second.json()['build_id']}") == [first]
    envelope(httpx.get(f"{base}/builds?status=nope", headers=alice), 422, "invalid_input")
    assert [b["id"] for b in httpx.get(f"{base}/builds", headers=as_(tenants["bob"])).json()] == ids("")
    envelope(httpx.get(f"{base}/builds", headers=as_(tenants["eve"])), 404, "not_found")
    assert httpx.get(f"{api}/api/v1/runs/{first}", headers=as_(tenants["bob"])).json()["phases"] == phases
    envelope(httpx.get(f"{api}/api/v1/runs/{first}", headers=as_(tenants["eve"])), 404, "not_found")
    envelope(httpx.get(f"{base}/builds?since=yesterday", headers=alice), 422, "invalid_input")
