"""Webhooks end to end over real HTTP: a project's hook, every captured
payload signed as its host signs it, the ledger, duplicates and replays,
what each event does to branches and builds, and who may see what."""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import httpx
import pytest
from conftest import owner_conn
from helpers import as_, envelope
from test_hooks import DESCRIBED, EXPECTED, FIXTURES, SHOP, project_url

from odooops.hooks.events import parse
from odooops.hooks.verify import signed_headers

SHA = "1" * 40


def builds_from(api, token: str, url: str, project: str = "acme/shop") -> None:
    """The project's repository is `url` from now on."""
    changed = httpx.patch(f"{api}/api/v1/projects/{project}", json={"repo_url": url}, headers=as_(token))
    assert changed.status_code == 200, changed.text


@pytest.fixture
def hook(api, tenants):
    """acme/shop's webhook, created by its owner: (id, secret). The project
    builds SHOP, the repository that `push` names."""
    builds_from(api, tenants["alice"], SHOP)
    created = httpx.post(f"{api}/api/v1/projects/acme/shop/hook", headers=as_(tenants["alice"]))
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["secret"].startswith("ohs_") and body["urls"]["github"].endswith(f"/hooks/github/{body['hook_id']}")
    return body["hook_id"], body["secret"]


def deliver(api, hook, host: str, event: str, payload: bytes | dict, delivery: str | None = None,
            secret: str | None = None) -> httpx.Response:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    headers = signed_headers(host, secret or hook[1], body, event, delivery or uuid.uuid4().hex)
    return httpx.post(f"{api}/api/v1/hooks/{host}/{hook[0]}", content=body,
                      headers={**headers, "Content-Type": "application/json"})


