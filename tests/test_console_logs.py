"""The build log page over real HTTP: the log as the page renders it (phases,
durations, a link to every line, terminal colours, nothing a line says ever
run as HTML), its live tail over Server-Sent Events, the text download, and
who may see and do what; the ANSI converter on its own."""

from __future__ import annotations

import json
import re
import threading
import time
from datetime import datetime, timedelta, timezone

import httpx
import pytest
from conftest import owner_conn
from helpers import as_, sse

from odooops.console import ansi
from odooops.console.logs import text_line

T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


def queue_build(api: str, tenants: dict) -> int:
    answer = httpx.post(f"{api}/api/v1/projects/acme/shop/branches/feature/builds", headers=as_(tenants["alice"]))
    assert answer.status_code == 201, answer.text
    return answer.json()["build_id"]


def write(owner_db: str, run_id: int, lines: list[tuple]) -> None:
    """Log lines as (seq, seconds after T0, level, phase, stream, message)."""
    with owner_conn(owner_db) as conn:
        for seq, at, level, phase, stream, message in lines:
            conn.execute("insert into ops.run_events (run_id, seq, ts, level, phase, stream, message) "
                         "values (%s, %s, %s, %s, %s, %s, %s)",
                         (run_id, seq, T0 + timedelta(seconds=at), level, phase, stream, message))


def move(owner_db: str, run_id: int, *statuses: str) -> None:
    with owner_conn(owner_db) as conn:
        for status in statuses:
            conn.execute("update ops.runs set status = %s where id = %s", (status, run_id))


BUILD_LOG = [
    (1, 0, "info", None, "system", "attempt 1 of run on a host"),
    (2, 0, "info", "checkout", "system", "phase checkout started"),
    (3, 1, "info", "checkout", "system", "checked out 0123456789ab"),
    (4, 3, "info", "checkout", "system", "phase checkout succeeded in 3.0 s"),
    (5, 3, "info", "test", "system", "phase test started"),
    (6, 4, "debug", "test", "stdout", "collecting"),
    (7, 5, "warning", "test", "stdout", "2026-01-02 03:04:10,000 7 WARNING db odoo: careful"),
    (8, 6, "error", "test", "stderr", "\x1b[1;31mFAILED\x1b[0m test_x <script>alert(1)</script>"),
    (9, 75, "error", "test", "system", "phase test failed with exit code 1 in 72.0 s"),
    (10, 75, "info", None, "system", "phase deploy skipped"),
    (11, 75, "info", None, "system", "run failed: phase test failed"),
]


@pytest.fixture
def failed_build(api, tenants, owner_db) -> int:
    run_id = queue_build(api, tenants)
    write(owner_db, run_id, BUILD_LOG)
    move(owner_db, run_id, "claimed", "running", "failed")
    return run_id


def test_page_shows_phases_with_durations_and_a_link_to_every_line(console, failed_build):
    page = console("alice").get(f"/runs/{failed_build}")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    html = page.text
    assert 'href="/p/acme/shop/b/feature">feature</a>' in html
    assert f'href="/runs/{failed_build}" aria-current="page">Build #{failed_build}</a>' in html  # the crumbs
    assert 'id="log-status"' in html and 'data-status="failed"' in html
    sections = re.findall(r'<details open class="phase" data-phase="([^"]*)">\s*<summary>(.*?)</summary>', html, re.S)
    assert [name for name, _ in sections] == ["", "checkout", "test", ""]
    summaries = {name: re.sub(r"<[^>]+>|\s+", " ", summary).split() for name, summary in sections if name}
    assert summaries == {"checkout": ["checkout", "ok", "3", "s"], "test": ["test", "failed", "1", "min", "12", "s"]}
    assert re.search(r'<details class="phase skipped" data-phase="deploy">\s*<summary><span class="ph-name">deploy'
                     r'</span> <span class="ph-status ph-skipped">skipped', html)
    for seq in range(1, 12):
        assert f'<div id="L{seq}" class="line lvl-' in html and f'<a class="ln" href="#L{seq}"' in html
    assert 'class="line lvl-error stderr"' in html and 'class="line lvl-warning"' in html
    assert 'data-after="11"' in html and 'data-live="false"' in html
    assert 'id="download" href="/runs/%d/log.txt"' % failed_build in html
    assert all(f'id="{hook}"' in html for hook in ("log", "follow", "log-search", "log-level", "log-status"))


def test_colours_become_classes_and_a_line_never_becomes_html(console, failed_build):
    html = console("alice").get(f"/runs/{failed_build}").text
    assert '<span class="ansi-1 ansi-31">FAILED</span> test_x &lt;script&gt;alert(1)&lt;/script&gt;' in html
    assert "<script>alert" not in html and "\x1b" not in html


