"""No tenant can make OdooOps read a repository it could not read itself: local
paths only inside folders the operator gave the org, checked by the API, the
console, the CLI and again by the runner; git with none of the host's
credentials; mirrors shared only where no credential fetched them."""

from __future__ import annotations

import hashlib
import os
import time

import httpx
import pytest
from conftest import allow_path, owner_conn
from helpers import SERVICE, as_, call, envelope, git, make_repo, recipe

from odooops import repos
from odooops.errors import InvalidInput
from odooops.managers.projects import Projects
from odooops.managers.runs import Runs

SECRET = "acme-secret-recipe-42"


@pytest.fixture
def victim(settings, tenants, tmp_path):
    """Acme's private repository on this host, in a folder the operator gave acme only."""
    repo = make_repo(tmp_path / "acme-git" / "private", {
        ".odooops.toml": recipe({"name": "ok", "command": "true"}), "SECRET.txt": SECRET})
    call(settings, lambda db: allow_path(db, settings, "acme", tmp_path / "acme-git"))
    return repo


@pytest.fixture
def evil_root(settings, tenants, tmp_path):
    """A folder the operator gave evil."""
    root = tmp_path / "evil-git"
    root.mkdir()
    call(settings, lambda db: allow_path(db, settings, "evil", root))
    return root


def mirror_of(settings, url: str) -> str:
    """Where the control plane mirrors a URL fetched without a credential."""
    return str(settings.data_dir / "git" / (hashlib.sha256(url.encode()).hexdigest()[:24] + ".git"))


# the rule, as a function

ALLOWED = ["https://github.com/acme/shop.git", "http://git.lan/shop.git", "ssh://git@github.com/acme/shop.git",
           "git@github.com:acme/shop.git", "git://git.lan/shop.git", "https://u:t@git.lan/x.git"]
REFUSED = {
    "/srv/git/other.git": "not inside a folder the operator gave this org",
    "file:///srv/git/other.git": "file:// URLs are not allowed",
    "ext::sh -c touch% /tmp/pwned": "git transport ext:: is not allowed",
    "fd::17": "git transport fd:: is not allowed",
    "--upload-pack=touch /tmp/pwned": "cannot start with '-'",
    "-uhttps://x": "cannot start with '-'",
    "ssh://-oProxyCommand=touch%20x/y": "names no host",
    "git@host:-oProxyCommand=x": "is not a repository URL",
    "relative/path": "is not a repository URL",
    "ftp://host/x": "ftp:// URLs are not allowed",
    "https://host/x y": "no spaces",
}


@pytest.mark.parametrize("url", ALLOWED)
def test_remote_urls_are_allowed(url):
    assert repos.check(url, []) == repos.Source(url, local=False)


@pytest.mark.parametrize("url", sorted(REFUSED))
def test_other_urls_are_refused_saying_why(url):
    with pytest.raises(InvalidInput, match=REFUSED[url]):
        repos.check(url, [])


def test_local_paths_resolve_inside_a_root_or_are_refused(tmp_path):
    root, other = tmp_path / "root", tmp_path / "other"
    (root / "repo").mkdir(parents=True)
    other.mkdir()
    (root / "link").symlink_to(other)
    assert repos.check(f"{root}/repo", [str(root)]) == repos.Source(str(root / "repo"), local=True)
    for escape in (f"{root}/../other", f"{root}/link", f"{root}/link/x", str(tmp_path)):
        with pytest.raises(InvalidInput, match="not inside a folder"):
            repos.check(escape, [str(root)])
    host = repos.Host((tmp_path,), tmp_path / "data")
    with pytest.raises(InvalidInput, match="inside the control plane's data directory"):
        repos.check(str(tmp_path / "data" / "git" / "x.git"), [str(tmp_path)], host)
    with pytest.raises(InvalidInput, match="not inside ODOOOPS_REPO_ROOTS"):
        repos.check(f"{root}/repo", [str(root)], repos.Host((other,), tmp_path / "data"))


def test_credentials_are_masked_and_their_mirrors_serve_one_project():
    url, bare = "https://alice:t0ken@git.lan/shop.git", "https://git.lan/shop.git"
    assert repos.display(url) == "https://alice:********@git.lan/shop.git"
    assert repos.display("https://t0ken@git.lan/shop.git") == "https://********@git.lan/shop.git"
    assert repos.display(bare) == bare and repos.display("git@git.lan:shop.git") == "git@git.lan:shop.git"
    secret, plain = repos.Source(url, local=False), repos.Source(bare, local=False)
    names = {repos.mirror_name(p, s) for p in ("p1", "p2") for s in (secret, plain)}
    assert len(names) == 3  # one mirror each for the credential, one shared without
    assert repos.mirror_name("p1", plain) == repos.mirror_name("p2", plain)
    local = repos.Source("/srv/git/x", local=True)
    assert repos.mirror_name("p1", local) != repos.mirror_name("p2", local)


