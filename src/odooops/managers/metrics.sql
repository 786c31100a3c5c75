-- COPY cannot write into a table with row-level security, so samples are
-- copied into a temporary table of this connection and moved over in one
-- statement, which adds the batch's project, branch and timestamp, and each
-- sample's dims: the batch's distinct dims come once, as one jsonb array
-- parameter, and a sample names its own by position. Parsing dims text into
-- jsonb for each of 10,000 rows was most of what COPY cost.

-- The ingest's commit does not wait for its WAL to reach the disk: the commit
-- stalls of a busy disk (hundreds of ms) leave the request, and the WAL writer
-- flushes within three times wal_writer_delay (200 ms by default) anyway. What
-- a crash of PostgreSQL or its machine (not of the API) can then lose is the
-- batches answered in that last fraction of a second, each whole: a
-- transaction is still atomic, never half a batch, and a later commit is never
-- kept without an earlier one. SET LOCAL: this transaction only, everything
-- else OdooOps writes still waits for the flush.
-- name: no_commit_wait
set local synchronous_commit = off;

-- name: branch_in_project
select exists (select from ops.branches where id = %(branch_id)s and project_id = %(project_id)s) as ok;

-- name: staging_table
create temp table if not exists metrics_batch (
    ts timestamptz, metric text, value double precision, dims_n int
) on commit delete rows;

-- name: copy
copy pg_temp.metrics_batch (ts, metric, value, dims_n) from stdin

-- name: move
insert into ops.metrics (project_id, branch_id, ts, metric, value, dims)
select %(project_id)s::uuid, %(branch_id)s::uuid, coalesce(ts, %(ts)s::timestamptz), metric, value,
       %(dims)s::jsonb -> (dims_n - 1)
  from pg_temp.metrics_batch;

-- The batch added to the per-minute rollup, in key order: concurrent batches
-- of one project then lock its rows in the same order and cannot deadlock.
-- name: roll_up
insert into ops.metrics_minutely as r (project_id, metric, minute, branch_key, count, sum, min, max)
select %(project_id)s::uuid, metric, date_bin(interval '1 minute', coalesce(ts, %(ts)s::timestamptz), timestamptz 'epoch'),
       coalesce(%(branch_id)s::uuid, '00000000-0000-0000-0000-000000000000'), count(*), sum(value), min(value), max(value)
  from pg_temp.metrics_batch
 group by 2, 3
 order by 2, 3
on conflict (project_id, metric, minute, branch_key) do update
   set count = r.count + excluded.count, sum = r.sum + excluded.sum,
       min = least(r.min, excluded.min), max = greatest(r.max, excluded.max);

-- Buckets are aligned on the epoch, so a chart polled again keeps its buckets;
-- the window starts at the bucket holding `hours` ago.
-- name: since
select date_bin(make_interval(secs => %(step)s::float8), now() - make_interval(hours => %(hours)s::int),
                timestamptz 'epoch') as since;

-- Buckets without a sample are left out. Buckets of whole minutes, aligned
-- on the epoch like the rollup's minutes, are sums of whole minutes: the same
-- answer as from the samples, read from a sixth of the rows or fewer.
-- name: series_by_minute
select date_bin(make_interval(secs => %(step)s::float8), minute, timestamptz 'epoch') as bucket,
       sum(sum) / sum(count)::float8 as avg, min(min) as min, max(max) as max, sum(count)::bigint as count
  from ops.metrics_minutely
 where project_id = %(project_id)s and metric = %(metric)s and minute >= %(since)s
   and (%(branch_id)s::uuid is null or branch_key = %(branch_id)s::uuid)
 group by 1
 order by 1;

-- Other buckets from the samples, answered from metrics_series_idx alone.
-- name: series
select date_bin(make_interval(secs => %(step)s::float8), ts, timestamptz 'epoch') as bucket,
       avg(value) as avg, min(value) as min, max(value) as max, count(*) as count
  from ops.metrics
 where project_id = %(project_id)s and metric = %(metric)s and ts >= %(since)s
   and (%(branch_id)s::uuid is null or branch_id = %(branch_id)s::uuid)
 group by 1
 order by 1;
