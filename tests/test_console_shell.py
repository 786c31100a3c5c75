"""The console's frame: every project page has the same breadcrumbs, header
(Odoo version) and sections, made from one list (console.shell.SECTIONS) in
which only built pages appear; statuses are an icon and a word; a word after
a plain form is said once; the New project form preselects the visitor's own
org; pages name their icon. In headless Chromium (axe-core, light and dark,
375 px) and over plain HTTP."""

from __future__ import annotations

import re

import httpx
from playwright.sync_api import Page, expect

from browser import accessible, fits_a_phone, sign_in
from conftest import PASSWORD, owner_conn
from helpers import SERVICE, call
from odooops.console.shell import SECTIONS
from odooops.managers.orgs import Orgs
from odooops.managers.users import Users
from test_console_builds import finish, sha, trigger
from test_console_logs import move, queue_build, write

LABELS = [s.label for s in SECTIONS]


def framed(page: Page, crumbs: list[str], current: str) -> None:
    """The page has the project's frame: these breadcrumbs (the last one the
    page itself), the header's Odoo version, and every section, `current` marked."""
    trail = page.get_by_role("navigation", name="Breadcrumb").get_by_role("link")
    expect(trail).to_have_text(crumbs)
    expect(trail.last).to_have_attribute("aria-current", "page")
    expect(page.locator(".shell-facts")).to_contain_text("Odoo 17.0")
    tabs = page.get_by_role("navigation", name="acme/shop").get_by_role("link")
    expect(tabs).to_have_text(LABELS)
    expect(page.get_by_role("navigation", name="acme/shop").locator("[aria-current]")).to_have_text(current)
    accessible(page)
    fits_a_phone(page)


def test_every_project_page_has_the_frame_and_its_links_lead_there(api, people, page, shoot, owner_db):
    run_id = queue_build(api, people)
    sign_in(page, api, "alice@acme.test")
    page.goto(f"{api}/p/acme/shop")
    framed(page, ["Projects", "acme", "shop"], "Branches")
    shoot(page, "shell-lanes")

    page.get_by_role("navigation", name="acme/shop").get_by_role("link", name="Builds").click()
    expect(page).to_have_url(f"{api}/p/acme/shop/b/main")
    framed(page, ["Projects", "acme", "shop", "main"], "Builds")
    page.get_by_role("navigation", name="Branch").get_by_role("link", name="feature").click()
    expect(page).to_have_url(f"{api}/p/acme/shop/b/feature")
    framed(page, ["Projects", "acme", "shop", "feature"], "Builds")
    shoot(page, "shell-builds")

    page.locator(f'a[href="/runs/{run_id}"]').first.click()
    expect(page).to_have_url(f"{api}/runs/{run_id}")
    framed(page, ["Projects", "acme", "shop", "feature", f"Build #{run_id}"], "Builds")

    page.get_by_role("navigation", name="acme/shop").get_by_role("link", name="Settings").click()
    expect(page).to_have_url(f"{api}/p/acme/shop/settings")
    framed(page, ["Projects", "acme", "shop", "Settings"], "Settings")
    shoot(page, "shell-settings")

    page.get_by_role("navigation", name="Breadcrumb").get_by_role("link", name="shop").click()
    expect(page).to_have_url(f"{api}/p/acme/shop")
    page.get_by_role("navigation", name="Breadcrumb").get_by_role("link", name="acme").click()
    expect(page.locator("table.projects")).to_contain_text("acme/shop")  # the org's projects


def test_sections_are_only_pages_that_exist(console):
    alice = console("alice")
    page = alice.get("/p/acme/shop").text
    tabs = re.search(r'<nav class="tabs" aria-label="acme/shop">(.*?)</nav>', page, re.S)[1]
    hrefs = re.findall(r'<a href="([^"]+)"', tabs)
    assert re.findall(r">([^<]+)</a>", tabs) == LABELS and len(hrefs) == len(SECTIONS)
    for href in hrefs:  # no link to a page not built yet
        assert alice.get(href).status_code == 200, href
    assert console("bob").get("/p/acme/shop/settings").status_code == 200  # a viewer reads the basics there


ICONS_AND_WORDS = """() => [...document.querySelectorAll('.badge, .ph-status')].map(b => {
    const glyph = b.querySelector('[aria-hidden="true"]'), drawn = getComputedStyle(b, '::before');
    const word = [...b.childNodes].filter(n => n.nodeType === Node.TEXT_NODE).map(n => n.textContent).join('').trim();
    return {word, glyph: glyph ? glyph.textContent.trim() : '',
            drawn: drawn.content !== 'none' && (drawn.maskImage || '').startsWith('url("data:image/svg+xml')};
})"""


def test_a_status_is_an_icon_and_a_word(api, people, page, settings):
    done = trigger(api, people["alice"], sha(1))
    finish(settings, done, "failed", "ko")
    trigger(api, people["alice"], sha(2))
    sign_in(page, api, "alice@acme.test")
    for path in ("/p/acme/shop", "/p/acme/shop/b/feature", "/settings", f"/runs/{done}"):
        page.goto(f"{api}{path}")
        shown = page.evaluate(ICONS_AND_WORDS)
        assert shown, path
        for badge in shown:  # a word, and an icon: the vocabulary's glyph or one drawn by the style sheet
            assert re.fullmatch(r"[A-Za-z][A-Za-z ]+", badge["word"]) and (badge["glyph"] or badge["drawn"]), badge
            assert not (badge["glyph"] and badge["drawn"]), badge  # never two
    words = {b["word"] for b in page.evaluate(ICONS_AND_WORDS)}
    assert "Failed" in words


