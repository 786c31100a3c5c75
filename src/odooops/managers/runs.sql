-- name: enqueue_build
select * from ops.enqueue_build(%(branch_id)s, %(commit_sha)s, %(trigger)s);

-- name: branch_builds
select * from ops.branch_builds(%(branch_id)s, %(before)s, %(limit)s);

-- name: project_builds
select r.*, b.name as branch from ops.runs r join ops.branches b on b.id = r.branch_id
 where r.project_id = %(project_id)s and r.kind = 'build' and (%(before)s::bigint is null or r.id < %(before)s)
 order by r.id desc limit %(limit)s;

-- name: logs
select * from ops.build_logs(%(run_id)s, %(after_seq)s, %(limit)s);

-- name: get
select * from ops.runs where id = %(run_id)s;

-- name: cancel
select * from ops.cancel_run(%(run_id)s);
