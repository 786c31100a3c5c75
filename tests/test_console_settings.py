"""The queue page and the settings pages over real HTTP: what waits and why,
the workers; API tokens, org members, a project's webhook and ingest tokens,
each secret shown once; an owner, a teammate (viewer) and a stranger."""

from __future__ import annotations

import html
import json
import re
import time
import uuid
from datetime import datetime, timezone

import httpx
from browser import accessible, fits_a_phone, sign_in
from conftest import owner_conn
from helpers import SERVICE, as_, call
from playwright.sync_api import expect

from odooops.hooks.verify import signed_headers
from odooops.managers.queue import Queue

LAST_OWNER = "an org must keep at least one owner"


def once(page: httpx.Response) -> str:
    """The secret a page shows once."""
    found = re.search(r'class="secret-once.*?<code id="[a-z]+-value" class="secret-value">([^<]+)</code>', page.text,
                      re.S)
    assert found, page.text
    return html.unescape(found[1])


def section(page: httpx.Response, element_id: str) -> str:
    """The HTML of one <section> of a page."""
    found = re.search(rf'<section id="{element_id}".*?</section>', page.text, re.S)
    assert found, f"no #{element_id} in the page"
    return found[0]


def members(api: str, token: str) -> dict[str, str]:
    rows = httpx.get(f"{api}/api/v1/orgs/acme/members", headers=as_(token)).json()
    return {r["email"]: r["role"] for r in rows}


def member_id(api: str, token: str, email: str) -> str:
    rows = httpx.get(f"{api}/api/v1/orgs/acme/members", headers=as_(token)).json()
    return next(r["user_id"] for r in rows if r["email"] == email)


# The queue page


def fork_pull_request(owner_db: str) -> int:
    """A build of a fork's pull request on acme/shop, waiting for an admin (as a webhook queues it)."""
    with owner_conn(owner_db) as conn:
        return conn.execute(
            "select (ops.enqueue_build_v2(b.id, %s, 'pull_request', 'refs/pull/7/head', 7, '{}', false)).id"
            " from ops.branches b join ops.projects p on p.id = b.project_id"
            " where p.slug = 'shop' and b.name = 'main'", ("2" * 40,)).fetchone()["id"]


def test_queue_shows_why_runs_wait_and_the_workers(console, api, tenants, settings, owner_db):
    alice, eve = console("alice"), console("eve")
    empty = alice.get("/queue")
    assert empty.status_code == 200 and 'aria-current="page"' in empty.text
    assert "Nothing waits" in empty.text and "No worker is running:" in empty.text
    built = httpx.post(f"{api}/api/v1/projects/acme/shop/branches/feature/builds", headers=as_(tenants["alice"]))
    run = built.json()["build_id"]
    page = alice.get("/queue")
    row = re.search(rf'<tr data-run="{run}">.*?</tr>', page.text, re.S)[0]
    assert f'href="/runs/{run}"' in row and 'href="/p/acme/shop"' in row and "feature" in row
    assert "no worker is running: start one with `odooops runner`" in row
    forked = fork_pull_request(owner_db)
    waiting = re.search(rf'<tr data-run="{forked}">.*?</tr>', alice.get("/queue").text, re.S)[0]
    assert "Needs approval" in waiting and "waits for an admin to authorize it (pull request from a fork)" in waiting

    call(settings, lambda db: Queue(db, SERVICE).register_worker("build-host-1", 4242, "9.9.9", 3, None))
    reason = next(r["reason"] for r in httpx.get(f"{api}/api/v1/queue", headers=as_(tenants["alice"])).json()
                  if r["id"] == run)
    assert "no worker" not in reason
    page = alice.get("/queue")
    assert html.escape(reason) in re.search(rf'<tr data-run="{run}">.*?</tr>', page.text, re.S)[0]
    worker = re.search(r'<tr data-worker=.*?</tr>', page.text, re.S)[0]
    assert "build-host-1" in worker and "4242" in worker and "9.9.9" in worker
    assert '<td data-label="Running / capacity" class="capacity">0 / 3</td>' in worker
    assert "Alive" in worker and "just now" in worker
    # the stranger sees the workers, never acme's runs
    theirs = eve.get("/queue")
    assert f"/runs/{run}" not in theirs.text and "acme/shop" not in theirs.text and "build-host-1" in theirs.text


