"""A build's tests and the Odoo sources it used, as the API, the console and
the CLI show them, and a branch's Odoo settings (modules, test tags): the
owner, a teammate (a viewer, and a developer for what only admins may) and a
stranger. The results are written as the runner would leave them, directly
with the owner's connection: the runner is tested on its own."""

from __future__ import annotations

import json
import re

import httpx
import pytest
from browser import accessible, fits_a_phone, sign_in
from conftest import owner_conn
from helpers import SERVICE, as_, call, envelope
from playwright.sync_api import expect
from psycopg.types.json import Jsonb
from test_console_logs import move, queue_build

from odooops.managers.orgs import Orgs
from odooops.managers.tokens import Tokens
from odooops.managers.users import Users

SOURCES = [
    {"name": "odoo", "url": "https://github.com/odoo/odoo", "ref": "17.0", "commit": "a1b2c3d4e5" + "0" * 30},
    {"name": "shop", "url": "https://git.example.com/acme/shop.git", "ref": "feature",
     "commit": "f00dfeed42" + "1" * 30},
]
# (n: order in the log, module, class, method, outcome, duration_ms, traceback, fingerprint, log_seq)
RESULTS = [
    (1, "sale_x", "TestSale", "test_confirm", "pass", 120, None, None, 3),
    (2, "sale_x", "TestSale", "test_invoice", "fail", 2300,
     "Traceback (most recent call last):\n  File \"sale_x/tests/test_sale.py\", line 9\nAssertionError: 1 != 2",
     "deadbeef01", 5),
    (3, "stock_x", "TestStock", "test_later", "skip", None, "not ready yet", None, 7),
    (4, "stock_x", "TestStock", "test_move", "pass", 40, None, None, 9),
    (5, "stock_x", "TestStock", "test_broken", "error", 10, "Traceback (most recent call last):\nKeyError: '<script>'",
     "cafebabe02", 11),
]
# failures and errors first, then skips, then passes; each in log order
ORDER = ["test_invoice", "test_broken", "test_later", "test_confirm", "test_move"]
SUMMARY = {"pass": 2, "fail": 1, "error": 1, "skip": 1}
NOWHERE = {"ODOOOPS_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/nothing"}


def finished(owner_db: str, run_id: int, lines: int = 12, results=RESULTS, sources=SOURCES) -> int:
    """End a queued build as a runner would leave it: its log, its sources,
    each test's result and a junit.xml; a build with errors (ko)."""
    with owner_conn(owner_db) as conn:
        conn.execute("insert into ops.run_events (run_id, seq, level, phase, message) "
                     "select %s, g, 'info', 'test', 'line ' || g from generate_series(1, %s) g", (run_id, lines))
    move(owner_db, run_id, "claimed", "running", "failed")
    with owner_conn(owner_db) as conn:
        conn.execute("update ops.runs set result = 'ko', attempt = 1, sources = %s where id = %s",
                     (Jsonb(sources), run_id))
        for n, module, cls, method, outcome, ms, traceback, fingerprint, seq in results:
            conn.execute("insert into ops.test_results (run_id, n, attempt, module, test_class, method, outcome, "
                         "duration_ms, traceback, fingerprint, log_seq) values (%s, %s, 1, %s, %s, %s, %s, %s, %s, "
                         "%s, %s)", (run_id, n, module, cls, method, outcome, ms, traceback, fingerprint, seq))
        conn.execute("insert into ops.artifacts (run_id, name, sha256, size, content_type, storage_uri) "
                     "values (%s, 'junit.xml', %s, 10, 'application/xml', 'cas://junit')", (run_id, "c" * 64))
    return run_id


@pytest.fixture
def build(api, tenants, owner_db) -> int:
    return finished(owner_db, queue_build(api, tenants))


@pytest.fixture
def dave(tenants, settings) -> str:
    """A developer of acme: may build, may not change a branch's settings. His token."""

    async def work(db):
        await Users(db, SERVICE).create("dave@acme.test")
        await Orgs(db, SERVICE).add_member("acme", "dave@acme.test", "developer")
        return (await Tokens(db, SERVICE).create("dave@acme.test", "test", ["read", "write"]))[1]

    return call(settings, work)


def branch_settings(owner_db: str, name: str = "feature") -> dict:
    with owner_conn(owner_db) as conn:
        return conn.execute("select b.settings from ops.branches b join ops.projects p on p.id = b.project_id "
                            "where p.slug = 'shop' and b.name = %s", (name,)).fetchone()["settings"]


