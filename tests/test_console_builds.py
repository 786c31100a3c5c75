"""The builds page of a branch and the actions on a build (rebuild, cancel,
authorize), over real HTTP against `odooops serve`: the owner, a viewer
teammate and a stranger, with and without htmx."""

from __future__ import annotations

import html
import re

import httpx
import psycopg
from conftest import PASSWORD
from helpers import SERVICE, as_, call
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from odooops.managers.branches import Branches
from odooops.managers.orgs import Orgs
from odooops.managers.queue import Queue
from odooops.managers.users import Users, hash_password

PAGE = "/p/acme/shop/b/feature"
HX = {"HX-Request": "true"}


def sha(n: int) -> str:
    return f"{n:040x}"


def trigger(api: str, token: str, commit: str, branch: str = "feature") -> int:
    answer = httpx.post(f"{api}/api/v1/projects/acme/shop/branches/{branch}/builds", headers=as_(token),
                        json={"commit": commit})
    assert answer.status_code == 201, answer.text
    return answer.json()["build_id"]


def run(api: str, token: str, run_id: int) -> dict:
    return httpx.get(f"{api}/api/v1/runs/{run_id}", headers=as_(token)).json()


def builds(api: str, token: str) -> list[dict]:
    return httpx.get(f"{api}/api/v1/projects/acme/shop/builds", headers=as_(token)).json()


def finish(settings, run_id: int, status: str = "succeeded", result: str = "ok", error: str | None = None) -> None:
    """Play the runner: claim the run (the only one queued) and end it."""

    async def work(db):
        queue = Queue(db, SERVICE)
        worker = await queue.register_worker("test", 1, "t", 1, None)
        claimed = await queue.claim(worker["id"], limit=1, start=True)
        assert [c["id"] for c in claimed] == [run_id]
        await queue.finish(run_id, claimed[0]["attempt"], status, result, 0 if status == "succeeded" else 1, error)

    call(settings, work)


def fork_pull_request(app_db: str, branch_id: str, commit: str) -> int:
    """A build of a fork's pull request, as a webhook makes it: waiting for an admin."""
    with psycopg.connect(app_db, row_factory=dict_row) as conn:
        conn.execute("select set_config('role', %s, true), set_config('request.jwt.claims', %s, true)",
                     (SERVICE.role, SERVICE.claims()))
        return conn.execute("select * from ops.enqueue_build_v2(%s, %s, 'pull_request', 'refs/pull/77/head', 77, %s, "
                            "false)", (branch_id, commit, Jsonb({}))).fetchone()["id"]


def branch_id(api: str, token: str, name: str) -> str:
    rows = httpx.get(f"{api}/api/v1/projects/acme/shop/branches", headers=as_(token)).json()
    return next(b["id"] for b in rows if b["name"] == name)


def row(html: str, run_id: int) -> str:
    found = re.search(rf'<tr id="run-{run_id}" data-run="{run_id}".*?</tr>', html, re.S)
    assert found, f"no row for build {run_id}"
    return found[0]


def row_ids(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'<tr id="run-\d+" data-run="(\d+)"', html)]


def form(html: str, action: str) -> dict:
    """The hidden fields of the page's form posting to `action`: what a browser without JavaScript sends."""
    found = re.search(rf'<form method="post" action="{re.escape(action)}".*?</form>', html, re.S)
    assert found, f"no form for {action}"
    return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', found[0]))


def post(client: httpx.Client, path: str, headers: dict | None = None, **fields) -> httpx.Response:
    return client.post(path, data={"csrf_token": client.csrf, **fields}, headers=headers or {})