def test_queue_refreshes_as_a_fragment_for_htmx(console, api, tenants):
    alice = console("alice")
    built = httpx.post(f"{api}/api/v1/projects/acme/shop/branches/feature/builds", headers=as_(tenants["alice"]))
    part = alice.get("/queue", headers={"HX-Request": "true", "HX-Target": "queue-live"})
    assert part.status_code == 200 and part.text.lstrip().startswith('<div id="queue-live"')
    assert "<html" not in part.text and f'/runs/{built.json()["build_id"]}' in part.text
    whole = alice.get("/queue")
    assert 'hx-get="/queue"' in whole.text and 'hx-trigger="every 3s"' in whole.text and "<html" in whole.text


def test_stale_workers_are_marked(console, settings, owner_db):
    wid = call(settings, lambda db: Queue(db, SERVICE).register_worker("old-host", 7, "1", 2, None))["id"]
    with owner_conn(owner_db) as conn:
        conn.execute("update ops.workers set heartbeat_at = now() - interval '5 minutes' where id = %s", (wid,))
    page = console("alice").get("/queue")
    worker = re.search(r'<tr data-worker=.*?</tr>', page.text, re.S)[0]
    assert "Stale" in worker and "5 min ago" in worker
    assert "the queue does not move" in page.text


# API tokens


def test_a_token_is_shown_once_works_then_revokes(console, api):
    alice = console("alice")
    made = alice.post("/settings/tokens", data={"csrf_token": alice.csrf, "name": "ci", "scopes": "write",
                                                "expires_in_days": "30"})
    assert made.status_code == 200 and made.headers["cache-control"] == "no-store"
    token = once(made)
    assert token.startswith("oot_") and "will not be shown again" in made.text
    assert token not in str(made.url) and "location" not in made.headers
    me = httpx.get(f"{api}/api/v1/me", headers=as_(token))
    assert me.status_code == 200 and me.json()["email"] == "alice@acme.test"
    again = alice.get("/settings")
    assert token not in again.text and "secret-once" not in again.text
    row = re.search(r'<tr data-token="([^"]+)">(?:(?!</tr>).)*<th scope="row">ci</th>.*?</tr>', again.text, re.S)
    assert "read + write" in row[0] and "Active" in row[0] and 'aria-label="Revoke token ci"' in row[0]
    # the same token the API lists
    listed = {t["name"]: t for t in httpx.get(f"{api}/api/v1/tokens", headers=as_(token)).json()}
    assert listed["ci"]["id"] == row[1] and listed["ci"]["scopes"] == ["read", "write"]
    assert listed["ci"]["expires_at"] is not None
    revoked = alice.post(f"/settings/tokens/{row[1]}/revoke", data={"csrf_token": alice.csrf})
    assert revoked.status_code == 303 and revoked.headers["location"] == "/settings#tokens"
    assert httpx.get(f"{api}/api/v1/me", headers=as_(token)).status_code == 401
    after = re.search(rf'<tr data-token="{row[1]}">.*?</tr>', alice.get("/settings").text, re.S)[0]
    assert "Revoked" in after and "Revoke token" not in after


def test_a_read_token_only_reads_and_a_bad_form_says_why(console, api):
    alice = console("alice")
    token = once(alice.post("/settings/tokens", data={"csrf_token": alice.csrf, "name": "look", "scopes": "read"}))
    assert httpx.get(f"{api}/api/v1/me", headers=as_(token)).status_code == 200
    assert httpx.post(f"{api}/api/v1/orgs", json={"slug": "x"}, headers=as_(token)).status_code == 403
    bad = alice.post("/settings/tokens", data={"csrf_token": alice.csrf, "name": "", "expires_in_days": "0"})
    assert bad.status_code == 422 and 'id="e-token-name"' in bad.text and 'id="e-token-expiry"' in bad.text
    assert "secret-once" not in bad.text
    assert alice.post("/settings/tokens", data={"name": "no-csrf"}).status_code == 403


def test_nobody_revokes_someone_elses_token(console, api):
    alice, eve = console("alice"), console("eve")
    token = once(alice.post("/settings/tokens", data={"csrf_token": alice.csrf, "name": "mine"}))
    token_id = next(t["id"] for t in httpx.get(f"{api}/api/v1/tokens", headers=as_(token)).json()
                    if t["name"] == "mine")
    assert eve.post(f"/settings/tokens/{token_id}/revoke", data={"csrf_token": eve.csrf}).status_code == 404
    assert httpx.get(f"{api}/api/v1/me", headers=as_(token)).status_code == 200


# Members