# --- the API


def test_the_api_answers_failures_first_with_a_summary_and_the_sources(api, tenants, build):
    answer = httpx.get(f"{api}/api/v1/runs/{build}/tests", headers=as_(tenants["alice"]))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert [t["method"] for t in body["tests"]] == ORDER
    assert body["summary"] == SUMMARY
    failed = body["tests"][0]
    assert failed == {"module": "sale_x", "test_class": "TestSale", "method": "test_invoice", "outcome": "fail",
                      "duration_ms": 2300, "traceback": RESULTS[1][6], "fingerprint": "deadbeef01", "log_seq": 5,
                      "attempt": 1}
    assert body["tests"][2]["traceback"] == "not ready yet" and body["tests"][3]["fingerprint"] is None
    run = httpx.get(f"{api}/api/v1/runs/{build}", headers=as_(tenants["alice"])).json()
    assert run["sources"] == SOURCES and run["result"] == "ko"


def test_tests_are_the_runs_own_teammate_yes_stranger_no(api, tenants, build, dave):
    owner = httpx.get(f"{api}/api/v1/runs/{build}/tests", headers=as_(tenants["alice"])).json()
    for teammate in (tenants["bob"], dave, tenants["alice_read"]):  # a viewer, a developer, a read-only token
        assert httpx.get(f"{api}/api/v1/runs/{build}/tests", headers=as_(teammate)).json() == owner
    hidden = envelope(httpx.get(f"{api}/api/v1/runs/{build}/tests", headers=as_(tenants["eve"])), 404, "not_found")
    unknown = envelope(httpx.get(f"{api}/api/v1/runs/999999/tests", headers=as_(tenants["eve"])), 404, "not_found")
    assert hidden == unknown.replace("999999", str(build))  # a stranger's run is simply not there
    envelope(httpx.get(f"{api}/api/v1/runs/{build}/tests"), 401, "unauthenticated")
    envelope(httpx.get(f"{api}/api/v1/runs/{2**63}/tests", headers=as_(tenants["alice"])), 422, "invalid_input")
    assert "sources" not in httpx.get(f"{api}/api/v1/runs/{build}", headers=as_(tenants["eve"])).json()


def test_a_run_without_tests_has_none(api, tenants):
    queued = queue_build(api, tenants)
    body = httpx.get(f"{api}/api/v1/runs/{queued}/tests", headers=as_(tenants["alice"])).json()
    assert body == {"tests": [], "summary": {"pass": 0, "fail": 0, "error": 0, "skip": 0}}
    assert httpx.get(f"{api}/api/v1/runs/{queued}", headers=as_(tenants["alice"])).json()["sources"] is None


def test_branch_settings_through_the_api(api, tenants, dave, owner_db):
    url = f"{api}/api/v1/projects/acme/shop/branches/feature"
    alice = as_(tenants["alice"])
    changed = httpx.patch(url, json={"settings": {"odoo_modules": ["sale_x", "stock_x"]}}, headers=alice)
    assert changed.status_code == 200, changed.text
    assert changed.json()["settings"] == {"odoo_modules": ["sale_x", "stock_x"]}
    merged = httpx.patch(url, json={"settings": {"odoo_test_tags": "/sale_x"}}, headers=alice).json()
    assert merged["settings"] == {"odoo_modules": ["sale_x", "stock_x"], "odoo_test_tags": "/sale_x"}
    before = branch_settings(owner_db)

    said = envelope(httpx.patch(url, json={"settings": {"odoo_test_tags": "x", "bogus": 1}}, headers=alice),
                    422, "invalid_input")
    assert "unknown branch setting 'bogus'" in said and "odoo_modules" in said  # and which ones there are
    for bad in ({"odoo_modules": "some"}, {"odoo_modules": ["Not-A-Module"]}, {"odoo_modules": []},
                {"odoo_test_tags": ""}, {"odoo_test_tags": 5}):
        said = envelope(httpx.patch(url, json={"settings": bad}, headers=alice), 422, "invalid_input")
        assert said.startswith(next(iter(bad)) + ":"), said
    assert "one change at a time" in envelope(
        httpx.patch(url, json={"stage": "staging", "settings": {"odoo_test_tags": "x"}}, headers=alice),
        422, "invalid_input")
    envelope(httpx.patch(url, json={}, headers=alice), 422, "invalid_input")
    assert "admin" in envelope(httpx.patch(url, json={"settings": {"odoo_test_tags": "x"}}, headers=as_(dave)),
                               403, "forbidden")
    envelope(httpx.patch(url, json={"settings": {"odoo_test_tags": "x"}}, headers=as_(tenants["bob"])),
             403, "forbidden")
    envelope(httpx.patch(url, json={"settings": {"odoo_test_tags": "x"}}, headers=as_(tenants["eve"])),
             404, "not_found")
    envelope(httpx.patch(url, json={"settings": {"odoo_test_tags": "x"}}, headers=as_(tenants["alice_read"])),
             403, "forbidden")
    assert branch_settings(owner_db) == before  # nothing written by any of them

    moved = httpx.patch(url, json={"stage": "staging"}, headers=alice)  # the stage, as before
    assert moved.status_code == 200 and moved.json()["stage"] == "staging", moved.text
    assert moved.json()["settings"] == before


