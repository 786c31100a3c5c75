"""Project → Branches over real HTTP: three lanes of cards, moves by form, by
htmx and as drag and drop sends them, the database's refusals in its own
words, "Build now", the live stream, and what a viewer, a developer and a
stranger may do."""

from __future__ import annotations

import html
import re
import time

import httpx
from conftest import owner_conn
from helpers import as_, envelope, git

PAGE = "/p/acme/shop"
LANE = re.compile(r'<section class="lane" data-lane="(\w+)".*?</section>', re.S)
HTMX = {"HX-Request": "true"}


def lanes_of(page: str) -> dict[str, str]:
    """Each card's branch and the lane it is in."""
    return {branch: lane.group(1) for lane in LANE.finditer(page)
            for branch in re.findall(r'<li class="card" data-branch="([^"]+)"', lane.group(0))}


def card(page: str, branch: str) -> str:
    found = re.search(rf'<li class="card" data-branch="{re.escape(branch)}".*?</li>', page, re.S)
    assert found, page
    return found.group(0)


def alert(page: str) -> str:
    found = re.search(r'role="alert"[^>]*>(.*?)</p>', page, re.S) or re.search(
        r'<article class="error-page">.*?<p>(.*?)</p>', page, re.S)
    assert found, page
    return html.unescape(found.group(1)).strip()


def options(card_html: str) -> list[str]:
    """The stages a card's "Move to" list offers."""
    return re.findall(r'<option value="(\w+)"', card_html)


def move(client: httpx.Client, branch: str, stage: str, headers: dict | None = None) -> httpx.Response:
    return client.post(f"{PAGE}/stage", data={"csrf_token": client.csrf, "branch": branch, "stage": stage},
                       headers=headers)


def stages(api: str, token: str) -> dict[str, str]:
    answer = httpx.get(f"{api}/api/v1/projects/acme/shop/branches", headers=as_(token))
    return {b["name"]: b["stage"] for b in answer.json()}


def builds(api: str, token: str) -> list[dict]:
    return httpx.get(f"{api}/api/v1/projects/acme/shop/builds", headers=as_(token)).json()


def next_event(lines) -> dict:
    """The next named event of a Server-Sent Events stream (its data lines joined)."""
    name, data = None, []
    for line in lines:
        if not line:
            if name:
                return {"event": name, "data": "\n".join(data)}
            name, data = None, []
            continue
        key, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if key == "event":
            name = value
        elif key == "data":
            data.append(value)
    raise AssertionError("the stream ended")


def clear_of_a_minute_turn(seconds: float = 15) -> None:
    """A page's live signature changes with the minute (to refresh "3 min
    ago"): start where no minute turns for a while."""
    left = 60 - time.time() % 60
    if left < seconds:
        time.sleep(left + 0.5)


def test_owner_sees_cards_in_their_lanes_with_badges(console, api, tenants):
    alice = console("alice")
    page = alice.get(PAGE)
    assert page.status_code == 200
    assert lanes_of(page.text) == {"main": "production", "feature": "development"}
    assert [m for m in re.findall(r'data-lane="(\w+)"', page.text)] == ["production", "staging", "development"]
    assert 'data-count="0"' in page.text and "No staging branch." in page.text
    assert '<a href="/">Projects</a>' in page.text and "acme/shop" in page.text
    assert 'href="/p/acme/shop/settings"' in page.text  # an owner may change the project
    feature = card(page.text, "feature")
    assert 'data-status="none"' in feature and "Not built yet" in feature and "0 builds" in feature
    assert 'href="/p/acme/shop/b/feature"' in feature and 'draggable="true"' in feature
    assert "Build now" in feature and "Move to" in feature
    assert options(feature) == ["staging"]  # development reaches production through staging only
    assert 'data-moves="staging"' in feature
    main = card(page.text, "main")  # production is never moved: its card says how it changes instead
    assert "Move to" not in main and "<select" not in main and 'draggable="true"' not in main
    assert "Production changes by merge" in main and 'data-moves=""' in main

    run = httpx.post(f"{api}/api/v1/projects/acme/shop/branches/feature/builds", headers=as_(tenants["alice"])).json()
    feature = card(alice.get(PAGE).text, "feature")
    sha = httpx.get(f"{api}/api/v1/runs/{run['build_id']}", headers=as_(tenants["alice"])).json()["commit_sha"]
    assert 'data-status="queued"' in feature and ">Queued<" in feature and "1 build<" in feature
    assert f">{sha[:8]}</code>" in feature and "<time" in feature
    assert 'data-status="none"' in card(alice.get(PAGE).text, "main")