def test_level_filter_works_without_javascript(console, failed_build):
    alice = console("alice")
    html = alice.get(f"/runs/{failed_build}?level=warning").text
    assert 'data-min="warning"' in html and '<option value="warning" selected>' in html
    assert alice.get(f"/runs/{failed_build}?level=loud").status_code == 422


def test_viewer_reads_without_buttons_owner_gets_them_stranger_gets_nothing(console, api, tenants, owner_db,
                                                                             failed_build):
    alice, bob, eve = console("alice"), console("bob"), console("eve")
    mine = alice.get(f"/runs/{failed_build}").text
    assert re.search(r'<form method="post" action="/runs/\d+/rebuild" class="inline" id="rebuild-form">\s*'
                     r'<input type="hidden" name="csrf_token" value="%s">' % alice.csrf, mine)
    assert re.search(r'id="cancel-form" hidden>', mine) and 'name="next" value="/runs/%d"' % failed_build in mine
    running = queue_build(api, tenants)
    move(owner_db, running, "claimed", "running")
    live = alice.get(f"/runs/{running}").text
    assert re.search(r'id="cancel-form">', live) and re.search(r'id="rebuild-form" hidden>', live)
    assert 'data-live="true"' in live
    assert "FAILED" in bob.get(f"/runs/{failed_build}").text
    for run_id in (failed_build, running):
        seen = bob.get(f"/runs/{run_id}")
        assert seen.status_code == 200
        assert "cancel-form" not in seen.text and "rebuild-form" not in seen.text
    for path in ("", "/live", "/log.txt"):
        hidden = eve.get(f"/runs/{failed_build}{path}")
        assert hidden.status_code == 404, path
        assert hidden.headers["content-type"].startswith("text/html") and "FAILED" not in hidden.text
    assert eve.get("/runs/999999").status_code == 404
    assert httpx.get(f"{api}/runs/{failed_build}").status_code == 303  # no session: off to sign in


def test_stream_resumes_after_the_page_or_the_last_event_and_ends_with_the_run(console, failed_build):
    alice = console("alice")
    with alice.stream("GET", f"/runs/{failed_build}/live?after=7", timeout=10) as response:
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
        events = sse(response)
    lines = [e for e in events if e["event"] == "line"]
    assert [e["id"] for e in lines] == ["8", "9", "10", "11"]
    first = json.loads(lines[0]["data"])
    assert first["phase"] == "test" and first["html"].startswith('<div id="L8" class="line lvl-error stderr">')
    assert '<span class="ansi-1 ansi-31">FAILED</span>' in first["html"] and "<script>" not in first["html"]
    assert json.loads(lines[2]["data"])["phase"] == ""
    status = json.loads(next(e for e in events if e["event"] == "status")["data"])
    assert status["status"] == "failed" and status["finished"] and 'data-status="failed"' in status["badge"]
    assert {p["name"]: (p["status"], p["duration"]) for p in status["phases"]} == {
        "checkout": ("ok", "3 s"), "test": ("failed", "1 min 12 s"), "deploy": ("skipped", "")}
    assert events[-1]["event"] == "end" and json.loads(events[-1]["data"])["status"] == "failed"
    with alice.stream("GET", f"/runs/{failed_build}/live?after=1", headers={"Last-Event-ID": "10"},
                      timeout=10) as response:
        assert [e["id"] for e in sse(response) if e["event"] == "line"] == ["11"]


def test_stream_sends_lines_as_they_are_written_until_the_run_ends(console, api, tenants, owner_db):
    run_id = queue_build(api, tenants)
    move(owner_db, run_id, "claimed", "running")
    write(owner_db, run_id, BUILD_LOG[:2])

    def runner():
        time.sleep(0.6)
        write(owner_db, run_id, BUILD_LOG[2:5])
        time.sleep(0.6)
        move(owner_db, run_id, "succeeded")

    writing = threading.Thread(target=runner)
    writing.start()
    try:
        with console("alice").stream("GET", f"/runs/{run_id}/live?after=2", timeout=20) as response:
            events = sse(response)
    finally:
        writing.join()
    assert [e["id"] for e in events if e["event"] == "line"] == ["3", "4", "5"]
    statuses = [json.loads(e["data"])["status"] for e in events if e["event"] == "status"]
    assert statuses[0] == "running" and statuses[-1] == "succeeded"
    assert events[-1]["event"] == "end" and json.loads(events[-1]["data"])["status"] == "succeeded"


def test_download_is_the_whole_log_as_text(console, failed_build):
    got = console("bob").get(f"/runs/{failed_build}/log.txt")
    assert got.status_code == 200 and got.headers["content-type"].startswith("text/plain")
    assert got.headers["content-disposition"] == f'attachment; filename="build-{failed_build}.log"'
    lines = got.text.splitlines()
    assert len(lines) == len(BUILD_LOG)
    assert lines[0] == "2026-01-02T03:04:05.000Z INFO     [-] attempt 1 of run on a host"
    assert lines[7] == "2026-01-02T03:04:11.000Z ERROR    [test] FAILED test_x <script>alert(1)</script>"


