"""A project or branch is created only for a repository git can read and a
branch it has, asked with `git ls-remote` under the repository rules, in the
API, the CLI and the console alike; the check can be skipped, explicitly, for
a repository that is not reachable yet."""

from __future__ import annotations

import asyncio
import re
import socket
from pathlib import Path

import httpx
import pytest

from conftest import owner_conn
from helpers import as_, envelope, git, make_repo
from odooops import git as ops_git
from odooops import repos
from odooops.errors import InvalidInput

SECRET = "t0ps3cret"
CLOSED = f"https://alice:{SECRET}@127.0.0.1:1/acme/web.git"  # nothing listens on port 1: refused at once


@pytest.fixture
def shop_repo(tenants, tmp_path) -> Path:
    """The tenants' repository (main and feature), in the folder given to acme."""
    return tmp_path / "repo"


def projects(settings) -> set[str]:
    with owner_conn(settings.database_url.reveal()) as conn:
        return {r["slug"] for r in conn.execute("select slug from ops.projects")}


def branches(settings, project: str = "shop") -> set[str]:
    with owner_conn(settings.database_url.reveal()) as conn:
        return {r["name"] for r in conn.execute(
            "select b.name from ops.branches b join ops.projects p on p.id = b.project_id where p.slug = %s",
            (project,))}


# the check itself

def test_the_check_names_the_missing_branch_and_reads_names_exactly(tmp_path):
    shop_repo = make_repo(tmp_path / "repo", {"x": "y"}, branches=("feature",))
    source = repos.Source(str(shop_repo), local=True)
    asyncio.run(ops_git.check_branches(source, ["main", "feature"]))
    for missing in ("nope", "*", "mai"):  # a pattern or a tail of a name is not the branch
        with pytest.raises(InvalidInput, match=re.escape(f"branch '{missing}' not found in {shop_repo}")):
            asyncio.run(ops_git.check_branches(source, [missing]))