def test_move_without_javascript_goes_back_to_the_lanes(console, api, tenants):
    alice = console("alice")
    moved = move(alice, "feature", "staging")
    assert moved.status_code == 303 and moved.headers["location"] == f"{PAGE}?moved=feature"
    page = alice.get(moved.headers["location"])
    assert lanes_of(page.text)["feature"] == "staging"
    assert "feature is now in Staging." in page.text
    assert stages(api, tenants["alice"])["feature"] == "staging"  # the API tells the same


def test_a_staging_card_offers_development_and_not_the_taken_production(console):
    alice = console("alice")
    assert move(alice, "feature", "staging").status_code == 303
    staging = card(alice.get(PAGE).text, "feature")
    assert options(staging) == ["development"]  # the project has its production branch already
    assert 'data-moves="development"' in staging


def test_move_with_htmx_answers_the_lanes(console, api, tenants):
    alice = console("alice")
    moved = move(alice, "feature", "staging", HTMX | {"X-CSRF-Token": alice.csrf})
    assert moved.status_code == 200 and "<html" not in moved.text
    assert lanes_of(moved.text) == {"main": "production", "feature": "staging"}
    assert "feature moved to Staging." in moved.headers["hx-trigger-after-swap"]
    # as drag and drop sends it: the token in the header only
    back = alice.post(f"{PAGE}/stage", data={"branch": "feature", "stage": "development"},
                      headers=HTMX | {"X-CSRF-Token": alice.csrf})
    assert back.status_code == 200 and lanes_of(back.text)["feature"] == "development"
    assert stages(api, tenants["alice"])["feature"] == "development"


def test_refused_moves_say_the_databases_reason(console, api, tenants):
    alice = console("alice")
    said = envelope(httpx.patch(f"{api}/api/v1/projects/acme/shop/branches/feature", json={"stage": "production"},
                                headers=as_(tenants["alice"])), 409, "rule_violation")
    refused = move(alice, "feature", "production")
    assert refused.status_code == 409
    assert alert(refused.text) == said and "staging first" in said
    assert lanes_of(refused.text) == {"main": "production", "feature": "development"}  # the page, nothing moved

    by_htmx = move(alice, "main", "staging", HTMX)
    assert by_htmx.status_code == 409 and "production cannot be moved" in alert(by_htmx.text)
    unknown = move(alice, "feature", "archive")
    assert unknown.status_code == 422 and "a stage is one of" in alert(unknown.text)
    assert stages(api, tenants["alice"]) == {"main": "production", "feature": "development"}


def test_build_now_queues_a_run_and_shows_it(console, api, tenants):
    alice = console("alice")
    started = alice.post(f"{PAGE}/build", data={"csrf_token": alice.csrf, "branch": "feature"})
    assert started.status_code == 303
    run_id = int(re.fullmatch(r"/runs/(\d+)", started.headers["location"])[1])
    run = httpx.get(f"{api}/api/v1/runs/{run_id}", headers=as_(tenants["alice"])).json()
    assert run["status"] == "queued" and run["trigger"] == "manual"
    feature = card(alice.get(PAGE).text, "feature")
    assert 'data-status="queued"' in feature and 'data-builds="1"' in feature
    back = alice.post(f"{PAGE}/build", data={"csrf_token": alice.csrf, "branch": "main", "next": f"{PAGE}/b/main"})
    assert back.status_code == 303 and back.headers["location"] == f"{PAGE}/b/main"  # where the form asked
    assert alice.post(f"{PAGE}/build", data={"csrf_token": alice.csrf, "branch": "main", "next": "//evil.test"}
                      ).headers["location"] == "/"

    by_htmx = alice.post(f"{PAGE}/build", data={"branch": "main"}, headers=HTMX | {"X-CSRF-Token": alice.csrf})
    assert by_htmx.status_code == 200 and "<html" not in by_htmx.text
    newest = builds(api, tenants["alice"])[0]
    assert newest["branch"] == "main"
    assert f"Build #{newest['id']} of main is queued." in by_htmx.headers["hx-trigger-after-swap"]
    assert 'data-status="queued"' in card(by_htmx.text, "main")


