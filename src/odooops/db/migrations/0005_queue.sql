-- The queue: enqueue with supersede, debounce and de-duplication; claims with
-- SKIP LOCKED; leases, heartbeats and a reaper; fencing by (run_id, attempt).
--   OP004 stale attempt: the writer no longer holds the run.

-- A reaper may give up on a run that was claimed but never started.
insert into ops.run_transitions values ('claimed', 'failed');

-- Which attempt wrote a line or an artifact; null for notes of the control plane.
alter table ops.run_events add column attempt integer;

-- A foreign key checks each line on its own, which halves how many lines a
-- second a runner can write; the statement trigger below checks a batch's
-- runs once instead, and deleting runs deletes their lines.
alter table ops.run_events drop constraint run_events_run_id_fkey;

create function ops.run_events_follow_runs() returns trigger
language plpgsql security definer set search_path = '' as $$
begin
    delete from ops.run_events e using old_rows o where e.run_id = o.id;
    return null;
end
$$;

create trigger runs_delete_events after delete on ops.runs
    referencing old table as old_rows for each statement execute function ops.run_events_follow_runs();
alter table ops.artifacts add column attempt integer;
alter table ops.workers add column capacity integer not null default 1,
                        add column kinds text[];

create index runs_active_branch_idx on ops.runs (branch_id) where status in ('claimed', 'running');
create index runs_active_project_idx on ops.runs (project_id) where status in ('claimed', 'running');
create index runs_worker_idx on ops.runs (worker_id) where status in ('claimed', 'running');

create function ops.project_setting(p_project_id uuid, p_key text, p_default integer) returns integer
language sql stable set search_path = '' as $$
    select coalesce((select (p.settings ->> p_key)::integer from ops.projects p where p.id = p_project_id), p_default)
$$;

-- The run as `p_attempt` holds it, locked against the reaper until the
-- caller's transaction ends; OP004 when that attempt is no longer current.
create function ops.fence(p_run_id bigint, p_attempt integer) returns ops.runs
language plpgsql set search_path = '' as $$
declare
    r ops.runs;
begin
    select * into r from ops.runs
     where id = p_run_id and attempt = p_attempt and status in ('claimed', 'running')
       for share;
    if not found then
        raise exception 'run % attempt % is no longer current', p_run_id, p_attempt using errcode = 'OP004';
    end if;
    return r;
end
$$;

-- Fencing for log lines and artifacts, checked once per statement so batches stay cheap.
create function ops.check_attempt_rows() returns trigger
language plpgsql security definer set search_path = '' as $$
declare
    batch record;
begin
    for batch in select distinct n.run_id, n.attempt from new_rows n loop
        if batch.attempt is not null then
            perform ops.fence(batch.run_id, batch.attempt);
        elsif not exists (select from ops.runs r where r.id = batch.run_id) then
            raise exception 'run % does not exist', batch.run_id using errcode = '23503';
        end if;
    end loop;
    return null;
end
$$;

create trigger run_events_fence after insert on ops.run_events
    referencing new table as new_rows for each statement execute function ops.check_attempt_rows();
create trigger artifacts_fence after insert on ops.artifacts
    referencing new table as new_rows for each statement execute function ops.check_attempt_rows();

-- Security definer, so that superseding and debouncing may touch runs the
-- caller could not update directly; the caller's rights are checked here.
create function ops.enqueue_build(
    p_branch_id uuid,
    p_commit_sha text,
    p_trigger ops.run_trigger default 'manual',
    p_ref text default null,
    p_pr_number integer default null,
    p_params jsonb default '{}',
    p_authorized boolean default true)
returns ops.runs
language plpgsql security definer set search_path = '' as $$
declare
    b ops.branches;
    r ops.runs;
    v_sha text := lower(p_commit_sha);
    v_params jsonb := coalesce(p_params, '{}');
    v_quiet integer;