def test_owner_sees_builds_with_badges_and_buttons(console, api, tenants, settings):
    done = trigger(api, tenants["alice"], sha(1))
    finish(settings, done, "failed", "ko", "tests failed")
    waiting = trigger(api, tenants["alice"], sha(2))
    alice = console("alice")
    page = alice.get(PAGE)
    assert page.status_code == 200
    assert row_ids(page.text) == [waiting, done]  # newest first
    assert 'href="/p/acme/shop"' in page.text and 'aria-current="page"' in page.text
    assert re.search(r'data-stage="development"', page.text)
    assert 'data-action="build"' in page.text and 'action="/p/acme/shop/build"' in page.text
    assert form(page.text, "/p/acme/shop/build") == {"csrf_token": alice.csrf, "branch": "feature", "next": PAGE}

    queued = row(page.text, waiting)
    assert 'data-status="queued"' in queued and ">Queued</span>" in queued
    assert f'aria-label="Cancel build {waiting}">Cancel</button>' in queued
    assert "Rebuild" not in queued and "Authorize" not in queued
    assert f'href="/runs/{waiting}"' in queued and sha(2)[:8] in queued and ">api<" in queued

    failed = row(page.text, done)
    assert 'data-status="failed"' in failed and ">Failed</span>" in failed and "tests failed" in failed
    assert 'data-result="ko">Errors<' in failed
    assert f'aria-label="Rebuild build {done}">Rebuild</button>' in failed and "Cancel" not in failed
    assert re.search(r'data-label="Duration" class="c-took">\d+ (ms|s)<', failed)

    # something unfinished: the table refreshes itself, and alone
    assert 'hx-trigger="every 2s"' in page.text and 'data-live="on"' in page.text
    part = alice.get(PAGE + "?part=table")
    assert part.status_code == 200 and "<html" not in part.text and row_ids(part.text) == [waiting, done]


def test_the_table_stops_refreshing_when_every_build_is_done(console, api, tenants, settings):
    alice = console("alice")
    assert "No builds of this branch yet" in alice.get(PAGE).text
    done = trigger(api, tenants["alice"], sha(1))
    finish(settings, done)
    page = alice.get(PAGE)
    assert 'data-live="off"' in page.text and "every 2s" not in page.text
    assert ">Succeeded</span>" in row(page.text, done) and 'data-result="ok"' in row(page.text, done)


def test_viewer_sees_builds_but_no_buttons_and_is_refused(console, api, tenants, settings, app_db):
    done = trigger(api, tenants["alice"], sha(1))
    finish(settings, done)
    waiting = trigger(api, tenants["alice"], sha(2))
    fork = fork_pull_request(app_db, branch_id(api, tenants["alice"], "feature"), sha(3))
    bob = console("bob")
    page = bob.get(PAGE)
    assert page.status_code == 200 and set(row_ids(page.text)) == {done, waiting, fork}
    assert "data-action=" not in page.text and "Build now" not in page.text
    assert "pull request #77" in row(page.text, fork)
    before = builds(api, tenants["alice"])

    refused = post(bob, f"/runs/{waiting}/cancel", next=PAGE)
    assert refused.status_code == 403 and "cannot cancel run" in refused.text
    assert post(bob, f"/runs/{done}/rebuild").status_code == 403
    refused = post(bob, f"/runs/{fork}/authorize", headers=HX)
    assert refused.status_code == 403 and "only an admin" in refused.text
    assert builds(api, tenants["alice"]) == before


def test_stranger_gets_not_found_and_nothing_changes(console, api, tenants, settings):
    done = trigger(api, tenants["alice"], sha(1))
    finish(settings, done)
    waiting = trigger(api, tenants["alice"], sha(2))
    before = builds(api, tenants["alice"])
    eve = console("eve")
    for path in (PAGE, PAGE + "?part=table", "/p/acme/shop/b/nope"):
        page = eve.get(path)
        assert page.status_code == 404 and "data-run=" not in page.text and "<h1>Not found</h1>" in page.text, path
    for path in (f"/runs/{waiting}/cancel", f"/runs/{done}/rebuild", f"/runs/{waiting}/authorize"):
        answer = post(eve, path)
        assert answer.status_code == 404 and "not found" in answer.text, path
    assert builds(api, tenants["alice"]) == before
    assert console("alice").get("/p/acme/shop/b/nope").status_code == 404