# --- the console


def between(html: str, start: str, end: str) -> str:
    return html.split(start, 1)[1].split(end, 1)[0]


def test_the_build_page_shows_failures_first_with_links_to_their_lines_and_the_sources(console, build):
    page = console("alice").get(f"/runs/{build}")
    assert page.status_code == 200, page.text
    html = page.text
    tests = between(html, 'id="tests"', "</section>")
    named = list(dict.fromkeys(m for m in re.findall(r"test_\w+", tests) if m in ORDER))
    assert named == ORDER  # each first named where its outcome puts it
    failed = between(tests, '<ol class="tests-failed"', "</ol>")
    assert re.findall(r'<code class="test-name">([^<]+)</code>', failed) == ["TestSale.test_invoice",
                                                                            "TestStock.test_broken"]
    folded = [tests.index(f'<details class="tests-more" data-outcome="{o}"') for o in ("skip", "pass")]
    assert tests.index("tests-failed") < folded[0] < folded[1]
    # the summary: each outcome as an icon and a word
    summary = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", between(tests, 'id="tests-summary">', "</p>"))).split()
    assert summary[:12] == ["✖", "1", "failed", "⊗", "1", "error", "⊘", "1", "skipped", "✔", "2", "passed"]
    assert f'href="/api/v1/runs/{build}/artifacts/junit.xml"' in tests
    # each failure: module, duration, its traceback folded, a link to its line on this page
    first = between(failed, "<li", "</li>")
    assert "sale_x" in first and "2 s" in first and 'data-outcome="fail"' in first
    assert re.search(r'<details class="test-tb"><summary>Traceback</summary><pre>Traceback \(most recent', first)
    assert 'href="#L5"' in first and 'id="L5"' in html
    assert "KeyError: &#39;&lt;script&gt;&#39;" in failed and "<script>'" not in html  # a traceback is text
    # passes and skips folded, after
    passes = between(tests, '<details class="tests-more" data-outcome="pass">', "</details>")
    assert "<summary>2 passed</summary>" in passes and 'href="#L3"' in passes and 'href="#L9"' in passes
    assert "not ready yet" in between(tests, '<details class="tests-more" data-outcome="skip">', "</details>")
    # the sources, in the header
    head = between(html, '<header class="run-head">', "</header>")
    for s in SOURCES:
        assert s["name"] in head and s["ref"] in head and s["commit"][:8] in head and s["url"] in head
    assert f'title="{SOURCES[0]["commit"]}"' in head


def test_a_line_not_on_the_page_is_linked_to_a_page_that_shows_it(console, api, tenants, owner_db):
    early, late, too_far = 10, 6950, 2500
    results = [(1, "m", "T", "test_early", "fail", 1, "tb", "aaaaaaaa", early),
               (2, "m", "T", "test_late", "fail", 1, "tb", "bbbbbbbb", late),
               (3, "m", "T", "test_far", "pass", 1, None, None, too_far)]
    run_id = finished(owner_db, queue_build(api, tenants), lines=7000, results=results)
    alice = console("alice")
    html = alice.get(f"/runs/{run_id}").text
    assert f'href="#L{late}"' in html and f'id="L{late}"' in html  # the last 500 lines are on the page
    assert f'href="/runs/{run_id}?lines=4501#L{too_far}"' in html  # on a page of 4,501 lines
    there = alice.get(f"/runs/{run_id}?lines=4501")
    assert there.status_code == 200 and f'id="L{too_far}"' in there.text
    early_item = between(html, "test_early", "</li>")
    assert "test-line" not in early_item and "href" not in early_item  # past any page: the download has it
    # a page filtered by level may hide the line: the link is to the whole page
    assert f'href="/runs/{run_id}#L{late}"' in alice.get(f"/runs/{run_id}?level=error").text


