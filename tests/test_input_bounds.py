"""Numbers out of the database's ranges, and garbage, are refused as bad
input (an API envelope, a console page) before any query, streams included;
and no answer ever carries the database's own words."""

from __future__ import annotations

import httpx
import pytest
from conftest import owner_conn
from helpers import as_

OUT_OF_RANGE = ["2147483648", "9223372036854775808", "-1", "x1"]
# what PostgreSQL says (pydantic's own "a valid integer" is fine)
DATABASE_WORDS = ("psycopg", "out of range", "does not exist", "ops.", "sqlstate", "database error", "bigint")


def refused(response: httpx.Response, page: bool = False) -> None:
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:500])
    body = response.text.lower()
    assert not any(w in body for w in DATABASE_WORDS), body[:1000]
    if page:
        assert response.headers["content-type"].startswith("text/html")
    else:
        assert response.json()["ok"] is False


@pytest.fixture
def build(api, tenants) -> int:
    created = httpx.post(f"{api}/api/v1/projects/acme/shop/branches/feature/builds", headers=as_(tenants["alice"]))
    return created.json()["build_id"]


def test_api_numbers_out_of_range(api, tenants, build):
    alice = as_(tenants["alice"])
    for value in OUT_OF_RANGE:
        ids = [] if value == "2147483648" else [f"/projects/acme/shop/builds?before={value}"]  # a bigint
        for path in (*ids, f"/runs/{build}/logs?after_seq={value}", f"/runs/{build}/logs?limit={value}",
                     f"/runs/{build}/logs/stream?after_seq={value}", f"/projects/acme/shop/builds?limit={value}",
                     f"/projects/acme/shop/metrics?metric=cpu&hours={value}",
                     f"/projects/acme/shop/metrics?metric=cpu&step={value}",
                     f"/projects/acme/shop/deliveries?limit={value}",
                     f"/runs/{value}", f"/runs/{value}/logs", f"/runs/{value}/artifacts"):
            refused(httpx.get(f"{api}/api/v1{path}", headers=alice))
        for path in (f"/runs/{value}/cancel", f"/runs/{value}/rebuild", f"/runs/{value}/authorize"):
            refused(httpx.post(f"{api}/api/v1{path}", headers=alice))
        days = int(value) if value.lstrip("-").isdigit() else value
        refused(httpx.post(f"{api}/api/v1/tokens", json={"name": "t", "expires_in_days": days}, headers=alice))


def test_api_stream_with_last_event_id_out_of_range(api, tenants, build):
    for value in OUT_OF_RANGE:
        headers = {**as_(tenants["alice"]), "Last-Event-ID": value}
        with httpx.stream("GET", f"{api}/api/v1/runs/{build}/logs/stream", headers=headers, timeout=10) as response:
            response.read()
            refused(response)


def test_the_largest_values_in_range_are_fine(api, tenants, build):
    alice = as_(tenants["alice"])
    assert httpx.get(f"{api}/api/v1/runs/{build}/logs?after_seq=2147483647", headers=alice).json() == []
    assert httpx.get(f"{api}/api/v1/projects/acme/shop/builds?before=9223372036854775807",
                     headers=alice).status_code == 200
    assert httpx.get(f"{api}/api/v1/runs/9223372036854775807", headers=alice).status_code == 404


def test_console_numbers_out_of_range(console, build):
    alice = console("alice")
    for value in OUT_OF_RANGE:
        ids = [] if value == "2147483648" else [f"/p/acme/shop/b/feature?before={value}"]
        for path in (*ids, f"/runs/{build}?lines={value}", f"/runs/{build}/live?after={value}", f"/?page={value}",
                     f"/runs/{value}", f"/runs/{value}/log.txt"):
            refused(alice.get(path), page=True)
        for path in (f"/runs/{value}/cancel", f"/runs/{value}/rebuild", f"/runs/{value}/authorize"):
            refused(alice.post(path, data={"csrf_token": alice.csrf}), page=True)
        with alice.stream("GET", f"/runs/{build}/live", headers={"Last-Event-ID": value}, timeout=10) as response:
            response.read()
            refused(response, page=True)


def test_an_unexpected_database_error_is_a_generic_500(api, tenants, build, settings):
    # the database breaks under the server (a function gone): the answer says
    # which request it was, the server's log has the database's words
    with owner_conn(settings.database_url.reveal()) as conn:
        conn.execute("drop function ops.build_logs(bigint, integer, integer)")
    response = httpx.get(f"{api}/api/v1/runs/{build}/logs", headers={**as_(tenants["alice"]), "X-Request-Id": "r-42"})
    assert response.status_code == 500
    body = response.json()
    assert body["ok"] is False and body["code"] == "internal_error" and "r-42" in body["error"]
    assert not any(w in response.text.lower() for w in DATABASE_WORDS), response.text
    logged = "".join(p.read_text() for p in settings.data_dir.parent.glob("serve-*.log"))
    assert "r-42" in logged and "build_logs" in logged
