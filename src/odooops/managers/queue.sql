-- name: register_worker
select * from ops.register_worker(%(hostname)s, %(pid)s, %(version)s, %(capacity)s, %(kinds)s);

-- name: deregister_worker
select ops.deregister_worker(%(worker_id)s);

-- name: claim
select * from ops.claim_next_run(%(worker_id)s, %(kinds)s, %(lease_seconds)s, %(limit)s, %(start)s);

-- name: start
select * from ops.start_run(%(run_id)s, %(attempt)s);

-- name: record_commit
select * from ops.record_commit(%(run_id)s, %(attempt)s, %(message)s, %(author)s);

-- name: record_sources
select * from ops.record_sources(%(run_id)s, %(attempt)s, %(sources)s);

-- name: record_test_results
select ops.record_test_results(%(run_id)s, %(attempt)s, %(results)s) as recorded;

-- name: finish
select * from ops.finish_run(%(run_id)s, %(attempt)s, %(status)s, %(result)s, %(exit_code)s, %(error)s);

-- name: finish_many
select * from ops.finish_runs(%(run_ids)s, %(attempts)s, %(status)s, %(result)s);

-- name: finish_and_claim
select * from ops.finish_and_claim(%(run_ids)s, %(attempts)s, %(status)s, %(result)s,
                                   %(worker_id)s, %(kinds)s, %(lease_seconds)s, %(limit)s, %(start)s);

-- name: heartbeat
select h as run_id from ops.heartbeat(%(worker_id)s, %(runs)s, %(lease_seconds)s) as h;

-- name: reap
select * from ops.reap_expired_v2(%(base_seconds)s, %(cap_seconds)s, %(grace_seconds)s, %(forget_seconds)s);

-- name: enqueue
select * from ops.enqueue_run(%(project_id)s, %(kind)s, %(params)s, %(priority)s);

-- name: enqueue_many
insert into ops.runs (kind, project_id, params, priority, trigger)
select %(kind)s, %(project_id)s, p, %(priority)s, 'api' from unnest(%(params)s::jsonb[]) as p
returning id;

-- name: notify_many
select pg_notify('ops_runs', 'batch');

-- name: queue
select * from ops.queue();

-- name: workers
-- alive: heard from within the 30 s after which ops.queue() says no worker is running
select w.*, (select count(*) from ops.runs r where r.worker_id = w.id and r.status in ('claimed', 'running')) as busy,
       w.heartbeat_at > now() - interval '30 seconds' as alive
  from ops.workers w order by w.started_at;

-- name: authorize
select * from ops.authorize_run(%(run_id)s);

-- name: run_settings
select r.*, p.settings as project_settings, p.repo_url, p.odoo_version, b.name as branch_name, b.stage,
       b.settings as branch_settings, p.slug as project_slug, (select o.slug from ops.orgs o where o.id = p.org_id) as org_slug,
       array(select rr.path from ops.org_repo_roots rr where rr.org_id = p.org_id) as repo_roots,
       (select x.sources from ops.runs x where x.id = (r.params ->> 'build_id')::bigint) as build_sources
  from ops.runs r join ops.projects p on p.id = r.project_id left join ops.branches b on b.id = r.branch_id
 where r.id = %(run_id)s;
