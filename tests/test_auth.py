"""Signing in over real HTTP: console sessions in a cookie, CSRF tokens,
throttled logins, personal API tokens through the API, and /me."""

from __future__ import annotations

import httpx
import pytest
from conftest import owner_conn
from helpers import SERVICE, call

from odooops.managers.orgs import Orgs
from odooops.managers.tokens import Tokens
from odooops.managers.users import Users

PASSWORD = "correct horse battery"
COOKIE = "odooops_session"


@pytest.fixture
def people(settings):
    """Alice and Bob with passwords, Alice owning org acme; a read-only token for Alice."""

    async def work(db):
        await Users(db, SERVICE).create("alice@acme.test", "Alice", PASSWORD)
        await Users(db, SERVICE).create("bob@acme.test", "Bob", PASSWORD)
        await Orgs(db, SERVICE).create("acme", owner_email="alice@acme.test")
        return {"alice_read": (await Tokens(db, SERVICE).create("alice@acme.test", "ro", ["read"]))[1]}

    return call(settings, work)


def login(api: str, email: str, password: str = PASSWORD, address: str | None = None, **kw) -> httpx.Response:
    headers = {"X-Forwarded-For": address} if address else {}
    return httpx.post(f"{api}/api/v1/auth/login", json={"email": email, "password": password},
                      headers={**headers, **kw.pop("headers", {})}, **kw)


def set_cookie(response: httpx.Response) -> tuple[str, dict]:
    """The session cookie's value and its attributes (lowercased names)."""
    header = next(h for h in response.headers.get_list("set-cookie") if h.startswith(COOKIE + "="))
    first, *attrs = [part.strip() for part in header.split(";")]
    flags = {}
    for attr in attrs:
        key, _, value = attr.partition("=")
        flags[key.lower()] = value or True
    return first.partition("=")[2], flags


class Session:
    """A signed-in console, sending its cookie (and CSRF token when asked)."""

    def __init__(self, api: str, email: str):
        response = login(api, email)
        assert response.status_code == 200, response.text
        self.api, self.body = api, response.json()
        self.cookie = set_cookie(response)[0]
        self.csrf = self.body["csrf_token"]

    def headers(self, csrf: bool | str | bytes = False) -> dict:
        headers = {"Cookie": f"{COOKIE}={self.cookie}"}
        if csrf:
            headers["X-CSRF-Token"] = self.csrf if csrf is True else csrf
        return headers

    def get(self, path: str) -> httpx.Response:
        return httpx.get(f"{self.api}{path}", headers=self.headers())

    def send(self, method: str, path: str, csrf: bool | str | bytes = True, **kw) -> httpx.Response:
        return httpx.request(method, f"{self.api}{path}", headers=self.headers(csrf), **kw)