def settled(api, token: str, count: int | None = None) -> list[dict]:
    """acme/shop's deliveries once none is pending (newest first)."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        rows = httpx.get(f"{api}/api/v1/projects/acme/shop/deliveries?limit=500", headers=as_(token)).json()
        if all(r["status"] != "pending" for r in rows) and (count is None or len(rows) >= count):
            return rows
        time.sleep(0.1)
    raise AssertionError(f"deliveries still pending: {rows}")


def push(branch: str, after: str = SHA, before: str = "0" * 40) -> dict:
    return {"ref": f"refs/heads/{branch}", "before": before, "after": after,
            "repository": {"clone_url": SHOP}}


def branches(api, token: str) -> dict[str, dict]:
    url = f"{api}/api/v1/projects/acme/shop/branches?include_archived=true"
    return {b["name"]: b for b in httpx.get(url, headers=as_(token)).json()}


def test_every_fixture_through_the_endpoint(api, tenants, hook):
    for n, (name, (event, action, *_ )) in enumerate(EXPECTED.items()):
        builds_from(api, tenants["alice"], project_url(name))  # applied before the next one changes it
        response = deliver(api, hook, name.split("/")[0], event, (FIXTURES / name).read_bytes())
        assert response.status_code == 200 and response.json()["duplicate"] is False, (name, response.text)
        settled(api, tenants["alice"], n + 1)
    rows = settled(api, tenants["alice"], len(EXPECTED))
    assert len(rows) == len(EXPECTED)
    by_action = {}
    for row, (name, (event, action, *_)) in zip(reversed(rows), EXPECTED.items()):
        assert row["event"] == event, name
        by_action.setdefault(action, set()).add(row["status"])
        if action in ("push", "pull_request") and row["status"] == "done":
            run = httpx.get(f"{api}/api/v1/runs/{row['run_id']}", headers=as_(tenants["alice"])).json()
            assert run["trigger"] == ("push" if action == "push" else "pull_request"), name
    assert by_action["ping"] == {"done"} and by_action["ignored"] == {"ignored"}
    assert by_action["push"] <= {"done", "ignored"} and "done" in by_action["push"]
    assert "done" in by_action["pull_request"] and "failed" not in by_action["pull_request"]


@pytest.mark.parametrize("host", ["github", "gitlab", "gitea"])
def test_wrong_or_missing_signatures_are_401_and_record_nothing(api, tenants, hook, host):
    body = json.dumps(push("feature")).encode()
    url = f"{api}/api/v1/hooks/{host}/{hook[0]}"
    event = {"github": "push", "gitea": "push", "gitlab": "Push Hook"}[host]
    wrong = signed_headers(host, "ohs_wrong", body, event, "d1")
    envelope(httpx.post(url, content=body, headers=wrong), 401, "unauthenticated")
    unsigned = {k: v for k, v in signed_headers(host, hook[1], body, event, "d1").items()
                if "Signature" not in k and "Token" not in k}
    envelope(httpx.post(url, content=body, headers=unsigned), 401, "unauthenticated")
    # signed for another body
    good = signed_headers(host, hook[1], body, event, "d1")
    if host != "gitlab":  # GitLab's token does not cover the body
        envelope(httpx.post(url, content=body + b" ", headers=good), 401, "unauthenticated")
    envelope(httpx.post(f"{api}/api/v1/hooks/{host}/{uuid.uuid4()}", content=body, headers=good), 404, "not_found")
    assert settled(api, tenants["alice"]) == []


def test_push_new_known_and_deleted_branches(api, tenants, hook):
    alice = tenants["alice"]
    assert deliver(api, hook, "github", "push", push("feature-x")).status_code == 200
    assert deliver(api, hook, "github", "push", push("feature", after="2" * 40)).status_code == 200
    rows = settled(api, alice, 2)
    assert [r["status"] for r in rows] == ["done", "done"]
    got = branches(api, alice)
    assert got["feature-x"]["stage"] == "development" and got["feature-x"]["archived_at"] is None
    runs = {r["id"]: httpx.get(f"{api}/api/v1/runs/{r['run_id']}", headers=as_(alice)).json() for r in rows}
    assert sorted((r["commit_sha"], r["trigger"], r["status"]) for r in runs.values()) == \
        [("1" * 40, "push", "queued"), ("2" * 40, "push", "queued")]

    deleted = {**push("feature-x", after="0" * 40, before=SHA), "deleted": True}
    assert deliver(api, hook, "github", "push", deleted).status_code == 200
    assert settled(api, alice, 3)[0]["outcome"] == "branch feature-x archived"
    assert branches(api, alice)["feature-x"]["archived_at"] is not None
    first_build = min(r["run_id"] for r in rows)
    assert httpx.get(f"{api}/api/v1/runs/{first_build}", headers=as_(alice)).json()["status"] == "canceled"
    # production is never archived by a push
    assert deliver(api, hook, "github", "push", {**push("main", after="0" * 40), "deleted": True}).status_code == 200
    assert "production" in settled(api, alice, 4)[0]["outcome"]
    assert branches(api, alice)["main"]["archived_at"] is None
    # pushing the deleted branch again revives it
    assert deliver(api, hook, "github", "push", push("feature-x", after="3" * 40)).status_code == 200
    assert settled(api, alice, 5)[0]["status"] == "done"
    assert branches(api, alice)["feature-x"]["archived_at"] is None


def test_pull_requests_same_repo_and_fork(api, tenants, hook):
    alice = tenants["alice"]
    pr = json.loads((FIXTURES / "github/octokit__pull_request_opened.payload.json").read_text())
    builds_from(api, alice, pr["repository"]["clone_url"])
    assert deliver(api, hook, "github", "pull_request", pr).status_code == 200
    fork = json.loads(json.dumps(pr))
    fork["number"] = fork["pull_request"]["number"] = 77
    fork["pull_request"]["head"]["repo"]["full_name"] = "mallory/fork"
    fork["pull_request"]["head"]["sha"] = "4" * 40
    assert deliver(api, hook, "github", "pull_request", fork).status_code == 200
    fork_row, same_row = settled(api, alice, 2)
    same = httpx.get(f"{api}/api/v1/runs/{same_row['run_id']}", headers=as_(alice)).json()
    assert (same["pr_number"], same["status"], same["trigger"]) == (2, "queued", "pull_request")
    forked = httpx.get(f"{api}/api/v1/runs/{fork_row['run_id']}", headers=as_(alice)).json()
    assert (forked["pr_number"], forked["status"], forked["ref"]) == (77, "awaiting_authorization", "refs/pull/77/head")
    assert branches(api, alice)["pull/77"]["stage"] == "development"
    assert httpx.post(f"{api}/api/v1/runs/{forked['id']}/authorize", headers=as_(alice)).json()["status"] == "queued"


@pytest.mark.parametrize("name", ["github/go-scm__push.json", "gitlab/go-scm__push_merge.json",
                                  "gitea/go-scm__push.json"])
def test_a_push_tells_its_build_and_branch_card_the_commit(api, tenants, hook, name):
    alice = tenants["alice"]
    host, (event, *_) = name.split("/")[0], EXPECTED[name]
    builds_from(api, alice, project_url(name))
    assert deliver(api, hook, host, event, (FIXTURES / name).read_bytes()).status_code == 200
    row = settled(api, alice, 1)[0]
    assert row["status"] == "done", row["outcome"]
    run = httpx.get(f"{api}/api/v1/runs/{row['run_id']}", headers=as_(alice)).json()
    expected = DESCRIBED[name]
    assert (run["status"], run["commit_message"], run["commit_author"]) == ("queued", *expected)
    card = branches(api, alice)["master"]
    assert (card["last_build_id"], card["last_build_commit"], card["last_build_commit_message"],
            card["last_build_commit_author"]) == (run["id"], run["commit_sha"], *expected)


def test_ping_and_duplicates(api, tenants, hook):
    ping = (FIXTURES / "github/octokit__ping_payload.json").read_bytes()
    builds_from(api, tenants["alice"], "https://github.com/Octocoders/Hello-World")
    first = deliver(api, hook, "github", "ping", ping, delivery="same-id")
    assert first.status_code == 200 and first.json()["duplicate"] is False
    again = deliver(api, hook, "github", "ping", ping, delivery="same-id")
    assert again.status_code == 200 and again.json() == {"ok": True, "duplicate": True}
    assert [(r["status"], r["outcome"]) for r in settled(api, tenants["alice"], 1)] == [("done", "ping: the hook works")]


def test_a_storm_of_redeliveries_builds_once(api, tenants, hook, owner_db):
    """1,000 redeliveries of one push (and Gitea-style replays carrying new ids) make one build."""
    body = json.dumps(push("feature", after="5" * 40, before=SHA)).encode()

    async def storm():
        limits = asyncio.Semaphore(50)
        async with httpx.AsyncClient(timeout=30) as client:
            async def one(i: int) -> int:
                delivery = "storm" if i < 1000 else f"replay-{i}"
                async with limits:
                    r = await client.post(f"{api}/api/v1/hooks/github/{hook[0]}", content=body,
                                          headers=signed_headers("github", hook[1], body, "push", delivery))
                return r.status_code
            return await asyncio.gather(*(one(i) for i in range(1020)))

    assert set(asyncio.run(storm())) == {200}
    rows = settled(api, tenants["alice"], 21)
    assert len(rows) == 21 and sum(r["run_id"] is not None for r in rows) == 1
    with owner_conn(owner_db) as conn:
        count = conn.execute("select count(*) as n from ops.runs where commit_sha = %s", ("5" * 40,)).fetchone()["n"]
    assert count == 1


def test_bad_payloads_fail_without_half_writes(api, tenants, hook):
    alice = tenants["alice"]
    assert "not JSON" in envelope(deliver(api, hook, "github", "push", b"not json"), 422, "invalid_input")
    envelope(deliver(api, hook, "github", "push", b"[1, 2]"), 422, "invalid_input")
    assert deliver(api, hook, "github", "push", push("bad..name")).status_code == 200
    side = {"ref": "feature", "sha": SHA, "repo": {"full_name": "acme/shop"}}
    pr = {"action": "opened", "number": "9" * 5000,
          "pull_request": {"number": "9" * 5000, "head": side, "base": side}}
    assert deliver(api, hook, "github", "pull_request", pr).status_code == 200
    rows = settled(api, alice, 2)
    assert [(r["status"], r["attempts"]) for r in rows] == [("failed", 1), ("failed", 1)]
    assert "pull request number" in rows[0]["outcome"] and len(rows[0]["outcome"]) < 1000
    assert "bad..name" not in branches(api, alice)
    envelope(httpx.post(f"{api}/api/v1/hooks/github/{hook[0]}", content=b"{}",
                        headers=signed_headers("github", hook[1], b"{}", "", "x")), 422, "invalid_input")
    envelope(httpx.post(f"{api}/api/v1/hooks/bitbucket/{hook[0]}", content=b"{}"), 422, "invalid_input")


def test_hook_management_by_owner_teammate_stranger(api, tenants, hook):
    alice, bob, eve = (as_(tenants[n]) for n in ("alice", "bob", "eve"))
    shown = httpx.get(f"{api}/api/v1/projects/acme/shop/hook", headers=alice).json()
    assert shown["hook_id"] == hook[0] and "secret" not in shown
    envelope(httpx.post(f"{api}/api/v1/projects/acme/shop/hook", headers=bob), 403, "forbidden")
    envelope(httpx.post(f"{api}/api/v1/projects/acme/shop/hook", headers=eve), 404, "not_found")
    # a member below admin is told no, as the schema says; a stranger learns nothing
    assert "admin" in envelope(httpx.get(f"{api}/api/v1/projects/acme/shop/hook", headers=bob), 403, "forbidden")
    envelope(httpx.get(f"{api}/api/v1/projects/acme/shop/hook", headers=eve), 404, "not_found")
    assert deliver(api, hook, "github", "push", push("feature")).status_code == 200
    assert len(settled(api, tenants["alice"], 1)) == 1
    envelope(httpx.get(f"{api}/api/v1/projects/acme/shop/deliveries", headers=bob), 403, "forbidden")
    envelope(httpx.get(f"{api}/api/v1/projects/acme/shop/deliveries", headers=eve), 404, "not_found")
    schema = httpx.get(f"{api}/api/v1/openapi.json").json()["paths"]
    for path in ("/api/v1/projects/{org}/{project}/hook", "/api/v1/projects/{org}/{project}/deliveries"):
        operation = schema[path]["get"]
        assert {"403", "404"} <= set(operation["responses"]) and "admin" in operation["description"], path
    # rotating changes the secret: the old one stops working
    rotated = httpx.post(f"{api}/api/v1/projects/acme/shop/hook", headers=alice).json()
    assert rotated["hook_id"] == hook[0] and rotated["secret"] != hook[1]
    envelope(deliver(api, hook, "github", "push", push("feature")), 401, "unauthenticated")
    assert deliver(api, hook, "github", "push", push("feature"), secret=rotated["secret"]).status_code == 200


# Two signed deliveries that once killed the processor for every tenant
POISONS = {"nested 100,000 deep": b'{"ref": "refs/heads/x", "a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
           "an integer of 5,000 digits": b'{"ref": "refs/heads/x", "after": 1' + b"0" * 5000 + b"}"}
LAB = "https://git.example.com/evil/lab.git"


def lab_push_builds(api, tenants) -> None:
    """Eve's evil/lab, another tenant, still gets its push built."""
    eve = as_(tenants["eve"])
    builds_from(api, tenants["eve"], LAB, "evil/lab")
    made = httpx.post(f"{api}/api/v1/projects/evil/lab/hook", headers=eve).json()
    body = {**push("lab-feature", after="6" * 40), "repository": {"clone_url": LAB}}
    assert deliver(api, (made["hook_id"], made["secret"]), "github", "push", body).status_code == 200
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        builds = httpx.get(f"{api}/api/v1/projects/evil/lab/builds?branch=lab-feature", headers=eve).json()
        if builds:
            assert builds[0]["commit_sha"] == "6" * 40
            return
        time.sleep(0.1)
    raise AssertionError("evil/lab's push was never applied")