def flashed(page: str) -> str | None:
    """What the page's status line says after a plain form, if anything."""
    found = re.search(r'<div id="flash" role="status" aria-live="polite"><p class="notice ok" data-flash>(.*?)</p>',
                      page, re.S)
    return found and found[1]


def test_a_plain_build_now_says_so_once_on_the_next_page(console, api, tenants):
    alice = console("alice")
    started = alice.post(f"{PAGE}/build", data={"csrf_token": alice.csrf, "branch": "feature",
                                                "next": f"{PAGE}/b/feature"})
    assert started.status_code == 303 and started.headers["location"] == f"{PAGE}/b/feature"
    run_id = builds(api, tenants["alice"])[0]["id"]
    said = flashed(alice.get(started.headers["location"]).text)
    assert said and f"Build #{run_id} of feature is queued." in said and f'href="/runs/{run_id}"' in said
    assert flashed(alice.get(started.headers["location"]).text) is None  # said once
    to_log = alice.post(f"{PAGE}/build", data={"csrf_token": alice.csrf, "branch": "main"})
    said = flashed(alice.get(to_log.headers["location"]).text)  # on the log page itself: no link to it
    assert said and "of main is queued." in said and "href=" not in said
    # only the server says things there: a cookie it did not sign says nothing
    alice.cookies.set("odooops_flash", "eyJtZXNzYWdlIjogIllvdSB3b24hIiwgInVudGlsIjogOTk5OTk5OTk5OX0.forged")
    assert flashed(alice.get(PAGE).text) is None


def test_posts_need_the_csrf_token(console, api, tenants):
    alice = console("alice")
    assert alice.post(f"{PAGE}/stage", data={"branch": "feature", "stage": "staging"}).status_code == 403
    assert alice.post(f"{PAGE}/build", data={"branch": "feature"}).status_code == 403
    assert stages(api, tenants["alice"])["feature"] == "development" and builds(api, tenants["alice"]) == []


def test_viewer_sees_the_lanes_but_no_controls_and_is_refused(console, api, tenants):
    bob = console("bob")
    page = bob.get(PAGE)
    assert page.status_code == 200
    assert lanes_of(page.text) == {"main": "production", "feature": "development"}
    assert "Build now" not in page.text and "Move to" not in page.text and 'draggable="true"' not in page.text
    assert 'id="drag-hint"' not in page.text and "Production changes by merge" not in page.text
    assert 'data-moves=""' in card(page.text, "feature") and 'data-moves=""' in card(page.text, "main")

    refused = move(bob, "feature", "staging")
    assert refused.status_code == 403 and "<h1>Not allowed</h1>" in refused.text
    built = bob.post(f"{PAGE}/build", data={"csrf_token": bob.csrf, "branch": "feature"})
    assert built.status_code == 403 and "cannot start builds" in alert(built.text)
    assert stages(api, tenants["alice"])["feature"] == "development" and builds(api, tenants["alice"]) == []


def test_developer_builds_development_branches_only_and_moves_nothing(console, api, tenants, settings):
    with owner_conn(settings.database_url.reveal()) as conn:
        conn.execute("update ops.org_members set role = 'developer'"
                     " where user_id = (select id from ops.users where email = 'bob@acme.test')")
    bob = console("bob")
    page = bob.get(PAGE).text
    assert "Build now" in card(page, "feature") and "Build now" not in card(page, "main")
    assert "Move to" not in page and 'draggable="true"' not in page
    assert bob.post(f"{PAGE}/build", data={"csrf_token": bob.csrf, "branch": "main"}).status_code == 403
    assert move(bob, "feature", "staging").status_code == 403
    started = bob.post(f"{PAGE}/build", data={"csrf_token": bob.csrf, "branch": "feature"})
    assert started.status_code == 303 and started.headers["location"].startswith("/runs/")
    assert [b["branch"] for b in builds(api, tenants["alice"])] == ["feature"]


