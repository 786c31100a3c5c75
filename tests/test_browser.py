"""The console in a real browser (Debian's Chromium, driven by Playwright):
what a new user does from `odooops up` to a build watched live, and what a
teammate and a stranger may see. Every page is screenshotted at desktop and
phone widths and checked with axe-core (WCAG 2 A and AA, contrast included)
in the light and the dark scheme."""

from __future__ import annotations

import re
import subprocess
import sys
import time

import httpx
import pytest
from browser import accessible, fits_a_phone, sign_in
from conftest import PASSWORD, allow_path, free_port, process_env
from helpers import call, make_repo, recipe
from playwright.sync_api import Page, expect
from test_console_environments import serve, setup

TIMEOUT = 60_000  # ms: a build on a busy 2-core machine


def look(page: Page, shoot, name: str) -> None:
    """Screenshot at both widths, and check accessibility and phone width."""
    shoot(page, name)
    accessible(page)
    fits_a_phone(page)


def answers(base: str) -> bool:
    try:
        return httpx.get(f"{base}/healthz").status_code == 200
    except httpx.TransportError:
        return False


@pytest.fixture
def control_plane(settings, tmp_path):
    """`odooops up` (HTTP server and runner) on this test's database; yields
    its base URL and everything it printed until it was up."""
    port = free_port()
    log = tmp_path / "up.log"
    with log.open("w") as output:
        up = subprocess.Popen([sys.executable, "-m", "odooops", "up"], env=process_env(settings, ODOOOPS_PORT=str(port), ODOOOPS_POLL_SECONDS="0.5", COLUMNS="200"),
                              stdout=output, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        base = f"http://127.0.0.1:{port}"
        while not ("Press Ctrl-C" in log.read_text() and answers(base)):
            assert up.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        yield base, log.read_text()
    finally:
        up.terminate()
        up.wait(timeout=60)


def test_new_user_sets_up_creates_a_project_builds_and_watches_it_live(control_plane, page, shoot, settings,
                                                                     tmp_path):
    base, printed = control_plane
    link = re.search(r"http://\S+/setup\?token=\w+", printed)
    assert link, printed
    repo = make_repo(tmp_path / "shop", {".odooops.toml": recipe(
        {"name": "greet", "command": "echo waiting for the slow part; sleep 6; echo all good"})})

    refused = page.goto(f"{base}/setup?token=guessed")
    assert refused.status == 403
    expect(page.get_by_role("heading", name="Not allowed")).to_be_visible()
    look(page, shoot, "forbidden")
    page.goto(link[0])
    look(page, shoot, "setup")
    page.get_by_label("Your name").fill("Ada")
    page.get_by_label("Email").fill("ada@example.test")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Password again").fill(PASSWORD)
    page.get_by_label("Organisation (short name)").fill("ada")
    page.get_by_role("button", name="Create owner and sign in").click()
    expect(page.get_by_role("heading", name="No projects yet")).to_be_visible()
    look(page, shoot, "projects-empty")
    call(settings, lambda db: allow_path(db, settings, "ada", repo))  # the operator gives ada its folder

    page.get_by_label("Short name").fill("Not Valid")
    page.get_by_label("Git repository").fill(str(repo))
    page.get_by_role("button", name="Create project").click()
    expect(page.locator("#e-slug")).to_contain_text("lowercase letters")
    look(page, shoot, "project-form-errors")
    page.get_by_label("Short name").fill("shop")
    page.get_by_label("Git repository").fill(str(repo))
    page.get_by_role("button", name="Create project").click()
    expect(page).to_have_url(f"{base}/p/ada/shop")
    expect(page.locator("#flash")).to_contain_text("Project ada/shop created")
    card = page.locator('[data-lane="production"] [data-branch="main"]')
    expect(card).to_be_visible()
    look(page, shoot, "lanes-new-project")

    card.get_by_role("button", name="Build now").click()
    expect(page.locator("#flash")).to_contain_text("is queued")
    card.locator("[data-last-build]").click()
    page.wait_for_url(re.compile(r"/runs/\d+$"))
    page.evaluate("window.stillTheSamePage = true")
    expect(page.locator("#log")).to_contain_text("waiting for the slow part", timeout=TIMEOUT)
    expect(page.locator("#log-status")).to_contain_text(re.compile("Queued|Starting|Running"))
    look(page, shoot, "build-log-live")
    expect(page.locator("#log-status")).to_contain_text("Succeeded", timeout=TIMEOUT)
    expect(page.locator("#log")).to_contain_text("all good")
    expect(page.locator('details[data-phase="greet"] .ph-status')).to_have_text("ok")
    assert page.evaluate("window.stillTheSamePage") is True  # streamed in, not reloaded
    look(page, shoot, "build-log")

    page.goto(f"{base}/")
    expect(page.locator("table.projects")).to_contain_text("Succeeded")
    look(page, shoot, "projects")


def trigger(api: str, token: str, branch: str) -> int:
    answer = httpx.post(f"{api}/api/v1/projects/acme/shop/branches/{branch}/builds",
                        headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 201, answer.text
    return answer.json()["build_id"]


def test_cancel_a_running_build(api, people, runner, page, shoot, settings):
    slow = make_repo(settings.data_dir.parent / "slow", {".odooops.toml": recipe(
        {"name": "forever", "command": "echo started; sleep 120"})}, branches=("feature",))
    call(settings, lambda db: allow_path(db, settings, "acme", slow))

    assert httpx.patch(f"{api}/api/v1/projects/acme/shop", json={"repo_url": str(slow)},
                       headers={"Authorization": f"Bearer {people['alice']}"}).status_code == 200
    run_id = trigger(api, people["alice"], "feature")
    sign_in(page, api, "alice@acme.test")
    page.goto(f"{api}/runs/{run_id}")
    expect(page.locator("#log")).to_contain_text("started", timeout=TIMEOUT)
    page.get_by_role("button", name="Cancel").click()
    expect(page.locator("#log-status")).to_contain_text("Canceled", timeout=TIMEOUT)
    look(page, shoot, "build-log-canceled")
    page.goto(f"{api}/p/acme/shop/b/feature")
    expect(page.locator(f'[data-run="{run_id}"]')).to_have_attribute("data-status", "canceled")
    look(page, shoot, "builds")


def test_drag_only_to_a_lane_the_stage_rules_allow(api, people, page, shoot):
    sign_in(page, api, "alice@acme.test")
    page.goto(f"{api}/p/acme/shop")
    card = '[data-branch="feature"]'
    expect(page.locator(f'[data-lane="development"] {card}')).to_be_visible()
    expect(page.locator('[data-branch="main"]')).not_to_have_attribute("draggable", "true")  # production: never
    look(page, shoot, "lanes")

    posted = []
    page.on("request", lambda r: posted.append(r.url) if r.method == "POST" else None)
    page.hover(card)
    page.mouse.down()
    page.hover('[data-lane="production"]')
    page.hover('[data-lane="production"] h2')
    expect(page.locator('[data-lane="staging"]')).to_have_class(re.compile(r"\btakes\b"))  # says it takes the card
    expect(page.locator('[data-lane="production"]')).not_to_have_class(re.compile(r"\btakes\b"))
    shoot(page, "lanes-dragging")
    page.mouse.up()
    expect(page.locator(f'[data-lane="development"] {card}')).to_be_visible()
    assert posted == []  # a lane that does not take the card asks nothing of the server

    page.drag_and_drop(card, '[data-lane="staging"]')
    expect(page.locator(f'[data-lane="staging"] {card}')).to_be_visible()
    page.reload()  # the move is stored, not only shown
    expect(page.locator(f'[data-lane="staging"] {card}')).to_be_visible()


def test_move_with_the_keyboard_alone(api, people, page):
    sign_in(page, api, "alice@acme.test")
    page.goto(f"{api}/p/acme/shop")
    stage = page.locator('[data-branch="feature"]').get_by_label("Move to")
    stage.focus()
    stage.select_option("staging")
    page.keyboard.press("Tab")
    expect(page.locator('[data-branch="feature"]').get_by_role("button", name="Move")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator('[data-lane="staging"] [data-branch="feature"]')).to_be_visible()


def test_a_viewer_sees_no_rebuild_button(api, people, runner, page, shoot):
    run_id = trigger(api, people["alice"], "feature")
    sign_in(page, api, "alice@acme.test")
    page.goto(f"{api}/p/acme/shop/b/feature")
    row = page.locator(f'[data-run="{run_id}"]')
    expect(row).to_have_attribute("data-status", re.compile("succeeded|failed"), timeout=TIMEOUT)
    expect(row.get_by_role("button", name="Rebuild")).to_be_visible()

    page.context.clear_cookies()
    sign_in(page, api, "bob@acme.test")
    page.goto(f"{api}/p/acme/shop/b/feature")
    expect(page.locator(f'[data-run="{run_id}"]')).to_be_visible()
    expect(page.get_by_role("button", name="Rebuild")).to_have_count(0)
    expect(page.get_by_role("button", name="Build now")).to_have_count(0)
    look(page, shoot, "builds-viewer")


def test_a_stranger_gets_the_not_found_page(api, people, page, shoot):
    sign_in(page, api, "eve@evil.test")
    for path in ("/p/acme/shop", "/p/acme/shop/b/main", "/p/acme/shop/settings"):
        answer = page.goto(f"{api}{path}")
        assert answer.status == 404
        expect(page.get_by_role("heading", name="Not found")).to_be_visible()
        expect(page.locator("main")).not_to_contain_text("Acme")
    look(page, shoot, "not-found")


def test_pages_work_without_javascript(api, people, browser, shoot):
    context = browser.new_context(java_script_enabled=False, viewport={"width": 1280, "height": 800})
    page = context.new_page()
    try:
        sign_in(page, api, "alice@acme.test")
        page.goto(f"{api}/p/acme/shop")
        card = page.locator('[data-branch="feature"]')
        expect(card.get_by_label("Move to").locator("option")).to_have_text(["Staging"])  # what the rules allow
        expect(page.locator('[data-branch="main"]')).to_contain_text("Production changes by merge")
        page.locator('[data-branch="feature"]').get_by_label("Move to").select_option("staging")
        page.locator('[data-branch="feature"]').get_by_role("button", name="Move").click()
        expect(page.locator('[data-lane="staging"] [data-branch="feature"]')).to_be_visible()
        page.locator('[data-branch="feature"]').get_by_role("button", name="Build now").click()
        page.wait_for_url(re.compile(r"/runs/\d+$"))
        expect(page.get_by_role("status").filter(has_text="of feature is queued")).to_be_visible()  # said once
        expect(page.locator("#log-status")).to_contain_text("Queued")  # no runner here
        page.get_by_role("button", name="Cancel").click()
        expect(page.locator("#log-status")).to_contain_text("Canceled")
        shoot(page, "no-javascript-log")
    finally:
        context.close()


def test_signed_out_and_refused_pages(api, people, page, shoot):
    page.goto(f"{api}/p/acme/shop")
    expect(page).to_have_url(re.compile(r"/login\?next=/p/acme/shop$"))
    look(page, shoot, "login")
    answer = page.goto(f"{api}/setup?token=not-the-one")
    assert answer.status == 404  # people exist: setup is over, whatever the token
    answer = page.goto(f"{api}/no/such/page")
    assert answer.status == 404
    expect(page.get_by_role("heading", name="Not found")).to_be_visible()
    sign_in(page, api, "bob@acme.test")
    answer = page.goto(f"{api}/p/acme/shop/settings")
    expect(page.locator("#read-only")).to_be_visible()  # a viewer reads the basics, no secrets
    expect(page.locator("#webhook")).to_have_count(0)
    look(page, shoot, "project-settings-viewer")


def test_reading_a_log_search_filter_fold_link_and_follow(api, people, owner_db, page, shoot):
    from test_console_logs import move, queue_build, write

    run_id = queue_build(api, people)
    lines = [(n, n, "error" if n % 50 == 0 else "info", "install" if n <= 150 else "test", "stdout",
              f"line {n}" + (" the needle \x1b[31mred\x1b[0m" if n % 100 == 0 else "")) for n in range(1, 301)]
    write(owner_db, run_id, lines)
    move(owner_db, run_id, "claimed", "running")
    sign_in(page, api, "alice@acme.test")

    page.goto(f"{api}/runs/{run_id}#L120")
    expect(page.locator("#L120")).to_have_class(re.compile(r"\btarget\b"))
    expect(page.locator("#L120")).to_be_in_viewport()
    expect(page.locator("#L100 .msg span.ansi-31")).to_have_text("red")  # colours, as classes

    page.locator("#log-search").fill("needle")
    expect(page.locator("#log mark")).to_have_count(3)
    expect(page.locator("#log-hits")).to_have_text("1 of 3")
    page.locator("#log-search").fill("")

    page.locator("#log-level").select_option("error")
    expect(page.locator("#L1")).to_be_hidden()
    expect(page.locator("#L50")).to_be_visible()
    page.locator("#log-level").select_option("debug")

    page.locator("#log-fold").click()
    expect(page.locator('details[data-phase="test"]')).not_to_have_attribute("open", "")
    page.locator("#log-unfold").click()

    page.evaluate("document.getElementById('log').scrollTop = 0")
    expect(page.locator("#follow")).to_be_visible()  # scrolled up: the tail waits
    shoot(page, "build-log-paused")
    page.locator("#follow").click()
    expect(page.locator("#follow")).to_be_hidden()
    write(owner_db, run_id, [(301, 301, "info", "test", "stdout", "a line that came later")])
    expect(page.locator("#L301")).to_be_in_viewport()  # streamed in, and followed


def test_the_environments_page_and_its_connect_link(api, people, page, shoot, settings):
    setup(settings)
    feature = serve(settings, "feature", health="fail", health_detail="/web/health answered 503")
    serve(settings, "staging", status="sleeping", health=None)
    sign_in(page, api, "alice@acme.test")
    page.goto(f"{api}/p/acme/shop")
    expect(page.locator('[data-branch="feature"] .env-line')).to_contain_text("Running")
    look(page, shoot, "lanes-environments")
    page.get_by_role("link", name="Environments", exact=True).click()
    expect(page.get_by_role("heading", name="Environments", exact=True)).to_be_visible()
    card = page.locator('li.env[data-branch="feature"]')
    expect(card).to_contain_text("Unhealthy")
    link = card.get_by_role("link", name="Connect to feature (opens a new tab)")
    expect(link).to_have_attribute("href", f"http://{feature['label']}.localhost:{api.rsplit(':', 1)[1]}/")
    expect(link).to_have_attribute("target", "_blank")
    expect(card.get_by_label("Connect as")).to_have_value("admin")
    look(page, shoot, "environments")
