"""Environments → Mails in the console over HTTP: the list, search, the mail
chosen with its HTML sanitized in a sandboxed frame, remote content only on
request, attachments; strangers get the 404 page."""

from __future__ import annotations

import html
import re

import pytest
from conftest import owner_conn
from test_mail_catcher import HTML_MAIL, an_environment, catch

PAGE = "/p/acme/shop/mails/feature"


@pytest.fixture
def caught(people, settings, owner_db):
    env = an_environment(owner_db, "shop", "feature")
    plain = b"From: shop@acme.test\r\nTo: a@example.test\r\nSubject: Your invoice\r\n\r\nPay us.\r\n"
    return env, catch(settings, env["id"], HTML_MAIL, plain)


def srcdoc(page: str) -> str:
    found = re.search(r'<iframe sandbox="" srcdoc="([^"]*)"', page)
    assert found, page
    return html.unescape(found.group(1))


def test_the_mails_page_lists_searches_and_shows_a_mail_in_a_sandboxed_frame(console, caught):
    _, (welcome, invoice) = caught
    alice = console("alice")
    listed = alice.get(PAGE)
    assert listed.status_code == 200, listed.text
    assert "Welcome to the shop" in listed.text and "Your invoice" in listed.text
    found = alice.get(PAGE, params={"q": "invoice"}).text
    assert "Your invoice" in found and "Welcome to the shop" not in found

    shown = alice.get(PAGE, params={"mail": welcome["id"]})
    page = shown.text
    frame = srcdoc(page)
    assert "<b>dear customer</b>" in frame
    assert "<script" not in frame and "onclick" not in frame and "javascript:" not in frame
    assert "tracker.example.test" not in frame
    assert "Content-Security-Policy" in frame and "img-src data: cid:;" in frame and "script-src" not in frame
    assert "default-src 'none'" in frame  # no script, no connection: nothing but what the policy names
    assert "allow-scripts" not in page and "allow-same-origin" not in page
    assert "img-src 'self' data:;" in shown.headers["content-security-policy"]
    assert "Show remote content" in page and "Welcome, dear customer." in page  # the text, too
    assert f'/api/v1/mails/{welcome["id"]}/attachments/0' in page and "prices.csv" in page
    assert f'/api/v1/mails/{welcome["id"]}/raw' in page

    remote = alice.get(PAGE, params={"mail": welcome["id"], "remote": "1"})
    assert "https://tracker.example.test/open.gif" in srcdoc(remote.text)
    assert "img-src data: cid: http: https:" in srcdoc(remote.text)
    assert "http: https:" in remote.headers["content-security-policy"]
    assert "Show remote content" not in remote.text

    download = alice.get(f"/api/v1/mails/{welcome['id']}/attachments/0")  # the console's cookie will do
    assert download.status_code == 200 and download.content == b"product,price\r\nchair,12"


def test_the_environment_card_links_to_its_mails_with_their_count(console, caught):
    alice = console("alice")
    page = alice.get("/p/acme/shop/environments").text
    assert 'href="/p/acme/shop/mails/feature" data-mails' in page
    assert 'hx-get="/p/acme/shop/mail-count/feature"' in page
    count = alice.get("/p/acme/shop/mail-count/feature", headers={"HX-Request": "true"})
    assert count.status_code == 200 and count.text == "Mails (2)"


def test_a_teammate_reads_and_a_stranger_finds_nothing(console, caught, settings, owner_db):
    env, (welcome, _) = caught
    assert "Welcome to the shop" in console("bob").get(PAGE).text
    eve = console("eve")
    for path in (PAGE, f"{PAGE}?mail={welcome['id']}", "/p/acme/shop/mail-count/feature"):
        answer = eve.get(path)
        assert answer.status_code == 404, path
        assert "Welcome" not in answer.text
    # a mail of another environment is not shown under this one
    with owner_conn(owner_db) as conn:
        conn.execute("insert into ops.branches (project_id, name, stage) "
                     "select id, 'dev', 'development' from ops.projects where slug = 'lab'")
    other = an_environment(owner_db, "lab", "dev")
    [theirs] = catch(settings, other["id"], b"Subject: Eve's secret\r\n\r\nhidden\r\n")
    assert console("alice").get(PAGE, params={"mail": theirs["id"]}).status_code == 404
    assert console("alice").get(PAGE, params={"mail": 0}).status_code == 422
    assert console("alice").get("/p/acme/shop/mails/main").status_code == 404  # production has no environment


def test_in_a_browser_remote_images_load_only_after_show_remote_content(api, people, settings, owner_db, page,
                                                                         shoot):
    from browser import sign_in
    from playwright.sync_api import expect

    env = an_environment(owner_db, "shop", "feature")
    pixel = f"{api}/favicon.ico?opened=1"  # a "remote" image on this machine: the test server's own
    raw = (b"Subject: Opened?\r\nMIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
           b"<h1 onclick=\"document.title='pwned'\">Your order</h1><p>is <b>confirmed</b>.</p>"
           b"<script>document.title = 'pwned'</script><img alt=\"tracker\" src=\"" + pixel.encode() + b"\">\r\n")
    [caught] = catch(settings, env["id"], raw)
    asked: list[str] = []
    page.on("request", lambda request: asked.append(request.url))
    said: list[str] = []
    page.on("console", lambda m: said.append(m.text))
    sign_in(page, api, "alice@acme.test")
    page.goto(f"{api}{PAGE}?mail={caught['id']}")
    frame = page.frame_locator("iframe.mail-html")
    expect(frame.get_by_role("heading", name="Your order")).to_be_visible()
    frame.get_by_role("heading", name="Your order").click()
    assert page.title() != "pwned" and "opened=1" not in " ".join(asked)
    hidden = frame.get_by_role("img", name="tracker")
    assert hidden.get_attribute("src") is None and hidden.evaluate("i => i.naturalWidth") == 0
    shoot(page, "mails")
    page.get_by_role("link", name="Show remote content").click()
    img = page.frame_locator("iframe.mail-html").get_by_role("img", name="tracker")
    expect(img).to_be_visible()
    assert img.evaluate("i => i.complete && i.naturalWidth > 0")  # fetched, and shown
    assert said == [], said
