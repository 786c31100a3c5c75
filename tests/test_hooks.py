"""Webhook authenticity and events, against payloads real hosts sent
(tests/fixtures/webhooks, with their sources) and published signature vectors."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path

import pytest

from odooops.errors import InvalidInput, Unauthenticated
from odooops.hooks.events import parse
from odooops.hooks.repository import same_repository
from odooops.hooks.verify import delivery_id, event_name, verify

FIXTURES = Path(__file__).parent / "fixtures" / "webhooks"
VECTORS = json.loads((FIXTURES / "signature_vectors.json").read_text())

# file: (event header, action, branch, pull request number, from a fork)
EXPECTED = {
    "github/go-scm__push.json": ("push", "push", "master", None, False),
    "github/go-playground__push.json": ("push", "push", None, None, False),
    "github/octokit__push_with-new-branch.payload.json": ("push", "push", "master", None, False),
    "github/octokit__push_payload.json": ("push", "ignored", None, None, False),  # a tag deleted
    "github/go-scm__push_branch_delete.json": ("push", "branch_deleted", None, None, False),
    "github/reallyfastci__webhook-push-to-master.json": ("push", "push", "master", None, False),
    "github/octokit__pull_request_opened.payload.json": ("pull_request", "pull_request", "changes", 2, False),
    "github/octokit__pull_request_synchronize.payload.json": ("pull_request", "pull_request", None, None, None),
    "github/go-scm__pr_opened.json": ("pull_request", "pull_request", None, None, None),
    "github/go-scm__pr_sync.json": ("pull_request", "pull_request", None, None, None),
    "github/octokit__pull_request_closed.payload.json": ("pull_request", "ignored", None, None, False),
    "github/go-scm__pr_closed.json": ("pull_request", "ignored", None, None, False),
    "github/reallyfastci__webhook-pr-close.json": ("pull_request", "ignored", None, None, False),
    "github/octokit__ping_payload.json": ("ping", "ping", None, None, False),
    "github/reallyfastci__webhook-ping.json": ("ping", "ping", None, None, False),
    "gitlab/go-gitlab__push.json": ("Push Hook", "push", None, None, False),
    "gitlab/go-playground__push-event.json": ("Push Hook", "push", None, None, False),
    "gitlab/go-scm__push.json": ("Push Hook", "push", None, None, False),
    "gitlab/go-scm__push_merge.json": ("Push Hook", "push", None, None, False),
    "gitlab/go-scm__branch_delete.json": ("Push Hook", "branch_deleted", None, None, False),
    "gitlab/go-gitlab__tag_push.json": ("Tag Push Hook", "ignored", None, None, False),
    "gitlab/go-playground__tag-event.json": ("Tag Push Hook", "ignored", None, None, False),
    "gitlab/go-scm__pull_request_create.json": ("Merge Request Hook", "pull_request", None, None, None),
    "gitlab/go-scm__pull_request_close.json": ("Merge Request Hook", "ignored", None, None, False),
    "gitlab/go-scm__pull_request_merge.json": ("Merge Request Hook", "ignored", None, None, False),
    "gitea/go-scm__push.json": ("push", "push", "master", None, False),
    "gitea/go-playground__push-event.json": ("push", "push", None, None, False),
    "gitea/go-scm__pull_request_opened.json": ("pull_request", "pull_request", None, None, None),
    "gitea/go-scm__pull_request_synchronized.json": ("pull_request", "pull_request", None, None, None),
    "gitea/go-playground__pull-request-event.json": ("pull_request", "pull_request", None, None, None),
    "gitea/go-scm__pull_request_closed.json": ("pull_request", "ignored", None, None, False),
    "gitea/go-scm__pull_request_merged.json": ("pull_request", "ignored", None, None, False),
    "gitea/go-scm__pull_request_edited.json": ("pull_request", "ignored", None, None, False),
    "gitea/go-playground__create-event.json": ("create", "ignored", None, None, False),
    "gitea/go-playground__delete-event.json": ("delete", "branch_deleted", None, None, False),
}

# GitLab's merge request samples from client libraries: their actions vary
GITLAB_MERGE_REQUESTS = sorted(p.relative_to(FIXTURES).as_posix() for p in (FIXTURES / "gitlab").glob("*merge*request*")
                               if p.relative_to(FIXTURES).as_posix() not in EXPECTED)


def test_every_fixture_is_read():
    files = {p.relative_to(FIXTURES).as_posix() for p in FIXTURES.rglob("*.json") if p.name != "signature_vectors.json"}
    assert files - set(EXPECTED) == set(GITLAB_MERGE_REQUESTS)  # checked by their own test below
    assert set(EXPECTED) <= files


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_events(name):
    event, action, branch, number, fork = EXPECTED[name]
    got = parse(name.split("/")[0], event, (FIXTURES / name).read_bytes())
    assert got.action == action, got.reason
    if action in ("push", "pull_request"):
        assert got.branch and got.commit and len(got.commit) == 40
    if action == "pull_request":
        assert got.pr_number and got.pr_number > 0
    if action == "branch_deleted":
        assert got.branch
    if branch:
        assert got.branch == branch
    if number:
        assert got.pr_number == number
    if fork is not None and action == "pull_request":
        assert got.from_fork is fork


# file: (first line of the head commit's message, its author)
DESCRIBED = {
    "github/go-scm__push.json": ("Update README", "Codertocat"),
    # the head commit, not the first of the pushed ones
    "github/reallyfastci__webhook-push-to-master.json": ("Merge pull request #3 from byao1276/byao1276-patch-1",
                                                         "Bo Yao"),
    # no head_commit: the one of `commits` that is `after`
    "gitlab/go-gitlab__push.json": ("fixed readme", "GitLab dev user"),
    "gitlab/go-scm__push_merge.json": ("Merge branch 'feature' into 'master'", "Sid Sijbrandij"),
    "gitlab/go-scm__pull_request_create.json": ("update readme", "Sid Sijbrandij"),  # the last_commit
    "gitea/go-scm__push.json": ("Updated readme", "Unknwon"),  # no head_commit either
    "gitea/go-playground__push-event.json": ("example", "example"),
}


@pytest.mark.parametrize("name", sorted(DESCRIBED))
def test_fixture_commit_message_and_author(name):
    got = parse(name.split("/")[0], EXPECTED[name][0], (FIXTURES / name).read_bytes())
    assert (got.message.splitlines()[0], got.author) == DESCRIBED[name]


def test_every_push_tells_its_commit_and_github_pull_requests_do_not():
    for name, (event, action, *_) in EXPECTED.items():
        got = parse(name.split("/")[0], event, (FIXTURES / name).read_bytes())
        if action == "push":
            assert got.message and got.author, name
        elif action == "pull_request" and not name.startswith("gitlab/"):
            assert (got.message, got.author) == (None, None), name  # the runner reads them from the checkout


def test_commit_text_without_nul_and_odd_shapes_are_none():
    sha = "a" * 40
    body = {"ref": "refs/heads/main", "after": sha,
            "head_commit": {"id": sha, "message": "fix\u0000 it", "author": "not an object"}}
    got = parse("github", "push", json.dumps(body).encode())
    assert (got.message, got.author) == ("fix it", None)
    got = parse("github", "push", json.dumps({**body, "head_commit": {"id": "b" * 40, "message": "other"}}).encode())
    assert (got.message, got.author) == (None, None)


@pytest.mark.parametrize("name", GITLAB_MERGE_REQUESTS)
def test_gitlab_merge_request_variants(name):
    got = parse("gitlab", "Merge Request Hook", (FIXTURES / name).read_bytes())
    assert got.action in ("pull_request", "ignored")
    if got.action == "pull_request":
        assert got.pr_number and got.commit


def test_github_docs_vector():
    v = VECTORS["github_docs"]
    verify("github", {v["header"]: v["header_value"]}, v["payload"].encode(), v["secret"])
    v = VECTORS["octokit_webhooks_methods"]
    verify("github", {"X-Hub-Signature-256": v["header_value"]}, v["payload"].encode(), v["secret"])


def test_github_file_vector_and_headers():
    v = VECTORS["go_scm_github_file"]
    body = (FIXTURES / v["file"]).read_bytes()
    headers = {"x-hub-signature-256": v["X-Hub-Signature-256"], "X-GitHub-Event": v["X-GitHub-Event"],
               "X-GitHub-Delivery": v["X-GitHub-Delivery"]}
    verify("github", headers, body, v["secret"])
    assert event_name("github", headers) == "push" and delivery_id("github", headers) == v["X-GitHub-Delivery"]
    with pytest.raises(Unauthenticated, match="does not match"):
        verify("github", headers, body + b" ", v["secret"])
    with pytest.raises(Unauthenticated, match="does not match"):
        verify("github", headers, body, "wrong")
    with pytest.raises(Unauthenticated, match="not signed"):
        verify("github", {}, body, v["secret"])


def test_gitea_and_forgejo_vector():
    v = VECTORS["go_scm_gitea_file"]
    body = (FIXTURES / v["file"]).read_bytes()
    verify("gitea", {"X-Gitea-Signature": v["X-Gitea-Signature"]}, body, v["secret"])
    verify("gitea", {"X-Forgejo-Signature": v["X-Gitea-Signature"]}, body, v["secret"])
    with pytest.raises(Unauthenticated):
        verify("gitea", {"X-Gitea-Signature": ""}, body, v["secret"])  # Gitea sends it empty without a secret
    assert delivery_id("gitea", {"X-Forgejo-Delivery": "abc"}) == "abc"


def test_gitlab_token():
    v = VECTORS["go_scm_gitlab_token"]
    verify("gitlab", {"X-Gitlab-Token": v["X-Gitlab-Token_valid"]}, b"{}", "topsecret")
    with pytest.raises(Unauthenticated):
        verify("gitlab", {"X-Gitlab-Token": v["invalid"]}, b"{}", "topsecret")
    with pytest.raises(Unauthenticated):
        verify("gitlab", {"X-Gitlab-Token": v["missing"]}, b"{}", "topsecret")
    assert delivery_id("gitlab", {"Idempotency-Key": "k1", "X-Gitlab-Event-UUID": "u"}) == "k1"


def test_pretty_printed_captures_signed_here():
    body = (FIXTURES / "github/reallyfastci__webhook-pr-close.json").read_bytes()
    signature = "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    verify("github", {"X-Hub-Signature-256": signature}, body, "s3cret")


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b'{"ref": 5}', b"\xff\xfe"])
def test_bad_bodies_are_invalid_input(body):
    with pytest.raises(InvalidInput):
        parse("github", "push", body)


def test_unknown_host():
    with pytest.raises(InvalidInput, match="unknown git host"):
        verify("bitbucket", {}, b"", "x")


def project_url(name: str) -> str:
    """The fixture's repository as a project might name it: in another form
    than the one the payload's clone URL has."""
    payload = json.loads((FIXTURES / name).read_bytes())
    host = name.split("/")[0]
    if host == "gitlab":
        return payload["project"]["git_ssh_url"]
    return payload["repository"]["ssh_url" if host == "github" else "html_url"]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_fixture_names_its_repository(name):
    got = parse(name.split("/")[0], EXPECTED[name][0], (FIXTURES / name).read_bytes())
    assert same_repository(project_url(name), got.names), got.names
    assert not same_repository("https://github.com/someone/else.git", got.names)