@pytest.mark.parametrize("poison", sorted(POISONS))
def test_a_poison_delivery_is_refused_and_other_tenants_still_build(api, tenants, hook, poison):
    message = envelope(deliver(api, hook, "github", "push", POISONS[poison]), 422, "invalid_input")
    assert "not JSON" in message
    lab_push_builds(api, tenants)
    assert settled(api, tenants["alice"]) == []  # refused before the ledger


def test_poison_rows_in_the_ledger_at_startup_fail_and_others_apply(serve_api, tenants, owner_db):
    """Deliveries recorded before the endpoint refused them (or by an older
    host) are failed with their reason, once, and stop nothing."""
    with owner_conn(owner_db) as conn:
        project = conn.execute("select p.id from ops.projects p join ops.orgs o on o.id = p.org_id"
                               " where o.slug = 'acme' and p.slug = 'shop'").fetchone()["id"]
        hook_id = conn.execute("insert into ops.hooks (project_id) values (%s) returning id", (project,)).fetchone()["id"]
        for n, body in enumerate(POISONS.values()):
            conn.execute("insert into ops.hook_deliveries (host, hook_id, project_id, delivery_id, event, headers, body)"
                         " values ('github', %s, %s, %s, 'push', '{}', %s)", (hook_id, project, f"poison-{n}", body))
    api = serve_api()
    lab_push_builds(api, tenants)
    rows = settled(api, tenants["alice"], 2)
    assert [(r["status"], r["attempts"]) for r in rows] == [("failed", 1), ("failed", 1)]
    assert all("not JSON" in r["outcome"] for r in rows), rows


