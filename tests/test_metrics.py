"""Metrics over real HTTP: ingest tokens, the ingest endpoint and its rules,
bucketed series, with an owner, a teammate and a stranger."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import httpx
import pytest
from conftest import acting, owner_conn
from helpers import SERVICE, as_, call

from odooops.db import Actor
from odooops.managers.branches import Branches
from odooops.managers.ingest_tokens import IngestTokens
from odooops.managers.projects import Projects


@pytest.fixture
def world(settings, tenants):
    """`tenants` (Alice owns acme/shop with a branch feature, Bob is a viewer in
    acme, Eve owns evil/lab, their API tokens), with the ids the ingest takes and
    an ingest token per project."""

    async def work(db):
        w = {"acme": (await Projects(db, SERVICE).get("acme/shop"))["id"],
             "evil": (await Projects(db, SERVICE).get("evil/lab"))["id"],
             "feature": next(b["id"] for b in await Branches(db, SERVICE).list_all("acme/shop") if b["name"] == "feature"),
             "evil_main": (await Branches(db, SERVICE).list_all("evil/lab"))[0]["id"],
             "acme_ingest": (await IngestTokens(db, SERVICE).create("acme/shop", "agent"))[1],
             "evil_ingest": (await IngestTokens(db, SERVICE).create("evil/lab", "agent"))[1]}
        return {**tenants, **{k: str(v) for k, v in w.items()}}

    return call(settings, work)


def ingest_as(token: str) -> dict:
    return {"x-ops-ingest-token": token}


def envelope(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["ok"] is False and body["code"] == code and body["error"]
    return body["error"]


def points(series: dict) -> list[tuple]:
    return [(datetime.fromisoformat(p["bucket"]), p["avg"], p["min"], p["max"], p["count"]) for p in series["points"]]


def now() -> datetime:
    return datetime.now(timezone.utc)


def batch(project_id: str, samples: list, **extra) -> dict:
    return {"project_id": project_id, "ts": now().isoformat(), "samples": samples, **extra}


def stored(owner_db: str) -> int:
    """How many samples are stored; the per-minute rollup must count as many."""
    with owner_conn(owner_db) as conn:
        row = conn.execute("select (select count(*) from ops.metrics) as n,"
                           " (select coalesce(sum(count), 0) from ops.metrics_minutely) as rolled").fetchone()
    assert row["n"] == row["rolled"]
    return row["n"]


def test_ingest_then_bucketed_series(api, world, owner_db):
    start = now().replace(second=0, microsecond=0) - timedelta(minutes=10)
    at = lambda seconds: (start + timedelta(seconds=seconds)).isoformat()  # noqa: E731
    samples = [{"metric": "odoo.cpu", "value": 1, "ts": at(1), "dims": {"host": "web-1"}},
               {"metric": "odoo.cpu", "value": 3.5, "ts": at(20), "dims": {"host": "web-2", "ok": True}},
               {"metric": "odoo.cpu", "value": 5, "ts": at(59)},
               {"metric": "odoo.cpu", "value": 10, "ts": at(60)},
               {"metric": "odoo.mem", "value": 7, "ts": at(2), "dims": {}}]
    r = httpx.post(f"{api}/api/v1/metrics", json=batch(world["acme"], samples), headers=ingest_as(world["acme_ingest"]))
    assert r.status_code == 200, r.text
    assert r.json() == {"inserted": 5}
    on_feature = batch(world["acme"], [{"metric": "odoo.cpu", "value": 100, "ts": at(30)}], branch_id=world["feature"])
    r = httpx.post(f"{api}/api/v1/metrics", json=on_feature, headers=ingest_as(world["acme_ingest"]))
    assert r.json() == {"inserted": 1}
    with owner_conn(owner_db) as conn:
        dims = conn.execute("select dims from ops.metrics where value = 3.5").fetchone()["dims"]
    assert dims == {"host": "web-2", "ok": True}
    assert stored(owner_db) == 6

    url = f"{api}/api/v1/projects/acme/shop/metrics"
    series = httpx.get(url, params={"metric": "odoo.cpu", "hours": 1, "step": 60}, headers=as_(world["alice"])).json()
    assert series["metric"] == "odoo.cpu" and series["step"] == 60
    assert points(series) == [
        (start, (1 + 3.5 + 5 + 100) / 4, 1, 100, 4),
        (start + timedelta(minutes=1), 10, 10, 10, 1)]
    # 30 s buckets are read from the samples, minutes from the per-minute rollup: the same sums
    raw = httpx.get(url, params={"metric": "odoo.cpu", "hours": 1, "step": 30}, headers=as_(world["alice"])).json()
    assert points(raw) == [
        (start, 2.25, 1, 3.5, 2),
        (start + timedelta(seconds=30), 52.5, 5, 100, 2),
        (start + timedelta(minutes=1), 10, 10, 10, 1)]
    only_feature = httpx.get(url, params={"metric": "odoo.cpu", "step": 300, "branch": "feature"},
                             headers=as_(world["alice"])).json()
    assert [(p["avg"], p["count"]) for p in only_feature["points"]] == [(100, 1)]
    wide = httpx.get(url, params={"metric": "odoo.cpu", "hours": 2, "step": 3600}, headers=as_(world["alice"])).json()
    assert sum(p["count"] for p in wide["points"]) == 5
    assert httpx.get(url, params={"metric": "odoo.disk"}, headers=as_(world["alice"])).json()["points"] == []


def bad_samples() -> list[tuple]:
    """Samples that each break one rule (made when asked: one is timed from now)."""
    return [
        ({"metric": "odoo.cpu", "value": float("nan")}, "value"),
        ({"metric": "odoo.cpu", "value": float("inf")}, "value"),
        ({"metric": "odoo.cpu", "value": 10 ** 400}, "value"),
        ({"metric": "odoo.cpu", "value": "1"}, "value"),
        ({"metric": "odoo.cpu", "value": True}, "value"),
        ({"metric": "odoo.cpu"}, "value"),
        ({"metric": "Odoo.CPU", "value": 1}, "metric"),
        ({"metric": "odoo cpu", "value": 1}, "metric"),
        ({"metric": "", "value": 1}, "metric"),
        ({"metric": "a" * 129, "value": 1}, "metric"),
        ({"value": 1}, "metric"),
        ({"metric": "odoo.cpu", "value": 1, "dims": {"host": {"name": "web-1"}}}, "dims"),
        ({"metric": "odoo.cpu", "value": 1, "dims": {"hosts": ["web-1"]}}, "dims"),
        ({"metric": "odoo.cpu", "value": 1, "dims": ["web-1"]}, "dims"),
        ({"metric": "odoo.cpu", "value": 1, "dims": {"load": float("nan")}}, "dims"),
        ({"metric": "odoo.cpu", "value": 1, "dims": {f"k{i}": i for i in range(33)}}, "dims"),
        ({"metric": "odoo.cpu", "value": 1, "ts": (now() + timedelta(minutes=10)).isoformat()}, "ts"),
        ({"metric": "odoo.cpu", "value": 1, "ts": "2024-01-01T00:00:00"}, "ts"),
        ({"metric": "odoo.cpu", "value": 1, "unit": "%"}, "unit"),
        ("odoo.cpu=1", "samples[2]"),
    ]


def test_each_rule_rejects_the_whole_batch(api, world, owner_db):
    post = lambda body: httpx.post(  # noqa: E731
        f"{api}/api/v1/metrics", content=json.dumps(body), headers={
            **ingest_as(world["acme_ingest"]), "content-type": "application/json"})
    good = [{"metric": "odoo.cpu", "value": 1}, {"metric": "odoo.cpu", "value": 2}]
    for bad, where in bad_samples():
        message = envelope(post(batch(world["acme"], [*good, bad])), 422, "invalid_input")
        assert where in message, (bad, message)
    for body, where in [
        ({**batch(world["acme"], good), "ts": (now() + timedelta(minutes=6)).isoformat()}, "ts"),
        ({**batch(world["acme"], good), "ts": "yesterday"}, "ts"),
        ({"project_id": world["acme"], "samples": good}, "ts"),
        ({"ts": now().isoformat(), "samples": good}, "project_id"),
        ({**batch(world["acme"], good), "project_id": "acme/shop"}, "project_id"),
        ({**batch(world["acme"], good), "samples": {"odoo.cpu": 1}}, "samples"),
        ({**batch(world["acme"], good), "extra": 1}, "extra"),
        ([good], "object"),
    ]:
        message = envelope(post(body), 422, "invalid_input")
        assert where in message, (body, message)
    envelope(httpx.post(f"{api}/api/v1/metrics", content=b"{not json", headers=ingest_as(world["acme_ingest"])),
             422, "invalid_input")
    too_many = batch(world["acme"], [{"metric": "odoo.cpu", "value": i} for i in range(10_001)])
    assert "10000" in envelope(post(too_many), 413, "payload_too_large")
    huge = b'{"samples": [' + b" " * (16 * 1024 * 1024) + b"]}"
    assert "MiB" in envelope(httpx.post(f"{api}/api/v1/metrics", content=huge, headers=ingest_as(world["acme_ingest"])),
                             413, "payload_too_large")
    assert stored(owner_db) == 0
    just_enough = batch(world["acme"], [{"metric": "odoo.cpu", "value": i} for i in range(10_000)])
    assert post(just_enough).json() == {"inserted": 10_000}
    assert stored(owner_db) == 10_000


def test_tokens_that_do_not_fit_are_refused(api, world, owner_db):
    good = [{"metric": "odoo.cpu", "value": 1}]
    url = f"{api}/api/v1/metrics"
    envelope(httpx.post(url, json=batch(world["acme"], good)), 401, "unauthenticated")
    envelope(httpx.post(url, json=batch(world["acme"], good), headers=ingest_as("oit_nope")), 401, "unauthenticated")
    # an API token is not an ingest token, even its owner's
    envelope(httpx.post(url, json=batch(world["acme"], good), headers=ingest_as(world["alice"])),
             401, "unauthenticated")
    # another project's token: the same answer as for a project that does not exist
    other = envelope(httpx.post(url, json=batch(world["acme"], good), headers=ingest_as(world["evil_ingest"])),
                     401, "unauthenticated")
    nowhere = envelope(httpx.post(url, json=batch("00000000-0000-0000-0000-000000000000", good),
                                  headers=ingest_as(world["evil_ingest"])), 401, "unauthenticated")
    assert other == nowhere
    # a branch of another project
    envelope(httpx.post(url, json=batch(world["acme"], good, branch_id=world["evil_main"]),
                        headers=ingest_as(world["acme_ingest"])), 404, "not_found")
    assert stored(owner_db) == 0


def test_token_lifecycle(api, world, owner_db):
    url = f"{api}/api/v1/projects/acme/shop/ingest-tokens"
    created = httpx.post(url, json={"name": "prod agent"}, headers=as_(world["alice"]))
    assert created.status_code == 201, created.text
    token = created.json()
    assert token["token"].startswith("oit_") and token["name"] == "prod agent" and token["revoked_at"] is None
    listed = httpx.get(url, headers=as_(world["alice"])).json()
    assert [t["name"] for t in listed] == ["agent", "prod agent"]
    assert all("token" not in t and "token_hash" not in t for t in listed)
    body = batch(world["acme"], [{"metric": "odoo.cpu", "value": 1}])
    assert httpx.post(f"{api}/api/v1/metrics", json=body, headers=ingest_as(token["token"])).json() == {"inserted": 1}
    used = [t for t in httpx.get(url, headers=as_(world["alice"])).json() if t["id"] == token["id"]][0]
    assert used["last_used_at"] is not None
    revoked = httpx.delete(f"{url}/{token['id']}", headers=as_(world["alice"]))
    assert revoked.status_code == 200 and revoked.json()["revoked_at"], revoked.text
    envelope(httpx.post(f"{api}/api/v1/metrics", json=body, headers=ingest_as(token["token"])), 401, "unauthenticated")
    envelope(httpx.delete(f"{url}/{token['id']}", headers=as_(world["alice"])), 404, "not_found")
    envelope(httpx.delete(f"{url}/not-a-uuid", headers=as_(world["alice"])), 422, "invalid_input")
    envelope(httpx.post(url, json={"name": ""}, headers=as_(world["alice"])), 422, "invalid_input")
    # the other token of the project still works
    assert httpx.post(f"{api}/api/v1/metrics", json=body, headers=ingest_as(world["acme_ingest"])).status_code == 200
    assert stored(owner_db) == 2


def test_owner_teammate_stranger(api, world):
    tokens = f"{api}/api/v1/projects/acme/shop/ingest-tokens"
    series = f"{api}/api/v1/projects/acme/shop/metrics"
    agent = [t for t in httpx.get(tokens, headers=as_(world["alice"])).json() if t["name"] == "agent"][0]
    body = batch(world["acme"], [{"metric": "odoo.cpu", "value": 4}])
    httpx.post(f"{api}/api/v1/metrics", json=body, headers=ingest_as(world["acme_ingest"])).raise_for_status()

    # the teammate (a viewer) reads the metrics but does not manage tokens
    assert httpx.get(series, params={"metric": "odoo.cpu"}, headers=as_(world["bob"])).json()["points"][0]["avg"] == 4
    envelope(httpx.post(tokens, json={"name": "x"}, headers=as_(world["bob"])), 403, "forbidden")
    envelope(httpx.get(tokens, headers=as_(world["bob"])), 403, "forbidden")
    envelope(httpx.delete(f"{tokens}/{agent['id']}", headers=as_(world["bob"])), 403, "forbidden")

    # the stranger learns nothing, not even that the project exists
    for response in (httpx.get(series, params={"metric": "odoo.cpu"}, headers=as_(world["eve"])),
                     httpx.post(tokens, json={"name": "x"}, headers=as_(world["eve"])),
                     httpx.get(tokens, headers=as_(world["eve"])),
                     httpx.delete(f"{tokens}/{agent['id']}", headers=as_(world["eve"]))):
        envelope(response, 404, "not_found")
    # nor can the stranger's own project read acme's samples by branch
    envelope(httpx.get(f"{api}/api/v1/projects/evil/lab/metrics", params={"metric": "odoo.cpu", "branch": "feature"},
                       headers=as_(world["eve"])), 404, "not_found")
    envelope(httpx.get(series, params={"metric": "odoo.cpu"}), 401, "unauthenticated")
    # the agent's token still works: nothing above revoked it
    assert httpx.post(f"{api}/api/v1/metrics", json=body, headers=ingest_as(world["acme_ingest"])).status_code == 200


def test_series_rules(api, world):
    url = f"{api}/api/v1/projects/acme/shop/metrics"
    alice = as_(world["alice"])
    envelope(httpx.get(url, headers=alice), 422, "invalid_input")
    envelope(httpx.get(url, params={"metric": "Bad Name"}, headers=alice), 422, "invalid_input")
    envelope(httpx.get(url, params={"metric": "odoo.cpu", "hours": 0}, headers=alice), 422, "invalid_input")
    envelope(httpx.get(url, params={"metric": "odoo.cpu", "step": 0}, headers=alice), 422, "invalid_input")
    assert "buckets" in envelope(httpx.get(url, params={"metric": "odoo.cpu", "hours": 24, "step": 1}, headers=alice),
                                 422, "invalid_input")
    envelope(httpx.get(url, params={"metric": "odoo.cpu", "branch": "nope"}, headers=alice), 404, "not_found")


def test_rls_on_the_tables(world, settings, app_db, owner_db):
    """Below the API: members read their project's samples, nobody but the
    control plane writes them, and only admins see ingest tokens."""
    ids = {name: call(settings, lambda db, e=email: _user_id(db, e))
           for name, email in (("alice", "alice@acme.test"), ("bob", "bob@acme.test"), ("eve", "eve@evil.test"))}
    with owner_conn(owner_db) as conn:
        conn.execute("insert into ops.metrics (project_id, ts, metric, value) values (%s, now(), 'odoo.cpu', 1)",
                     (world["acme"],))
        conn.execute("insert into ops.metrics_minutely values (%s, 'odoo.cpu', now(), %s, 1, 1, 1, 1)",
                     (world["acme"], world["feature"]))
    for name, sees_samples, sees_tokens in (("alice", 1, 1), ("bob", 1, 0), ("eve", 0, 1)):
        with acting(app_db, Actor.user(ids[name])) as conn:
            assert conn.execute("select count(*) as n from ops.metrics").fetchone()["n"] == sees_samples, name
            assert conn.execute("select count(*) as n from ops.metrics_minutely").fetchone()["n"] == sees_samples
            assert conn.execute("select count(*) as n from ops.ingest_tokens").fetchone()["n"] == sees_tokens, name
    with acting(app_db, Actor.user(ids["alice"])) as conn:
        with pytest.raises(Exception, match="permission denied"):
            conn.execute("insert into ops.metrics (project_id, ts, metric, value) values (%s, now(), 'x', 1)",
                         (world["acme"],))
    with acting(app_db, Actor.user(ids["alice"])) as conn:
        with pytest.raises(Exception, match="permission denied"):
            conn.execute("select token_hash from ops.ingest_tokens")
    with acting(app_db, Actor.service()) as conn:
        with pytest.raises(Exception, match="permission denied"):
            conn.execute("delete from ops.metrics")
    with acting(app_db, Actor.user(ids["alice"])) as conn:
        with pytest.raises(Exception, match="permission denied"):
            conn.execute("update ops.metrics_minutely set count = 0")
    with acting(app_db, Actor.anonymous()) as conn:
        with pytest.raises(Exception, match="permission denied"):
            conn.execute("select count(*) from ops.metrics")


async def _user_id(db, email):
    from odooops.managers import lookup

    async with db.transaction(SERVICE) as conn:
        return (await lookup.user(conn, email))["id"]


def test_cli_ingest_tokens(cli, world):
    created = cli("ingest-token", "create", "acme/shop", "laptop agent")
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip().splitlines()[-1]
    assert token.startswith("oit_")
    listed = cli("ingest-token", "list", "acme/shop")
    assert "laptop agent" in listed.stdout and token not in listed.stdout
    rows = json.loads(cli("ingest-token", "list", "acme/shop", "--json").stdout)
    token_id = next(t["id"] for t in rows if t["name"] == "laptop agent")
    assert cli("ingest-token", "revoke", "acme/shop", token_id).returncode == 0
    again = cli("ingest-token", "revoke", "acme/shop", token_id)
    assert again.returncode == 1 and "no such ingest token" in again.stderr
    bad = cli("ingest-token", "revoke", "acme/shop", "nope")
    assert bad.returncode == 1 and "UUID" in bad.stderr
    # acting as the viewer: refused; as the stranger: no such project
    assert "admins and owners" in cli("--as", "bob@acme.test", "ingest-token", "list", "acme/shop").stderr
    assert "no project" in cli("--as", "eve@evil.test", "ingest-token", "list", "acme/shop").stderr


def test_fast_and_careful_paths_write_the_same_lines():
    """The common-shape fast path of samples.parse must agree with the
    sample-by-sample one wherever it answers, and leave everything else to it."""
    from odooops import samples

    latest = now()
    common = [
        [{"metric": "a.b", "value": 1}, {"metric": "c_d", "value": -0.5}],
        [{"metric": "a", "value": 2.5, "dims": {"host": "web\t1", "db": "pr\\od"}},
         {"metric": "a", "value": 10 ** 20, "dims": {}}, {"metric": "b", "value": 0, "dims": None}],
        [],
    ]
    for batch_samples in common:
        assert samples._common_lines(batch_samples) == samples._checked_lines(batch_samples, latest)
    for odd in ([{"metric": "a", "value": True}], [{"metric": "a", "value": "1"}], [{"metric": "a", "value": None}],
                [{"metric": "a", "value": 1, "dims": {"n": 1}}], [{"metric": "a", "value": 1, "dims": []}],
                [{"metric": "a", "value": 1e308}, {"metric": "a", "value": 1e308}],
                [{"metric": ["a"], "value": 1}], [{"metric": "a", "value": 1, "dims": {"x": {"y": 1}}}],
                [{"metric": "a", "value": 1, "ts": latest.isoformat()}],
                [{"metric": "a", "value": 1}, {"metric": "a"}]):
        with pytest.raises(samples._Unsure):
            samples._common_lines(odd)
    # finite values whose sum overflows are not refused, only left to the careful path
    big = [{"metric": "a", "value": 1e308}, {"metric": "a", "value": 1e308}]
    assert samples._copy_lines(big, latest)[0].count("\n") == 2


def test_samples_go_with_their_branch_and_project(api, world, owner_db):
    """No foreign keys on the samples (their checks would cost more than the
    insert): triggers delete them, and their rollup, with the branch or project."""
    post = lambda project, **extra: httpx.post(  # noqa: E731
        f"{api}/api/v1/metrics", json=batch(world[project], [{"metric": "odoo.cpu", "value": 1}], **extra),
        headers=ingest_as(world[f"{project}_ingest"]))
    for response in (post("acme"), post("acme", branch_id=world["feature"]), post("evil")):
        assert response.json() == {"inserted": 1}
    with owner_conn(owner_db) as conn:
        conn.execute("delete from ops.branches where id = %s", (world["feature"],))
        assert stored(owner_db) == 2
        conn.execute("delete from ops.projects where id = %s", (world["acme"],))
        assert stored(owner_db) == 1


def test_each_sample_names_its_own_dims():
    """A batch's distinct dims are sent once and each COPY line names its own
    by position: on both paths every sample must get back exactly its dims,
    the types of their values included (True == 1 in a dict key)."""
    from odooops import samples

    hosts = [{"host": f"web-{i % 3}", "db": "prod"} for i in range(9)]  # the common path
    typed = [{"n": 1}, {"n": True}, {"n": 1.0}, {"n": 1}, None, {}]     # the careful one
    for dims in (hosts + [None, {}], typed):
        body = json.dumps(batch("00000000-0000-0000-0000-000000000001",
                                [{"metric": "m", "value": i, "dims": d} for i, d in enumerate(dims)]))
        parsed = samples.parse(body.encode())
        refs = [line.split("\t")[3] for line in parsed.copy.splitlines()]
        got = [None if ref == samples.NO_VALUE else json.loads(parsed.dims[int(ref) - 1]) for ref in refs]
        assert [(g, [type(v) for v in g.values()]) if g else None for g in got] == \
               [(d, [type(v) for v in d.values()]) if d else None for d in dims]
        assert len(parsed.dims) == len({json.dumps(d) for d in dims if d})
