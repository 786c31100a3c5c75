"""The HTTP API over real HTTP: a real server process, tokens, row-level
security with an owner, a teammate and a stranger, and one error shape."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import httpx
import pytest
from conftest import owner_conn
from helpers import as_, envelope, git, sse


def test_healthz_and_openapi(api):
    assert httpx.get(f"{api}/healthz").json()["ok"] is True
    schema = httpx.get(f"{api}/api/v1/openapi.json").json()
    assert "/api/v1/projects" in schema["paths"]
    assert httpx.get(f"{api}/api/v1/docs").status_code == 200


def test_no_or_bad_token_is_401(api, tenants):
    envelope(httpx.get(f"{api}/api/v1/projects"), 401, "unauthenticated")
    envelope(httpx.get(f"{api}/api/v1/projects", headers=as_("oot_nope")), 401, "unauthenticated")
    envelope(httpx.get(f"{api}/api/v1/projects", headers={"Authorization": "Basic x"}), 401, "unauthenticated")


def test_owner_teammate_stranger(api, tenants, settings):
    listed = {who: [f"{p['org_slug']}/{p['slug']}" for p in
                    httpx.get(f"{api}/api/v1/projects", headers=as_(tenants[who])).json()]
              for who in ("alice", "bob", "eve")}
    assert listed == {"alice": ["acme/shop"], "bob": ["acme/shop"], "eve": ["evil/lab"]}
    assert httpx.get(f"{api}/api/v1/projects/acme/shop", headers=as_(tenants["bob"])).status_code == 200
    # a stranger learns nothing, not even that it exists
    message = envelope(httpx.get(f"{api}/api/v1/projects/acme/shop", headers=as_(tenants["eve"])), 404, "not_found")
    assert message == envelope(httpx.get(f"{api}/api/v1/projects/acme/nothing", headers=as_(tenants["eve"])),
                               404, "not_found").replace("nothing", "shop")
    envelope(httpx.get(f"{api}/api/v1/projects/acme/shop/branches", headers=as_(tenants["eve"])), 404, "not_found")


def test_trigger_list_logs_cancel(api, tenants):
    alice = as_(tenants["alice"])
    created = httpx.post(f"{api}/api/v1/projects/acme/shop/branches/feature/builds", headers=alice)
    assert created.status_code == 201, created.text
    build = created.json()
    assert set(build) == {"build_id", "status", "queue_id", "created_at"} and build["status"] == "queued"
    builds = httpx.get(f"{api}/api/v1/projects/acme/shop/builds", headers=alice).json()
    assert [b["id"] for b in builds] == [build["build_id"]]
    assert httpx.get(f"{api}/api/v1/runs/{build['build_id']}/logs", headers=alice).json() == []
    envelope(httpx.get(f"{api}/api/v1/runs/{build['build_id']}", headers=as_(tenants["eve"])), 404, "not_found")
    envelope(httpx.post(f"{api}/api/v1/runs/{build['build_id']}/cancel", headers=as_(tenants["eve"])),
             404, "not_found")
    envelope(httpx.post(f"{api}/api/v1/runs/{build['build_id']}/cancel", headers=as_(tenants["bob"])),
             403, "forbidden")
    assert httpx.post(f"{api}/api/v1/runs/{build['build_id']}/cancel", headers=alice).json()["status"] == "canceled"
    envelope(httpx.post(f"{api}/api/v1/runs/{build['build_id']}/cancel", headers=alice), 409, "invalid_transition")


def test_roles_and_scopes(api, tenants):
    url = f"{api}/api/v1/projects/acme/shop/branches/main/builds"
    assert "cannot start builds on production" in envelope(httpx.post(url, headers=as_(tenants["bob"])),
                                                           403, "forbidden")
    assert "only read" in envelope(httpx.post(url, headers=as_(tenants["alice_read"])), 403, "forbidden")
    envelope(httpx.post(url, headers=as_(tenants["eve"])), 404, "not_found")


@pytest.mark.parametrize("path,body,status,code", [
    ("/api/v1/projects/acme/shop/branches/main/builds", {"commit": "not-a-sha"}, 422, "invalid_input"),
    ("/api/v1/projects/acme/shop/branches/nope/builds", None, 404, "not_found"),
    ("/api/v1/runs/abc/cancel", None, 422, "invalid_input"),
    ("/api/v1/nowhere", None, 404, "not_found"),
])
def test_bad_input_is_a_4xx_envelope(api, tenants, path, body, status, code):
    envelope(httpx.post(f"{api}{path}", json=body, headers=as_(tenants["alice"])), status, code)


def test_responses_carry_a_request_id(api):
    response = httpx.get(f"{api}/healthz", headers={"X-Request-Id": "abc123"})
    assert response.headers["x-request-id"] == "abc123"
    assert len(httpx.get(f"{api}/healthz").headers["x-request-id"]) == 32


def test_tokens_are_stored_hashed_and_expire(api, tenants, owner_db, cli):
    with owner_conn(owner_db) as conn:
        hashes = [r["token_hash"] for r in conn.execute("select token_hash from ops.api_tokens")]
        assert tenants["alice"] not in hashes and all(len(h) == 64 for h in hashes)
        conn.execute("update ops.api_tokens set expires_at = now() - interval '1 s'")
    envelope(httpx.get(f"{api}/api/v1/projects", headers=as_(tenants["alice"])), 401, "unauthenticated")
    listed = cli("token", "list", "--user", "alice@acme.test")
    assert listed.returncode == 0 and "test" in listed.stdout and "oot_" not in listed.stdout
    created = cli("token", "create", "cli", "--user", "alice@acme.test", "--scopes", "read,write")
    token = created.stdout.strip().splitlines()[-1]
    assert token.startswith("oot_")
    assert httpx.get(f"{api}/api/v1/projects", headers=as_(token)).status_code == 200
    assert cli("token", "create", "bad", "--user", "alice@acme.test", "--scopes", "admin").returncode == 1


def test_log_stream_resumes_and_ends_with_the_run(api, tenants, owner_db):
    alice = as_(tenants["alice"])
    run_id = httpx.post(f"{api}/api/v1/projects/acme/shop/branches/feature/builds", headers=alice).json()["build_id"]
    with owner_conn(owner_db) as conn:
        conn.execute("insert into ops.run_events (run_id, seq, message) select %s, g, 'line ' || g "
                     "from generate_series(1, 5) g", (run_id,))
        conn.execute("update ops.runs set status = 'canceled' where id = %s", (run_id,))
    with httpx.stream("GET", f"{api}/api/v1/runs/{run_id}/logs/stream", headers=alice, timeout=10) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = sse(response)
    assert [e["id"] for e in events if e["event"] == "line"] == ["1", "2", "3", "4", "5"]
    assert events[-1]["event"] == "end" and '"canceled"' in events[-1]["data"]
    with httpx.stream("GET", f"{api}/api/v1/runs/{run_id}/logs/stream",
                      headers={**alice, "Last-Event-ID": "3"}, timeout=10) as response:
        assert [e["id"] for e in sse(response) if e["event"] == "line"] == ["4", "5"]
    envelope(httpx.get(f"{api}/api/v1/runs/{run_id}/logs/stream", headers=as_(tenants["eve"])), 404, "not_found")


def test_create_org_project_branch_and_stage_rules(api, tenants, tmp_path):
    alice, bob, eve = (as_(tenants[n]) for n in ("alice", "bob", "eve"))
    repo = tmp_path / "repo"  # the tenants' repository, in the folder given to acme
    git(repo, "branch", "dev")
    org = httpx.post(f"{api}/api/v1/orgs", json={"slug": "eves-co", "name": "Eve's"}, headers=eve)
    assert org.status_code == 201 and org.json()["slug"] == "eves-co"
    assert [o["slug"] for o in httpx.get(f"{api}/api/v1/orgs", headers=eve).json()] == ["eves-co", "evil"]
    envelope(httpx.post(f"{api}/api/v1/orgs", json={"slug": "acme"}, headers=eve), 409, "conflict")
    body = {"org": "acme", "slug": "web", "repo_url": str(repo)}
    envelope(httpx.post(f"{api}/api/v1/projects", json=body, headers=eve), 404, "not_found")
    envelope(httpx.post(f"{api}/api/v1/projects", json=body, headers=bob), 403, "forbidden")
    created = httpx.post(f"{api}/api/v1/projects", json=body, headers=alice)
    assert created.status_code == 201, created.text
    assert [b["stage"] for b in httpx.get(f"{api}/api/v1/projects/acme/web/branches", headers=alice).json()] == \
        ["production"]
    assert httpx.post(f"{api}/api/v1/projects/acme/web/branches", json={"name": "dev"},
                      headers=alice).status_code == 201
    stage = f"{api}/api/v1/projects/acme/web/branches/dev"
    reason = envelope(httpx.patch(stage, json={"stage": "production"}, headers=alice), 409, "rule_violation")
    assert "move it to staging first" in reason
    envelope(httpx.patch(stage, json={"stage": "staging"}, headers=bob), 403, "forbidden")
    assert httpx.patch(stage, json={"stage": "staging"}, headers=alice).json()["stage"] == "staging"
    envelope(httpx.patch(stage, json={"stage": "qa"}, headers=alice), 422, "invalid_input")
    envelope(httpx.post(f"{api}/api/v1/projects", json={**body, "slug": "Bad Slug"}, headers=alice),
             422, "invalid_input")


def test_artifacts_list_and_download(api, tenants, settings, owner_db, tmp_path):
    from odooops.runner.artifacts import ArtifactStore

    alice = as_(tenants["alice"])
    run_id = httpx.post(f"{api}/api/v1/projects/acme/shop/branches/feature/builds", headers=alice).json()["build_id"]
    source = tmp_path / "report.xml"
    source.write_text("<ok/>\n")
    stored = ArtifactStore(settings.data_dir / "artifacts").put(source, "reports/report.xml")
    with owner_conn(owner_db) as conn:
        conn.execute("insert into ops.artifacts (run_id, name, sha256, size, content_type, storage_uri) "
                     "values (%s, %s, %s, %s, %s, %s)",
                     (run_id, stored.name, stored.sha256, stored.size, stored.content_type, stored.uri))
    listed = httpx.get(f"{api}/api/v1/runs/{run_id}/artifacts", headers=alice).json()
    assert [a["name"] for a in listed] == ["reports/report.xml"]
    url = f"{api}/api/v1/runs/{run_id}/artifacts/reports/report.xml"
    got = httpx.get(url, headers=alice)
    assert got.status_code == 200 and got.text == "<ok/>\n" and got.headers["etag"] == f'"{stored.sha256}"'
    assert httpx.get(url, headers={**alice, "If-None-Match": got.headers["etag"]}).status_code == 304
    envelope(httpx.get(url, headers=as_(tenants["eve"])), 404, "not_found")
    envelope(httpx.get(f"{api}/api/v1/runs/{run_id}/artifacts/nope.txt", headers=alice), 404, "not_found")


def test_artifact_downloads_are_never_sniffed_or_rendered(api, tenants, settings, owner_db, tmp_path):
    """A phase writes what it likes: an HTML file must not run as this site's
    page, and a log is shown as text, for the owner and the teammate alike."""
    from odooops.runner.artifacts import ArtifactStore

    alice, bob = as_(tenants["alice"]), as_(tenants["bob"])
    run_id = httpx.post(f"{api}/api/v1/projects/acme/shop/branches/feature/builds", headers=alice).json()["build_id"]
    store = ArtifactStore(settings.data_dir / "artifacts")
    for name, text in (("page.html", "<script>alert(1)</script>"), ("log.txt", "hello\n")):
        (tmp_path / name).write_text(text)
        stored = store.put(tmp_path / name, name)
        with owner_conn(owner_db) as conn:
            conn.execute("insert into ops.artifacts (run_id, name, sha256, size, content_type, storage_uri) "
                         "values (%s, %s, %s, %s, %s, %s)",
                         (run_id, stored.name, stored.sha256, stored.size, stored.content_type, stored.uri))
    for who in (alice, bob):
        page = httpx.get(f"{api}/api/v1/runs/{run_id}/artifacts/page.html", headers=who)
        assert page.status_code == 200 and page.headers["x-content-type-options"] == "nosniff"
        assert page.headers["content-disposition"].startswith("attachment;")
        assert "sandbox" in page.headers["content-security-policy"]
        log = httpx.get(f"{api}/api/v1/runs/{run_id}/artifacts/log.txt", headers=who)
        assert log.headers["x-content-type-options"] == "nosniff" and log.headers["content-type"].startswith("text/plain")
        assert log.headers["content-disposition"].startswith("inline;")
    envelope(httpx.get(f"{api}/api/v1/runs/{run_id}/artifacts/page.html", headers=as_(tenants["eve"])), 404, "not_found")


def test_access_log_is_json_lines_without_secrets(settings, tenants):
    from conftest import APP_PASSWORD, _wait_healthy, free_port

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ODOOOPS_")}
    env.update({"ODOOOPS_DATA_DIR": str(settings.data_dir), "ODOOOPS_DATABASE_URL": settings.database_url.reveal(),
                "ODOOOPS_APP_PASSWORD": APP_PASSWORD, "ODOOOPS_PORT": str(port)})
    proc = subprocess.Popen([sys.executable, "-m", "odooops", "serve"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(proc, base)
        httpx.get(f"{base}/api/v1/projects?secret=q", headers={**as_(tenants["alice"]), "X-Request-Id": "req-42"})
        httpx.post(f"{base}/api/v1/auth/login", json={"email": "alice@acme.test", "password": "hunter2-secret"})
    finally:
        proc.terminate()
        output = proc.communicate(timeout=10)[0]
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    assert {"request_id": "req-42", "method": "GET", "path": "/api/v1/projects", "status": 200}.items() <= \
        next(x for x in lines if x.get("request_id") == "req-42").items()
    assert any(x.get("path") == "/api/v1/auth/login" and x["status"] == 401 for x in lines)
    for secret in (tenants["alice"], "hunter2-secret", "secret=q"):
        assert secret not in output


def test_an_endpoint_that_forgot_its_filter_still_shows_only_the_callers_rows(settings, tenants):
    """Row-level security is the boundary, not the Python: a route that reads
    every run and every project, with no filter at all, shows each caller
    their own tenant's rows only."""
    import asyncio

    from fastapi import Depends

    from odooops import runtime
    from odooops.api.app import create_app
    from odooops.api.deps import actor
    from odooops.managers import Manager

    async def main():
        async with runtime.database(settings) as db:
            app = create_app(settings, db)

            @app.get("/careless")
            async def careless(who=Depends(actor)) -> dict:
                manager = Manager(db, who)
                projects = await manager.all("select o.slug || '/' || p.slug as ref from ops.projects p "
                                             "join ops.orgs o on o.id = p.org_id")
                runs = await manager.all("select project_id from ops.runs")
                return {"projects": sorted(r["ref"] for r in projects), "runs": len(runs)}

            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                await client.post("/api/v1/projects/acme/shop/branches/feature/builds", headers=as_(tenants["alice"]))
                return {who: (await client.get("/careless", headers=as_(tenants[who]))).json()
                        for who in ("alice", "bob", "eve")}

    seen = asyncio.run(main())
    assert seen["alice"] == seen["bob"] == {"projects": ["acme/shop"], "runs": 1}
    assert seen["eve"] == {"projects": ["evil/lab"], "runs": 0}