SHOP = "https://git.example.com/acme/shop.git"


@pytest.mark.parametrize("url", [SHOP, "http://git.example.com/acme/shop", "ssh://git@git.example.com:2222/acme/shop.git",
                                 "git@git.example.com:acme/shop.git", "https://bot:tok@GIT.Example.com/Acme/Shop.git/",
                                 "git://git.example.com/acme/shop", "https://git.example.com//acme/shop.git"])
def test_one_repository_in_many_forms(url):
    assert same_repository(SHOP, [url]) and same_repository(url, [SHOP])


@pytest.mark.parametrize("url", ["https://git.example.com/acme/shop-fork.git", "https://git.example.com/acme/shop/sub",
                                 "https://other.example.com/acme/shop.git", "git@git.example.com:evil/shop.git",
                                 "/srv/git/acme/shop.git", "", "not a url"])
def test_other_repositories(url):
    assert not same_repository(SHOP, [url])


def test_local_repositories_compare_by_resolved_path(tmp_path):
    repo = tmp_path / "git" / "shop.git"
    repo.mkdir(parents=True)
    (tmp_path / "link").symlink_to(tmp_path / "git")
    for same in (str(repo), f"{repo}/", f"file://{repo}", str(tmp_path / "link" / "shop.git"),
                 str(tmp_path / "git" / ".." / "git" / "shop.git")):
        assert same_repository(str(repo), [same]), same
    work = tmp_path / "work"
    assert same_repository(str(work), [f"{work}/.git"])
    for other in (str(tmp_path / "git" / "shop"), str(tmp_path / "git" / "Shop.git"), "https://host/git/shop.git"):
        assert not same_repository(str(repo), [other]), other
    assert not same_repository("", [""])
