"""Passwords after an account exists, with the real CLI in a subprocess, a
real `odooops serve` and the console in Chromium: a piped password, an empty
one refused, the operator's set-password and one-time reset links, and the
change-password form of Settings. Each new password ends the other sessions."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import expect

from browser import accessible, fits_a_phone, sign_in
from conftest import owner_conn
from helpers import PASSWORD
from test_cli import fails, ok

NEW = "a brand new passphrase"


def login(api: str, email: str, password: str) -> httpx.Response:
    return httpx.post(f"{api}/api/v1/auth/login", json={"email": email, "password": password})


def password_hash(owner_db: str, email: str) -> str | None:
    with owner_conn(owner_db) as conn:
        row = conn.execute("select password_hash from ops.users where email = %s", (email,)).fetchone()
    return row["password_hash"]


def port(api: str) -> str:
    return str(urlsplit(api).port)


def reset_link(cli, api: str, email: str) -> str:
    """The link `odooops user reset-link` prints, for the server at `api`."""
    printed = ok(cli("user", "reset-link", email, env={"ODOOOPS_PORT": port(api)}))
    found = re.search(r"^(http://\S+/reset\?token=(oor_\S+))$", printed, re.M)
    assert found, printed
    assert found[1].startswith(api + "/reset?token=")
    return found[1]


def choose(link: str, password: str, again: str | None = None) -> httpx.Response:
    """Send the reset page's form as a browser on this site would."""
    token = link.partition("token=")[2]
    return httpx.post(link.partition("?")[0], data={"token": token, "password": password,
                                                    "password_again": password if again is None else again})


# user create


def test_a_piped_password_is_the_password(cli, api, owner_db):
    ok(cli("user", "create", "carol@acme.test", input=NEW + "\nignored second line\n"))
    assert password_hash(owner_db, "carol@acme.test").startswith("$argon2id$")
    assert login(api, "carol@acme.test", NEW).status_code == 200


@pytest.mark.parametrize("piped", ["", "\n", "\r\n"])
def test_an_empty_piped_password_creates_nothing(cli, owner_db, piped):
    fails(cli("user", "create", "carol@acme.test", input=piped), "no password on standard input")
    fails(cli("user", "create", "carol@acme.test", "--password-stdin", input=piped), "--no-password")
    with owner_conn(owner_db) as conn:
        assert conn.execute("select count(*) as n from ops.users").fetchone()["n"] == 0


def test_no_password_is_said_explicitly(cli, owner_db):
    ok(cli("user", "create", "carol@acme.test", "--no-password", input=NEW + "\n"))
    assert password_hash(owner_db, "carol@acme.test") is None


def test_a_short_piped_password_is_refused(cli, owner_db):
    fails(cli("user", "create", "carol@acme.test", input="short\n"), "at least 10 characters")
    with owner_conn(owner_db) as conn:
        assert conn.execute("select count(*) as n from ops.users").fetchone()["n"] == 0


# user set-password


def test_set_password_lets_the_user_sign_in_and_ends_their_sessions(cli, api, owner_db):
    ok(cli("user", "create", "carol@acme.test", "--no-password"))
    assert login(api, "carol@acme.test", "").status_code in (401, 422)
    ok(cli("user", "set-password", "carol@acme.test", input=PASSWORD + "\n"))
    first = login(api, "carol@acme.test", PASSWORD)
    assert first.status_code == 200
    said = ok(cli("user", "set-password", "Carol@acme.test", "--password-stdin", input=NEW + "\n"))
    assert "carol@acme.test has a new password" in said
    ended = httpx.get(f"{api}/api/v1/auth/session", cookies=first.cookies)
    assert ended.status_code == 401
    assert login(api, "carol@acme.test", PASSWORD).status_code == 401
    assert login(api, "carol@acme.test", NEW).status_code == 200


def test_set_password_says_why_not(cli, owner_db):
    ok(cli("user", "create", "carol@acme.test", "--password-stdin", input=PASSWORD + "\n"))
    before = password_hash(owner_db, "carol@acme.test")
    fails(cli("user", "set-password", "nobody@acme.test", input=NEW + "\n"), "no user with email nobody@acme.test")
    fails(cli("user", "set-password", "carol@acme.test", input="\n"), "no password on standard input")
    fails(cli("user", "set-password", "carol@acme.test", input="short\n"), "at least 10 characters")
    fails(cli("--as", "carol@acme.test", "user", "set-password", "carol@acme.test", input=NEW + "\n"),
          "only the operator")
    fails(cli("--as", "carol@acme.test", "user", "reset-link", "carol@acme.test"), "only the operator")
    assert password_hash(owner_db, "carol@acme.test") == before