def looks_hosted(owner_db: str) -> None:
    """The project's repository as a reader of the README's pictures would have it."""
    with owner_conn(owner_db) as conn:
        conn.execute("update ops.projects set repo_url = 'https://git.example.com/acme/shop.git' where slug = 'shop'")


def test_a_live_log_in_the_frame(api, people, owner_db, page, screenshots):
    """A build streaming its log, for the README's picture too."""
    run_id = queue_build(api, people)
    looks_hosted(owner_db)
    lines = [(1, 0, "info", None, "system", "attempt 1 of run on a runner"),
             (2, 0, "info", "checkout", "system", "phase checkout started"),
             (3, 1, "info", "checkout", "system", "checked out 5f2c9a1e0b7d"),
             (4, 2, "info", "checkout", "system", "phase checkout succeeded in 2.0 s")]
    lines += [(n, n, "info", "install", "stdout", f"odoo.modules.loading: module shop_{n:03d}: loading objects")
              for n in range(5, 40)]
    lines += [(40, 41, "warning", "install", "stdout", "odoo.fields: shop.order.note: unknown parameter 'tracking'"),
              (41, 42, "info", "install", "stdout", "odoo.modules.loading: Modules loaded."),
              (42, 42, "info", "install", "system", "phase install succeeded in 38.4 s"),
              (43, 43, "info", "test", "system", "phase test started"),
              (44, 44, "info", "test", "stdout", "odoo.addons.shop.tests.test_order: \x1b[32mrunning\x1b[0m 12 tests")]
    write(owner_db, run_id, lines)
    move(owner_db, run_id, "claimed", "running")
    sign_in(page, api, "alice@acme.test")
    page.goto(f"{api}/runs/{run_id}")
    expect(page.locator("#log-status [data-status]")).to_have_attribute("data-status", "running")
    write(owner_db, run_id, [(45, 45, "info", "test", "stdout", "odoo.addons.shop.tests.test_order: test_total ok")])
    expect(page.locator("#L45")).to_be_visible()  # streamed in
    page.screenshot(path=screenshots / "docs-log.png")
    framed(page, ["Projects", "acme", "shop", "feature", f"Build #{run_id}"], "Builds")


def test_the_lanes_in_the_frame(api, people, page, screenshots, settings, owner_db):
    """A branch in each lane, built or building, for the README's picture too."""
    with owner_conn(owner_db) as conn:
        conn.execute("insert into ops.branches (project_id, name, stage)"
                     " select id, 'release-17', 'staging' from ops.projects where slug = 'shop'")
    token = people["alice"]
    for n, branch, status, message in ((1, "main", "succeeded", "Invoices: round totals per line"),
                                       (2, "release-17", "failed", "Sale: a delivery date on every order line"),
                                       (3, "feature", None, "WIP: the customer portal lists their invoices")):
        run_id = trigger(api, token, sha(n), branch)
        with owner_conn(owner_db) as conn:
            conn.execute("update ops.runs set commit_message = %s, commit_author = 'Ada Lovelace' where id = %s",
                         (message, run_id))
        if status:
            finish(settings, run_id, status, "ok" if status == "succeeded" else "ko")
    looks_hosted(owner_db)
    sign_in(page, api, "alice@acme.test")
    page.goto(f"{api}/p/acme/shop")
    expect(page.locator('[data-lane="staging"] [data-branch="release-17"] .badge')).to_contain_text("Failed")
    expect(page.locator('[data-branch="feature"] .badge')).to_have_attribute("data-status", "queued")
    page.screenshot(path=screenshots / "docs-lanes.png")
    accessible(page)
    fits_a_phone(page)


def test_the_favicon_is_named_on_every_page(api, console):
    for page in (console("alice").get("/").text, httpx.get(f"{api}/login").text):
        assert '<link rel="icon" href="/favicon.ico">' in page
    assert httpx.get(f"{api}/favicon.ico").status_code == 200


def test_new_project_preselects_the_visitors_own_org(api, settings):
    """The first owner of `up --demo` is an owner of the demo's org too, which
    comes first by name: the form still picks the org they made."""

    async def work(db):
        await Orgs(db, SERVICE).create("demo")  # made before anyone could sign in
        await Users(db, SERVICE).create_first_owner("ada@example.test", "Ada", PASSWORD, "my-team", "My team")

    call(settings, work)
    with httpx.Client(base_url=api) as ada:
        assert ada.post("/login", data={"email": "ada@example.test", "password": PASSWORD}).status_code == 303
        page = ada.get("/").text
    picked = re.findall(r'<option value="([\w-]+)"( selected)?>', page.split('id="f-org"')[1].split("</select>")[0])
    assert picked == [("my-team", " selected"), ("demo", "")]


def test_creating_a_project_says_so_on_its_page(console):
    alice = console("alice")
    made = alice.post("/projects", data={"csrf_token": alice.csrf, "org": "acme", "slug": "crm", "check": "false",
                                         "repo_url": "https://git.example.com/acme/crm.git", "default_branch": "main"})
    assert made.status_code == 303 and made.headers["location"] == "/p/acme/crm"
    page = alice.get("/p/acme/crm").text
    said = re.search(r'<div id="flash" role="status" aria-live="polite"><p class="notice ok" data-flash>(.*?)</p>',
                     page, re.S)
    assert said and "Project acme/crm created" in said[1]
    assert "data-flash" not in alice.get("/p/acme/crm").text  # once