def test_a_long_log_shows_its_end_and_offers_the_rest(console, api, tenants, owner_db):
    run_id = queue_build(api, tenants)
    with owner_conn(owner_db) as conn:
        conn.execute("insert into ops.run_events (run_id, seq, phase, message) "
                     "select %s, g, 'test', 'line ' || g from generate_series(1, 5003) g", (run_id,))
    alice = console("alice")
    html = alice.get(f"/runs/{run_id}").text
    assert 'id="L4504"' in html and 'id="L5003"' in html and 'id="L4503"' not in html
    assert 'id="log-cut"' in html and "last 500 lines" in html and 'data-after="5003"' in html
    assert f'href="/runs/{run_id}?lines=5000"' in html
    html = alice.get(f"/runs/{run_id}?lines=5000").text
    assert 'id="L4"' in html and 'id="L5003"' in html and 'id="L3"' not in html
    assert "last 5,000 lines" in html and "?lines=5000" not in html
    assert alice.get(f"/runs/{run_id}?lines=5001").status_code == 422
    assert len(alice.get(f"/runs/{run_id}/log.txt").text.splitlines()) == 5003


def test_a_real_build_streams_live_until_it_succeeds(console, api, tenants, runner):
    run_id = queue_build(api, tenants)
    with console("alice").stream("GET", f"/runs/{run_id}/live", timeout=120) as response:
        events = sse(response)
    phases = [json.loads(e["data"])["phase"] for e in events if e["event"] == "line"]
    assert {"checkout", "ok"} <= set(phases)
    assert events[-1]["event"] == "end" and json.loads(events[-1]["data"])["status"] == "succeeded"
    page = console("bob").get(f"/runs/{run_id}").text
    assert 'data-phase="ok"' in page and 'data-status="succeeded"' in page


# the converter alone

@pytest.mark.parametrize("text,html", [
    ("plain & <b>", "plain &amp; &lt;b&gt;"),
    ("\x1b[31mred\x1b[0m done", '<span class="ansi-31">red</span> done'),
    ("\x1b[1;32mok\x1b[22m still green\x1b[39m",
     '<span class="ansi-1 ansi-32">ok</span><span class="ansi-32"> still green</span>'),
    ("\x1b[2;3;4mx\x1b[23;24my", '<span class="ansi-2 ansi-3 ansi-4">x</span><span class="ansi-2">y</span>'),
    ("\x1b[97;104mhi\x1b[49mthere\x1b[m.",
     '<span class="ansi-97 ansi-104">hi</span><span class="ansi-97">there</span>.'),
    ("\x1b[41m\x1b[30mbg\x1b[0m", '<span class="ansi-30 ansi-41">bg</span>'),
    ("\x1b[38;5;31mindexed\x1b[0m", "indexed"),                 # 256 colours: not mapped, 31 is no red here
    ("\x1b[38;2;255;0;0;1mrgb", '<span class="ansi-1">rgb</span>'),
    ("\x1b[2K\x1b[1Gprogress\x1b[?25l", "progress"),           # cursor and erase sequences go
    ("\x1b]8;;https://x.test\x07link\x1b]8;;\x07", "link"),    # OSC hyperlinks go, their text stays
    ("a\x00b\rc\x07d\te", "abcd\te"),
    ("\x1b[31m<script>", '<span class="ansi-31">&lt;script&gt;</span>'),
    ("\x1b[31m", ""),
    ("lone \x1b escape", "lone  escape"),
    ("\x1b[>4;2m private", " private"),
])
def test_ansi_to_html(text, html):
    assert str(ansi.to_html(text)) == html


def test_ansi_strip_and_the_text_line():
    assert ansi.strip("\x1b[1;31mFAILED\x1b[0m \x1b]0;title\x07x\x1b[2K") == "FAILED x"
    line = text_line({"ts": T0, "level": "warning", "phase": None, "message": "two\nlines\x1b[0m"})
    assert line == "2026-01-02T03:04:05.000Z WARNING  [-] two\n\tlines\n"



def test_a_developer_may_cancel_development_builds_only(console, api, tenants):
    alice = console("alice")
    bob_id = next(m["user_id"] for m in alice.get("/api/v1/orgs/acme/members").json() if m["email"] == "bob@acme.test")
    assert alice.patch(f"/api/v1/orgs/acme/members/{bob_id}", json={"role": "developer"},
                       headers={"X-CSRF-Token": alice.csrf}).status_code == 200
    feature = queue_build(api, tenants)
    main = httpx.post(f"{api}/api/v1/projects/acme/shop/branches/main/builds", headers=as_(tenants["alice"]))
    bob = console("bob")
    assert 'id="cancel-form"' in bob.get(f"/runs/{feature}").text
    assert 'id="cancel-form"' not in bob.get(f"/runs/{main.json()['build_id']}").text  # the database would refuse