begin
    select * into b from ops.branches where id = p_branch_id;
    if not found or (not ops.caller_is_service() and ops.project_role(b.project_id) is null) then
        raise exception 'branch not found' using errcode = 'OP002';
    end if;
    if b.archived_at is not null then
        raise exception 'branch "%" is archived', b.name using errcode = 'OP003';
    end if;
    if not ops.caller_is_service() and not ops.can_operate_branch(b.id) then
        raise exception 'your role in this project cannot start builds on % branches', b.stage
            using errcode = '42501';
    end if;
    -- one build per (branch, commit, parameters) until it finishes
    select * into r from ops.runs x
     where x.branch_id = b.id and x.kind = 'build' and x.commit_sha = v_sha and x.params = v_params
       and x.status in ('awaiting_authorization', 'queued', 'claimed', 'running')
     order by x.id desc limit 1;
    if found then
        return r;
    end if;
    v_quiet := ops.project_setting(b.project_id, 'coalesce_seconds', 0);
    if v_quiet > 0 and p_authorized then
        -- a push inside the quiet window replaces the waiting build's commit
        update ops.runs x set commit_sha = v_sha, ref = coalesce(p_ref, x.ref), params = v_params,
                              not_before = now() + make_interval(secs => v_quiet)
         where x.id = (select y.id from ops.runs y
                        where y.branch_id = b.id and y.kind = 'build' and y.status = 'queued' and y.not_before > now()
                        order by y.id desc limit 1)
        returning * into r;
        if found then
            return r;
        end if;
    end if;
    insert into ops.runs (kind, project_id, branch_id, commit_sha, ref, pr_number, trigger, status, priority,
                          params, not_before, created_by,
                          max_attempts)
    values ('build', b.project_id, b.id, v_sha, coalesce(p_ref, 'refs/heads/' || b.name), p_pr_number, p_trigger,
            case when p_authorized then 'queued' else 'awaiting_authorization' end::ops.run_status,
            ops.build_priority(b.stage, p_trigger), v_params,
            case when v_quiet > 0 then now() + make_interval(secs => v_quiet) end, ops.current_user_id(),
            least(greatest(ops.project_setting(b.project_id, 'max_attempts', 3), 1), 5))
    returning * into r;
    -- newest commit wins: older queued builds of the branch are superseded
    update ops.runs x set status = 'superseded', superseded_by = r.id
     where x.branch_id = b.id and x.kind = 'build' and x.status = 'queued' and x.id < r.id;
    if coalesce((select (p.settings ->> 'cancel_in_progress')::boolean from ops.projects p
                  where p.id = b.project_id), false) then
        perform ops.cancel_runs_of_branch(b.id, r.id);
    end if;
    if r.status = 'queued' then
        perform pg_notify('ops_runs', r.id::text);
    end if;
    return r;
end
$$;

create function ops.cancel_runs_of_branch(p_branch_id uuid, p_newer bigint) returns void
language plpgsql security definer set search_path = '' as $$
declare
    c bigint;
begin
    for c in
        update ops.runs x set status = 'canceled', error = format('canceled: run %s is newer', p_newer)
         where x.branch_id = p_branch_id and x.kind = 'build' and x.status in ('claimed', 'running') and x.id < p_newer
        returning x.id
    loop
        perform pg_notify('ops_run_canceled', c::text);
    end loop;
end
$$;

-- A run locked for a change, if the caller may see it; else "not found",
-- exactly as for a run that does not exist.
create function ops.lock_visible_run(p_run_id bigint) returns ops.runs
language plpgsql security definer set search_path = '' as $$
declare
    r ops.runs;
begin
    select * into r from ops.runs where id = p_run_id for update;
    if not found or (not ops.caller_is_service() and ops.project_role(r.project_id) is null) then
        raise exception 'run % not found', p_run_id using errcode = 'OP002';
    end if;
    return r;
end
$$;

-- Security definer, so the reason can be recorded; the caller's rights are checked here.
create function ops.cancel_run(p_run_id bigint) returns ops.runs
language plpgsql security definer set search_path = '' as $$
declare
    r ops.runs;
begin
    r := ops.lock_visible_run(p_run_id);
    if not ops.may_operate(r) then
        raise exception 'your role in this project cannot cancel run %', p_run_id using errcode = '42501';
    end if;
    if r.status in ('succeeded', 'failed', 'canceled', 'superseded') then
        raise exception 'run % has already finished: it is %', p_run_id, r.status using errcode = 'OP001';
    end if;
    update ops.runs set status = 'canceled', error = 'canceled by request' where id = p_run_id returning * into r;
    perform pg_notify('ops_run_canceled', r.id::text);
    return r;
end
$$;