def test_stranger_finds_nothing(console, api, tenants):
    eve = console("eve")
    for answer in (eve.get(PAGE), eve.get(f"{PAGE}/live"), move(eve, "feature", "staging"),
                   eve.post(f"{PAGE}/build", data={"csrf_token": eve.csrf, "branch": "feature"})):
        assert answer.status_code == 404 and "<h1>Not found</h1>" in answer.text
        assert "feature" not in answer.text
    assert stages(api, tenants["alice"])["feature"] == "development" and builds(api, tenants["alice"]) == []
    assert eve.get("/p/evil/lab").status_code == 200


def test_live_stream_sends_the_lanes_when_they_change(console, api, tenants):
    alice = console("alice")
    clear_of_a_minute_turn()
    page = alice.get(PAGE).text
    since = re.search(r'sse-connect="/p/acme/shop/live\?since=(\w+)"', page)[1]
    assert 'sse-swap="lanes"' in page and 'hx-ext="sse"' in page

    with alice.stream("GET", f"{PAGE}/live", timeout=15) as fresh:  # no digest: the lanes at once
        assert fresh.headers["content-type"].startswith("text/event-stream")
        first = next_event(fresh.iter_lines())
    assert first["event"] == "lanes" and lanes_of(first["data"]) == {"main": "production", "feature": "development"}

    with alice.stream("GET", f"{PAGE}/live?since={since}", timeout=15) as live:
        lines = live.iter_lines()
        httpx.post(f"{api}/api/v1/projects/acme/shop/branches/feature/builds", headers=as_(tenants["alice"]))
        built = next_event(lines)  # nothing is sent for what the page already shows
        assert 'data-status="queued"' in card(built["data"], "feature")
        httpx.patch(f"{api}/api/v1/projects/acme/shop/branches/feature", json={"stage": "staging"},
                    headers=as_(tenants["alice"]))
        moved = next_event(lines)
        assert lanes_of(moved["data"])["feature"] == "staging"


def test_a_card_turns_healthy_live_when_a_runner_builds_it(console, settings, tenants, runner):
    alice = console("alice")
    since = re.search(r"live\?since=(\w+)", alice.get(PAGE).text)[1]
    with alice.stream("GET", f"{PAGE}/live?since={since}", timeout=60) as live:
        lines = live.iter_lines()
        assert alice.post(f"{PAGE}/build", data={"csrf_token": alice.csrf, "branch": "feature"}).status_code == 303
        seen = []
        while "data-status=\"succeeded\"" not in (last := card(next_event(lines)["data"], "feature")):
            seen.append(re.search(r'data-status="(\w+)"', last)[1])
        assert set(seen) <= {"queued", "claimed", "running"}  # a quick build may finish within one tick
        assert ">Succeeded<" in last
        # the runner read the commit it built: its message and author are on the card
        assert '<span class="message" title="first">first</span>' in last and '<span class="author">t</span>' in last


def test_admins_add_a_branch_by_hand_others_cannot(console, tmp_path):
    alice, bob, eve = console("alice"), console("bob"), console("eve")
    git(tmp_path / "repo", "branch", "fix-42")  # pushed to the tenants' repository
    assert "Track another branch" in alice.get("/p/acme/shop").text
    assert "Track another branch" not in bob.get("/p/acme/shop").text
    added = alice.post("/p/acme/shop/branches", data={"csrf_token": alice.csrf, "name": "fix-42", "stage": "staging"})
    assert added.status_code == 303 and added.headers["location"] == "/p/acme/shop?moved=fix-42"
    page = alice.get(added.headers["location"]).text
    assert 'data-lane="staging"' in page and 'data-branch="fix-42"' in page.split('data-lane="staging"')[1]
    again = alice.post("/p/acme/shop/branches", data={"csrf_token": alice.csrf, "name": "fix-42"})
    assert again.status_code == 409 and 'role="alert"' in again.text
    blank = alice.post("/p/acme/shop/branches", data={"csrf_token": alice.csrf, "name": ""})
    assert blank.status_code == 422 and "this is required" in blank.text
    assert bob.post("/p/acme/shop/branches", data={"csrf_token": bob.csrf, "name": "b"}).status_code == 403
    assert eve.post("/p/acme/shop/branches", data={"csrf_token": eve.csrf, "name": "e"}).status_code == 404
    names = {b["name"] for b in alice.get("/api/v1/projects/acme/shop/branches").json()}
    assert names == {"main", "feature", "fix-42"}
