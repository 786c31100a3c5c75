"""Console: how long the server takes to render each page, with a big tenant.

    .venv/bin/python bench/console.py [--projects 1000] [--builds 100000] [--requests 200] [--quick]

Starts its own embedded PostgreSQL, fills it with one user who owns
--projects projects (three branches each: production, staging, development)
and --builds builds spread over them (finished ones, a few running and
queued, one with a 2,000-line log), starts a real `odooops serve`, signs in and
asks for each page --requests times, one after another over one keep-alive
connection:

  render_p50/p95 <page>   the answer's round trip on loopback, as a browser
                          would wait for it (the whole HTML, server-rendered)

The issue's target is p95 <= 50 ms with 1,000 projects and 100,000 builds.
Prints one JSON line per figure on stdout, progress on stderr."""

import os
import sys

# bench/queue.py would shadow the standard library's queue module: put this
# folder last, so `import queue` finds the stdlib while `import _common` works.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path = [p for p in sys.path if os.path.abspath(p or ".") != _HERE] + [_HERE]

import argparse  # noqa: E402
import asyncio  # noqa: E402
import time  # noqa: E402

import httpx  # noqa: E402
import psycopg  # noqa: E402
from _common import embedded_postgres, emit, free_port, info, percentile, serve  # noqa: E402

from odooops import runtime  # noqa: E402
from odooops.managers.users import hash_password  # noqa: E402
from odooops.settings import Settings  # noqa: E402

EMAIL, PASSWORD = "owner@bench.test", "bench password 1"

# Seeded as the owner with triggers off (session_replication_role = replica):
# the state machine would refuse runs born finished, and they are history here.
SEED = """
insert into ops.users (email, name, password_hash) values (%(email)s, 'Bench Owner', %(hash)s);
insert into ops.orgs (slug, name) select 'org-' || o, 'Org ' || o from generate_series(0, 9) o;
insert into ops.org_members (org_id, user_id, role)
select o.id, u.id, 'owner' from ops.orgs o, ops.users u;
insert into ops.projects (org_id, slug, name, repo_url, default_branch)
select o.id, 'project-' || n, 'Project ' || n, 'https://git.example.com/bench/p' || n || '.git', 'main'
  from generate_series(0, %(projects)s - 1) n
  join ops.orgs o on o.slug = 'org-' || (n %% 10);
insert into ops.branches (project_id, name, stage)
select p.id, b.name, b.stage::ops.stage from ops.projects p,
       (values ('main', 'production'), ('staging', 'staging'), ('feature-x', 'development')) b(name, stage);
with b as materialized (select row_number() over (order by id) - 1 as i, id, project_id from ops.branches)
insert into ops.runs (kind, project_id, branch_id, commit_sha, trigger, status, result, queued_at, started_at,
                      finished_at, created_at)
select 'build', b.project_id, b.id, md5(n::text), 'push',
       case when n %% 97 = 0 then 'failed' else 'succeeded' end::ops.run_status,
       case when n %% 97 = 0 then 'ko' else 'ok' end::ops.run_result,
       now() - make_interval(secs => (%(builds)s - n) * 30),
       now() - make_interval(secs => (%(builds)s - n) * 30 - 5),
       now() - make_interval(secs => (%(builds)s - n) * 30 - 65),
       now() - make_interval(secs => (%(builds)s - n) * 30)
  from generate_series(1, %(builds)s) n
  join b on b.i = (n * 7919) %% (%(projects)s * 3);
"""
BUSY = """
update ops.runs set status = 'queued', result = null, started_at = null, finished_at = null
 where id in (select max(id) from ops.runs group by project_id order by 1 desc limit 20);
update ops.runs set status = 'running', result = null, finished_at = null
 where id in (select max(id) from ops.runs where status <> 'queued' group by project_id order by 1 desc limit 5);
insert into ops.run_events (run_id, seq, level, phase, stream, message)
select %(run)s, n, case when n %% 50 = 0 then 'warning' else 'info' end,
       (array['checkout', 'install', 'tests'])[1 + n / 700], 'stdout',
       'line ' || n || E' \\x1b[32mok\\x1b[0m some output of the build that is long enough to wrap a little'
  from generate_series(1, 2000) n;
"""


def run_each(conn: psycopg.Connection, script: str, params: dict) -> None:
    for statement in filter(str.strip, script.split(";\n")):
        conn.execute(statement, params)


def seed(owner: str, projects: int, builds: int) -> dict:
    """The data, and a few names to ask for: a project, a branch, a run."""
    with psycopg.connect(owner, autocommit=True) as conn:
        conn.execute("set session_replication_role = replica")
        with conn.transaction():
            params = {"email": EMAIL, "hash": hash_password(PASSWORD), "projects": projects, "builds": builds}
            run_each(conn, SEED, params)
            run = conn.execute("select max(id) from ops.runs where status = 'succeeded'").fetchone()[0]
            run_each(conn, BUSY, {"run": run})
        conn.execute("vacuum (analyze)")  # as a database that has settled: no autovacuum mid-measure
        project = conn.execute("select o.slug || '/' || p.slug from ops.projects p join ops.orgs o on o.id = p.org_id"
                               " order by (select count(*) from ops.runs r where r.project_id = p.id) desc"
                               " limit 1").fetchone()[0]
        return {"project": project, "run": run}


def pages(names: dict) -> dict[str, str]:
    project = names["project"]
    return {"projects": "/", "lanes": f"/p/{project}", "builds": f"/p/{project}/b/main",
            "log": f"/runs/{names['run']}", "queue": "/queue", "settings": "/settings",
            "project_settings": f"/p/{project}/settings"}


def measure(client: httpx.Client, path: str, requests: int) -> list[float]:
    times = []
    for _ in range(requests):
        start = time.perf_counter()
        answer = client.get(path)
        times.append((time.perf_counter() - start) * 1000)
        if answer.status_code != 200:
            raise SystemExit(f"GET {path} answered {answer.status_code}: {answer.text[:300]}")
    return times


def main(args: argparse.Namespace) -> None:
    with embedded_postgres() as (data_dir, _):
        owner = asyncio.run(runtime.prepare(Settings(data_dir=data_dir)))
        started = time.perf_counter()
        names = seed(owner, args.projects, args.builds)
        info(f"seeded {args.projects} projects and {args.builds} builds in {time.perf_counter() - started:.0f} s")
        port = free_port()
        server = serve(data_dir, port)
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
                signed = client.post("/login", data={"email": EMAIL, "password": PASSWORD})
                if signed.status_code != 303:
                    raise SystemExit(f"sign-in failed: {signed.status_code}")
                info(f"{args.requests} requests per page (load average {os.getloadavg()[0]:.1f})")
                for name, path in pages(names).items():
                    measure(client, path, 5)  # warm: templates compiled, plans cached
                    times = measure(client, path, args.requests)
                    info(f"  {name:<17} {path}: p50 {percentile(times, 50):.1f} ms, p95 {percentile(times, 95):.1f} ms")
                    emit(f"render_p50 {name}", "odooops", percentile(times, 50), "ms")
                    emit(f"render_p95 {name}", "odooops", percentile(times, 95), "ms")
        finally:
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--projects", type=int, default=1000, help="projects of the one user (default 1000)")
    p.add_argument("--builds", type=int, default=100_000, help="builds over all projects (default 100000)")
    p.add_argument("--requests", type=int, default=200, help="requests per page (default 200)")
    p.add_argument("--quick", action="store_true", help="smoke run: 100 projects, 5000 builds, 20 requests")
    args = p.parse_args()
    if args.quick:
        args.projects, args.builds, args.requests = 100, 5000, 20
    main(args)
