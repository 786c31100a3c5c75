-- The queue under bad luck: a graceful hand-back is not an attempt, no single
-- run can stop the claims of everyone, a heartbeat renews only the runs its
-- worker executes, leases get a grace period after the server restarts, dead
-- workers are forgotten, and the control plane says in a run's log why it was
-- retried, failed or canceled.

-- A run the queue cannot hand out fails where it waits, with its reason.
insert into ops.run_transitions values ('queued', 'failed');

-- attempt stays the fencing token and only ever grows; what max_attempts
-- limits is the attempts that were lost or failed, attempt - handbacks.
alter table ops.runs add column handbacks integer not null default 0;
alter table ops.runs drop constraint runs_attempts_check,
    add constraint runs_attempts_check check (
        max_attempts between 1 and 5 and handbacks between 0 and attempt
        and attempt - handbacks between 0 and max_attempts);

-- A note of the control plane in a run's log (attempt null), after its last
-- line. Callers hold the run's row locked: the attempt they end can no longer
-- write (runners lock the row before their lines, see ops.fence), and two
-- notes cannot take the same seq.
create function ops.note_run(p_run_id bigint, p_message text, p_level text default 'info') returns void
language sql security definer set search_path = '' as $$
    insert into ops.run_events (run_id, attempt, seq, level, stream, message)
    select p_run_id, null, coalesce(max(e.seq), 0) + 1, p_level, 'system', p_message
      from ops.run_events e where e.run_id = p_run_id
$$;

-- Fails a queued run that cannot be claimed; never raises, so that the claim
-- that found it goes on with the next run.
create function ops.fail_unclaimable(p_run_id bigint, p_reason text) returns void
language plpgsql set search_path = '' as $$
begin
    update ops.runs set status = 'failed', result = 'ko', error = p_reason where id = p_run_id;
    perform ops.note_run(p_run_id, 'run failed: ' || p_reason, 'error');
exception when others then
    raise warning 'run % cannot be claimed (%) nor failed: %', p_run_id, p_reason, sqlerrm;
end
$$;

-- As in 0005, and: a run without an attempt left fails with that reason, and
-- any error claiming one run fails that run instead of the whole claim.
create or replace function ops.claim_next_run(p_worker_id uuid, p_kinds text[] default null,
                                              p_lease_seconds integer default 30,
                                              p_limit integer default 1, p_start boolean default false)
returns setof ops.runs
language plpgsql set search_path = '' set enable_bitmapscan = off set enable_sort = off as $$
declare
    c record;
    r ops.runs;
    taken integer := 0;
    cap integer;
    cap_of uuid;
    used integer;
    allowed integer;
begin
    for c in
        select q.id, q.project_id, q.branch_id from ops.runs q
         where q.status = 'queued' and (q.not_before is null or q.not_before <= now())
           and (p_kinds is null or q.kind = any (p_kinds))
         order by q.priority desc, q.id
         limit greatest(p_limit, 1) * 4 + 16
    loop
        -- Lock only a run we take; one another claimer holds is skipped.
        select x.attempt - x.handbacks, x.max_attempts into used, allowed
          from ops.runs x where x.id = c.id and x.status = 'queued' for update skip locked;
        continue when not found;
        if used >= allowed then
            perform ops.fail_unclaimable(c.id, format('no attempt left (%s of %s used)', used, allowed));
            continue;
        end if;
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
        begin
            update ops.runs set status = 'claimed', attempt = attempt + 1, worker_id = p_worker_id,
                                lease_expires_at = now() + make_interval(secs => p_lease_seconds)
             where id = c.id
            returning * into r;
            if p_start then
                update ops.runs set status = 'running' where id = c.id returning * into r;
            end if;
        exception when others then  -- one run must never stop the queue of everyone
            perform ops.fail_unclaimable(c.id, 'it cannot be claimed: ' || sqlerrm);
            continue;
        end;
        return next r;
        taken := taken + 1;
        exit when taken >= p_limit;
    end loop;
end
$$;

