"""What a new commit does to each branch's database, on the lanes' cards and a
branch's Database page, over real HTTP against `odooops serve`: development's
fresh database, staging's copy of production (or update, by setting),
production's update in place (or first build); the snapshot's age and Refresh
staging data (admins; a developer teammate is refused in the database's
words, a stranger finds nothing); production's last update and its revert,
its recent updates and pre-update copies; the maintenance status. Copies,
updates and environments are written as the database owner, as a runner
would leave them."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta

import httpx
from browser import accessible, fits_a_phone, sign_in
from conftest import owner_conn
from playwright.sync_api import Page, expect
from psycopg.types.json import Jsonb
from world import SHA

PAGE = "/p/acme/shop"
HTMX = {"HX-Request": "true"}
GB = 1024**3


def conn_of(settings):
    return owner_conn(settings.database_url.reveal())


def setup(settings, bob_role: str = "developer") -> None:
    """A staging branch beside main (production) and feature, and Bob a developer of acme."""
    with conn_of(settings) as conn:
        conn.execute("insert into ops.branches (project_id, name, stage) select id, 'staging', 'staging' "
                     "from ops.projects where slug = 'shop'")
        conn.execute("update ops.org_members set role = %s where user_id = "
                     "(select id from ops.users where email = 'bob@acme.test')", (bob_role,))


def branch(conn, name: str) -> dict:
    return conn.execute("select b.id, b.project_id from ops.branches b join ops.projects p on p.id = b.project_id "
                        "where p.slug = 'shop' and b.name = %s", (name,)).fetchone()


def build(conn, name: str) -> int:
    """A succeeded build of the branch."""
    b = branch(conn, name)
    run = conn.execute("insert into ops.runs (project_id, branch_id, commit_sha) values (%s, %s, %s) returning id",
                       (b["project_id"], b["id"], SHA)).fetchone()["id"]
    for step in ("claimed", "running"):
        conn.execute("update ops.runs set status = %s where id = %s", (step, run))
    conn.execute("update ops.runs set status = 'succeeded', result = 'ok' where id = %s", (run,))
    return run


def environment(settings, name: str, status: str = "running", database: bool = True) -> int:
    """The branch's environment, serving a succeeded build of it (on its database, unless not)."""
    with conn_of(settings) as conn:
        b, run = branch(conn, name), build(conn, name)
        conn.execute("delete from ops.environments where branch_id = %s", (b["id"],))
        conn.execute("insert into ops.environments (project_id, branch_id, label, build_id, host, status, database) "
                     "values (%s, %s, ops.environment_label(%s), %s, 'h', %s, %s)",
                     (b["project_id"], b["id"], b["id"], run, status, f"shop-{name}-{run}" if database else None))
        return run


def copy(settings, kind: str, age: timedelta, size: int = 2 * GB, files: int = GB,
         expires: timedelta | None = timedelta(days=7)) -> dict:
    with conn_of(settings) as conn:
        b, now = branch(conn, "main"), datetime.now(UTC)
        number = conn.execute("select count(*) + 1 as n from ops.database_copies").fetchone()["n"]
        return conn.execute(
            "insert into ops.database_copies (project_id, branch_id, kind, database, host, size_bytes, "
            "filestore_bytes, created_at, expires_at, build_id) values (%s, %s, %s, %s, 'h', %s, %s, %s, %s, "
            "(select build_id from ops.environments where branch_id = %s)) returning *",
            (b["project_id"], b["id"], kind, f"shop-main-{kind}-{number}", size, files, now - age,
             now - age + expires if expires else None, b["id"])).fetchone()


def update(settings, status: str, age: timedelta, updated: list[str], failed_step: str | None = None,
           detail: str | None = None, seconds: float | None = 12.5) -> dict:
    with conn_of(settings) as conn:
        b, run, now = branch(conn, "main"), build(conn, "main"), datetime.now(UTC)
        return conn.execute(
            "insert into ops.updates (project_id, branch_id, build_id, status, updated_modules, installed_modules, "
            "failed_step, detail, maintenance_seconds, created_at, finished_at) "
            "values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) returning *",
            (b["project_id"], b["id"], run, status, updated, ["website_sale"] if status == "succeeded" else [],
             failed_step, detail, seconds, now - age - timedelta(seconds=30), now - age)).fetchone()


def card(page: str, name: str) -> str:
    found = re.search(rf'<li class="card" data-branch="{re.escape(name)}".*?</li>', page, re.S)
    assert found, page
    return found.group(0)