def test_the_build_page_of_a_stranger_is_not_found_and_a_plain_run_has_no_tests(console, api, tenants, build):
    assert console("eve").get(f"/runs/{build}").status_code == 404
    bob = console("bob").get(f"/runs/{build}")
    assert bob.status_code == 200 and 'id="tests"' in bob.text  # a viewer reads them too
    plain = console("alice").get(f"/runs/{queue_build(api, tenants)}").text
    assert 'id="tests"' not in plain and "fact-sources" not in plain


def test_the_tests_in_a_browser(api, people, owner_db, page, shoot):
    run_id = finished(owner_db, queue_build(api, people))
    sign_in(page, api, "alice@acme.test")
    page.goto(f"{api}/runs/{run_id}")
    expect(page.get_by_role("heading", name="Tests")).to_be_visible()
    expect(page.locator("#tests-summary")).to_contain_text("1 failed")
    failure = page.locator(".tests-failed li").first
    expect(failure.locator("pre")).to_be_hidden()  # folded
    failure.get_by_text("Traceback", exact=True).click()
    expect(failure.locator("pre")).to_contain_text("AssertionError: 1 != 2")
    page.locator('details.tests-more[data-outcome="pass"] > summary').click()
    expect(page.locator('details.tests-more[data-outcome="pass"] table')).to_be_visible()
    expect(page.locator(".run-facts .fact-sources")).to_contain_text("odoo 17.0 a1b2c3d4")
    shoot(page, "build-tests")
    accessible(page)
    fits_a_phone(page)
    failure.get_by_role("link", name="Log line 5 of TestSale.test_invoice").click()
    expect(page.locator("#L5")).to_have_class(re.compile(r"\btarget\b"))
    expect(page.locator("#L5")).to_be_in_viewport()


def test_a_page_that_watched_the_build_live_shows_its_tests_when_it_ends(api, people, owner_db, page):
    """The tests are recorded as the build ends: no reload needed to see them."""
    run_id = queue_build(api, people)
    sign_in(page, api, "alice@acme.test")
    page.goto(f"{api}/runs/{run_id}")
    expect(page.locator("#log-status")).to_contain_text("Queued")
    expect(page.get_by_role("heading", name="Tests")).to_have_count(0)
    finished(owner_db, run_id)
    expect(page.locator("#log-status")).to_contain_text("Failed", timeout=15000)
    expect(page.get_by_role("heading", name="Tests")).to_be_visible(timeout=15000)
    expect(page.locator("#tests-summary")).to_contain_text("1 failed")
    expect(page.locator("#tests-slot")).to_have_count(0)
    accessible(page)


# --- the CLI


def ok(result) -> str:
    assert result.returncode == 0, result.stderr + result.stdout
    return result.stdout


def test_run_tests_and_run_show_in_the_cli(cli, api, tenants, build):
    as_alice = {"ODOOOPS_AS": "alice@acme.test"}
    out = ok(cli("run", "tests", str(build), env=as_alice))
    rows = [line for line in out.splitlines() if "test_" in line]
    assert [re.search(r"test_\w+", r)[0] for r in rows] == ORDER
    assert rows[0].split()[:5] == ["✖", "Failed", "sale_x", "TestSale.test_invoice", "2.3"]
    assert rows[1].split()[:2] == ["⊗", "Error"] and rows[4].split()[:2] == ["✔", "Passed"]
    assert rows[0].split()[-1] == "5"  # the log line
    assert "1 failed, 1 error, 1 skipped, 2 passed" in out
    assert json.loads(ok(cli("run", "tests", str(build), "--json", env=as_alice))) == \
        httpx.get(f"{api}/api/v1/runs/{build}/tests", headers=as_(tenants["alice"])).json()["tests"]
    with_tracebacks = ok(cli("run", "tests", str(build), "--tracebacks", env=as_alice))
    assert "AssertionError: 1 != 2" in with_tracebacks and "KeyError: '<script>'" in with_tracebacks
    refused = cli("run", "tests", str(build), env={"ODOOOPS_AS": "eve@evil.test"})
    assert refused.returncode == 1 and f"run {build} not found" in refused.stderr
    assert "recorded no test results" in cli("run", "tests", str(queue_build(api, tenants))).stderr

    shown = ok(cli("run", "show", str(build), env=as_alice))
    assert re.search(r"source odoo\s+17\.0 at a1b2c3d4e500\s+https://github\.com/odoo/odoo", shown), shown
    assert re.search(r"source shop\s+feature at f00dfeed4211", shown) and "Errors" in shown and "Failed" in shown
    assert json.loads(ok(cli("run", "show", str(build), "--json", env=as_alice)))["sources"] == SOURCES