-- As in 0005, and: a hand-back ('queued', a graceful shutdown) gives its
-- attempt back, so a run handed back on its last attempt can still run.
create or replace function ops.finish_run(p_run_id bigint, p_attempt integer, p_status ops.run_status,
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
                        not_before = case when p_status = 'queued' then null else not_before end,
                        handbacks = handbacks + case when p_status = 'queued' then 1 else 0 end
     where id = p_run_id
    returning * into r;
    if p_status = 'queued' then
        perform pg_notify('ops_runs', p_run_id::text);
    end if;
    return r;
end
$$;

-- Renews the worker and the leases of the runs among p_runs it still holds
-- (those it executes: a run it holds but no longer executes must run out its
-- lease); returns the runs among p_runs it no longer holds, which it must stop.
-- OP002 when the worker is not registered (forgotten by the reaper).
create or replace function ops.heartbeat(p_worker_id uuid, p_runs bigint[], p_lease_seconds integer default 30)
returns setof bigint
language plpgsql set search_path = '' as $$
begin
    update ops.workers set heartbeat_at = now() where id = p_worker_id;
    if not found then
        raise exception 'worker % is not registered', p_worker_id using errcode = 'OP002';
    end if;
    update ops.runs set lease_expires_at = now() + make_interval(secs => p_lease_seconds)
     where id = any (p_runs) and worker_id = p_worker_id and status in ('claimed', 'running');
    return query
        select h.id from unnest(p_runs) as h(id)
         where not exists (select from ops.runs x where x.id = h.id and x.worker_id = p_worker_id
                                                     and x.status in ('claimed', 'running'));
end
$$;

-- Runs whose lease expired go back to the queue with exponential backoff
-- while attempts remain, else fail with "worker lost"; each says so in its
-- log. Within p_grace_seconds of the server's start nothing is reaped: leases
-- ran out while it was down, and live workers need a heartbeat or two to come
-- back. Workers not heard from for p_forget_seconds that hold no run are
-- removed. Safe to run anywhere, any number of times at once.
create function ops.reap_expired_v2(p_base_seconds integer, p_cap_seconds integer, p_grace_seconds integer,
                                    p_forget_seconds integer)
returns setof ops.runs
language plpgsql set search_path = '' as $$
declare
    x ops.runs;
    used integer;
    delay integer;
begin
    delete from ops.workers w
     where w.heartbeat_at < now() - make_interval(secs => p_forget_seconds)
       and not exists (select from ops.runs r where r.worker_id = w.id and r.status in ('claimed', 'running'));
    if now() < pg_postmaster_start_time() + make_interval(secs => p_grace_seconds) then
        return;
    end if;
    for x in
        select * from ops.runs where status in ('claimed', 'running') and lease_expires_at < now()
           for update skip locked
    loop
        used := x.attempt - x.handbacks;
        if used < x.max_attempts then
            delay := least(p_cap_seconds, p_base_seconds * 2 ^ (used - 1));
            update ops.runs set status = 'queued', error = 'worker lost',
                   not_before = now() + make_interval(secs => delay)
             where id = x.id returning * into x;
            perform ops.note_run(x.id, format('attempt %s lost its worker; retrying in %s s', x.attempt, delay),
                                 'warning');
        else
            update ops.runs set status = 'failed', error = 'worker lost' where id = x.id returning * into x;
            perform ops.note_run(x.id, format('run failed: worker lost after %s attempts', used), 'error');
        end if;
        return next x;
    end loop;
end
$$;

-- The 0005 signature, for runners of an older version: the same reaper with
-- a grace period fit for the default lease (30 s) and heartbeat (5 s).
create or replace function ops.reap_expired(p_base_seconds integer default 5, p_cap_seconds integer default 300)
returns setof ops.runs
language sql set search_path = '' as $$
    select * from ops.reap_expired_v2(p_base_seconds, p_cap_seconds, 45, 3600)
$$;

-- As in 0005, and the cancel is the run's last log line.
create or replace function ops.cancel_run(p_run_id bigint) returns ops.runs
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
    perform ops.note_run(r.id, 'run canceled by request', 'warning');
    perform pg_notify('ops_run_canceled', r.id::text);
    return r;
end
$$;

create or replace function ops.cancel_runs_of_branch(p_branch_id uuid, p_newer bigint) returns void
language plpgsql security definer set search_path = '' as $$
declare
    c bigint;
begin
    for c in
        update ops.runs x set status = 'canceled', error = format('canceled: run %s is newer', p_newer)
         where x.branch_id = p_branch_id and x.kind = 'build' and x.status in ('claimed', 'running') and x.id < p_newer
        returning x.id
    loop
        perform ops.note_run(c, format('run canceled: run %s is newer', p_newer), 'warning');
        perform pg_notify('ops_run_canceled', c::text);
    end loop;
end
$$;

create or replace function ops.end_runs(p_project_id uuid, p_branch_id uuid, p_why text) returns void
language plpgsql security definer set search_path = '' as $$
declare
    c bigint;
begin
    for c in
        update ops.runs x set status = 'canceled', error = p_why
         where x.project_id = p_project_id and (p_branch_id is null or x.branch_id = p_branch_id)
           and x.status in ('awaiting_authorization', 'queued', 'claimed', 'running')
        returning x.id
    loop
        perform ops.note_run(c, 'run canceled: ' || p_why, 'warning');
        perform pg_notify('ops_run_canceled', c::text);
    end loop;
end
$$;

revoke all on function ops.note_run(bigint, text, text), ops.fail_unclaimable(bigint, text),
    ops.reap_expired_v2(integer, integer, integer, integer) from public;
grant execute on function ops.note_run(bigint, text, text), ops.fail_unclaimable(bigint, text),
    ops.reap_expired_v2(integer, integer, integer, integer) to service_role;