# user reset-link


def test_a_reset_link_works_once_and_signs_in(cli, api, owner_db):
    ok(cli("user", "create", "carol@acme.test", "--no-password"))
    link = reset_link(cli, api, "carol@acme.test")
    with owner_conn(owner_db) as conn:  # only the token's hash is kept
        stored = conn.execute("select token_hash from ops.password_resets").fetchone()["token_hash"]
    assert link.partition("token=")[2] not in stored
    shown = httpx.get(link)
    assert shown.status_code == 200 and "carol@acme.test" in shown.text
    assert shown.headers["cache-control"] == "no-store"
    differ = choose(link, NEW, again=NEW + "!")
    assert differ.status_code == 422 and "the two passwords differ" in differ.text
    assert choose(link, "short").status_code == 422
    used = choose(link, NEW)
    assert used.status_code == 303 and used.headers["location"] == "/"
    assert httpx.get(f"{api}/api/v1/me", cookies=used.cookies).json()["email"] == "carol@acme.test"
    assert login(api, "carol@acme.test", NEW).status_code == 200
    again = choose(link, "yet another passphrase")
    assert again.status_code == 404 and "unknown, used or expired" in again.text
    assert httpx.get(link).status_code == 404
    assert login(api, "carol@acme.test", NEW).status_code == 200


def test_a_reset_ends_every_session(cli, api):
    ok(cli("user", "create", "carol@acme.test", input=PASSWORD + "\n"))
    before = login(api, "carol@acme.test", PASSWORD)
    assert choose(reset_link(cli, api, "carol@acme.test"), NEW).status_code == 303
    assert httpx.get(f"{api}/api/v1/auth/session", cookies=before.cookies).status_code == 401


def test_a_new_link_voids_the_older_one(cli, api):
    ok(cli("user", "create", "carol@acme.test", "--no-password"))
    older = reset_link(cli, api, "carol@acme.test")
    newer = reset_link(cli, api, "carol@acme.test")
    assert choose(older, NEW).status_code == 404
    assert choose(newer, NEW).status_code == 303


def test_an_expired_link_is_refused(cli, api, owner_db):
    ok(cli("user", "create", "carol@acme.test", "--no-password"))
    link = reset_link(cli, api, "carol@acme.test")
    with owner_conn(owner_db) as conn:
        conn.execute("update ops.password_resets set expires_at = now() - interval '1 second'")
    assert httpx.get(link).status_code == 404
    refused = choose(link, NEW)
    assert refused.status_code == 404 and "unknown, used or expired" in refused.text
    assert password_hash(owner_db, "carol@acme.test") is None


def test_a_link_is_open_for_a_day(cli, api, owner_db):
    ok(cli("user", "create", "carol@acme.test", "--no-password"))
    reset_link(cli, api, "carol@acme.test")
    with owner_conn(owner_db) as conn:
        hours = conn.execute("select extract(epoch from expires_at - created_at) / 3600 as h"
                             " from ops.password_resets").fetchone()["h"]
    assert round(hours) == 24


def test_a_forged_or_cross_site_reset_is_refused(cli, api, owner_db):
    ok(cli("user", "create", "carol@acme.test", "--no-password"))
    link = reset_link(cli, api, "carol@acme.test")
    assert httpx.get(f"{api}/reset?token=oor_nope").status_code == 404
    assert httpx.get(f"{api}/reset").status_code == 404
    assert choose(f"{api}/reset?token=oor_nope", NEW).status_code == 404
    token = link.partition("token=")[2]
    evil = httpx.post(f"{api}/reset", data={"token": token, "password": NEW, "password_again": NEW},
                      headers={"Origin": "https://evil.test"})
    assert evil.status_code == 403
    assert password_hash(owner_db, "carol@acme.test") is None


# Settings: change password