-- Background work other than builds (backups, scans, chores): control plane only.
create function ops.enqueue_run(p_project_id uuid, p_kind text, p_params jsonb default '{}',
                                p_priority integer default 0, p_branch_id uuid default null,
                                p_trigger ops.run_trigger default 'api')
returns ops.runs
language plpgsql set search_path = '' as $$
declare
    r ops.runs;
begin
    insert into ops.runs (kind, project_id, branch_id, trigger, priority, params)
    values (p_kind, p_project_id, p_branch_id, p_trigger, p_priority, coalesce(p_params, '{}'))
    returning * into r;
    perform pg_notify('ops_runs', r.id::text);
    return r;
end
$$;

-- A fork's pull request runs only once an admin says so.
create function ops.authorize_run(p_run_id bigint) returns ops.runs
language plpgsql security definer set search_path = '' as $$
declare
    r ops.runs;
begin
    r := ops.lock_visible_run(p_run_id);
    if not ops.caller_is_service() and coalesce(ops.project_role(r.project_id) < 'admin', true) then
        raise exception 'only an admin of this project can authorize runs' using errcode = '42501';
    end if;
    if r.status <> 'awaiting_authorization' then
        raise exception 'run % is not awaiting authorization: it is %', p_run_id, r.status using errcode = 'OP001';
    end if;
    update ops.runs set status = 'queued' where id = p_run_id returning * into r;
    perform pg_notify('ops_runs', r.id::text);
    return r;
end
$$;

-- Runner side. These run as service_role.

create function ops.register_worker(p_hostname text, p_pid integer, p_version text, p_capacity integer default 1,
                                    p_kinds text[] default null)
returns ops.workers
language sql set search_path = '' as $$
    insert into ops.workers (hostname, pid, version, capacity, kinds)
    values (p_hostname, p_pid, p_version, p_capacity, p_kinds) returning *
$$;

-- The next runs (at most p_limit) this worker may take: queued, due, of a
-- kind it runs, their branch not busy, their project under its concurrency
-- cap. No row when there is none. attempt in a row is its fencing token.
-- With p_start the runs go on to `running` in the same transaction.
-- The planner settings keep the candidates an ordered walk of runs_queue_idx
-- that stops after a few rows: right after a bulk enqueue, before statistics
-- catch up, it would otherwise read and sort the whole queue on every claim.
create function ops.claim_next_run(p_worker_id uuid, p_kinds text[] default null, p_lease_seconds integer default 30,
                                   p_limit integer default 1, p_start boolean default false)
returns setof ops.runs
language plpgsql set search_path = '' set enable_bitmapscan = off set enable_sort = off as $$
declare
    c record;
    r ops.runs;
    taken integer := 0;
    cap integer;
    cap_of uuid;
begin
    for c in
        select q.id, q.project_id, q.branch_id from ops.runs q
         where q.status = 'queued' and (q.not_before is null or q.not_before <= now())
           and (p_kinds is null or q.kind = any (p_kinds))
         order by q.priority desc, q.id
         limit greatest(p_limit, 1) * 4 + 16
    loop
        -- Lock only a run we take; one another claimer holds is skipped.
        perform from ops.runs x where x.id = c.id and x.status = 'queued' for update skip locked;
        continue when not found;
        -- Claims of one branch or one capped project take turns, so that two
        -- claimers cannot both see it idle; a busy lock means try the next run.
        if c.branch_id is not null then
            continue when not pg_try_advisory_xact_lock(hashtextextended(c.branch_id::text, 0));
            continue when exists (select from ops.runs x where x.branch_id = c.branch_id
                                                          and x.status in ('claimed', 'running'));
        end if;
        if cap_of is distinct from c.project_id then  -- candidates mostly share a project
            cap := ops.project_setting(c.project_id, 'max_concurrent_runs', 0);
            cap_of := c.project_id;
        end if;
        if cap > 0 then
            continue when not pg_try_advisory_xact_lock(hashtextextended(c.project_id::text, 1));
            continue when (select count(*) from ops.runs x where x.project_id = c.project_id
                                                             and x.status in ('claimed', 'running')) >= cap;
        end if;
        update ops.runs set status = 'claimed', attempt = attempt + 1, worker_id = p_worker_id,
                            lease_expires_at = now() + make_interval(secs => p_lease_seconds)
         where id = c.id
        returning * into r;
        if p_start then
            update ops.runs set status = 'running' where id = c.id returning * into r;
        end if;
        return next r;
        taken := taken + 1;
        exit when taken >= p_limit;
    end loop;