def test_owner_adds_changes_and_removes_a_member(console, api, tenants):
    alice = console("alice")
    page = alice.get("/settings")
    acme = section(page, "members-acme")
    assert "bob@acme.test" in acme and "Add member" in acme and 'aria-label="Remove bob@acme.test from acme"' in acme
    added = alice.post("/settings/orgs/acme/members", data={"csrf_token": alice.csrf, "email": "carol@acme.test",
                                                           "role": "developer"})
    assert added.status_code == 303 and added.headers["location"] == "/settings#members-acme"
    assert members(api, tenants["alice"])["carol@acme.test"] == "developer"
    carol = member_id(api, tenants["alice"], "carol@acme.test")
    changed = alice.post(f"/settings/orgs/acme/members/{carol}/role", data={"csrf_token": alice.csrf, "role": "admin"})
    assert changed.status_code == 303
    assert members(api, tenants["alice"])["carol@acme.test"] == "admin"
    row = re.search(r'<tr data-member="carol@acme.test">.*?</tr>', alice.get("/settings").text, re.S)[0]
    assert '<option value="admin" selected>' in row
    removed = alice.post(f"/settings/orgs/acme/members/{carol}/remove", data={"csrf_token": alice.csrf})
    assert removed.status_code == 303
    assert "carol@acme.test" not in members(api, tenants["alice"])
    twice = alice.post("/settings/orgs/acme/members", data={"csrf_token": alice.csrf, "email": "bob@acme.test",
                                                           "role": "admin"})
    assert twice.status_code == 409 and "already a member" in section(twice, "members-acme")
    bad = alice.post("/settings/orgs/acme/members", data={"csrf_token": alice.csrf, "email": "nope", "role": "king"})
    assert bad.status_code == 422 and 'role="alert"' in section(bad, "members-acme")
    assert 'value="nope"' in section(bad, "members-acme")  # what was typed stays


def test_the_last_owner_stays(console, api, tenants):
    alice = console("alice")
    me = member_id(api, tenants["alice"], "alice@acme.test")
    leave = alice.post(f"/settings/orgs/acme/members/{me}/remove", data={"csrf_token": alice.csrf})
    assert leave.status_code == 409 and LAST_OWNER in section(leave, "members-acme")
    demote = alice.post(f"/settings/orgs/acme/members/{me}/role", data={"csrf_token": alice.csrf, "role": "admin"})
    assert demote.status_code == 409 and LAST_OWNER in section(demote, "members-acme")
    assert members(api, tenants["alice"])["alice@acme.test"] == "owner"


def test_a_viewer_sees_members_read_only_and_changes_nothing(console, api, tenants):
    bob = console("bob")
    acme = section(bob.get("/settings"), "members-acme")
    assert "alice@acme.test" in acme and "bob@acme.test" in acme
    assert "Add member" not in acme and "<form" not in acme and "Only admins and owners" in acme
    before = members(api, tenants["alice"])
    alice_id = member_id(api, tenants["alice"], "alice@acme.test")
    tries = [bob.post("/settings/orgs/acme/members", data={"csrf_token": bob.csrf, "email": "mallory@x.test",
                                                           "role": "owner"}),
             bob.post(f"/settings/orgs/acme/members/{alice_id}/role", data={"csrf_token": bob.csrf, "role": "viewer"}),
             bob.post(f"/settings/orgs/acme/members/{alice_id}/remove", data={"csrf_token": bob.csrf})]
    for refused in tries:
        assert refused.status_code == 403, refused.text
        assert 'role="alert"' in section(refused, "members-acme")
    assert members(api, tenants["alice"]) == before


def test_a_stranger_cannot_see_or_touch_acmes_members(console, api, tenants):
    eve = console("eve")
    page = eve.get("/settings")
    assert 'id="members-evil"' in page.text and "members-acme" not in page.text and "bob@acme.test" not in page.text
    before = members(api, tenants["alice"])
    bob_id = member_id(api, tenants["alice"], "bob@acme.test")
    tries = [eve.post("/settings/orgs/acme/members", data={"csrf_token": eve.csrf, "email": "eve@evil.test",
                                                           "role": "owner"}),
             eve.post(f"/settings/orgs/acme/members/{bob_id}/role", data={"csrf_token": eve.csrf, "role": "owner"}),
             eve.post(f"/settings/orgs/acme/members/{bob_id}/remove", data={"csrf_token": eve.csrf})]
    for refused in tries:
        assert refused.status_code == 404 and "bob@acme.test" not in refused.text
    assert members(api, tenants["alice"]) == before


# A project's webhook


def deliver_ping(url: str, secret: str) -> httpx.Response:
    body = json.dumps({"zen": "Keep it logically awesome.", "hook_id": 1}).encode()
    headers = signed_headers("github", secret, body, "ping", uuid.uuid4().hex)
    return httpx.post(url, content=body, headers={**headers, "Content-Type": "application/json"})