def test_cancel_a_queued_build_without_and_with_htmx(console, api, tenants):
    alice = console("alice")
    first = trigger(api, tenants["alice"], sha(1))
    fields = form(alice.get(PAGE).text, f"/runs/{first}/cancel")
    assert fields == {"csrf_token": alice.csrf, "next": PAGE}
    back = alice.post(f"/runs/{first}/cancel", data=fields)
    assert back.status_code == 303 and back.headers["location"] == PAGE
    assert run(api, tenants["alice"], first)["status"] == "canceled"
    again = post(alice, f"/runs/{first}/cancel", next=PAGE)
    assert again.status_code == 409 and "has already finished" in again.text

    second = trigger(api, tenants["alice"], sha(2))
    swapped = post(alice, f"/runs/{second}/cancel", headers=HX, next=PAGE)
    assert swapped.status_code == 200 and "<html" not in swapped.text
    assert row_ids(swapped.text) == [second] and 'data-status="canceled"' in swapped.text
    assert f'aria-label="Rebuild build {second}"' in swapped.text and "Cancel build" not in swapped.text
    assert run(api, tenants["alice"], second)["status"] == "canceled"

    # another site as `next` is not followed; no `next` goes to the build's page
    third = trigger(api, tenants["alice"], sha(3))
    assert post(alice, f"/runs/{third}/cancel", next="//evil.test/x").headers["location"] == "/"
    fourth = trigger(api, tenants["alice"], sha(4))
    assert post(alice, f"/runs/{fourth}/cancel").headers["location"] == f"/runs/{fourth}"


def test_rebuild_a_finished_build(console, api, tenants, settings):
    alice = console("alice")
    done = trigger(api, tenants["alice"], sha(1))
    finish(settings, done, "failed", "ko")
    fields = form(alice.get(PAGE).text, f"/runs/{done}/rebuild")
    assert fields == {"csrf_token": alice.csrf}  # no `next`: a rebuild goes to the new build's page
    plain = alice.post(f"/runs/{done}/rebuild", data=fields)
    assert plain.status_code == 303
    new = int(plain.headers["location"].removeprefix("/runs/"))
    assert new != done
    again = run(api, tenants["alice"], new)
    assert (again["status"], again["trigger"], again["commit_sha"]) == ("queued", "rebuild", sha(1))

    finish(settings, new)
    swapped = post(alice, f"/runs/{new}/rebuild", headers=HX)
    assert swapped.status_code == 200 and "<html" not in swapped.text
    newest = builds(api, tenants["alice"])[0]
    assert newest["id"] not in (done, new) and newest["status"] == "queued"
    assert row_ids(swapped.text) == [newest["id"], new, done]
    flash = '<div id="flash" hx-swap-oob="innerHTML"><p class="notice ok">Build <a href="/runs/{}">'
    assert flash.format(newest["id"]) in swapped.text
    assert "is queued." in swapped.text
    assert swapped.headers["hx-push-url"] == PAGE


def test_authorize_a_fork_pull_request(console, api, tenants, app_db):
    fork = fork_pull_request(app_db, branch_id(api, tenants["alice"], "feature"), sha(7))
    alice = console("alice")
    mine = row(alice.get(PAGE).text, fork)
    assert 'data-status="awaiting_authorization"' in mine and ">Needs approval</span>" in mine
    assert f'aria-label="Authorize build {fork}">Authorize</button>' in mine and "Cancel build" in mine
    assert "Authorize" not in row(console("bob").get(PAGE).text, fork)

    swapped = post(alice, f"/runs/{fork}/authorize", headers=HX, next=PAGE)
    assert swapped.status_code == 200 and 'data-status="queued"' in swapped.text and "Authorize" not in swapped.text
    assert run(api, tenants["alice"], fork)["status"] == "queued"
    refused = post(alice, f"/runs/{fork}/authorize", next=PAGE)
    assert refused.status_code == 409 and "not awaiting authorization" in refused.text


def test_branch_names_with_slashes(console, api, tenants, settings):
    async def work(db):
        await Branches(db, SERVICE).add("acme/shop", "fix/login", check=False)  # its name is the point here

    call(settings, work)
    page = console("alice").get("/p/acme/shop/b/fix/login")
    assert page.status_code == 200 and "<h1>fix/login</h1>" in page.text
    assert 'href="/p/acme/shop/b/fix/login" aria-current="page"' in page.text
    assert form(page.text, "/p/acme/shop/build")["branch"] == "fix/login"
    assert "No builds of this branch yet" in page.text


