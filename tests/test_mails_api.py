"""The Mails tab over HTTP: a real `odooops serve`, mails caught by a real
catcher; members read an environment's mails, strangers find nothing, and
bad input is a 4xx that says why."""

from __future__ import annotations

import httpx
import pytest
from test_mail_catcher import HTML_MAIL, an_environment, catch

MAILS = "/api/v1/projects/acme/shop/branches/feature/environment/mails"


@pytest.fixture
def caught(tenants, settings, owner_db):
    """acme/shop's feature branch has an environment that sent two mails."""
    env = an_environment(owner_db, "shop", "feature")
    plain = b"From: shop@acme.test\r\nTo: a@example.test\r\nSubject: Your invoice\r\n\r\nPay us.\r\n"
    return catch(settings, env["id"], HTML_MAIL, plain)


def as_(api: str, tenants, who: str) -> httpx.Client:
    return httpx.Client(base_url=api, headers={"Authorization": f"Bearer {tenants[who]}"})


def test_members_list_search_and_page_an_environments_mails(api, tenants, caught):
    welcome, invoice = caught
    for who in ("alice", "bob"):
        listed = as_(api, tenants, who).get(MAILS)
        assert listed.status_code == 200, listed.text
        assert [m["id"] for m in listed.json()] == [invoice["id"], welcome["id"]]  # newest first
    alice = as_(api, tenants, "alice")
    first = alice.get(MAILS).json()[1]
    assert first["subject"] == "Welcome to the shop" and first["mail_from"] == "shop@acme.test"
    assert first["rcpt_to"] == ["customer@example.test", "cc@example.test"]
    assert first["attachments"] == [{"index": 0, "filename": "prices.csv", "content_type": "text/csv", "size": 23}]
    assert [m["id"] for m in alice.get(MAILS, params={"q": "INVOICE"}).json()] == [invoice["id"]]
    assert [m["id"] for m in alice.get(MAILS, params={"q": "cc@example"}).json()] == [invoice["id"], welcome["id"]]
    assert alice.get(MAILS, params={"q": "100%_"}).json() == []
    assert [m["id"] for m in alice.get(MAILS, params={"limit": 1}).json()] == [invoice["id"]]
    assert [m["id"] for m in alice.get(MAILS, params={"before": invoice["id"]}).json()] == [welcome["id"]]


def test_a_mail_shows_its_headers_text_sanitized_html_and_attachments(api, tenants, caught):
    alice = as_(api, tenants, "alice")
    welcome = caught[0]
    shown = alice.get(f"/api/v1/mails/{welcome['id']}").json()
    assert {"name": "Subject", "value": "Welcome to the shop"} in shown["headers"]
    assert shown["text"].strip() == "Welcome, dear customer."
    html = shown["html"]
    assert "<b>dear customer</b>" in html
    assert "script" not in html and "onclick" not in html and "javascript:" not in html
    assert "tracker.example.test" not in html and shown["remote_content"] is True
    remote = alice.get(f"/api/v1/mails/{welcome['id']}", params={"remote": "true"}).json()
    assert 'src="https://tracker.example.test/open.gif"' in remote["html"] and "script" not in remote["html"]
    assert shown["attachments"][0]["filename"] == "prices.csv"

    raw = alice.get(f"/api/v1/mails/{welcome['id']}/raw")
    assert raw.status_code == 200 and raw.headers["content-type"] == "message/rfc822"
    assert raw.content == HTML_MAIL and "attachment" in raw.headers["content-disposition"]
    part = alice.get(f"/api/v1/mails/{welcome['id']}/attachments/0")
    assert part.content == b"product,price\r\nchair,12"  # the CRLF before a boundary is the boundary's
    assert part.headers["content-disposition"].startswith('attachment; filename="prices.csv"')
    assert part.headers["x-content-type-options"] == "nosniff" and "sandbox" in part.headers[
        "content-security-policy"]
    assert alice.get(f"/api/v1/mails/{welcome['id']}/attachments/1").status_code == 404


def test_strangers_find_nothing(api, tenants, caught):
    eve = as_(api, tenants, "eve")
    mail_id = caught[0]["id"]
    for path in (MAILS, f"/api/v1/mails/{mail_id}", f"/api/v1/mails/{mail_id}/raw",
                 f"/api/v1/mails/{mail_id}/attachments/0"):
        answer = eve.get(path)
        assert answer.status_code == 404, (path, answer.text)
        assert answer.json()["ok"] is False and "dear customer" not in answer.text
    assert httpx.get(f"{api}{MAILS}").status_code == 401


def test_bad_input_is_a_4xx_that_says_why(api, tenants, caught):
    alice = as_(api, tenants, "alice")
    for path, params in ((MAILS, {"limit": 0}), (MAILS, {"limit": 501}), (MAILS, {"before": -1}),
                         (MAILS, {"before": 2**63}), (MAILS, {"q": "x" * 201}), ("/api/v1/mails/0", {}),
                         (f"/api/v1/mails/{2**63}", {}), ("/api/v1/mails/x", {}),
                         ("/api/v1/mails/1/attachments/-1", {})):
        answer = alice.get(path, params=params)
        assert answer.status_code == 422, (path, params, answer.text)
        assert answer.json()["error"]
    assert alice.get("/api/v1/mails/999999").status_code == 404
    nowhere = alice.get("/api/v1/projects/acme/shop/branches/main/environment/mails")
    assert nowhere.status_code == 404 and "no environment" in nowhere.json()["error"]
    assert alice.get("/api/v1/projects/acme/shop/branches/nope/environment/mails").status_code == 404