def test_branch_set_in_the_cli(cli, tenants, dave, owner_db):
    out = ok(cli("branch", "set", "acme/shop", "feature", "odoo_modules=sale_x,stock_x", "odoo_test_tags=/sale_x"))
    assert json.loads(out) == {"odoo_modules": ["sale_x", "stock_x"], "odoo_test_tags": "/sale_x"}
    ok(cli("branch", "set", "acme/shop", "feature", "odoo_modules=own"))
    assert branch_settings(owner_db)["odoo_modules"] == "own"
    ok(cli("branch", "set", "acme/shop", "feature", 'odoo_modules=["sale_x"]'))  # JSON, as project set takes it
    before = branch_settings(owner_db)
    assert before == {"odoo_modules": ["sale_x"], "odoo_test_tags": "/sale_x"}
    for args, message in ((["bogus=1"], "unknown branch setting 'bogus'"),
                          (["odoo_modules=Sale-X"], "odoo_modules: the modules a build installs"),
                          (["odoo_test_tags=/x", "odoo_modules=no good"], "odoo_modules:"),
                          (["odoo_modules"], "settings are given as NAME=VALUE")):
        failed = cli("branch", "set", "acme/shop", "feature", *args)
        assert failed.returncode == 1 and message in failed.stderr and "Traceback" not in failed.stderr, failed.stderr
    refused = cli("branch", "set", "acme/shop", "feature", "odoo_test_tags=x", env={"ODOOOPS_AS": "dave@acme.test"})
    assert refused.returncode == 1 and "only an admin" in refused.stderr
    hidden = cli("branch", "set", "acme/shop", "feature", "odoo_test_tags=x", env={"ODOOOPS_AS": "eve@evil.test"})
    assert hidden.returncode == 1 and "no project 'acme/shop'" in hidden.stderr
    assert branch_settings(owner_db) == before  # nothing written on a refusal


def test_the_cli_against_a_remote_server(cli, api, tenants, build, owner_db):
    logged = cli("login", api, "--token-stdin", input=tenants["alice"] + "\n", env=NOWHERE)
    assert logged.returncode == 0, logged.stderr
    remote = lambda *args: cli(*args, env=NOWHERE)  # noqa: E731
    out = ok(remote("run", "tests", str(build)))
    assert [re.search(r"test_\w+", r)[0] for r in out.splitlines() if "test_" in r] == ORDER
    assert json.loads(ok(remote("run", "tests", str(build), "--json")))[0]["method"] == "test_invoice"
    assert "source odoo" in ok(remote("run", "show", str(build)))
    assert json.loads(ok(remote("branch", "set", "acme/shop", "feature", "odoo_modules=sale_x"))) == \
        {"odoo_modules": ["sale_x"]}
    bad = remote("branch", "set", "acme/shop", "feature", "bogus=1")
    assert bad.returncode == 1 and "unknown branch setting 'bogus'" in bad.stderr
    assert branch_settings(owner_db) == {"odoo_modules": ["sale_x"]}
    ok(remote("logout"))


@pytest.mark.parametrize("args", [("run", "tests"), ("run", "show"), ("branch", "set")])
def test_help_reads_cleanly_at_80_columns(cli, args):
    text = ok(cli(*args, "--help", env={"COLUMNS": "80"}))
    assert all(len(line) <= 80 for line in text.splitlines()), text
    described = [line for line in text.splitlines() if not line.startswith("Usage:")]
    assert not any(line.rstrip().endswith(("...", "-")) for line in described), text
