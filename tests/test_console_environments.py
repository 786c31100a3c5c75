"""Project → Environments over real HTTP against `odooops serve`: the cards
(status, health, URL, build, uptime, memory, restarts, log, collection),
start/stop/restart by stage role, Connect as (a single-use link, refused on
production unless the project allows it), the environment on the lanes'
cards and the branch page; an owner, a developer teammate and a stranger.
Environments are written as the database owner, as a runner would leave them."""

from __future__ import annotations

import hashlib
import html
import re
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import httpx
from conftest import owner_conn
from psycopg.types.json import Jsonb
from world import SHA

PAGE = "/p/acme/shop/environments"
EMPTY = "No environment yet: a successful build of a development or staging branch starts one."


def setup(settings, bob_role: str = "developer") -> None:
    """A staging branch beside main and feature, and Bob a developer of acme."""
    with owner_conn(settings.database_url.reveal()) as conn:
        conn.execute("insert into ops.branches (project_id, name, stage) select id, 'staging', 'staging' "
                     "from ops.projects where slug = 'shop'")
        conn.execute("update ops.org_members set role = %s where user_id = "
                     "(select id from ops.users where email = 'bob@acme.test')", (bob_role,))


UP = """update ops.environments
   set serve_run_id = %(serve_run_id)s, status = %(status)s, address = %(address)s, health = %(health)s,
       health_detail = %(health_detail)s, started_at = %(started_at)s, last_request_at = %(last_request_at)s,
       health_checked_at = %(health_checked_at)s, memory_bytes = %(memory_bytes)s, restarts = %(restarts)s
 where id = %(id)s returning *"""


def serve(settings, branch: str, status: str = "running", **fields) -> dict:
    """A succeeded build of `branch` and its server: on development and
    staging the database makes the environment and its serve run (deploy_build);
    production's is written here. Then the server is reported up."""
    with owner_conn(settings.database_url.reveal()) as conn:
        b = conn.execute("select b.id, b.project_id from ops.branches b join ops.projects p on p.id = b.project_id "
                         "where p.slug = 'shop' and b.name = %s", (branch,)).fetchone()
        build = conn.execute("insert into ops.runs (project_id, branch_id, commit_sha) values (%s, %s, %s) "
                             "returning id", (b["project_id"], b["id"], SHA)).fetchone()["id"]
        for step in ("claimed", "running"):
            conn.execute("update ops.runs set status = %s where id = %s", (step, build))
        conn.execute("update ops.runs set status = 'succeeded', result = 'ok' where id = %s", (build,))
        env = conn.execute("select * from ops.environments where branch_id = %s", (b["id"],)).fetchone()
        if env is None:  # production: deploy_build leaves it to another chapter
            env = conn.execute("insert into ops.environments (project_id, branch_id, label, build_id, host) "
                               "values (%s, %s, ops.environment_label(%s), %s, 'h') returning *",
                               (b["project_id"], b["id"], b["id"], build)).fetchone()
            conn.execute("insert into ops.runs (kind, project_id, branch_id, commit_sha, params, host) "
                         "values ('serve', %s, %s, %s, %s, 'h')",
                         (b["project_id"], b["id"], SHA, Jsonb({"build_id": build, "environment_id": str(env["id"])})))
        run = conn.execute("select id from ops.runs where kind = 'serve' and branch_id = %s and status = 'queued' "
                           "order by id desc limit 1", (b["id"],)).fetchone()["id"]
        conn.execute("insert into ops.run_events (run_id, seq, message) values (%s, 1, 'HTTP service running')",
                     (run,))
        for step in ("claimed", "running"):
            conn.execute("update ops.runs set status = %s where id = %s", (step, run))
        values = {"serve_run_id": run, "status": status, "address": "127.0.0.1:1", "health": "pass",
                  "health_detail": None, "started_at": datetime.now(UTC) - timedelta(hours=2, minutes=5),
                  "last_request_at": datetime.now(UTC) - timedelta(minutes=4), "health_checked_at": datetime.now(UTC),
                  "memory_bytes": 300 * 1024 * 1024, "restarts": 0, **fields, "id": env["id"]}
        return conn.execute(UP, values).fetchone() | {"build": build}