end
$$;

create function ops.start_run(p_run_id bigint, p_attempt integer) returns ops.runs
language plpgsql set search_path = '' as $$
declare
    r ops.runs;
begin
    perform ops.fence(p_run_id, p_attempt);
    update ops.runs set status = 'running' where id = p_run_id and status = 'claimed' returning * into r;
    return r;
end
$$;

create function ops.finish_run(p_run_id bigint, p_attempt integer, p_status ops.run_status,
                               p_result ops.run_result default null, p_exit_code integer default null,
                               p_error text default null)
returns ops.runs
language plpgsql set search_path = '' as $$
declare
    r ops.runs;
begin
    perform ops.fence(p_run_id, p_attempt);
    if p_status not in ('succeeded', 'failed', 'canceled', 'queued') then
        raise exception 'a runner ends a run succeeded, failed, canceled or queued, not %', p_status
            using errcode = 'OP001';
    end if;
    update ops.runs set status = p_status, result = p_result, exit_code = p_exit_code, error = p_error,
                        not_before = case when p_status = 'queued' then null else not_before end
     where id = p_run_id
    returning * into r;
    if p_status = 'queued' then
        perform pg_notify('ops_runs', p_run_id::text);
    end if;
    return r;
end
$$;

-- Ends many runs of this worker at once (a batch it claimed together), or none
-- of them: OP004 when any of the attempts is no longer current.
create function ops.finish_runs(p_run_ids bigint[], p_attempts integer[], p_status ops.run_status,
                                p_result ops.run_result default null)
returns setof ops.runs
language plpgsql set search_path = '' as $$
declare
    done integer;
begin
    if p_status not in ('succeeded', 'failed', 'canceled') then
        raise exception 'runs end succeeded, failed or canceled, not %', p_status using errcode = 'OP001';
    end if;
    return query
        update ops.runs r set status = p_status, result = p_result
         where r.id = any (p_run_ids) and r.attempt = p_attempts[array_position(p_run_ids, r.id)]
           and r.status in ('claimed', 'running')
        returning r.*;
    get diagnostics done = row_count;
    if done <> coalesce(cardinality(p_run_ids), 0) then
        raise exception '% of % runs are no longer held by their attempt', cardinality(p_run_ids) - done,
            cardinality(p_run_ids) using errcode = 'OP004';
    end if;
end
$$;

-- A worker's loop in one transaction: end what it ran, take what comes next.
-- One commit a run instead of two, where runs are short.
create function ops.finish_and_claim(p_run_ids bigint[], p_attempts integer[], p_status ops.run_status,
                                     p_result ops.run_result, p_worker_id uuid, p_kinds text[] default null,
                                     p_lease_seconds integer default 30, p_limit integer default 1,
                                     p_start boolean default false)
returns setof ops.runs
language plpgsql set search_path = '' as $$
begin
    perform ops.finish_runs(p_run_ids, p_attempts, p_status, p_result);
    return query select * from ops.claim_next_run(p_worker_id, p_kinds, p_lease_seconds, p_limit, p_start);
end
$$;

-- Renews the worker and the leases of the runs it still holds; returns the
-- runs among p_runs it no longer holds (canceled, reaped), which it must stop.
create function ops.heartbeat(p_worker_id uuid, p_runs bigint[], p_lease_seconds integer default 30)
returns setof bigint
language plpgsql set search_path = '' as $$
begin
    update ops.workers set heartbeat_at = now() where id = p_worker_id;
    update ops.runs set lease_expires_at = now() + make_interval(secs => p_lease_seconds)
     where worker_id = p_worker_id and status in ('claimed', 'running');
    return query
        select h.id from unnest(p_runs) as h(id)
         where not exists (select from ops.runs x where x.id = h.id and x.worker_id = p_worker_id
                                                     and x.status in ('claimed', 'running'));
end
$$;