def text(fragment: str) -> str:
    """What a person reads: tags out, spaces folded."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", fragment)).split())


def next_commit(card_html: str) -> str:
    found = re.search(r'data-next-commit="(\w+)">New commit: ([^<]+)</p>', card_html)
    assert found, card_html
    return found.group(2)


def alert(page: str) -> str:
    found = re.search(r'role="alert"[^>]*>(.*?)</p>', page, re.S) or re.search(
        r'<article class="error-page">.*?<p>(.*?)</p>', page, re.S)
    assert found, page
    return html.unescape(found.group(1)).strip()


def flash(client: httpx.Client, answer: httpx.Response) -> tuple[str, str]:
    assert answer.status_code == 303, answer.text
    page = client.get(answer.headers["location"]).text
    found = re.search(r'<p class="notice (\w+)" data-flash>(.*?)</p>', page, re.S)
    assert found, page
    return found.group(1), text(found.group(2))


def refresh(client: httpx.Client, **fields: str) -> httpx.Response:
    return client.post(f"{PAGE}/staging/refresh", data={"csrf_token": client.csrf, **fields})


def snapshot_runs(settings) -> list[dict]:
    with conn_of(settings) as conn:
        return conn.execute("select id, status, trigger, params, branch_id, host from ops.runs "
                            "where kind = 'snapshot' order by id").fetchall()


def test_each_card_says_what_a_new_commit_does(console, settings):
    setup(settings)
    alice, bob = console("alice"), console("bob")
    page = alice.get(PAGE).text
    assert next_commit(card(page, "feature")) == "fresh database with demo data, tests"
    assert next_commit(card(page, "main")) == "first build: new database"
    assert next_commit(card(page, "staging")) == "fresh database: production has none yet"
    assert "data-snapshot" not in page and "Refresh staging data" not in page  # nothing to snapshot yet

    environment(settings, "main")
    page = alice.get(PAGE).text
    main, staging = card(page, "main"), card(page, "staging")
    assert next_commit(main) == "update in place" and next_commit(staging) == "fresh copy of production"
    for shown in (main, staging):
        assert "No snapshot yet: the next staging build takes one" in text(shown)
        assert 'data-action="refresh-staging"' in shown
    assert "data-snapshot" not in card(page, "feature") and "refresh-staging" not in card(page, "feature")
    assert f'href="{PAGE}/database/main"' in main and f'href="{PAGE}/database/staging"' in staging
    # the developer sees the same facts, but not the button production's operators have
    seen = bob.get(PAGE).text
    assert next_commit(card(seen, "staging")) == "fresh copy of production"
    assert "Refresh staging data" not in seen

    copy(settings, "snapshot", timedelta(hours=2, minutes=10), expires=None)
    page = alice.get(PAGE).text
    assert "Snapshot of production 2 h old" in text(card(page, "main"))
    assert "Snapshot of production 2 h old" in text(card(page, "staging"))

    # staging_data = previous: its own database, updated, once it has one
    with conn_of(settings) as conn:
        conn.execute("update ops.branches set settings = settings || '{\"staging_data\": \"previous\"}' "
                     "where name = 'staging'")
    assert next_commit(card(alice.get(PAGE).text, "staging")) == "fresh copy of production"
    environment(settings, "staging")
    staging = card(alice.get(PAGE).text, "staging")
    assert next_commit(staging) == "update of its previous database"
    assert "data-snapshot" not in staging and "refresh-staging" not in staging


def test_production_card_shows_its_last_update_and_its_revert(console, settings):
    setup(settings)
    environment(settings, "main")
    alice = console("alice")
    update(settings, "succeeded", timedelta(hours=3), ["sale_custom", "stock_custom"], seconds=42)
    main = card(alice.get(PAGE).text, "main")
    said = text(main)
    assert 'data-last-update="succeeded"' in main and "Last update: Updated" in said
    assert "updated sale_custom, stock_custom" in said and "installed website_sale" in said
    assert "42 s of maintenance" in said and "3 h ago" in said and "reverted" not in said

    failed = update(settings, "reverted", timedelta(minutes=5), ["a", "b", "c", "d", "e", "f"], "update",
                    "sale_custom: column x does not exist", seconds=8)
    main = card(alice.get(PAGE).text, "main")
    said = text(main)
    assert "Last update: Reverted" in said and f"#{failed['build_id']}" in said
    assert "updated a, b, c, d and 2 more" in said and "8 s of maintenance" in said
    assert "reverted: update: sale_custom: column x does not exist" in said
    assert "Last update" not in card(alice.get(PAGE).text, "staging")
    # the branch page says the same
    branch_page = text(alice.get("/p/acme/shop/b/main").text)
    assert "New commit: update in place" in branch_page and "Last update: Reverted" in branch_page


def test_production_database_page_lists_updates_and_pre_update_copies(console, settings):
    setup(settings)
    environment(settings, "main")
    alice, bob, eve = console("alice"), console("bob"), console("eve")
    empty = alice.get(f"{PAGE}/database/main")
    assert empty.status_code == 200, empty.text
    assert 'id="no-updates"' in empty.text and 'id="no-copies"' in empty.text
    assert "A new commit: update in place" in text(empty.text)

    old = copy(settings, "update", timedelta(days=2), size=3 * GB, files=GB)
    new = copy(settings, "update", timedelta(hours=1), size=512 * 1024**2, files=256 * 1024**2)
    copy(settings, "snapshot", timedelta(minutes=20), expires=None)
    done = update(settings, "succeeded", timedelta(days=2), ["sale_custom"], seconds=75)
    reverted = update(settings, "reverted", timedelta(hours=1), ["stock_custom"], "health",
                      "the new server did not come up healthy", seconds=30)
    page = alice.get(f"{PAGE}/database/main").text
    rows = re.findall(r'<tr id="copy-(\d+)">(.*?)</tr>', page, re.S)
    assert [int(i) for i, _ in rows] == [new["id"], old["id"]]  # newest first; the snapshot apart
    newest, oldest = text(rows[0][1]), text(rows[1][1])
    assert new["database"] in newest and "768 MB (database 512 MB + filestore 256 MB)" in newest
    assert "1 h ago" in newest and "in 6 d" in newest
    assert "4.0 GB (database 3.0 GB + filestore 1.0 GB)" in oldest and "in 4 d" in oldest
    assert "Snapshot of production 20 min old" in text(page)
    assert 'data-action="refresh-staging"' in page and f'name="next" value="{PAGE}/database/main"' in page

    updates = re.findall(r'<tr id="update-(\d+)" data-update="(\w+)">(.*?)</tr>', page, re.S)
    assert [(int(i), s) for i, s, _ in updates] == [(reverted["id"], "reverted"), (done["id"], "succeeded")]
    assert "Reverted" in text(updates[0][2]) and "reverted: health: the new server did not come up healthy" in text(
        updates[0][2]) and "30 s" in text(updates[0][2])
    assert "updated sale_custom; installed website_sale" in text(updates[1][2]) and "1 min 15 s" in text(
        updates[1][2])

    # the developer reads it all, without the button; a stranger finds nothing
    seen = bob.get(f"{PAGE}/database/main")
    assert seen.status_code == 200 and new["database"] in seen.text and "refresh-staging" not in seen.text
    for path in ("/database/main", "/database/staging", "/database/nope"):
        hidden = eve.get(PAGE + path)
        assert hidden.status_code == 404 and "<h1>Not found</h1>" in hidden.text
        assert new["database"] not in hidden.text
    assert alice.get(f"{PAGE}/database/nope").status_code == 404


def test_staging_and_development_database_pages(console, settings):
    setup(settings)
    alice, bob = console("alice"), console("bob")
    environment(settings, "main")
    staging = alice.get(f"{PAGE}/database/staging").text
    said = text(staging)
    assert "A new commit: fresh copy of production" in said and "neutralized" in said
    assert "No snapshot yet: the next staging build takes one" in said
    assert "staging_data is production" in said and "staging_data=previous" in said  # how admins change it
    assert 'data-action="refresh-staging"' in staging and 'id="updates"' not in staging
    assert "Project admins change it." in text(bob.get(f"{PAGE}/database/staging").text)
    feature = text(alice.get(f"{PAGE}/database/feature").text)
    assert "A new commit: fresh database with demo data, tests" in feature and "Staging data" not in feature


def test_refresh_staging_data_queues_a_snapshot_of_production(console, settings):
    setup(settings)
    alice = console("alice")
    refused = refresh(alice)  # production has no database yet
    assert refused.status_code == 409 and "production has no database yet" in alert(refused.text)
    environment(settings, "main")

    asked = refresh(alice)
    assert asked.headers["location"] == PAGE
    tone, said = flash(alice, asked)
    [run] = snapshot_runs(settings)
    assert tone == "ok" and f"snapshot #{run['id']} of production is queued" in said and "Open its log" in said
    assert run["status"] == "queued" and run["trigger"] == "manual" and run["host"] == "h"  # production's host
    # asked again while it waits: the same run
    again = refresh(alice, next=f"{PAGE}/database/main")
    assert again.headers["location"] == f"{PAGE}/database/main"
    assert f"snapshot #{run['id']}" in flash(alice, again)[1] and len(snapshot_runs(settings)) == 1

    by_htmx = alice.post(f"{PAGE}/staging/refresh", headers=HTMX | {"X-CSRF-Token": alice.csrf})
    assert by_htmx.status_code == 200 and "<html" not in by_htmx.text
    assert f"snapshot #{run['id']}" in by_htmx.headers["hx-trigger-after-swap"]
    assert 'data-branch="staging"' in by_htmx.text
    assert alice.post(f"{PAGE}/staging/refresh", data={}).status_code == 403  # no CSRF token


def test_who_may_refresh_staging_data(console, settings):
    setup(settings)
    environment(settings, "main")
    bob, eve = console("bob"), console("eve")
    refused = refresh(bob)
    assert refused.status_code == 403
    assert alert(refused.text) == "refreshing staging data pauses production: you may not operate production"
    assert 'data-lane="production"' in refused.text  # said on the lanes, where it was asked
    from_page = refresh(bob, next=f"{PAGE}/database/staging")
    assert flash(bob, from_page) == ("bad", "refreshing staging data pauses production: you may not operate "
                                            "production")
    by_htmx = bob.post(f"{PAGE}/staging/refresh", headers=HTMX | {"X-CSRF-Token": bob.csrf})
    assert by_htmx.status_code == 403 and "you may not operate production" in by_htmx.text
    hidden = refresh(eve)
    assert hidden.status_code == 404 and "<h1>Not found</h1>" in hidden.text
    assert snapshot_runs(settings) == []


def test_maintenance_is_said_where_statuses_are(console, settings):
    setup(settings)
    environment(settings, "main", status="maintenance")
    alice = console("alice")
    main = card(alice.get(PAGE).text, "main")
    assert 'data-environment-status="maintenance"' in main and "Maintenance" in text(main)
    envs = alice.get(f"{PAGE}/environments").text
    assert 'data-environment-status="maintenance"' in envs and "Maintenance" in text(envs)
    assert 'data-environment-status="maintenance"' in alice.get(f"{PAGE}/b/main").text


def test_the_live_stream_carries_the_facts(console, settings):
    setup(settings)
    environment(settings, "main")
    alice = console("alice")
    with alice.stream("GET", f"{PAGE}/live", timeout=15) as live:  # no digest: the lanes at once
        lines: list[str] = []
        for line in live.iter_lines():
            lines.append(line)
            if line == "" and any(x.startswith("event: lanes") for x in lines):
                break
    shown = "\n".join(line.removeprefix("data: ") for line in lines)
    assert 'data-next-commit="update">New commit: update in place' in card(shown, "main")
    assert "No snapshot yet: the next staging build takes one" in text(card(shown, "staging"))


def test_snapshot_facts_are_the_projects_own(console, settings):
    """Eve's project has its own snapshot; acme's page never shows it."""
    setup(settings)
    environment(settings, "main")
    with conn_of(settings) as conn:
        lab = conn.execute("select b.id, b.project_id from ops.branches b join ops.projects p on p.id = b.project_id "
                           "where p.slug = 'lab'").fetchone()
        conn.execute("insert into ops.database_copies (project_id, branch_id, kind, database, created_at) "
                     "values (%s, %s, 'snapshot', 'lab-snap', now() - interval '3 days')",
                     (lab["project_id"], lab["id"]))
        conn.execute("insert into ops.runs (project_id, branch_id, commit_sha, params) values (%s, %s, %s, %s)",
                     (lab["project_id"], lab["id"], SHA, Jsonb({})))
    page = console("alice").get(PAGE).text
    assert "No snapshot yet" in text(card(page, "main")) and "3 d old" not in page


def test_in_a_browser_refresh_then_the_production_database_page(api, people, page: Page, settings, screenshots):
    """The cards with their facts and the Database page: no axe-core violation
    (light and dark), nothing wider than a phone; Refresh staging data by htmx."""
    setup(settings)
    environment(settings, "main")
    copy(settings, "snapshot", timedelta(hours=2), expires=None)
    copy(settings, "update", timedelta(hours=1))
    update(settings, "succeeded", timedelta(days=1), ["sale_custom", "stock_custom"], seconds=40)
    update(settings, "reverted", timedelta(hours=1), ["sale_custom"], "health",
           "the new server did not come up healthy within 240 s", seconds=250)
    sign_in(page, api, "alice@acme.test")
    page.goto(f"{api}{PAGE}")
    main = page.locator('[data-branch="main"]')
    expect(main.locator("[data-revert]")).to_contain_text("reverted: health: the new server did not come up")
    accessible(page)
    fits_a_phone(page)
    page.locator('[data-branch="staging"] [data-action="refresh-staging"]').click()
    expect(page.locator("#flash")).to_contain_text("of production is queued")
    assert len(snapshot_runs(settings)) == 1
    page.screenshot(path=screenshots / "stages-lanes.png")

    main.get_by_role("link", name="Updates and copies of main").click()
    expect(page).to_have_url(f"{api}{PAGE}/database/main")
    expect(page.get_by_role("heading", name="A new commit: update in place")).to_be_visible()
    expect(page.locator("#updates tbody tr")).to_have_count(2)
    expect(page.locator("#copies tbody tr")).to_have_count(1)
    page.screenshot(path=screenshots / "stages-database.png", full_page=True)
    accessible(page)
    fits_a_phone(page)
