"""The real `odooops` command in a subprocess: happy paths and error paths."""

from __future__ import annotations

import json
import subprocess

import pytest

from conftest import owner_conn


def ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, result.stderr + result.stdout
    return result.stdout


def fails(result: subprocess.CompletedProcess, message: str) -> None:
    assert result.returncode != 0, result.stdout
    assert message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def git(repo, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def repo(tmp_path):
    """A real git repository with a main and a feature branch."""
    path = tmp_path / "repo"
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    (path / "README.md").write_text("hello\n")
    git(path, "add", "-A")
    git(path, "-c", "user.name=t", "-c", "user.email=t@t.test", "commit", "-q", "-m", "first")
    git(path, "branch", "feature-x")
    return path


@pytest.fixture
def acme(cli, repo):
    ok(cli("user", "create", "alice@acme.test", "--name", "Alice", "--password-stdin", input="correct horse battery\n"))
    ok(cli("user", "create", "bob@acme.test", "--no-password"))
    ok(cli("user", "create", "eve@evil.test", "--no-password"))
    ok(cli("org", "create", "acme", "--name", "Acme", "--owner", "alice@acme.test"))
    ok(cli("org", "create", "evil", "--owner", "eve@evil.test"))
    ok(cli("member", "add", "acme", "bob@acme.test", "--role", "developer"))
    ok(cli("org", "allow-path", "acme", str(repo)))  # the operator gives acme its folder of this host
    ok(cli("project", "create", "acme/shop", "--repo", str(repo), "--odoo-version", "17.0"))
    return repo


def test_happy_path(cli, acme, owner_db):
    out = ok(cli("branch", "add", "acme/shop", "feature-x"))
    assert "feature-x" in out
    out = ok(cli("branch", "set-stage", "acme/shop", "feature-x", "staging"))
    assert "staging" in out
    out = ok(cli("build", "trigger", "acme/shop", "main"))
    head = git(acme, "rev-parse", "main")
    assert head[:10] in out
    listed = ok(cli("builds", "acme/shop"))
    assert head[:10] in listed and "Queued" in listed  # the console's word (odooops.managers.vocabulary)
    projects = ok(cli("projects"))
    assert "acme/shop" in projects
    branches = ok(cli("branch", "list", "acme/shop"))
    assert "main" in branches and "production" in branches and "feature-x" in branches
    with owner_conn(owner_db) as conn:
        run = conn.execute("select * from ops.runs").fetchone()
        conn.execute("insert into ops.run_events (run_id, seq, level, phase, message) values "
                     "(%s, 1, 'info', 'checkout', 'cloning [repo]'), (%s, 2, 'error', 'test', 'boom')",
                     (run["id"], run["id"]))
    log = ok(cli("logs", str(run["id"])))
    assert "cloning [repo]" in log and "boom" in log
    assert "canceled" in ok(cli("run", "cancel", str(run["id"])))
    assert run["commit_sha"] == head and run["priority"] == 310
    rebuilt = ok(cli("run", "rebuild", str(run["id"])))
    assert head[:10] in rebuilt and "queued" in rebuilt
    assert "archived" in ok(cli("branch", "archive", "acme/shop", "feature-x"))
    assert "feature-x" not in ok(cli("branch", "list", "acme/shop"))
    assert "production branch" in cli("branch", "archive", "acme/shop", "main").stderr
    assert "archived" in ok(cli("project", "archive", "acme/shop"))
    assert "acme/shop" not in ok(cli("projects"))


def test_password_is_hashed_with_argon2(cli, acme, owner_db):
    with owner_conn(owner_db) as conn:
        hashed = conn.execute("select password_hash from ops.users where email = 'alice@acme.test'").fetchone()
    assert hashed["password_hash"].startswith("$argon2id$")
    assert "correct horse" not in hashed["password_hash"]


@pytest.mark.parametrize("args,message", [
    (["org", "create", "acme"], "an org with that slug already exists"),
    (["org", "create", "Not A Slug"], "an org slug is 1-63 lowercase letters"),
    (["user", "create", "alice@ACME.test", "--no-password"], "a user with that email already exists"),
    (["user", "create", "not-an-email", "--no-password"], "not a valid email address"),
    (["project", "create", "acme/shop", "--repo", "https://git.example.com/x.git"],
     "that org already has a project with that slug"),
    (["project", "create", "nope/shop", "--repo", "https://git.example.com/x.git"], "no org 'nope'"),
    (["project", "create", "shop", "--repo", "https://git.example.com/x.git"], "name a project as ORG/PROJECT"),
    (["project", "create", "acme/x", "--repo", "https://git.example.com/x.git", "--odoo-version", "latest"],
     "an Odoo version looks like 17.0"),
    (["branch", "add", "acme/shop", "main"], "already has a branch with that name"),
    (["branch", "add", "acme/shop", "bad..name"], "not a valid git branch name"),
    (["branch", "add", "acme/shop", "x", "--stage", "prod"], "a stage is one of"),
    (["branch", "add", "acme/shop", "second", "--stage", "production"], "exactly one production branch"),
    (["branch", "list", "acme/nope"], "no project 'acme/nope'"),
    (["build", "trigger", "acme/shop", "nope"], "project has no branch 'nope'"),
    (["build", "trigger", "acme/shop", "main", "--commit", "xyz"], "a commit is 7 to 64 hexadecimal characters"),
    (["member", "add", "acme", "eve@evil.test", "--role", "king"], "a role is one of"),
    (["member", "add", "acme", "bob@acme.test"], "bob@acme.test is already a member"),
    (["logs", "999"], "run 999 not found"),
    (["run", "cancel", "999"], "run 999 not found"),
])
def test_bad_input_says_why_and_exits_non_zero(cli, acme, args, message):
    fails(cli(*args), message)


def test_stage_rules(cli, acme):
    ok(cli("branch", "add", "acme/shop", "feature-x"))
    fails(cli("branch", "set-stage", "acme/shop", "feature-x", "production"),
          "cannot go from development to production")
    fails(cli("branch", "set-stage", "acme/shop", "main", "staging"), "production cannot be moved")
    ok(cli("branch", "set-stage", "acme/shop", "feature-x", "staging"))
    fails(cli("branch", "set-stage", "acme/shop", "feature-x", "production"), "exactly one production branch")


def test_unreadable_repository_asks_for_a_commit(cli, acme, tmp_path):
    fails(cli("project", "create", "acme/ghost", "--repo", "https://127.0.0.1:1/missing.git"),
          "repository not found or not readable: https://127.0.0.1:1/missing.git")
    ok(cli("project", "create", "acme/ghost", "--repo", "https://127.0.0.1:1/missing.git", "--no-check"))
    fails(cli("build", "trigger", "acme/ghost", "main"), "cannot read branch 'main'")


def test_finished_run_cannot_be_canceled_again(cli, acme):
    ok(cli("build", "trigger", "acme/shop", "main"))
    ok(cli("run", "cancel", "1"))
    fails(cli("run", "cancel", "1"), "run 1 has already finished: it is canceled")


def test_nothing_half_written(cli, acme, owner_db):
    # the project insert succeeds, then its production branch is refused: neither remains
    fails(cli("project", "create", "acme/half", "--repo", "https://git.example.com/x.git",
              "--default-branch", "bad..name"), "not a valid git branch name")
    with owner_conn(owner_db) as conn:
        assert conn.execute("select count(*) as n from ops.projects where slug = 'half'").fetchone()["n"] == 0


def test_acting_as_a_user_obeys_row_level_security(cli, acme):
    ok(cli("branch", "add", "acme/shop", "feature-x"))
    as_bob = {"ODOOOPS_AS": "bob@acme.test"}
    assert "queued" in ok(cli("build", "trigger", "acme/shop", "feature-x", env=as_bob))
    fails(cli("build", "trigger", "acme/shop", "main", env=as_bob),
          "your role in this project cannot start builds on production branches")
    fails(cli("branch", "set-stage", "acme/shop", "feature-x", "staging", env=as_bob),
          "your role in this project cannot change stages")
    as_eve = {"ODOOOPS_AS": "eve@evil.test"}
    assert "acme/shop" not in ok(cli("projects", env=as_eve))
    fails(cli("builds", "acme/shop", env=as_eve), "no project 'acme/shop'")
    fails(cli("logs", "1", env=as_eve), "run 1 not found")
    fails(cli("run", "cancel", "1", env=as_eve), "run 1 not found")
    fails(cli("--as", "nobody@x.test", "projects"), "no user with email nobody@x.test")


def test_db_commands(cli):
    assert "nothing to migrate" in ok(cli("db", "migrate"))
    status = ok(cli("db", "status"))
    assert "0001_schema" in status and "applied" in status and "pending" not in status
    assert ok(cli("db", "url")).startswith("postgresql://")
    fails(cli("db", "stop"), "ODOOOPS_DATABASE_URL is set")


def test_unreachable_database_is_a_clear_error(cli, tmp_path):
    result = cli("projects", env={"ODOOOPS_DATABASE_URL": f"postgresql://x@/db?host={tmp_path}&connect_timeout=2"})
    fails(result, "the database cannot be reached")


def test_help_everywhere(cli):
    for args in (["--help"], ["db", "--help"], ["branch", "set-stage", "--help"], ["build", "trigger", "--help"]):
        assert "Usage" in ok(cli(*args))


def test_project_settings(cli, acme, owner_db):
    ok(cli("project", "set", "acme/shop", "coalesce_seconds=60", "cancel_in_progress=true", "--env", "A=1"))
    shown = ok(cli("project", "set", "acme/shop", "--secret", "TOKEN", input="hunter2hunter2\n"))
    assert "hunter2" not in shown and "********" in shown
    assert "hunter2" not in ok(cli("project", "show", "acme/shop"))
    fails(cli("project", "set", "acme/shop", "bogus=1"), "unknown project setting 'bogus'")
    fails(cli("project", "set", "acme/shop", "max_attempts=9"), "max_attempts: attempts a run gets")
    fails(cli("project", "set", "acme/shop", "--env", "novalue"), "variables are given as NAME=VALUE")
    ok(cli("project", "set", "acme/shop", "--unset", "coalesce_seconds"))
    with owner_conn(owner_db) as conn:
        settings = conn.execute("select settings from ops.projects where slug = 'shop'").fetchone()["settings"]
        sealed = conn.execute("select name, ciphertext from ops.project_secrets").fetchall()
    assert settings == {"cancel_in_progress": True, "env": {"A": "1"}}  # the secret is sealed apart
    assert [r["name"] for r in sealed] == ["TOKEN"] and b"hunter2" not in sealed[0]["ciphertext"]


NARROW = {"COLUMNS": "80"}


def hook_line(out: str, host: str) -> str:
    return next(line for line in out.splitlines() if line.strip().startswith(f"{host}:"))


def test_hook_create_prints_the_servers_urls_and_secret_whole(cli, acme, owner_db, settings):
    from odooops.hooks.verify import hook_secret

    out = ok(cli("hook", "create", "acme/shop", env={**NARROW, "ODOOOPS_PORT": "9123"}))
    with owner_conn(owner_db) as conn:
        hook = conn.execute("select id, salt from ops.hooks").fetchone()
    for host in ("github", "gitlab", "gitea"):
        assert hook_line(out, host).split() == [f"{host}:", f"http://127.0.0.1:9123/api/v1/hooks/{host}/{hook['id']}"]
    key = json.loads((settings.data_dir / "secrets.json").read_text())["secret_key"]
    assert hook_secret(key, hook["id"], hook["salt"]) == out.strip().splitlines()[-1]
    assert "…" not in out and "ODOOOPS_PUBLIC_URL" in out  # says where the address comes from

    public = "https://ops.example.com/a/rather/long/path/so/that/the/url/is/wider/than/the/terminal"
    out = ok(cli("hook", "create", "acme/shop", env={**NARROW, "ODOOOPS_PUBLIC_URL": public + "/"}))
    url = hook_line(out, "gitlab").split()[1]
    assert len(url) > 80 and url == f"{public}/api/v1/hooks/gitlab/{hook['id']}"
    assert out.strip().splitlines()[-1].startswith("ohs_") and "…" not in out
    fails(cli("hook", "create", "acme/shop", env={"ODOOOPS_PUBLIC_URL": "ops.example.com"}),
          "ODOOOPS_PUBLIC_URL is an http:// or https:// URL")


def test_listing_verbs_print_json(cli, acme):
    ok(cli("branch", "add", "acme/shop", "feature-x"))
    ok(cli("build", "trigger", "acme/shop", "main"))
    ok(cli("token", "create", "laptop", "--user", "alice@acme.test"))
    ok(cli("ingest-token", "create", "acme/shop", "agent"))
    ok(cli("hook", "create", "acme/shop"))
    rows = lambda *args: json.loads(ok(cli(*args, "--json", env=NARROW)))  # noqa: E731
    assert [u["email"] for u in rows("user", "list")] == ["alice@acme.test", "bob@acme.test", "eve@evil.test"]
    assert {o["slug"]: o["project_count"] for o in rows("org", "list")} == {"acme": 1, "evil": 0}
    assert [p["path"] for p in rows("org", "paths", "acme")] == [str(acme)]
    for verb in (("projects",), ("project", "list")):
        assert [(p["org_slug"], p["slug"]) for p in rows(*verb)] == [("acme", "shop")]
    assert {b["name"]: b["stage"] for b in rows("branch", "list", "acme/shop")} == {
        "main": "production", "feature-x": "development"}
    [build] = rows("builds", "acme/shop")
    assert build["branch"] == "main" and build["status"] == "queued" and len(build["commit_sha"]) == 40
    [queued] = rows("runs")
    assert queued["id"] == build["id"] and queued["project"] == "acme/shop"
    assert rows("workers") == []
    [token] = rows("token", "list", "--user", "alice@acme.test")
    assert token["name"] == "laptop" and "hash" not in json.dumps(token)
    [ingest] = rows("ingest-token", "list", "acme/shop")
    assert ingest["name"] == "agent" and ingest["revoked_at"] is None
    assert rows("hook", "deliveries", "acme/shop") == []


def test_runs_at_80_columns_keep_identifiers_whole(cli, acme):
    long_branch = "feature/a-rather-long-branch-name-for-the-queue"
    git(acme, "branch", long_branch)
    ok(cli("org", "create", "acme-industries-international", "--owner", "alice@acme.test"))
    ok(cli("org", "allow-path", "acme-industries-international", str(acme)))
    ok(cli("project", "create", "acme-industries-international/webshop-and-portal", "--repo", str(acme)))
    ok(cli("branch", "add", "acme/shop", long_branch))
    ok(cli("build", "trigger", "acme/shop", long_branch))
    ok(cli("build", "trigger", "acme-industries-international/webshop-and-portal", "main"))
    for args in (["runs"], ["builds", "acme/shop"], ["branch", "list", "acme/shop"], ["projects"], ["org", "list"]):
        out = ok(cli(*args, env=NARROW))
        assert "…" not in out, out
        assert all(len(line) <= 80 for line in out.splitlines()), out
    out = ok(cli("runs", env=NARROW))
    for whole in (long_branch, "acme/shop", "acme-industries-international/webshop-and-portal", "Queued"):
        assert whole in out, out
    short = ok(cli("branch", "list", "acme-industries-international/webshop-and-portal", env=NARROW))
    assert short.splitlines()[0].split() == ["branch", "stage", "builds", "last", "build", "commit", "when"]


def test_a_name_is_shown_as_it_is_never_as_markup(cli, acme):
    ok(cli("user", "create", "mallory@acme.test", "--name", "[red]Mallory[/]", "--no-password"))
    assert "[red]Mallory[/]" in ok(cli("user", "list", env=NARROW))


def help_of(cli, *args: str) -> str:
    return ok(cli(*args, "--help", env=NARROW))


@pytest.mark.parametrize("args", [(), ("up",), ("serve",), ("runner",), ("projects",), ("project", "list"),
                                  ("project", "set"), ("user",), ("user", "create"), ("hook",),
                                  ("hook", "create"), ("org",), ("logs",), ("runs",), ("token", "list")])
def test_help_reads_cleanly_at_80_columns(cli, args):
    text = help_of(cli, *args)
    assert "<bool>" not in text, text
    assert all(len(line) <= 80 for line in text.splitlines()), text
    described = [line for line in text.splitlines() if not line.startswith("Usage:")]
    assert not any(line.rstrip().endswith(("...", "-")) for line in described), text  # no cut sentence


def test_up_takes_the_flags_serve_takes(cli):
    up, serve = help_of(cli, "up"), help_of(cli, "serve")
    for flag in ("--host ADDRESS", "--port PORT", "--public-url URL"):
        assert flag in up and flag in serve
    assert "--json" in help_of(cli, "runs")