@pytest.mark.parametrize("name", ["github/go-scm__push.json", "gitlab/go-scm__push.json", "gitea/go-scm__push.json",
                                  "github/octokit__pull_request_opened.payload.json", "gitea/go-playground__delete-event.json",
                                  "github/octokit__ping_payload.json"])
def test_a_delivery_for_another_repository_does_nothing(api, tenants, hook, name):
    """The hook's secret signs it, but it names a repository the project does not build."""
    alice, host, (event, *_) = tenants["alice"], name.split("/")[0], EXPECTED[name]
    before = branches(api, alice)
    assert deliver(api, hook, host, event, (FIXTURES / name).read_bytes()).status_code == 200
    row = settled(api, alice, 1)[0]
    assert (row["status"], row["run_id"]) == ("ignored", None)
    named = parse_names(name)
    assert row["outcome"] == f"delivery is for repository {named}, this project builds {SHOP}"
    assert branches(api, alice) == before
    assert httpx.get(f"{api}/api/v1/projects/acme/shop/builds", headers=as_(alice)).json() == []


def test_the_repository_is_compared_whatever_its_form_and_credentials_are_not_shown(api, tenants, hook):
    alice = tenants["alice"]
    builds_from(api, alice, "https://ci-bot:s3cr3t@GIT.example.com/acme/shop")
    assert deliver(api, hook, "github", "push", push("feature-y")).status_code == 200
    assert settled(api, alice, 1)[0]["status"] == "done"
    other = {**push("feature-z", after="7" * 40), "repository": {"clone_url": "https://git.example.com/acme/other.git"}}
    assert deliver(api, hook, "github", "push", other).status_code == 200
    row = settled(api, alice, 2)[0]
    assert row["status"] == "ignored" and "s3cr3t" not in row["outcome"] and "ci-bot" not in row["outcome"]
    assert "feature-z" not in branches(api, alice)
    nameless = {k: v for k, v in push("feature-w", after="8" * 40).items() if k != "repository"}
    assert deliver(api, hook, "github", "push", nameless).status_code == 200
    row = settled(api, alice, 3)[0]
    assert row["status"] == "ignored" and "names no repository" in row["outcome"]
    # an org-wide hook's ping names no repository and still says the hook works
    assert deliver(api, hook, "github", "ping", {"zen": "Keep it logically awesome."}).status_code == 200
    assert settled(api, alice, 4)[0]["outcome"] == "ping: the hook works"


def parse_names(name: str) -> str:
    """The repository a fixture's delivery is said to be for: its clone URL."""
    return parse(name.split("/")[0], EXPECTED[name][0], (FIXTURES / name).read_bytes()).repository
