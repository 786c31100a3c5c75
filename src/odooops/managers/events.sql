-- COPY cannot write into a table with row-level security, so lines are copied
-- into a temporary table of this connection and moved over in one statement;
-- the fencing trigger then checks the batch's attempt once.

-- name: staging_table
create temp table if not exists run_events_in (like ops.run_events including defaults) on commit delete rows;

-- name: copy
copy pg_temp.run_events_in (run_id, attempt, seq, ts, level, phase, stream, message) from stdin

-- name: move
insert into ops.run_events (run_id, attempt, seq, ts, level, phase, stream, message)
select run_id, attempt, seq, ts, level, phase, stream, message from pg_temp.run_events_in
on conflict (run_id, seq) do nothing;

-- name: fence
select from ops.fence(%(run_id)s, %(attempt)s);

-- name: messages
select seq, message from ops.run_events
 where run_id = %(run_id)s and seq > %(after_seq)s and seq < %(before_seq)s order by seq limit %(limit)s;

-- name: next_seq
select coalesce(max(seq), 0) + 1 as seq from ops.run_events where run_id = %(run_id)s;

-- name: record_artifact
insert into ops.artifacts (run_id, attempt, name, sha256, size, content_type, storage_uri)
values (%(run_id)s, %(attempt)s, %(name)s, %(sha256)s, %(size)s, %(content_type)s, %(storage_uri)s)
on conflict (run_id, name) do update
   set attempt = excluded.attempt, sha256 = excluded.sha256, size = excluded.size,
       content_type = excluded.content_type, storage_uri = excluded.storage_uri, created_at = now()
returning *;

-- name: artifacts
select * from ops.build_artifacts(%(run_id)s);
