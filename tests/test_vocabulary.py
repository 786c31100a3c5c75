"""One vocabulary and one behaviour, decided in the managers: the console, the
CLI and the API call a build's status by the same word, and `member add`
treats an address without an account alike in all three."""

from __future__ import annotations

import re

import httpx

from conftest import owner_conn
from helpers import as_
from odooops.managers.vocabulary import STATUSES, environment_label, status_label, update_label


def test_every_status_has_one_word():
    assert set(STATUSES) == {"awaiting_authorization", "queued", "claimed", "running", "succeeded", "failed",
                             "canceled", "superseded"}
    assert status_label("succeeded").word == "Succeeded" and status_label(None).word == "No builds"


def test_environments_and_updates_have_their_words():
    # ops.environment_status, maintenance included (an update holds the environment)
    assert [environment_label(s).word for s in ("starting", "running", "sleeping", "stopped", "crashed",
                                                 "maintenance")] == [
        "Starting", "Running", "Sleeping", "Stopped", "Crashed", "Maintenance"]
    # ops.updates' statuses: a reverted update is a failure whose revert worked
    assert [update_label(s).word for s in ("running", "succeeded", "reverted", "failed")] == [
        "Updating", "Updated", "Reverted", "Revert failed"]
    assert update_label("reverted").tone == update_label("failed").tone == "bad"


def _console_word(page: str, run_id: int) -> str:
    row = re.search(rf'<tr id="run-{run_id}".*?</tr>', page, re.S)
    assert row, page
    return re.search(r'<span class="badge [a-z]+" data-status="\w+">(?:<span aria-hidden="true">[^<]*</span>)?'
                     r"([^<]+)</span>", row[0])[1]


def _cli_word(listing: str, run_id: int) -> str:
    line = next(x for x in listing.splitlines() if re.match(rf"\W*{run_id}\b", x.strip("│ ")))
    return next(word for word in (s.word for s in STATUSES.values()) if word in line)


def test_the_cli_the_console_and_the_api_say_the_same_word(cli, api, console, tenants):
    alice = as_(tenants["alice"])
    queued = httpx.post(f"{api}/api/v1/projects/acme/shop/branches/feature/builds", headers=alice).json()["build_id"]
    canceled = httpx.post(f"{api}/api/v1/projects/acme/shop/branches/main/builds", headers=alice).json()["build_id"]
    assert httpx.post(f"{api}/api/v1/runs/{canceled}/cancel", headers=alice).status_code == 200
    listing = cli("builds", "acme/shop", env={"ODOOOPS_AS": "alice@acme.test"}).stdout
    api_words = {r["id"]: r["status_label"] for r in
                 httpx.get(f"{api}/api/v1/projects/acme/shop/builds", headers=alice).json()}
    pages = {"feature": console("alice").get("/p/acme/shop/b/feature").text,
             "main": console("alice").get("/p/acme/shop/b/main").text}
    for run_id, branch, word in ((queued, "feature", "Queued"), (canceled, "main", "Canceled")):
        assert _cli_word(listing, run_id) == _console_word(pages[branch], run_id) == api_words[run_id] == word
        assert httpx.get(f"{api}/api/v1/runs/{run_id}", headers=alice).json()["status_label"] == word


def _account(settings, email: str) -> dict | None:
    with owner_conn(settings.database_url.reveal()) as conn:
        return conn.execute("select email, password_hash from ops.users where email = %s", (email,)).fetchone()


def _role(settings, org: str, email: str) -> str | None:
    with owner_conn(settings.database_url.reveal()) as conn:
        row = conn.execute("select m.role from ops.org_members m join ops.users u on u.id = m.user_id "
                           "join ops.orgs o on o.id = m.org_id where o.slug = %s and u.email = %s",
                           (org, email)).fetchone()
    return row and row["role"]


def test_member_add_makes_an_account_without_a_password_everywhere(cli, api, console, tenants, settings):
    by_cli = cli("member", "add", "acme", "new-cli@acme.test", "--role", "viewer")
    assert by_cli.returncode == 0, by_cli.stderr
    assert "odooops user reset-link new-cli@acme.test" in by_cli.stdout  # how they will sign in
    by_api = httpx.post(f"{api}/api/v1/orgs/acme/members", json={"email": "new-api@acme.test", "role": "viewer"},
                        headers=as_(tenants["alice"]))
    assert by_api.status_code == 201, by_api.text
    alice = console("alice")
    by_console = alice.post("/settings/orgs/acme/members",
                            data={"csrf_token": alice.csrf, "email": "new-console@acme.test", "role": "viewer"})
    assert by_console.status_code in (200, 303), by_console.text
    for email in ("new-cli@acme.test", "new-api@acme.test", "new-console@acme.test"):
        assert _account(settings, email) == {"email": email, "password_hash": None}
        assert _role(settings, "acme", email) == "viewer"
    again = cli("member", "add", "acme", "new-api@acme.test")
    assert again.returncode != 0 and "new-api@acme.test is already a member" in again.stderr
    # one project only: the operator's CLI makes the account the same way
    one = cli("member", "add", "acme", "new-project@acme.test", "--project", "shop")
    assert one.returncode == 0, one.stderr
    assert _account(settings, "new-project@acme.test") == {"email": "new-project@acme.test", "password_hash": None}