def test_developer_operates_development_branches_only(console, api, tenants, settings):
    async def work(db):
        await Users(db, SERVICE).create("dave@acme.test")
        await Orgs(db, SERVICE).add_member("acme", "dave@acme.test", "developer")

    call(settings, work)
    with psycopg.connect(settings.database_url.reveal(), autocommit=True) as conn:
        conn.execute("update ops.users set password_hash = %s where email = 'dave@acme.test'",
                     (hash_password(PASSWORD),))
    feature = trigger(api, tenants["alice"], sha(1))
    main = trigger(api, tenants["alice"], sha(2), branch="main")
    with httpx.Client(base_url=api) as dave:
        assert dave.post("/login", data={"email": "dave@acme.test", "password": PASSWORD}).status_code == 303
        dave.csrf = dave.get("/api/v1/auth/session").json()["csrf_token"]
        on_feature = dave.get(PAGE).text
        assert "Build now" in on_feature and f"Cancel build {feature}" in on_feature
        on_main = dave.get("/p/acme/shop/b/main").text
        assert row_ids(on_main) == [main] and "data-action=" not in on_main
        assert post(dave, f"/runs/{main}/cancel").status_code == 403
        assert run(api, tenants["alice"], main)["status"] == "queued"
        assert post(dave, f"/runs/{feature}/cancel").status_code == 303
        assert run(api, tenants["alice"], feature)["status"] == "canceled"


def test_older_builds_page_by_page(console, api, tenants):
    made = [trigger(api, tenants["alice"], sha(n)) for n in range(1, 28)]  # each supersedes the one before
    alice = console("alice")
    first = alice.get(PAGE).text
    assert row_ids(first) == made[::-1][:25]
    older = re.search(r'href="(/p/acme/shop/b/feature\?before=(\d+))" rel="next"', first)
    assert older and int(older[2]) == made[2]
    second = alice.get(older[1]).text
    assert row_ids(second) == [made[1], made[0]]
    assert 'rel="next"' not in second and 'data-page="newest"' in second
    assert 'data-status="superseded"' in row(second, made[0])
    assert row_ids(alice.get(f"{PAGE}?before={made[0]}").text) == []
    assert alice.get(f"{PAGE}?before=soon").status_code == 422
    assert row_ids(console("bob").get(older[1]).text) == [made[1], made[0]]



def test_admins_choose_which_modules_a_branch_s_odoo_builds_install_and_test(console, api, tenants, owner_db):
    alice, bob = console("alice"), console("bob")
    page = alice.get(PAGE).text
    assert "Odoo builds: the project's own modules" in html.unescape(page)
    assert form(page, "/p/acme/shop/branch-settings") == {"csrf_token": alice.csrf, "branch": "feature"}
    saved = post(alice, "/p/acme/shop/branch-settings", branch="feature", odoo_modules="list",
                 modules="sale_x, stock_x", odoo_test_tags="/sale_x")
    assert saved.status_code == 303 and saved.headers["location"].endswith("#odoo-settings")
    with psycopg.connect(owner_db, row_factory=dict_row) as conn:
        stored = lambda: conn.execute("select settings from ops.branches where name = 'feature'").fetchone()["settings"]  # noqa: E731
        assert stored() == {"odoo_modules": ["sale_x", "stock_x"], "odoo_test_tags": "/sale_x"}
        page = alice.get(PAGE).text
        assert "Odoo builds: sale_x, stock_x, test tags /sale_x" in page and 'value="sale_x, stock_x"' in page
        bad = post(alice, "/p/acme/shop/branch-settings", branch="feature", odoo_modules="list", modules="Sale-X!")
        assert bad.status_code == 422 and "odoo_modules:" in bad.text and "does not fit" in bad.text
        empty = post(alice, "/p/acme/shop/branch-settings", branch="feature", odoo_modules="list", modules="")
        assert empty.status_code == 422 and "name the modules" in empty.text
        assert stored() == {"odoo_modules": ["sale_x", "stock_x"], "odoo_test_tags": "/sale_x"}  # nothing written
        assert post(alice, "/p/acme/shop/branch-settings", branch="feature", odoo_modules="own").status_code == 303
        assert stored() == {"odoo_modules": "own"}  # an empty test tags field: the default again
        # a viewer sees the choice, no form, and is refused
        assert 'action="/p/acme/shop/branch-settings"' not in bob.get(PAGE).text
        refused = post(bob, "/p/acme/shop/branch-settings", branch="feature", odoo_modules="all")
        assert refused.status_code == 403 and stored() == {"odoo_modules": "own"}
