-- COPY cannot write into a table with row-level security, so samples are
-- copied into a temporary table of this connection and moved over in one
-- statement, which adds the batch's project, branch and timestamp.

-- name: branch_in_project
select exists (select from ops.branches where id = %(branch_id)s and project_id = %(project_id)s) as ok;

-- name: staging_table
create temp table if not exists metrics_in (
    ts timestamptz, metric text, value double precision, dims jsonb
) on commit delete rows;

-- name: copy
copy pg_temp.metrics_in (ts, metric, value, dims) from stdin

-- name: move
insert into ops.metrics (project_id, branch_id, ts, metric, value, dims)
select %(project_id)s::uuid, %(branch_id)s::uuid, coalesce(ts, %(ts)s::timestamptz), metric, value, dims
  from pg_temp.metrics_in;

-- Buckets are aligned on the epoch, so a chart polled again keeps its buckets;
-- the window starts at the bucket holding `hours` ago.
-- name: since
select date_bin(make_interval(secs => %(step)s::float8), now() - make_interval(hours => %(hours)s::int),
                timestamptz 'epoch') as since;

-- Buckets without a sample are left out. Answered from metrics_series_idx alone.
-- name: series
select date_bin(make_interval(secs => %(step)s::float8), ts, timestamptz 'epoch') as bucket,
       avg(value) as avg, min(value) as min, max(value) as max, count(*) as count
  from ops.metrics
 where project_id = %(project_id)s and metric = %(metric)s and ts >= %(since)s
   and (%(branch_id)s::uuid is null or branch_id = %(branch_id)s::uuid)
 group by 1
 order by 1;