def test_webhook_secret_shown_once_verifies_a_delivery_and_rotates(console, api, tenants):
    alice = console("alice")
    first = alice.get("/p/acme/shop/settings")
    assert first.status_code == 200 and "Create secret" in section(first, "webhook")
    for host in ("GitHub", "GitLab", "Gitea"):
        assert f"<summary>{host}</summary>" in first.text
    made = alice.post("/p/acme/shop/settings/hook", data={"csrf_token": alice.csrf})
    assert made.status_code == 200 and made.headers["cache-control"] == "no-store"
    secret = once(made)
    url = html.unescape(re.search(r'id="hook-url-github" class="hook-url">([^<]+)<', made.text)[1])
    assert url.startswith(api) and "/api/v1/hooks/github/" in url
    assert url.replace("github", "gitlab") in made.text and url.replace("github", "gitea") in made.text
    assert deliver_ping(url, secret).status_code == 200
    later = alice.get("/p/acme/shop/settings")
    assert secret not in later.text and "Rotate secret" in section(later, "webhook")
    deadline = time.monotonic() + 20
    while "ping: the hook works" not in later.text and time.monotonic() < deadline:
        time.sleep(0.2)
        later = alice.get("/p/acme/shop/settings")
    assert "ping: the hook works" in section(later, "webhook")
    rotated = alice.post("/p/acme/shop/settings/hook", data={"csrf_token": alice.csrf})
    new = once(rotated)
    assert new != secret and "no longer works" in rotated.text
    assert deliver_ping(url, secret).status_code == 401
    assert deliver_ping(url, new).status_code == 200


def test_webhook_and_ingest_are_for_admins_only(console, tenants):
    bob, eve = console("bob"), console("eve")
    seen = bob.get("/p/acme/shop/settings")
    assert seen.status_code == 200 and 'id="read-only"' in seen.text
    assert 'id="webhook"' not in seen.text and 'id="ingest"' not in seen.text
    for path in ("/p/acme/shop/settings/hook", "/p/acme/shop/settings/ingest-tokens"):
        refused = bob.post(path, data={"csrf_token": bob.csrf, "name": "x"})
        assert refused.status_code == 403 and "secret-once" not in refused.text
        assert eve.post(path, data={"csrf_token": eve.csrf, "name": "x"}).status_code == 404
    assert eve.get("/p/acme/shop/settings").status_code == 404
    assert eve.get("/p/evil/lab/settings").status_code == 200


# Ingest tokens


def test_ingest_token_shown_once_accepted_then_revoked(console, api, tenants):
    alice = console("alice")
    made = alice.post("/p/acme/shop/settings/ingest-tokens", data={"csrf_token": alice.csrf, "name": "web-1"})
    assert made.status_code == 200 and made.headers["cache-control"] == "no-store"
    token = once(made)
    assert token.startswith("oit_")
    project_id = httpx.get(f"{api}/api/v1/projects/acme/shop", headers=as_(tenants["alice"])).json()["id"]
    assert f"{api}/api/v1/metrics" in section(made, "ingest") and project_id in section(made, "ingest")
    batch = {"project_id": project_id, "ts": datetime.now(timezone.utc).isoformat(),
             "samples": [{"metric": "cpu.percent", "value": 12.5}]}
    sent = httpx.post(f"{api}/api/v1/metrics", json=batch, headers={"x-ops-ingest-token": token})
    assert sent.status_code == 200 and sent.json() == {"inserted": 1}
    page = alice.get("/p/acme/shop/settings")
    assert token not in page.text
    token_id = re.search(r'<tr data-ingest-token="([^"]+)">\s*<th scope="row">web-1</th>', page.text)[1]
    assert 'aria-label="Revoke ingest token web-1"' in page.text
    revoked = alice.post(f"/p/acme/shop/settings/ingest-tokens/{token_id}/revoke", data={"csrf_token": alice.csrf})
    assert revoked.status_code == 303 and revoked.headers["location"] == "/p/acme/shop/settings#ingest"
    assert httpx.post(f"{api}/api/v1/metrics", json=batch, headers={"x-ops-ingest-token": token}).status_code == 401
    blank = alice.post("/p/acme/shop/settings/ingest-tokens", data={"csrf_token": alice.csrf, "name": ""})
    assert blank.status_code == 422 and 'id="e-ingest-name"' in blank.text


# In a browser: the forms as a person sends them, the copy button, the live queue


