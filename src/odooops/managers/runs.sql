-- name: enqueue_build
select * from ops.request_build(%(branch_id)s, %(commit_sha)s, %(trigger)s);

-- name: project_runs
select r.*, b.name as branch from ops.runs r left join ops.branches b on b.id = r.branch_id
 where r.project_id = %(project_id)s
   and (%(branch_id)s::uuid is null or r.branch_id = %(branch_id)s)
   and (%(kind)s::text is null or r.kind = %(kind)s)
   and (%(status)s::ops.run_status[] is null or r.status = any(%(status)s::ops.run_status[]))
   and (%(since)s::timestamptz is null or r.created_at >= %(since)s)
   and (%(before)s::bigint is null or r.id < %(before)s)
 order by r.id desc limit %(limit)s;

-- name: phases
select * from ops.build_phases(%(run_id)s);

-- name: rebuild
select * from ops.rebuild(%(run_id)s);

-- name: logs
select * from ops.build_logs(%(run_id)s, %(after_seq)s, %(limit)s);

-- name: get
select * from ops.runs where id = %(run_id)s;

-- name: cancel
select * from ops.cancel_run(%(run_id)s);

-- name: place
select r.*, o.slug || '/' || p.slug as project_ref, b.name as branch, b.stage,
       ops.project_role(r.project_id) as my_role
  from ops.runs r join ops.projects p on p.id = r.project_id join ops.orgs o on o.id = p.org_id
  left join ops.branches b on b.id = r.branch_id
 where r.id = %(run_id)s;

-- name: tail
select * from ops.build_log_tail(%(run_id)s, %(limit)s);

-- name: tests
select module, test_class, method, outcome, duration_ms, traceback, fingerprint, log_seq, attempt
  from ops.build_tests(%(run_id)s);