-- Runs whose lease expired go back to the queue with exponential backoff
-- while attempts remain, else fail with "worker lost". Safe to run anywhere,
-- any number of times at once.
create function ops.reap_expired(p_base_seconds integer default 5, p_cap_seconds integer default 300)
returns setof ops.runs
language plpgsql set search_path = '' as $$
declare
    x ops.runs;
begin
    for x in
        select * from ops.runs where status in ('claimed', 'running') and lease_expires_at < now()
           for update skip locked
    loop
        if x.attempt < x.max_attempts then
            update ops.runs set status = 'queued', error = 'worker lost',
                   not_before = now() + make_interval(secs => least(p_cap_seconds, p_base_seconds * 2 ^ (x.attempt - 1)))
             where id = x.id returning * into x;
        else
            update ops.runs set status = 'failed', error = 'worker lost' where id = x.id returning * into x;
        end if;
        return next x;
    end loop;
end
$$;

create function ops.deregister_worker(p_worker_id uuid) returns void
language sql set search_path = '' as $$
    delete from ops.workers where id = p_worker_id
$$;

-- The queue as a person wants to see it: what waits, and why.
create function ops.queue()
returns table (id bigint, kind text, project text, branch text, commit_sha text, status ops.run_status,
               priority integer, attempt integer, max_attempts integer, worker_id uuid, queued_at timestamptz,
               started_at timestamptz, reason text)
language sql stable set search_path = '' as $$
    select r.id, r.kind, o.slug || '/' || p.slug, b.name, r.commit_sha, r.status, r.priority, r.attempt,
           r.max_attempts, r.worker_id, r.queued_at, r.started_at,
           case
               when r.status = 'awaiting_authorization' then 'waits for an admin to authorize it (pull request from a fork)'
               when r.status in ('claimed', 'running') then 'running on a worker'
               when r.not_before > now() then 'waits until ' || to_char(r.not_before, 'HH24:MI:SS')
                    || case when r.attempt > 0 then ' (retry after: ' || coalesce(r.error, 'failure') || ')'
                            else ' (quiet time after a push)' end
               when exists (select from ops.runs x where x.branch_id = r.branch_id and x.status in ('claimed', 'running'))
                    then 'branch is busy with run ' || (select min(x.id) from ops.runs x where x.branch_id = r.branch_id
                                                        and x.status in ('claimed', 'running'))
               when ops.project_setting(r.project_id, 'max_concurrent_runs', 0) > 0
                    and (select count(*) from ops.runs x where x.project_id = r.project_id
                          and x.status in ('claimed', 'running')) >= ops.project_setting(r.project_id, 'max_concurrent_runs', 0)
                    then 'project is at its limit of ' || ops.project_setting(r.project_id, 'max_concurrent_runs', 0)
                         || ' concurrent runs'
               when not exists (select from ops.workers w where w.heartbeat_at > now() - interval '30 seconds')
                    then 'no worker is running: start one with `odooops runner`'
               else 'next in line'
           end
      from ops.runs r
      join ops.projects p on p.id = r.project_id
      join ops.orgs o on o.id = p.org_id
      left join ops.branches b on b.id = r.branch_id
     where r.status in ('awaiting_authorization', 'queued', 'claimed', 'running')
     order by (r.status in ('claimed', 'running')) desc, r.priority desc, r.id
$$;

revoke all on all functions in schema ops from public;
grant execute on function
    ops.project_setting(uuid, text, integer), ops.queue(),
    ops.enqueue_build(uuid, text, ops.run_trigger, text, integer, jsonb, boolean),
    ops.cancel_run(bigint), ops.authorize_run(bigint)
    to authenticated, service_role;
grant execute on function
    ops.fence(bigint, integer), ops.register_worker(text, integer, text, integer, text[]),
    ops.claim_next_run(uuid, text[], integer, integer, boolean), ops.start_run(bigint, integer),
    ops.finish_runs(bigint[], integer[], ops.run_status, ops.run_result),
    ops.finish_and_claim(bigint[], integer[], ops.run_status, ops.run_result, uuid, text[], integer, integer, boolean),
    ops.finish_run(bigint, integer, ops.run_status, ops.run_result, integer, text),
    ops.heartbeat(uuid, bigint[], integer), ops.reap_expired(integer, integer),
    ops.deregister_worker(uuid), ops.enqueue_run(uuid, text, jsonb, integer, uuid, ops.run_trigger)
    to service_role;
