"""Login CSRF: a form on another site that posts to the sign-in (or
first-run setup) would sign the visitor in as the attacker. A browser says
where a request comes from (Origin, else Referer): another site is refused
with 403 and no session; this site, and clients that say nothing (the CLI,
curl), sign in."""

from __future__ import annotations

import httpx
from helpers import PASSWORD

from odooops import runtime
from odooops.console.first_run import setup_token
from odooops.managers.sessions import COOKIE

EVIL = "https://evil.example"
ALICE = {"email": "alice@acme.test", "password": PASSWORD}


def no_session(response: httpx.Response) -> None:
    assert response.status_code == 403, response.text[:300]
    assert COOKIE not in response.headers.get("set-cookie", "")
    assert "another site" in response.text


def test_console_login_from_another_site_is_refused(api, people):
    for headers in ({"Origin": EVIL}, {"Origin": "null"}, {"Referer": f"{EVIL}/trap.html"},
                    {"Origin": EVIL, "Referer": f"{api}/login"},
                    {"Origin": api.replace("127.0.0.1", "localhost")}, {"Origin": api.replace("http:", "https:")}):
        no_session(httpx.post(f"{api}/login", data=ALICE, headers=headers))
    assert "text/html" in httpx.post(f"{api}/login", data=ALICE, headers={"Origin": EVIL}).headers["content-type"]


def test_console_login_from_this_site_signs_in(api, people):
    for headers in ({"Origin": api}, {"Referer": f"{api}/login?next=/"}, {}):
        answer = httpx.post(f"{api}/login", data=ALICE, headers=headers)
        assert answer.status_code == 303 and COOKIE in answer.headers["set-cookie"], answer.text[:300]


def test_api_login_from_another_site_is_refused(api, people):
    url = f"{api}/api/v1/auth/login"
    for send in ({"json": ALICE}, {"data": ALICE}):
        answer = httpx.post(url, headers={"Origin": EVIL}, **send)
        no_session(answer)
        assert answer.json()["code"] == "cross_site"


def test_api_login_from_this_site_or_no_browser_signs_in(api, people):
    url = f"{api}/api/v1/auth/login"
    for headers in ({}, {"Origin": api}):
        answer = httpx.post(url, json=ALICE, headers=headers)
        assert answer.status_code == 200 and COOKIE in answer.headers["set-cookie"], answer.text


def test_the_scheme_is_the_one_a_trusted_proxy_forwarded(api, people):
    # the tests connect from 127.0.0.1, which ODOOOPS_FORWARDED_ALLOW_IPS trusts by default
    https = api.replace("http:", "https:")
    proxied = {"X-Forwarded-Proto": "https"}
    answer = httpx.post(f"{api}/api/v1/auth/login", json=ALICE, headers={**proxied, "Origin": https})
    assert answer.status_code == 200, answer.text
    no_session(httpx.post(f"{api}/api/v1/auth/login", json=ALICE, headers={**proxied, "Origin": api}))


def test_first_run_setup_from_another_site_is_refused(api, settings):
    token = setup_token(runtime.secret_key(settings).reveal())
    form = {"token": token, "name": "Mallory", "email": "mallory@evil.example", "password": PASSWORD,
            "password_again": PASSWORD, "org": "trap"}
    no_session(httpx.post(f"{api}/setup", data=form, headers={"Origin": EVIL}))
    done = httpx.post(f"{api}/setup", data={**form, "name": "Ada", "email": "ada@example.test", "org": "ada"},
                      headers={"Origin": api})
    assert done.status_code == 303 and COOKIE in done.headers["set-cookie"]