# API, console and CLI refuse what the org may not read

def test_stranger_cannot_name_another_tenants_path_over_the_api(api, tenants, victim, evil_root, settings, tmp_path):
    eve, alice, bob = (as_(tenants[n]) for n in ("eve", "alice", "bob"))
    (evil_root / "link").symlink_to(victim)
    attempts = [str(victim), f"{evil_root}/../acme-git/private", str(evil_root / "link"), f"file://{victim}",
                mirror_of(settings, str(victim)), str(settings.data_dir), str(settings.data_dir / "secrets.json")]
    for path in attempts:
        body = {"org": "evil", "slug": "steal", "repo_url": path}
        reason = envelope(httpx.post(f"{api}/api/v1/projects", json=body, headers=eve), 422, "invalid_input")
        assert "not allowed" in reason or "not inside a folder" in reason, reason
        envelope(httpx.patch(f"{api}/api/v1/projects/evil/lab", json={"repo_url": path}, headers=eve),
                 422, "invalid_input")
    envelope(httpx.patch(f"{api}/api/v1/projects/acme/shop", json={"repo_url": str(victim)}, headers=bob),
             403, "forbidden")  # a viewer of acme changes nothing
    made = httpx.post(f"{api}/api/v1/projects", json={"org": "acme", "slug": "private", "repo_url": str(victim)},
                      headers=alice)
    assert made.status_code == 201, made.text  # the owner, in the folder given to her org
    with owner_conn(settings.database_url.reveal()) as conn:
        urls = {r["repo_url"] for r in conn.execute("select repo_url from ops.projects")}
    assert not any(str(victim) in u or "steal" in u for u in urls - {str(victim)})


def test_only_the_operator_gives_folders_and_members_see_their_orgs(cli, tenants, settings, tmp_path):
    folder = tmp_path / "acme-more"
    folder.mkdir()
    as_alice = {"ODOOOPS_AS": "alice@acme.test"}
    refused = cli("org", "allow-path", "acme", str(folder), env=as_alice)
    assert refused.returncode != 0 and "only the operator" in refused.stderr
    for outside, why in ((settings.data_dir, "data directory"), ("/etc", "not inside ODOOOPS_REPO_ROOTS"),
                         (tmp_path, "holds the control plane's data directory")):
        refused = cli("org", "allow-path", "acme", str(outside))
        assert refused.returncode != 0 and why in refused.stderr, refused.stderr
    given = cli("org", "allow-path", "acme", str(folder))
    assert given.returncode == 0, given.stderr
    assert str(folder) in cli("org", "paths", "acme", env=as_alice).stdout
    assert str(folder) not in cli("org", "paths", "evil", env={"ODOOOPS_AS": "eve@evil.test"}).stdout
    assert cli("org", "paths", "acme", env={"ODOOOPS_AS": "eve@evil.test"}).returncode != 0  # not hers to see
    with owner_conn(settings.database_url.reveal()) as conn:  # the database refuses a user too
        conn.execute("set role authenticated")
        with pytest.raises(Exception, match="permission denied"):
            conn.execute("insert into ops.org_repo_roots (org_id, path) select id, '/' from ops.orgs")


def test_stranger_cannot_name_another_tenants_path_in_the_console(console, victim):
    eve = console("eve")
    refused = eve.post("/projects", data={"csrf_token": eve.csrf, "org": "evil", "slug": "steal",
                                          "repo_url": str(victim), "default_branch": "main", "odoo_version": "17.0"})
    assert refused.status_code == 422 and "not inside a folder the operator gave this org" in refused.text


def test_stranger_cannot_name_another_tenants_path_with_the_cli(cli, victim, settings):
    refused = cli("project", "create", "evil/steal", "--repo", str(victim), env={"ODOOOPS_AS": "eve@evil.test"})
    assert refused.returncode != 0 and "not inside a folder the operator gave this org" in refused.stderr
    refused = cli("project", "create", "evil/steal", "--repo", mirror_of(settings, str(victim)))
    assert refused.returncode != 0 and "not inside a folder" in refused.stderr  # the operator's CLI too
    assert cli("build", "trigger", "evil/lab", "main", env={"ODOOOPS_AS": "eve@evil.test"}).returncode == 0


