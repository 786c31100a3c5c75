"""`odooops login URL`: the CLI's verbs against a remote server over HTTP,
proven remote by a database URL that leads nowhere."""

from __future__ import annotations

import json
import stat

import httpx

from helpers import as_

NOWHERE = {"ODOOOPS_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/nothing"}


def test_login_use_and_logout(api, tenants, cli, settings):
    created = cli("user", "create", "carol@acme.test", "--password-stdin", input="carol's secret\n")
    assert created.returncode == 0, created.stderr
    assert cli("member", "add", "acme", "carol@acme.test", "--role", "developer").returncode == 0

    wrong = cli("login", api, "--email", "carol@acme.test", "--password-stdin", input="nope\n", env=NOWHERE)
    assert wrong.returncode == 1 and "error:" in wrong.stderr
    logged = cli("login", api, "--email", "carol@acme.test", "--password-stdin", input="carol's secret\n", env=NOWHERE)
    assert logged.returncode == 0 and "as carol@acme.test" in logged.stdout, logged.stderr
    stored = settings.data_dir.parent / "config" / "odooops" / "login.json"
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    token = json.loads(stored.read_text())["token"]

    remote = lambda *args: cli(*args, env=NOWHERE)  # noqa: E731
    listed = remote("projects")
    assert listed.returncode == 0 and "acme/shop" in listed.stdout and "evil/lab" not in listed.stdout, listed.stderr
    assert "feature" in remote("branch", "list", "acme/shop").stdout
    queued = remote("build", "trigger", "acme/shop", "feature")
    assert queued.returncode == 0 and "queued build" in queued.stdout, queued.stderr
    run_id = queued.stdout.split("queued build ")[1].split()[0]
    assert run_id in remote("builds", "acme/shop").stdout
    assert run_id in remote("runs").stdout
    assert "has no log lines" in remote("logs", run_id).stderr
    assert "canceled" in remote("run", "cancel", run_id).stdout
    rebuilt = remote("run", "rebuild", run_id)
    assert rebuilt.returncode == 0 and "queued" in rebuilt.stdout, rebuilt.stderr
    followed = remote("logs", "-f", run_id)
    assert followed.returncode == 0 and "Canceled" in followed.stderr, followed.stderr
    assert "shop" in remote("project", "show", "acme/shop").stdout
    # what the developer may not do, the server refuses, and the CLI says why
    refused = remote("hook", "create", "acme/shop")
    assert refused.returncode == 1 and "admin" in refused.stderr
    hidden = remote("branch", "list", "evil/lab")
    assert hidden.returncode == 1 and "no project 'evil/lab'" in hidden.stderr
    local_only = remote("user", "list")
    assert local_only.returncode == 1 and "control plane's own host" in local_only.stderr
    assert "--as does not apply" in remote("--as", "alice@acme.test", "projects").stderr

    out = remote("logout")
    assert out.returncode == 0 and "logged out" in out.stdout
    assert not stored.exists()
    assert httpx.get(f"{api}/api/v1/me", headers=as_(token)).status_code == 401
    assert remote("projects").returncode == 1  # local again, and that database leads nowhere


def test_login_with_a_token(api, tenants, cli):
    logged = cli("login", api, "--token-stdin", input=tenants["alice"] + "\n", env=NOWHERE)
    assert logged.returncode == 0 and "as alice@acme.test" in logged.stdout, logged.stderr
    assert "acme" in cli("org", "list", env=NOWHERE).stdout
    made = cli("hook", "create", "acme/shop", env=NOWHERE)
    assert made.returncode == 0 and "/api/v1/hooks/github/" in made.stdout and "ohs_" in made.stdout, made.stderr
    bad = cli("login", api, "--token-stdin", input="oot_nope\n", env=NOWHERE)
    assert bad.returncode == 1 and "not valid" in bad.stderr


def test_hook_urls_are_under_the_public_url(serve_api, tenants, cli):
    public = "https://ops.example.com"
    api = serve_api({"ODOOOPS_PUBLIC_URL": public + "/"})
    made = httpx.post(f"{api}/api/v1/projects/acme/shop/hook", headers=as_(tenants["alice"]))
    assert made.status_code == 201, made.text
    hook_id = made.json()["hook_id"]
    urls = {host: f"{public}/api/v1/hooks/{host}/{hook_id}" for host in ("github", "gitlab", "gitea")}
    assert made.json()["urls"] == urls
    assert httpx.get(f"{api}/api/v1/projects/acme/shop/hook", headers=as_(tenants["alice"])).json()["urls"] == urls
    # the CLI logged in to that server prints the server's URLs, whole at 80 columns, whatever its own settings
    assert cli("login", api, "--token-stdin", input=tenants["alice"] + "\n", env=NOWHERE).returncode == 0
    printed = cli("hook", "create", "acme/shop", env={**NOWHERE, "COLUMNS": "80", "ODOOOPS_PORT": "1"})
    assert printed.returncode == 0, printed.stderr
    assert f"{public}/api/v1/hooks/gitea/{hook_id}" in printed.stdout.split()
    listed = cli("projects", "--json", env=NOWHERE)
    assert [(p["org_slug"], p["slug"]) for p in json.loads(listed.stdout)] == [("acme", "shop")], listed.stderr
