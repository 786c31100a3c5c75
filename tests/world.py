"""Two tenants to test isolation with: org `acme` (owner Alice, teammate Bob)
and org `evil` (owner Eve, the stranger). Written as the owner role."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

import psycopg
from psycopg.rows import dict_row

SHA = "0123456789abcdef0123456789abcdef01234567"


@dataclass
class World:
    alice: UUID
    bob: UUID
    eve: UUID
    carol: UUID         # in no org
    acme: UUID
    evil: UUID
    shop: UUID          # acme's project
    lab: UUID           # evil's project
    main: UUID          # shop's production branch
    staging: UUID
    dev: UUID
    shop_runs: dict     # stage -> run id (queued build)
    lab_run: int
    worker: UUID


def _one(conn, sql: str, params: tuple = ()) -> dict:
    return conn.execute(sql, params).fetchone()


def _user(conn, email: str) -> UUID:
    return _one(conn, "insert into ops.users (email, name) values (%s, %s) returning id", (email, email.split("@")[0]))["id"]


def _project(conn, org: UUID, slug: str) -> UUID:
    return _one(conn, "insert into ops.projects (org_id, slug, name, repo_url) values (%s, %s, %s, %s) returning id",
                (org, slug, slug.title(), f"/srv/git/{slug}.git"))["id"]


def _branch(conn, project: UUID, name: str, stage: str) -> UUID:
    return _one(conn, "insert into ops.branches (project_id, name, stage) values (%s, %s, %s) returning id",
                (project, name, stage))["id"]


def _run(conn, project: UUID, branch: UUID, worker: UUID) -> int:
    run = _one(conn, "insert into ops.runs (project_id, branch_id, commit_sha) values (%s, %s, %s) returning id",
               (project, branch, SHA))["id"]
    conn.execute("insert into ops.run_events (run_id, seq, message) values (%s, 1, 'hello'), (%s, 2, 'world')", (run, run))
    conn.execute("insert into ops.artifacts (run_id, name, sha256, size, storage_uri) values (%s, 'log.txt', %s, 3, 'cas://x')",
                 (run, "a" * 64))
    return run


def seed(owner_conninfo: str, bob_role: str | None = "developer") -> World:
    with psycopg.connect(owner_conninfo, autocommit=True, row_factory=dict_row) as conn, conn.transaction():
        alice, bob, eve, carol = (_user(conn, e) for e in
                                  ("alice@acme.test", "bob@acme.test", "eve@evil.test", "carol@nowhere.test"))
        acme = _one(conn, "insert into ops.orgs (slug, name) values ('acme', 'Acme') returning id")["id"]
        evil = _one(conn, "insert into ops.orgs (slug, name) values ('evil', 'Evil') returning id")["id"]
        conn.execute("insert into ops.org_members values (%s, %s, 'owner'), (%s, %s, 'owner')", (acme, alice, evil, eve))
        if bob_role:
            conn.execute("insert into ops.org_members values (%s, %s, %s)", (acme, bob, bob_role))
        shop, lab = _project(conn, acme, "shop"), _project(conn, evil, "lab")
        main, staging, dev = (_branch(conn, shop, n, s) for n, s in
                              (("main", "production"), ("staging", "staging"), ("dev", "development")))
        lab_main = _branch(conn, lab, "main", "production")
        conn.execute("insert into ops.project_members values (%s, %s, 'owner'), (%s, %s, 'owner')",
                     (shop, alice, lab, eve))
        worker = _one(conn, "insert into ops.workers (hostname, pid, version) values ('h', 1, 'v') returning id")["id"]
        shop_runs = {stage: _run(conn, shop, b, worker) for stage, b in
                     (("production", main), ("staging", staging), ("development", dev))}
        lab_run = _run(conn, lab, lab_main, worker)
        for user in (alice, bob, eve):
            conn.execute("insert into ops.api_tokens (user_id, name, token_hash) values (%s, 't', %s)",
                         (user, f"hash-{user}"))
            conn.execute("insert into ops.sessions (user_id, token_hash) values (%s, %s)", (user, f"session-{user}"))
        conn.execute("insert into ops.login_failures (email, address) values ('alice@acme.test', '10.0.0.1')")
        conn.execute("insert into ops.org_repo_roots values (%s, '/srv/git/acme'), (%s, '/srv/git/evil')", (acme, evil))
        for project in (shop, lab):
            hook = _one(conn, "insert into ops.hooks (project_id) values (%s) returning id", (project,))["id"]
            delivery = _one(conn, "insert into ops.hook_deliveries (host, hook_id, project_id, delivery_id, event, "
                                  "headers, body) values ('github', %s, %s, 'd1', 'push', '{}', '{}') returning id",
                            (hook, project))["id"]
            conn.execute("insert into ops.hook_effects (project_id, key, delivery_id) values (%s, 'k', %s)",
                         (project, delivery))
        for stage, branch in (("production", main), ("staging", staging), ("development", dev)):
            # no host: runs aimed at production's host (its builds, staging's) stay claimable by any runner
            env = _one(conn, "insert into ops.environments (project_id, branch_id, label, status, build_id) "
                             "values (%s, %s, %s, 'running', %s) returning id",
                       (shop, branch, f"{stage}-shop-acme", shop_runs[stage]))["id"]
        conn.execute("insert into ops.connect_tokens (environment_id, token_sha256, login, expires_at) "
                     "values (%s, 'seeded', 'admin', now())", (env,))
        conn.execute("insert into ops.mail_events (environment_id, project_id, branch_id, size_bytes, sha256) "
                     "values (%s, %s, %s, 10, %s)", (env, shop, dev, "c" * 64))
        conn.execute("insert into ops.database_copies (project_id, branch_id, kind, build_id, database, host) "
                     "values (%s, %s, 'update', %s, 'acme-shop-main-pre-1', 'h')", (shop, main, shop_runs["production"]))
        conn.execute("insert into ops.updates (project_id, branch_id, build_id, status) values (%s, %s, %s, "
                     "'succeeded')", (shop, main, shop_runs["production"]))
        conn.execute("insert into ops.environment_domains (domain, project_id, branch_id) "
                     "values ('shop.acme.test', %s, %s)", (shop, main))
        for project, branch in ((shop, main), (lab, lab_main)):
            conn.execute("insert into ops.ingest_tokens (project_id, name, token_hash) values (%s, 'agent', %s)",
                         (project, f"ingest-{project}"))
            conn.execute("insert into ops.metrics (project_id, branch_id, ts, metric, value) "
                         "values (%s, %s, now(), 'odoo.cpu', 1)", (project, branch))
            conn.execute("insert into ops.metrics_minutely values (%s, 'odoo.cpu', now(), %s, 1, 1, 1, 1)",
                         (project, branch))
    return World(alice, bob, eve, carol, acme, evil, shop, lab, main, staging, dev, shop_runs, lab_run, worker)