def change(client: httpx.Client, current: str, new: str, again: str | None = None) -> httpx.Response:
    return client.post("/settings/password", data={
        "csrf_token": client.csrf, "current_password": current, "new_password": new,
        "new_password_again": new if again is None else again})


def test_change_password_keeps_this_session_and_ends_the_others(console, api):
    here, elsewhere = console("alice"), console("alice")
    changed = change(here, PASSWORD, NEW)
    assert changed.status_code == 200 and "Your password is changed" in changed.text
    assert here.get("/settings").status_code == 200
    gone = elsewhere.get("/settings")
    assert gone.status_code == 303 and gone.headers["location"].startswith("/login")
    assert login(api, "alice@acme.test", PASSWORD).status_code == 401
    assert login(api, "alice@acme.test", NEW).status_code == 200
    assert console("bob").get("/settings").status_code == 200  # nobody else's sessions


@pytest.mark.parametrize("current,new,again,status,message", [
    ("wrong password here", NEW, None, 422, "the current password is wrong"),
    (PASSWORD, NEW, NEW + "!", 422, "the two new passwords differ"),
    (PASSWORD, "short", None, 422, 'id="e-new_password"'),
    ("", NEW, None, 422, 'id="e-current_password"'),
])
def test_change_password_says_why_not(console, api, current, new, again, status, message):
    alice, other = console("alice"), console("alice")
    refused = change(alice, current, new, again)
    assert refused.status_code == status and message in refused.text
    assert "Your password is changed" not in refused.text
    assert other.get("/settings").status_code == 200
    assert login(api, "alice@acme.test", PASSWORD).status_code == 200


def test_change_password_needs_the_csrf_token(console, api):
    alice = console("alice")
    refused = alice.post("/settings/password", data={
        "current_password": PASSWORD, "new_password": NEW, "new_password_again": NEW})
    assert refused.status_code == 403
    assert login(api, "alice@acme.test", PASSWORD).status_code == 200


def test_wrong_current_passwords_are_throttled_like_logins(console, api, owner_db):
    alice = console("alice")
    before = password_hash(owner_db, "alice@acme.test")
    for _ in range(10):
        assert change(alice, "wrong password here", NEW).status_code == 422
    throttled = change(alice, PASSWORD, NEW)
    assert throttled.status_code == 429 and "Retry-After" in throttled.headers
    assert login(api, "alice@acme.test", PASSWORD).status_code == 429  # the same count as sign-ins
    assert password_hash(owner_db, "alice@acme.test") == before


# In a browser


def test_browser_change_password_form(page, api, people, shoot):
    sign_in(page, api, "alice@acme.test")
    page.goto(f"{api}/settings")
    form = page.locator("#password")
    form.get_by_label("Current password").fill(PASSWORD)
    form.get_by_label("New password", exact=True).fill(NEW)
    form.get_by_label("New password again").fill(NEW)
    form.get_by_role("button", name="Change password").click()  # the form's own CSRF field
    expect(page.locator("#password [role=status]")).to_contain_text("Your password is changed")
    accessible(page)
    fits_a_phone(page)
    shoot(page, "settings-password-changed")
    assert login(api, "alice@acme.test", NEW).status_code == 200
    page.goto(f"{api}/settings")
    expect(page.get_by_role("heading", name="Settings")).to_be_visible()  # still signed in here


def test_browser_reset_page(page, cli, api, people, shoot):
    link = reset_link(cli, api, "bob@acme.test")
    page.goto(link)
    expect(page.get_by_role("heading", name="Choose a new password")).to_contain_text("new password")
    expect(page.locator("main")).to_contain_text("bob@acme.test")
    accessible(page)
    fits_a_phone(page)
    shoot(page, "reset-password")
    page.get_by_label("New password", exact=True).fill(NEW)
    page.get_by_label("New password again").fill("not the same one")
    page.get_by_role("button", name="Save password and sign in").click()
    expect(page.locator("#e-password_again")).to_have_text("the two passwords differ")
    accessible(page)
    page.get_by_label("New password", exact=True).fill(NEW)
    page.get_by_label("New password again").fill(NEW)
    page.get_by_role("button", name="Save password and sign in").click()
    expect(page.get_by_role("heading", name="Projects", exact=True)).to_be_visible()
    page.goto(link)
    expect(page.locator("main")).to_contain_text("unknown, used or expired")
    accessible(page)