def envelope(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["ok"] is False and body["code"] == code and body["error"]
    return body["error"]


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def test_login_returns_the_user_and_a_csrf_token_and_sets_the_cookie(api, people):
    response = login(api, "Alice@Acme.test")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["ok"] is True and body["csrf_token"]
    assert {k: body["user"][k] for k in ("email", "name")} == {"email": "alice@acme.test", "name": "Alice"}
    assert response.headers["cache-control"] == "no-store"
    value, flags = set_cookie(response)
    assert value.startswith("oos_") and value not in response.text
    assert flags["httponly"] is True and flags["samesite"].lower() == "lax" and flags["path"] == "/"
    assert "secure" not in flags  # auto, and this request came over plain http
    alice = Session(api, "alice@acme.test")
    assert alice.get("/api/v1/me").json() == {k: body["user"][k] for k in ("id", "email", "name")}
    current = alice.get("/api/v1/auth/session").json()
    assert current["csrf_token"] == alice.csrf and current["user"]["email"] == "alice@acme.test"


def test_login_from_an_html_form(api, people):
    response = httpx.post(f"{api}/api/v1/auth/login", data={"email": "bob@acme.test", "password": PASSWORD})
    assert response.status_code == 200, response.text
    assert response.json()["user"]["email"] == "bob@acme.test" and set_cookie(response)[0]


def test_wrong_password_and_unknown_email_get_the_same_answer(api, people):
    wrong = login(api, "alice@acme.test", "not the password")
    unknown = login(api, "nobody@acme.test", "not the password")
    assert envelope(wrong, 401, "bad_credentials") == envelope(unknown, 401, "bad_credentials")
    assert wrong.json() == unknown.json() and "set-cookie" not in wrong.headers


@pytest.mark.parametrize("kw", [
    {"json": {"email": "alice@acme.test"}},
    {"json": ["alice@acme.test", PASSWORD]},
    {"json": {"email": "alice@acme.test", "password": "x" * 2000}},
    {"content": b"{not json", "headers": {"Content-Type": "application/json"}},
    {"content": b"email=alice", "headers": {"Content-Type": "text/plain"}},
    {"data": {"password": PASSWORD}},
])
def test_bad_login_input_is_a_422(api, people, kw):
    message = envelope(httpx.post(f"{api}/api/v1/auth/login", **kw), 422, "invalid_input")
    assert PASSWORD not in message


def test_secure_flag_follows_the_setting(serve_api, people):
    https = {"X-Forwarded-Proto": "https"}  # as a proxy on this host says it
    auto = serve_api()
    assert "secure" in set_cookie(login(auto, "alice@acme.test", headers=https))[1]
    always = serve_api({"ODOOOPS_SECURE_COOKIES": "always"})
    assert "secure" in set_cookie(login(always, "alice@acme.test"))[1]
    never = serve_api({"ODOOOPS_SECURE_COOKIES": "never"})
    assert "secure" not in set_cookie(login(never, "alice@acme.test", headers=https))[1]


def test_a_session_reads_and_writes_only_with_its_csrf_token(api, people):
    alice, bob = Session(api, "alice@acme.test"), Session(api, "bob@acme.test")
    assert [o["slug"] for o in alice.get("/api/v1/orgs").json()] == ["acme"]
    body = {"slug": "shop-co"}
    envelope(alice.send("POST", "/api/v1/orgs", csrf=False, json=body), 403, "csrf")
    envelope(alice.send("POST", "/api/v1/orgs", csrf="0" * 64, json=body), 403, "csrf")
    envelope(alice.send("POST", "/api/v1/orgs", csrf=bob.csrf, json=body), 403, "csrf")  # bound to its session
    envelope(alice.send("POST", "/api/v1/orgs", csrf="é".encode(), json=body), 403, "csrf")
    assert [o["slug"] for o in alice.get("/api/v1/orgs").json()] == ["acme"]
    created = alice.send("POST", "/api/v1/orgs", json=body)
    assert created.status_code == 201, created.text
    assert [o["slug"] for o in alice.get("/api/v1/orgs").json()] == ["acme", "shop-co"]


def test_a_bearer_token_needs_no_csrf_token_and_wins_over_a_cookie(api, people):
    alice = Session(api, "alice@acme.test")
    token = alice.send("POST", "/api/v1/tokens", json={"name": "cli", "scopes": ["read", "write"]}).json()["token"]
    created = httpx.post(f"{api}/api/v1/orgs", json={"slug": "tok-co"}, headers=bearer(token))
    assert created.status_code == 201, created.text
    # the read-only token decides, even with a cookie and its CSRF token beside it
    envelope(httpx.post(f"{api}/api/v1/orgs", json={"slug": "x-co"},
                        headers={**alice.headers(csrf=True), **bearer(people["alice_read"])}), 403, "forbidden")


def test_logout_ends_the_session(api, people, owner_db):
    alice = Session(api, "alice@acme.test")
    envelope(alice.send("POST", "/api/v1/auth/logout", csrf=False), 403, "csrf")
    assert alice.get("/api/v1/me").status_code == 200
    # a form post carries the CSRF token as a field
    response = httpx.post(f"{api}/api/v1/auth/logout", data={"csrf_token": alice.csrf}, headers=alice.headers())
    assert response.status_code == 200 and response.json() == {"ok": True}
    value, flags = set_cookie(response)
    assert value in ("", '""') and flags["max-age"] == "0"
    envelope(alice.get("/api/v1/me"), 401, "unauthenticated")
    with owner_conn(owner_db) as conn:
        assert conn.execute("select count(*) as n from ops.sessions").fetchone()["n"] == 0
    # signing out again, or without a session, still answers ok
    assert alice.send("POST", "/api/v1/auth/logout").json() == {"ok": True}


def test_sessions_are_stored_hashed_and_expire(api, people, owner_db):
    alice, bob = Session(api, "alice@acme.test"), Session(api, "bob@acme.test")
    with owner_conn(owner_db) as conn:
        hashes = [r["token_hash"] for r in conn.execute("select token_hash from ops.sessions")]
        assert alice.cookie not in hashes and all(len(h) == 64 for h in hashes)
        conn.execute("update ops.sessions set expires_at = now() - interval '1 s' "
                     "where user_id = (select id from ops.users where email = 'alice@acme.test')")
        conn.execute("update ops.sessions set last_seen_at = now() - interval '15 days' "
                     "where user_id = (select id from ops.users where email = 'bob@acme.test')")
    assert "sign in again" in envelope(alice.get("/api/v1/me"), 401, "unauthenticated")
    envelope(bob.get("/api/v1/me"), 401, "unauthenticated")
    envelope(httpx.get(f"{api}/api/v1/me", headers={"Cookie": f"{COOKIE}=oos_forged"}), 401, "unauthenticated")
    envelope(httpx.get(f"{api}/api/v1/me"), 401, "unauthenticated")


def throttled(response: httpx.Response) -> int:
    envelope(response, 429, "too_many_attempts")
    return int(response.headers["retry-after"])


def test_ten_failures_throttle_an_account_even_for_the_right_password(api, people):
    for i in range(10):
        envelope(login(api, "alice@acme.test", "wrong password", address=f"10.0.0.{i}"), 401, "bad_credentials")
    assert 0 < throttled(login(api, "alice@acme.test", address="10.0.1.1")) <= 15 * 60
    assert throttled(login(api, "ALICE@acme.test", "wrong password", address="10.0.1.2")) > 0
    # other accounts, from the same addresses, are not held up
    assert login(api, "bob@acme.test", address="10.0.0.1").status_code == 200
    # and an account that does not exist is throttled exactly alike
    for i in range(10):
        envelope(login(api, "ghost@acme.test", "wrong password", address=f"10.0.2.{i}"), 401, "bad_credentials")
    ghost = login(api, "ghost@acme.test", "wrong password", address="10.0.3.1")
    real = login(api, "alice@acme.test", "wrong password", address="10.0.3.2")
    throttled(ghost), throttled(real)
    assert ghost.json() == real.json()


def test_ten_failures_throttle_an_address(api, people):
    for i in range(10):
        envelope(login(api, f"user{i}@acme.test", "wrong password", address="10.9.9.9"), 401, "bad_credentials")
    assert throttled(login(api, "alice@acme.test", address="10.9.9.9")) > 0
    assert login(api, "alice@acme.test", address="10.9.9.8").status_code == 200


def test_a_successful_login_forgets_the_accounts_failures(api, people):
    for i in range(9):
        login(api, "alice@acme.test", "wrong password", address=f"10.0.0.{i}")
    assert login(api, "alice@acme.test", address="10.0.1.1").status_code == 200
    for i in range(9):
        envelope(login(api, "alice@acme.test", "wrong password", address=f"10.0.4.{i}"), 401, "bad_credentials")
    assert login(api, "alice@acme.test", address="10.0.1.2").status_code == 200


def test_token_lifecycle(api, people, owner_db):
    alice = Session(api, "alice@acme.test")
    envelope(alice.send("POST", "/api/v1/tokens", csrf=False, json={"name": "laptop"}), 403, "csrf")
    response = alice.send("POST", "/api/v1/tokens", json={"name": "laptop", "scopes": ["write"],
                                                          "expires_in_days": 30})
    assert response.status_code == 201, response.text
    created = response.json()
    token = created["token"]
    assert token.startswith("oot_") and created["scopes"] == ["read", "write"] and created["expires_at"]
    assert created["revoked"] is False and "token_hash" not in created
    me = httpx.get(f"{api}/api/v1/me", headers=bearer(token)).json()
    assert me["email"] == "alice@acme.test" and set(me) == {"id", "email", "name"}
    listed = alice.get("/api/v1/tokens").json()
    assert {t["name"] for t in listed} == {"ro", "laptop"}
    assert all(set(t) == {"id", "name", "scopes", "expires_at", "last_used_at", "created_at", "revoked"}
               for t in listed)
    assert token not in alice.get("/api/v1/tokens").text
    # a token with the write scope makes and revokes tokens too; a read-only one does not
    second = httpx.post(f"{api}/api/v1/tokens", json={"name": "ci"}, headers=bearer(token)).json()
    assert second["scopes"] == ["read"]
    envelope(httpx.post(f"{api}/api/v1/tokens", json={"name": "x"}, headers=bearer(people["alice_read"])),
             403, "forbidden")
    revoked = httpx.delete(f"{api}/api/v1/tokens/{second['id']}", headers=bearer(token))
    assert revoked.status_code == 200 and revoked.json()["revoked"] is True
    envelope(httpx.get(f"{api}/api/v1/me", headers=bearer(second["token"])), 401, "unauthenticated")
    envelope(alice.send("DELETE", f"/api/v1/tokens/{second['id']}"), 404, "not_found")
    with owner_conn(owner_db) as conn:
        conn.execute("update ops.api_tokens set expires_at = now() - interval '1 s' where id = %s", (created["id"],))
    envelope(httpx.get(f"{api}/api/v1/me", headers=bearer(token)), 401, "unauthenticated")


@pytest.mark.parametrize("body", [{"name": ""}, {"name": " "}, {"name": "x", "scopes": ["admin"]},
                                  {"name": "x", "scopes": []}, {"name": "x", "expires_in_days": 0}, {}])
def test_bad_token_input_is_a_422(api, people, body):
    alice = Session(api, "alice@acme.test")
    envelope(alice.send("POST", "/api/v1/tokens", json=body), 422, "invalid_input")


def test_tokens_are_listed_and_revoked_only_by_their_owner(api, people):
    alice, bob = Session(api, "alice@acme.test"), Session(api, "bob@acme.test")
    mine = alice.send("POST", "/api/v1/tokens", json={"name": "alice's"}).json()
    assert "alice's" not in [t["name"] for t in bob.get("/api/v1/tokens").json()]
    envelope(bob.send("DELETE", f"/api/v1/tokens/{mine['id']}"), 404, "not_found")
    envelope(bob.send("DELETE", "/api/v1/tokens/not-a-uuid"), 422, "invalid_input")
    assert httpx.get(f"{api}/api/v1/me", headers=bearer(mine["token"])).json()["email"] == "alice@acme.test"


def test_session_endpoint_needs_a_console_session(api, people):
    message = envelope(httpx.get(f"{api}/api/v1/auth/session", headers=bearer(people["alice_read"])),
                       401, "unauthenticated")
    assert "no console session" in message
    envelope(httpx.get(f"{api}/api/v1/auth/session"), 401, "unauthenticated")