def card(page: str, branch: str) -> str:
    found = re.search(rf'<li class="env" id="env-{re.escape(branch)}".*?</li>', page, re.S)
    assert found, page
    return found.group(0)


def lane_card(page: str, branch: str) -> str:
    found = re.search(rf'<li class="card" data-branch="{re.escape(branch)}".*?</li>', page, re.S)
    assert found, page
    return found.group(0)


def buttons(card_html: str) -> set[str]:
    return set(re.findall(r'data-action="([\w-]+)"', card_html))


def said(client: httpx.Client, answer: httpx.Response) -> tuple[str, str]:
    """Where a POST sent the browser, the word the page there says: (tone, message)."""
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"].startswith(PAGE), answer.headers["location"]
    page = client.get(answer.headers["location"])
    found = re.search(r'<p class="notice (\w+)" data-flash>(.*?)</p>', page.text, re.S)
    assert found, page.text
    return found.group(1), html.unescape(found.group(2)).strip()


def control(client: httpx.Client, branch: str, action: str) -> httpx.Response:
    return client.post(f"{PAGE}/control", data={"csrf_token": client.csrf, "branch": branch, "action": action})


def connect(client: httpx.Client, branch: str, login: str = "admin") -> httpx.Response:
    return client.post(f"{PAGE}/connect", data={"csrf_token": client.csrf, "branch": branch, "login": login})


def env_row(settings, branch: str) -> dict:
    with owner_conn(settings.database_url.reveal()) as conn:
        return conn.execute("select e.* from ops.environments e join ops.branches b on b.id = e.branch_id "
                            "where b.name = %s", (branch,)).fetchone()


def tokens(settings) -> list[dict]:
    with owner_conn(settings.database_url.reveal()) as conn:
        return conn.execute("select * from ops.connect_tokens order by id").fetchall()


def test_empty_then_the_environments_with_their_facts(console, settings, api):
    setup(settings)
    alice = console("alice")
    page = alice.get(PAGE)
    assert page.status_code == 200 and EMPTY in page.text
    assert 'href="/p/acme/shop/environments" aria-current="page"' in page.text  # a section of the project
    assert 'href="/p/acme/shop/environments"' in alice.get("/p/acme/shop").text

    feature = serve(settings, "feature", health="fail", health_detail="/web/health answered 503",
                    memory_bytes=int(1.5 * 1024 ** 3), restarts=2)
    staging = serve(settings, "staging", status="sleeping", health=None, address=None)
    page = alice.get(PAGE).text
    assert EMPTY not in page
    assert re.findall(r'<li class="env" id="env-([\w-]+)"', page) == ["staging", "feature"]
    port = urlsplit(api).port
    url = f"http://{feature['label']}.localhost:{port}/"
    shown = card(page, "feature")
    assert 'data-environment-status="running"' in shown and ">Running</span>" in shown
    assert f'href="{url}" target="_blank"' in shown and f"<code>{url}</code>" in shown
    assert 'data-health="fail"' in shown and 'title="/web/health answered 503"' in shown
    assert "/web/health answered 503</small>" in shown and "checked <time" in shown
    assert f'href="/runs/{feature["build"]}"' in shown and f">{SHA[:8]}</code>" in shown
    assert re.search(r"<dd data-uptime><span [^>]*>2 h 5 min</span>", shown)
    assert "4 min ago" in shown and "<dd data-memory>1.5 GB</dd>" in shown
    assert re.search(r"<dd data-restarts>2 <span", shown)
    assert f'href="/runs/{feature["serve_run_id"]}" data-log="{feature["serve_run_id"]}"' in shown
    assert buttons(shown) == {"connect", "restart", "stop", "connect-as"}  # the owner may do everything
    asleep = card(page, "staging")
    assert ">Sleeping</span>" in asleep and 'data-health="none"' in asleep and "not running" in asleep
    assert buttons(asleep) == {"connect", "start", "stop", "connect-as"}
    assert staging["label"] in asleep

    log = alice.get(f"/runs/{feature['serve_run_id']}")  # the environment's live log is a run's page
    assert log.status_code == 200 and f"<h1>Server #{feature['serve_run_id']}</h1>" in log.text
    assert "HTTP service running" in log.text
    assert 'href="/p/acme/shop/environments" aria-current="true"' in log.text