def test_repository_credentials_are_masked_wherever_shown(api, tenants, console):
    alice = as_(tenants["alice"])
    url = "https://alice:t0ps3cret@git.example.com/acme/web.git"
    closed = "https://alice:t0ps3cret@127.0.0.1:1/acme/web.git"  # nothing listens there: git says why at once
    refused = httpx.post(f"{api}/api/v1/projects", json={"org": "acme", "slug": "web", "repo_url": closed},
                         headers=alice)
    assert "alice:********@127.0.0.1:1" in envelope(refused, 422, "invalid_input")
    made = httpx.post(f"{api}/api/v1/projects", json={"org": "acme", "slug": "web", "repo_url": url, "check": False},
                      headers=alice)  # git.example.com is nobody's: created without the check
    assert made.status_code == 201, made.text
    shown = [refused.text, made.text, httpx.get(f"{api}/api/v1/projects/acme/web", headers=alice).text,
             httpx.get(f"{api}/api/v1/projects", headers=alice).text, console("alice").get("/").text,
             console("alice").get("/p/acme/web").text]
    assert all("t0ps3cret" not in text for text in shown)
    assert "alice:********@git.example.com" in shown[1]


# the runner checks again, and its git reads nothing of the host's

def finished(settings, run_id: int) -> tuple[dict, list[str]]:
    deadline = time.monotonic() + 60
    with owner_conn(settings.database_url.reveal()) as conn:
        while time.monotonic() < deadline:
            row = conn.execute("select * from ops.runs where id = %s", (run_id,)).fetchone()
            if row["status"] in ("succeeded", "failed"):
                log = [r["message"] for r in conn.execute(
                    "select message from ops.run_events where run_id = %s order by seq", (run_id,))]
                return row, log
            time.sleep(0.1)
    raise AssertionError(f"run {run_id} did not finish")


def build(settings, project: str, commit: str) -> int:
    return call(settings, lambda db: Runs(db, SERVICE).trigger_build(project, "main", commit))["id"]


def test_a_row_written_before_the_fix_fails_at_checkout_unread(settings, tenants, victim, runner):
    head = git(victim, "rev-parse", "HEAD")
    with owner_conn(settings.database_url.reveal()) as conn:  # as a row from before the check
        conn.execute("update ops.projects set repo_url = %s where slug = 'lab'", (str(victim),))
    with pytest.raises(InvalidInput, match="not inside a folder"):  # no ls-remote of it either
        call(settings, lambda db: Runs(db, SERVICE).trigger_build("evil/lab", "main"))
    stolen, log = finished(settings, build(settings, "evil/lab", head))
    assert stolen["status"] == "failed"
    assert stolen["error"].startswith("phase checkout failed: ") and "is not inside a folder" in stolen["error"]
    assert any("is not inside a folder the operator gave this org" in m for m in log), log
    assert not any(SECRET in m or "mirroring" in m for m in log)
    # the owner's project on the same path, in the folder given to acme, builds
    call(settings, lambda db: Projects(db, SERVICE).create("acme/private", str(victim)))
    built, log = finished(settings, build(settings, "acme/private", head))
    assert built["status"] == "succeeded", log
    mirrors = os.listdir(settings.data_dir / "git")
    assert [m for m in mirrors if m.endswith(".git")] and all(m.startswith("p-") for m in mirrors)  # its own


def test_a_submodule_on_another_tenants_path_is_not_checked_out(settings, tenants, victim, evil_root, runner):
    trojan = make_repo(evil_root / "trojan", {".odooops.toml": recipe({"name": "look", "command": "cat sub/SECRET.txt"})})
    git(trojan, "-c", "protocol.file.allow=always", "submodule", "add", "-q", str(victim), "sub")
    git(trojan, "-c", "user.name=t", "-c", "user.email=t@t.test", "commit", "-q", "-m", "a submodule")
    call(settings, lambda db: Projects(db, SERVICE).create("evil/trojan", str(trojan)))
    row, log = finished(settings, build(settings, "evil/trojan", git(trojan, "rev-parse", "HEAD")))
    assert (row["status"], row["error"]) == ("failed", "phase checkout failed"), log
    assert any("transport 'file' not allowed" in m for m in log), log
    assert not any(SECRET in m for m in log)