def test_an_empty_repository_says_it_has_no_branches_yet(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    git(empty, "init", "-q", "-b", "main")
    with pytest.raises(InvalidInput, match=r"not found in .*no branches yet"):
        asyncio.run(ops_git.check_branches(repos.Source(str(empty), local=True), ["main"]))


def test_an_unreadable_remote_is_refused_without_its_credential():
    with pytest.raises(InvalidInput) as refused:
        asyncio.run(ops_git.check_branches(repos.Source(CLOSED, local=False), ["main"]))
    message = str(refused.value)
    assert message.startswith("repository not found or not readable: https://alice:********@127.0.0.1:1/acme/web.git")
    assert SECRET not in message and "without the check" in message


def test_a_remote_that_never_answers_is_given_up_on_in_time():
    with socket.socket() as silent:  # accepts connections (the kernel's backlog) and never says a word
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/shop.git"
        loop = asyncio.new_event_loop()
        try:
            started = loop.time()
            with pytest.raises(InvalidInput, match=f"did not answer within 1 s: {url}"):
                loop.run_until_complete(ops_git.check_branches(repos.Source(url, local=False), ["main"], timeout=1))
            assert loop.time() - started < 10
        finally:
            loop.close()


# the API

def test_api_refuses_a_repository_or_branch_that_does_not_exist(api, tenants, settings, shop_repo, tmp_path):
    alice = as_(tenants["alice"])
    ghost = str(shop_repo / "ghost")  # inside acme's folder, no repository there
    for body, says in (({"repo_url": ghost}, f"repository not found or not readable: {ghost}"),
                       ({"repo_url": str(shop_repo), "default_branch": "prod"},
                        f"branch 'prod' not found in {shop_repo}"),
                       ({"repo_url": CLOSED}, "repository not found or not readable: https://alice:********@")):
        answer = httpx.post(f"{api}/api/v1/projects", json={"org": "acme", "slug": "web", **body}, headers=alice)
        reason = envelope(answer, 422, "invalid_input")
        assert says in reason and SECRET not in answer.text, reason
    assert "web" not in projects(settings)
    refused = httpx.post(f"{api}/api/v1/projects/acme/shop/branches", json={"name": "nope"}, headers=alice)
    assert f"branch 'nope' not found in {shop_repo}" in envelope(refused, 422, "invalid_input")
    assert "nope" not in branches(settings)


def test_api_creates_what_the_repository_has_and_skips_the_check_when_told(api, tenants, settings, shop_repo):
    alice = as_(tenants["alice"])
    made = httpx.post(f"{api}/api/v1/projects", json={"org": "acme", "slug": "web", "repo_url": str(shop_repo)},
                      headers=alice)
    assert made.status_code == 201, made.text
    git(shop_repo, "branch", "invoices")
    added = httpx.post(f"{api}/api/v1/projects/acme/web/branches", json={"name": "invoices"}, headers=alice)
    assert added.status_code == 201, added.text
    later = httpx.post(f"{api}/api/v1/projects", headers=alice, json={
        "org": "acme", "slug": "later", "repo_url": CLOSED, "check": False})
    assert later.status_code == 201, later.text
    ahead = httpx.post(f"{api}/api/v1/projects/acme/later/branches", json={"name": "soon", "check": False},
                       headers=alice)
    assert ahead.status_code == 201, ahead.text
    assert {"web", "later"} <= projects(settings) and branches(settings, "later") == {"main", "soon"}


def test_api_never_checks_a_path_the_org_may_not_read(api, tenants, tmp_path):
    secret = make_repo(tmp_path / "elsewhere", {"x": "y"})
    for check in (True, False):
        answer = httpx.post(f"{api}/api/v1/projects", headers=as_(tenants["eve"]), json={
            "org": "evil", "slug": "peek", "repo_url": str(secret), "check": check})
        assert "not inside a folder the operator gave this org" in envelope(answer, 422, "invalid_input")


# the CLI

def test_cli_refuses_a_missing_repository_or_branch_and_skips_with_no_check(cli, tenants, settings, shop_repo):
    ghost = str(shop_repo / "ghost")
    refused = cli("project", "create", "acme/web", "--repo", ghost)
    assert refused.returncode != 0 and f"repository not found or not readable: {ghost}" in refused.stderr
    refused = cli("project", "create", "acme/web", "--repo", CLOSED)
    assert refused.returncode != 0 and "not readable" in refused.stderr and SECRET not in refused.stderr
    refused = cli("branch", "add", "acme/shop", "nope")
    assert refused.returncode != 0 and f"branch 'nope' not found in {shop_repo}" in refused.stderr
    assert "web" not in projects(settings) and "nope" not in branches(settings)
    made = cli("project", "create", "acme/web", "--repo", str(shop_repo), "--default-branch", "feature")
    assert made.returncode == 0, made.stderr
    later = cli("project", "create", "acme/later", "--repo", CLOSED, "--no-check")
    assert later.returncode == 0, later.stderr
    soon = cli("branch", "add", "acme/later", "soon", "--no-check")
    assert soon.returncode == 0, soon.stderr
    assert {"web", "later"} <= projects(settings) and branches(settings, "later") == {"main", "soon"}


def test_remote_cli_sends_the_check_and_its_skip(cli, api, tenants, settings, shop_repo):
    assert cli("login", api, "--token-stdin", input=tenants["alice"] + "\n").returncode == 0
    refused = cli("branch", "add", "acme/shop", "nope")
    assert refused.returncode != 0 and "branch 'nope' not found" in refused.stderr, refused.stderr
    assert cli("branch", "add", "acme/shop", "nope", "--no-check").returncode == 0
    assert "nope" in branches(settings)


# the console

def _project_form(client: httpx.Client, **fields: str) -> dict:
    return {"csrf_token": client.csrf, "org": "acme", "slug": "web", "default_branch": "main",
            "odoo_version": "17.0", **fields}


def test_console_refuses_a_missing_repository_or_branch_and_skips_when_ticked(console, settings, shop_repo):
    alice = console("alice")
    ghost = str(shop_repo / "ghost")
    refused = alice.post("/projects", data=_project_form(alice, repo_url=ghost))
    assert refused.status_code == 422 and f"repository not found or not readable: {ghost}" in refused.text
    refused = alice.post("/projects", data=_project_form(alice, repo_url=str(shop_repo), default_branch="prod"))
    assert refused.status_code == 422 and f"branch &#39;prod&#39; not found in {shop_repo}" in refused.text
    assert "web" not in projects(settings)
    refused = alice.post("/p/acme/shop/branches", data={"csrf_token": alice.csrf, "name": "nope"})
    assert refused.status_code == 422 and "branch &#39;nope&#39; not found" in refused.text
    assert "nope" not in branches(settings)
    page = alice.get("/").text
    assert 'name="check" type="checkbox" value="false"' in page  # the box to skip it
    later = alice.post("/projects", data=_project_form(alice, slug="later", repo_url=CLOSED, check="false"))
    assert later.status_code == 303, later.text
    soon = alice.post("/p/acme/later/branches", data={"csrf_token": alice.csrf, "name": "soon", "check": "false"})
    assert soon.status_code == 303, soon.text
    made = alice.post("/projects", data=_project_form(alice, repo_url=str(shop_repo)))
    assert made.status_code == 303, made.text
    assert {"web", "later"} <= projects(settings) and branches(settings, "later") == {"main", "soon"}
