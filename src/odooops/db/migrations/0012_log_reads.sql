-- Reading a run's log and files. The select policies of ops.run_events and
-- ops.artifacts ("visible with their run") are right, but the planner meets
-- them by hashing every run the caller may see: with 100,000 builds, 30 ms
-- for any read of one log, on every poll of a live tail. These functions
-- check once that the caller may see the run (a one-time filter: it names no
-- column), then read by the (run_id, seq) index. Security definer, so the
-- check here is the only one: keep it in each.

create function ops.can_read_run(p_run_id bigint) returns boolean
language sql stable security definer set search_path = '' as $$
    select ops.caller_is_service()
        or exists (select from ops.runs r where r.id = p_run_id and ops.project_role(r.project_id) is not null)
$$;

create or replace function ops.build_logs(p_run_id bigint, p_after_seq integer default 0, p_limit integer default 1000)
returns setof ops.run_events
language sql stable security definer set search_path = '' as $$
    select e.* from ops.run_events e
     where ops.can_read_run(p_run_id) and e.run_id = p_run_id and e.seq > coalesce(p_after_seq, 0)
     order by e.seq
     limit least(greatest(coalesce(p_limit, 1000), 1), 10000)
$$;

-- The last lines, oldest first.
create function ops.build_log_tail(p_run_id bigint, p_limit integer)
returns setof ops.run_events
language sql stable security definer set search_path = '' as $$
    select * from (
        select e.* from ops.run_events e
         where ops.can_read_run(p_run_id) and e.run_id = p_run_id
         order by e.seq desc
         limit least(greatest(coalesce(p_limit, 1000), 1), 10000)) last
     order by seq
$$;

-- Each phase as its lines tell it; skipped phases (named by the runner's
-- "phase X skipped" line) come with no lines.
create function ops.build_phases(p_run_id bigint)
returns table (name text, started_at timestamptz, ended_at timestamptz, lines bigint, errors bigint,
               last_system text, skipped boolean)
language sql stable security definer set search_path = '' as $$
    select name, started_at, ended_at, lines, errors, last_system, skipped from (
        select e.phase as name, min(e.ts) as started_at, max(e.ts) as ended_at, count(*) as lines,
               count(*) filter (where e.level in ('error', 'critical')) as errors,
               (array_agg(e.message order by e.seq desc) filter (where e.stream = 'system'))[1] as last_system,
               false as skipped, min(e.seq) as first_seq
          from ops.run_events e
         where ops.can_read_run(p_run_id) and e.run_id = p_run_id and e.phase is not null
         group by e.phase
        union all
        select substring(e.message from '^phase (.*) skipped$'), null, null, 0, 0, null, true, e.seq
          from ops.run_events e
         where ops.can_read_run(p_run_id) and e.run_id = p_run_id and e.phase is null
           and e.message like 'phase % skipped') phases
     order by skipped, first_seq
$$;

create function ops.build_artifacts(p_run_id bigint) returns setof ops.artifacts
language sql stable security definer set search_path = '' as $$
    select a.* from ops.artifacts a where ops.can_read_run(p_run_id) and a.run_id = p_run_id order by a.name
$$;

revoke all on function ops.can_read_run(bigint), ops.build_logs(bigint, integer, integer),
    ops.build_log_tail(bigint, integer), ops.build_phases(bigint), ops.build_artifacts(bigint) from public;
grant execute on function ops.can_read_run(bigint), ops.build_logs(bigint, integer, integer),
    ops.build_log_tail(bigint, integer), ops.build_phases(bigint), ops.build_artifacts(bigint)
    to authenticated, service_role;
