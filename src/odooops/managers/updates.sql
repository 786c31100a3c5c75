-- Production updates, database copies and maintenance.

-- name: build_database
select ops.build_database(%(run_id)s, %(attempt)s, %(database)s);

-- name: maintenance_begin
select * from ops.maintenance_begin(%(run_id)s, %(attempt)s, %(branch_id)s, %(build_id)s);

-- name: serving
select ops.environment_serving(%(run_id)s, %(attempt)s, %(branch_id)s) as serving;

-- name: maintenance_end
select * from ops.maintenance_end(%(run_id)s, %(attempt)s, %(branch_id)s, %(build_id)s);

-- name: maintenance_abandon
select ops.maintenance_abandon(%(run_id)s, %(attempt)s, %(branch_id)s);

-- name: environment
select e.*, s.status as build_serve_status, s.error as build_serve_error
  from ops.environments e
  left join lateral (select x.status, x.error from ops.runs x
                      where x.branch_id = e.branch_id and x.kind = 'serve'
                        and (x.params ->> 'build_id')::bigint = e.build_id
                      order by x.id desc limit 1) s on true
 where e.branch_id = %(branch_id)s;

-- name: record
select * from ops.update_record(%(run_id)s, %(attempt)s, %(status)s, %(previous)s, %(copy_id)s, %(updated)s::text[],
                                %(installed)s::text[], %(failed_step)s, %(detail)s, %(seconds)s::numeric);

-- name: record_copy
select * from ops.record_copy(%(run_id)s, %(attempt)s, %(kind)s, %(build_id)s, %(database)s, %(host)s, %(size)s,
                              %(filestore_size)s, %(keep_days)s);

-- name: production_snapshot
select * from ops.production_snapshot(%(run_id)s, %(attempt)s);

-- name: copies_to_drop
select * from ops.copies_to_drop(%(host)s);

-- name: copy_dropped
select ops.copy_dropped(%(id)s);

-- name: refresh_snapshot
select * from ops.refresh_snapshot(%(project_id)s);

-- name: copies_of_branch
select id, kind, build_id, database, host, size_bytes, filestore_bytes, created_at, expires_at
  from ops.database_copies
 where branch_id = %(branch_id)s and dropped_at is null
 order by created_at desc, id desc;

-- name: snapshot_of_project
select c.id, c.database, c.build_id, c.created_at, c.size_bytes, c.filestore_bytes
  from ops.database_copies c join ops.branches b on b.id = c.branch_id
 where b.project_id = %(project_id)s and b.stage = 'production' and c.kind = 'snapshot' and c.dropped_at is null
 order by c.created_at desc, c.id desc limit 1;

-- name: updates_of_branch
select id, build_id, previous_build_id, status, updated_modules, installed_modules, failed_step, detail,
       maintenance_seconds, created_at, finished_at
  from ops.updates where branch_id = %(branch_id)s
 order by created_at desc, id desc limit %(limit)s;

-- name: update_of_build
select * from ops.updates where build_id = %(build_id)s;