def test_browser_token_form_copy_button_and_revoke(page, api, people, shoot):
    sign_in(page, api, "alice@acme.test")
    page.goto(f"{api}/settings")
    page.fill("#f-token-name", "laptop")
    page.select_option("#f-token-scopes", "write")
    page.click("button:has-text('Create token')")  # the form's own CSRF field: no test help
    secret = page.locator(".secret-once .secret-value")
    expect(secret).to_have_text(re.compile(r"^oot_"))
    copy = page.locator(".secret-once button[data-copy]")
    expect(copy).to_be_visible()  # JavaScript shows it where the clipboard is available
    assert httpx.get(f"{api}/api/v1/me", headers=as_(secret.inner_text())).status_code == 200
    accessible(page)
    fits_a_phone(page)
    shoot(page, "settings-token-once")
    # the confirmation, answered yes (a dialog handler would run inside Playwright's loop)
    page.evaluate("window.confirm = (m) => { sessionStorage.asked = m; return true; }")
    page.click("button[aria-label='Revoke token laptop']")
    expect(page.locator("tr", has_text="laptop").locator(".badge")).to_have_text("Revoked")
    assert "Revoke the token laptop?" in page.evaluate("sessionStorage.asked")
    assert page.locator(".secret-once").count() == 0


def test_browser_members_and_project_settings(page, api, people, shoot):
    sign_in(page, api, "alice@acme.test")
    page.goto(f"{api}/settings")
    page.fill("#f-email-acme", "dan@acme.test")
    page.click("#members-acme button:has-text('Add member')")
    expect(page.locator("#members-acme tr[data-member='dan@acme.test']")).to_be_visible()
    accessible(page)
    fits_a_phone(page)
    shoot(page, "settings-members")
    page.goto(f"{api}/p/acme/shop/settings")
    page.click("#webhook button:has-text('Create secret')")
    expect(page.locator("#webhook .secret-once")).to_contain_text("It will not be shown again")
    page.fill("#f-ingest-name", "web-1")
    page.click("button:has-text('Create ingest token')")
    expect(page.locator("#ingest .secret-once .secret-value")).to_have_text(re.compile(r"^oit_"))
    assert page.locator("#webhook .secret-once").count() == 0  # the webhook secret went with its answer
    accessible(page)
    fits_a_phone(page)
    shoot(page, "project-settings")


def test_browser_queue_refreshes_itself(page, api, people, tenants, settings, shoot):
    sign_in(page, api, "alice@acme.test")
    page.goto(f"{api}/queue")
    expect(page.locator("#workers")).to_contain_text("No worker is running")
    call(settings, lambda db: Queue(db, SERVICE).register_worker("live-host", 99, "1.0", 2, None))
    built = httpx.post(f"{api}/api/v1/projects/acme/shop/branches/feature/builds", headers=as_(tenants["alice"]))
    run = built.json()["build_id"]
    # no reload: htmx brings them in
    expect(page.locator(f"tr[data-run='{run}']")).to_be_visible(timeout=8000)
    expect(page.locator("#workers")).to_contain_text("live-host")
    accessible(page)
    fits_a_phone(page)
    shoot(page, "queue")


def test_the_project_page_says_which_odoo_sources_it_builds_on(console, settings, owner_db):
    """The defaults (the public repository at the version), then what the project set, a credential masked."""
    from psycopg.types.json import Jsonb

    def facts() -> str:
        page = console("bob").get("/p/acme/shop/settings").text  # a viewer reads them too
        return re.sub(r"\s+", " ", re.search(r'<dl class="facts">(.*?)</dl>', page, re.S)[1])

    assert "<code>https://github.com/odoo/odoo.git</code> at <code>17.0</code>" in facts()
    assert "Template cache</dt><dd>on" in facts()
    with owner_conn(owner_db) as conn:
        conn.execute("update ops.projects set settings = %s where slug = 'shop'", (Jsonb({
            "odoo_repository": "/srv/odoo/17.0", "odoo_ref": "17.0-hotfix", "template_cache": False,
            "enterprise_repository": "https://bot:s3cr3t-t0ken@github.com/odoo/enterprise.git",
            "extra_addons": [{"name": "web", "repository": "https://github.com/OCA/web.git", "ref": "17.0"}]}),))
    shown = facts()
    assert "<code>/srv/odoo/17.0</code> at <code>17.0-hotfix</code>" in shown
    assert "Odoo source: enterprise</dt>" in shown and "s3cr3t-t0ken" not in shown and "bot:********@" in shown
    assert "Odoo source: web</dt>" in shown and "<code>https://github.com/OCA/web.git</code>" in shown
    assert "Template cache</dt><dd>off" in shown