def test_the_lanes_and_the_branch_page_show_the_environment(console, settings, api):
    setup(settings)
    alice = console("alice")
    assert "env-line" not in alice.get("/p/acme/shop").text
    feature = serve(settings, "feature")
    url = f"http://{feature['label']}.localhost:{urlsplit(api).port}/"
    on_card = lane_card(alice.get("/p/acme/shop").text, "feature")
    assert 'data-environment="running"' in on_card and f'href="{url}" target="_blank"' in on_card
    assert 'href="/p/acme/shop/environments#env-feature"' in on_card
    assert "env-line" not in lane_card(alice.get("/p/acme/shop").text, "main")
    branch_page = alice.get("/p/acme/shop/b/feature").text
    assert 'data-environment="running"' in branch_page and f'href="{url}" target="_blank"' in branch_page
    assert 'href="/p/acme/shop/environments#env-feature"' in branch_page
    assert f'<li class="env-url"><a href="{url}"' in branch_page  # the page's header says where it runs


def test_a_stranger_finds_nothing(console, settings):
    setup(settings)
    serve(settings, "feature")
    eve = console("eve")
    for answer in (eve.get(PAGE), control(eve, "feature", "stop"), connect(eve, "feature")):
        assert answer.status_code == 404 and "<h1>Not found</h1>" in answer.text
    assert env_row(settings, "feature")["wanted"] == "running" and tokens(settings) == []


def test_a_developer_operates_development_only(console, settings):
    setup(settings)
    serve(settings, "feature")
    serve(settings, "staging")
    bob = console("bob")
    page = bob.get(PAGE).text
    assert buttons(card(page, "feature")) == {"connect", "restart", "stop"}  # no Connect as: admins only
    assert buttons(card(page, "staging")) == {"connect"}
    assert "Recent Connect as" not in page

    assert said(bob, control(bob, "staging", "stop")) == (
        "bad", "you may not stop the environments of this branch's stage")
    assert env_row(settings, "staging")["wanted"] == "running"
    assert said(bob, control(bob, "feature", "stop")) == ("ok", "feature: its environment is stopping.")
    assert env_row(settings, "feature")["wanted"] == "stopped"
    assert said(bob, connect(bob, "feature"))[0] == "bad" and tokens(settings) == []


def test_start_stop_restart_and_bad_input(console, settings):
    setup(settings)
    serve(settings, "feature")
    alice = console("alice")
    assert said(alice, control(alice, "feature", "start")) == ("ok", "feature: its environment is running already.")
    assert said(alice, control(alice, "feature", "restart"))[0] == "ok"
    with owner_conn(settings.database_url.reveal()) as conn:
        queued = conn.execute("select count(*) as n from ops.runs where kind = 'serve' and status = 'queued'")
        assert queued.fetchone()["n"] == 1  # a new server, the running one answering until it is healthy
    assert said(alice, control(alice, "feature", "stop")) == ("ok", "feature: its environment is stopping.")
    assert said(alice, control(alice, "nowhere", "stop")) == ("bad", "project has no branch 'nowhere'")
    assert said(alice, control(alice, "main", "stop")) == (
        "bad", "this branch has no environment: a successful build makes one")
    assert said(alice, control(alice, "feature", "explode")) == (
        "bad", "an environment is started, stopped or restarted, not 'explode'")
    assert said(alice, connect(alice, "feature", "  ")) == ("bad", "say which Odoo user to connect as (its login)")
    assert tokens(settings) == []
    refused = alice.post(f"{PAGE}/control", data={"branch": "feature", "action": "start"})  # no CSRF token
    assert refused.status_code == 403


