"""The console's pages over real HTTP (no browser): sign-in, first-run setup,
projects, and error pages that give nothing away."""

from __future__ import annotations

import re

import httpx
from conftest import PASSWORD

from odooops import runtime
from odooops.console.first_run import setup_path


def test_pages_need_a_session_and_send_back_after_sign_in(api, people):
    with httpx.Client(base_url=api) as client:
        answer = client.get("/?x=1")
        assert answer.status_code == 303
        assert answer.headers["location"] == "/login?next=/%3Fx%3D1"
        form = client.get(answer.headers["location"])
        assert form.status_code == 200 and 'name="next" value="/?x=1"' in form.text
        signed = client.post("/login", data={"email": "alice@acme.test", "password": PASSWORD, "next": "/?x=1"})
        assert signed.status_code == 303 and signed.headers["location"] == "/?x=1"
        assert "httponly" in signed.headers["set-cookie"].lower()


def test_sign_in_refuses_wrong_password_and_other_sites(api, people):
    with httpx.Client(base_url=api) as client:
        wrong = client.post("/login", data={"email": "alice@acme.test", "password": "nope", "next": "/"})
        assert wrong.status_code == 401 and "role=\"alert\"" in wrong.text
        assert 'value="alice@acme.test"' in wrong.text
        away = client.post("/login", data={"email": "alice@acme.test", "password": PASSWORD,
                                           "next": "//evil.test/x"})
        assert away.headers["location"] == "/"


def test_sign_out_needs_the_csrf_token_then_ends_the_session(console):
    alice = console("alice")
    refused = alice.post("/logout")
    assert refused.status_code == 403 and "<h1>Not allowed</h1>" in refused.text
    assert alice.post("/logout", data={"csrf_token": alice.csrf}).status_code == 303
    assert alice.get("/").status_code == 303


def test_projects_page_lists_only_the_visitors_projects(console):
    page = console("alice").get("/")
    assert page.status_code == 200
    assert "acme/shop" in page.text and "evil/lab" not in page.text
    assert 'class="badge none"' in page.text  # no builds yet


def test_create_project_validates_then_creates(console, tmp_path):
    alice = console("alice")
    assert f'name="csrf_token" value="{alice.csrf}"' in alice.get("/").text.split('action="/projects"')[1]
    bad = alice.post("/projects", data={"csrf_token": alice.csrf, "org": "acme", "slug": "Bad Name", "repo_url": ""})
    assert bad.status_code == 422
    assert 'id="e-slug"' in bad.text and 'id="e-repo_url"' in bad.text
    assert 'value="Bad Name"' in bad.text  # what was typed stays
    repo = str(tmp_path / "repo")  # the tenants' repository, in the folder given to acme
    made = alice.post("/projects", data={"csrf_token": alice.csrf, "org": "acme", "slug": "crm",
                                         "repo_url": repo, "default_branch": "main", "odoo_version": "17.0"})
    assert made.status_code == 303 and made.headers["location"] == "/p/acme/crm"
    again = alice.post("/projects", data={"csrf_token": alice.csrf, "org": "acme", "slug": "crm", "repo_url": repo})
    assert again.status_code == 422 and 'role="alert"' in again.text


def test_viewer_and_stranger_cannot_create_in_acme(console, tmp_path):
    bob = console("bob")
    assert "You are not an admin" in bob.get("/").text
    eve = console("eve")
    refused = eve.post("/projects", data={"csrf_token": eve.csrf, "org": "acme", "slug": "x", "repo_url": "x"})
    assert refused.status_code == 422 and 'role="alert"' in refused.text
    assert "evil/lab" in refused.text and "acme/shop" not in refused.text


def test_unknown_address_is_a_page_and_the_api_stays_json(console, api):
    alice = console("alice")
    page = alice.get("/no/such/page")
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    assert "There is no page at this address." in page.text
    assert httpx.get(f"{api}/api/v1/nope").json()["code"] == "not_found"


def test_first_run_setup_makes_the_owner_and_signs_in(api, settings):
    from helpers import SERVICE, call

    from odooops.managers.orgs import Orgs

    call(settings, lambda db: Orgs(db, SERVICE).create("demo"))  # as `up --demo` makes it: no members
    link = setup_path(runtime.secret_key(settings).reveal())
    with httpx.Client(base_url=api) as client:
        assert "No one has an account yet" in client.get("/login").text
        assert client.get("/setup?token=wrong").status_code == 403
        form = client.get(link)
        assert form.status_code == 200
        token = re.search(r'name="token" value="([^"]+)"', form.text)[1]
        short = client.post("/setup", data={"token": token, "name": "Ada", "email": "ada@example.test",
                                            "password": "short", "password_again": "short", "org": "ada"})
        assert short.status_code == 422 and 'id="e-password"' in short.text and "short" not in re.findall(
            r'value="([^"]*)"', short.text)
        done = client.post("/setup", data={"token": token, "name": "Ada", "email": "ada@example.test",
                                           "password": PASSWORD, "password_again": PASSWORD, "org": "ada"})
        assert done.status_code == 303 and done.headers["location"] == "/"
        assert client.get("/").status_code == 200
        mine = {o["slug"] for o in client.get("/api/v1/orgs").json()}
        assert mine == {"ada", "demo"}  # the demo's org is the first owner's too
        assert client.get(link).status_code == 404  # one time only


def test_projects_page_finds_by_name_and_pages(console, settings, tmp_path):
    from helpers import SERVICE, call

    from odooops.managers.projects import Projects

    async def many(db):
        for n in range(55):
            await Projects(db, SERVICE).create(f"acme/p{n:02d}", "https://git.example.com/acme/p.git", check=False)

    call(settings, many)
    alice = console("alice")
    first = alice.get("/")
    assert "1–50 of 56" in first.text and "acme/p48" in first.text and "acme/shop" not in first.text
    second = alice.get("/?page=2")
    assert "51–56 of 56" in second.text and "acme/shop" in second.text and "acme/p48" not in second.text
    found = alice.get("/?q=P5")
    assert "acme/p50" in found.text and "acme/p54" in found.text and "acme/p49" not in found.text
    assert "matches “nothing-like-this”" in alice.get("/?q=nothing-like-this").text
    assert "/p/acme/" not in console("eve").get("/?q=acme").text


def test_pages_and_the_api_docs_forbid_framing_and_foreign_scripts(console, api):
    page = console("alice").get("/")
    policy = page.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert page.headers["x-frame-options"] == "DENY" and page.headers["x-content-type-options"] == "nosniff"
    assert "content-security-policy" in httpx.get(f"{api}/login").headers
    assert httpx.get(f"{api}/api/v1/docs").headers["content-security-policy"] == policy  # Swagger UI from /static