def test_connect_as_is_a_single_use_link_recorded_for_admins(console, settings, api):
    setup(settings)
    feature = serve(settings, "feature")
    alice = console("alice")
    page = alice.get(PAGE)
    origin = f"http://*.localhost:{urlsplit(api).port}"
    assert f"form-action 'self' {origin};" in page.headers["content-security-policy"]  # where Connect as leads
    form = re.search(r'<form method="post" action="/p/acme/shop/environments/connect".*?</form>',
                     card(page.text, "feature"), re.S)[0]
    assert 'target="_blank"' in form and 'name="login" value="admin"' in form and "csrf_token" in form

    answer = connect(alice, "feature", "demo")
    assert answer.status_code == 303
    link = answer.headers["location"]
    start = f"http://{feature['label']}.localhost:{urlsplit(api).port}/odooops/connect?token="
    assert link.startswith(start)
    token = link[len(start):]
    [row] = tokens(settings)
    assert row["login"] == "demo" and bytes(row["token_sha256"]) == hashlib.sha256(token.encode()).digest()
    assert row["environment_id"] == feature["id"] and row["used_at"] is None

    uses = card(alice.get(PAGE).text, "feature")
    assert 'data-login="demo" data-state="waiting"' in uses and "alice@acme.test" in uses
    with owner_conn(settings.database_url.reveal()) as conn:  # the router takes it
        used = conn.execute("select ops.use_connect_token(%s, %s, 'router') as login",
                            (feature["id"], hashlib.sha256(token.encode()).digest())).fetchone()
    assert used["login"] == "demo"
    uses = card(alice.get(PAGE).text, "feature")
    assert 'data-login="demo" data-state="used"' in uses and "from router" in uses


def test_connect_as_on_production_only_where_the_project_allows_it(console, settings):
    setup(settings)
    serve(settings, "main")
    alice = console("alice")
    main = card(alice.get(PAGE).text, "main")
    assert "connect-as" not in buttons(main) and "data-connect-off" in main
    assert "collect" not in main  # production is never collected
    assert said(alice, connect(alice, "main")) == (
        "bad", "Connect as is off on production: the project setting connect_as_production=true allows it")
    assert tokens(settings) == []
    with owner_conn(settings.database_url.reveal()) as conn:
        conn.execute("update ops.projects set settings = settings || %s where slug = 'shop'",
                     (Jsonb({"connect_as_production": True}),))
    assert "connect-as" in buttons(card(alice.get(PAGE).text, "main"))
    assert connect(alice, "main").status_code == 303 and len(tokens(settings)) == 1


def test_development_environments_say_when_they_are_collected(console, settings):
    setup(settings)
    feature = serve(settings, "feature")
    serve(settings, "staging")
    with owner_conn(settings.database_url.reveal()) as conn:
        last = conn.execute("select finished_at from ops.runs where id = %s", (feature["build"],)).fetchone()
    due = (last["finished_at"] + timedelta(days=settings.environment_gc_days)).astimezone(UTC)
    alice = console("alice")
    page = alice.get(PAGE).text
    assert re.search(rf"<dd data-collect>Will be collected on <time [^>]*>{due:%Y-%m-%d}</time>", card(page, "feature"))
    assert "data-collect" not in card(page, "staging")

    with owner_conn(settings.database_url.reveal()) as conn:
        conn.execute("update ops.environments set collected_at = '2026-01-02T03:04:05Z', wanted = 'stopped', "
                     "status = 'stopped' where id = %s", (feature["id"],))
    collected = card(alice.get(PAGE).text, "feature")
    assert re.search(r"<dd data-collect>Collected on <time [^>]*>2026-01-02</time>: build the branch again", collected)
    assert buttons(collected) == set()  # nothing to start or connect to: its database is gone
    assert said(alice, control(alice, "feature", "start")) == (
        "bad", "the environment's database was dropped: build the branch again")
