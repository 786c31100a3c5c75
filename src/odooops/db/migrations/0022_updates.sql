-- Production updates and staging copies. A production build after the first
-- updates production's database in place behind a maintenance page, from a
-- pre-update copy it reverts to on failure; staging builds clone an idle
-- snapshot of production. Both copies live on production's host (its
-- filestore is there), so production's and staging's builds run there.

-- 1. The Odoo database a build made or updated (a serve run serves it).
alter table ops.runs add column database text;

create function ops.build_database(p_run_id bigint, p_attempt integer, p_database text) returns void
language plpgsql security definer set search_path = '' as $$
declare
    r ops.runs := ops.fence(p_run_id, p_attempt);
begin
    update ops.runs set database = p_database where id = r.id;
end
$$;

-- 2. Copies of production: `update` (taken before an update, kept some days)
-- and `snapshot` (the idle copy staging builds clone; the newest one counts).
create table ops.database_copies (
    id bigint generated always as identity primary key,
    project_id uuid not null references ops.projects (id) on delete cascade,
    branch_id uuid not null,
    kind text not null,
    run_id bigint references ops.runs (id) on delete set null,   -- the run that took it
    build_id bigint references ops.runs (id) on delete set null, -- the build whose database it copies
    database text not null unique,
    host text,
    size_bytes bigint,
    filestore_bytes bigint,
    created_at timestamptz not null default now(),
    expires_at timestamptz,
    dropped_at timestamptz,
    constraint database_copies_branch_fkey foreign key (branch_id, project_id)
        references ops.branches (id, project_id) on delete cascade,
    constraint database_copies_kind_check check (kind in ('update', 'snapshot'))
);
create index database_copies_branch_idx on ops.database_copies (branch_id, created_at desc);
create index database_copies_live_idx on ops.database_copies (host) where dropped_at is null;
alter table ops.database_copies enable row level security;
alter table ops.database_copies force row level security;
grant select on ops.database_copies to authenticated;
grant select, insert, update, delete on ops.database_copies to service_role;
create policy member_select on ops.database_copies for select to authenticated
    using (ops.project_role(project_id) is not null);
create policy service_all on ops.database_copies for all to service_role using (true) with check (true);

-- 3. Updates in place: what each did, and whether it was reverted.
create table ops.updates (
    id bigint generated always as identity primary key,
    project_id uuid not null references ops.projects (id) on delete cascade,
    branch_id uuid not null,
    build_id bigint not null unique references ops.runs (id) on delete cascade,
    previous_build_id bigint references ops.runs (id) on delete set null,
    copy_id bigint references ops.database_copies (id) on delete set null,
    status text not null default 'running',
    updated_modules text[] not null default '{}',
    installed_modules text[] not null default '{}',
    failed_step text,                     -- install, update, start, health
    detail text,
    maintenance_seconds numeric,
    created_at timestamptz not null default now(),
    finished_at timestamptz,
    constraint updates_branch_fkey foreign key (branch_id, project_id)
        references ops.branches (id, project_id) on delete cascade,
    constraint updates_status_check check (status in ('running', 'succeeded', 'reverted', 'failed'))
);
create index updates_branch_idx on ops.updates (branch_id, created_at desc);
alter table ops.updates enable row level security;
alter table ops.updates force row level security;
grant select on ops.updates to authenticated;
grant select, insert, update, delete on ops.updates to service_role;
create policy member_select on ops.updates for select to authenticated
    using (ops.project_role(project_id) is not null);
create policy service_all on ops.updates for all to service_role using (true) with check (true);

-- 4. Maintenance: the run that holds the environment while it works on its
-- database; the serve runs stop, and the router answers 503.
alter table ops.environments add column maintenance_run_id bigint references ops.runs (id) on delete set null;
-- the build whose server may take the environment back (set as the maintenance ends)
alter table ops.environments add column maintenance_build_id bigint references ops.runs (id) on delete set null;

-- Production's and staging's builds (and snapshot refreshes) run on
-- production's host, where its database copies and filestore are.
create function ops.production_host() returns trigger
language plpgsql security definer set search_path = '' as $$
begin
    if new.kind = 'snapshot' or (select b.stage from ops.branches b where b.id = new.branch_id) <> 'development' then
        new.host := (select e.host from ops.environments e join ops.branches b on b.id = e.branch_id
                      where b.project_id = new.project_id and b.stage = 'production' and b.archived_at is null);
    end if;
    return new;
end
$$;
create trigger runs_production_host before insert on ops.runs
    for each row when (new.kind in ('build', 'snapshot') and new.host is null and new.branch_id is not null)
    execute function ops.production_host();

-- A serve run serves its build's database.
create or replace function ops.start_serving(e ops.environments) returns ops.runs
language plpgsql security definer set search_path = '' as $$
declare
    r ops.runs;
    s ops.runs;
begin
    select * into r from ops.runs where id = e.build_id;
    insert into ops.runs (kind, project_id, branch_id, commit_sha, ref, trigger, status, priority, max_attempts,
                          params, host)
    values ('serve', e.project_id, e.branch_id, r.commit_sha, r.ref, r.trigger, 'queued', 10, 5,
            jsonb_build_object('build_id', r.id, 'environment_id', e.id)
              || case when r.database is null then '{}'::jsonb else jsonb_build_object('database', r.database) end,
            e.host)
    returning * into s;
    update ops.runs x set status = 'superseded', superseded_by = s.id
     where x.branch_id = e.branch_id and x.kind = 'serve' and x.status = 'queued' and x.id < s.id;
    perform pg_notify('ops_runs', s.id::text);
    return s;
end
$$;

-- Every stage's build is served; an update in place made its build the
-- environment's already (ops.maintenance_end), so its success changes nothing.
create or replace function ops.deploy_build(p_build_id bigint) returns ops.environments
language plpgsql security definer set search_path = '' as $$
declare
    r ops.runs;
    b ops.branches;
    e ops.environments;
    v_host text;
begin
    select * into r from ops.runs where id = p_build_id;
    select * into b from ops.branches where id = r.branch_id;
    if b.archived_at is not null then
        return null;
    end if;
    select w.hostname into v_host from ops.workers w where w.id = r.worker_id;
    insert into ops.environments (project_id, branch_id, label, build_id, host)
    values (r.project_id, r.branch_id, ops.environment_label(r.branch_id), r.id, v_host)
    on conflict (branch_id) do update set build_id = excluded.build_id, host = excluded.host,
        wanted = 'running', collected_at = null, updated_at = now(),
        status = case when ops.environments.status in ('running', 'starting') then ops.environments.status
                      else 'starting' end
     where ops.environments.build_id is null or ops.environments.build_id < excluded.build_id
    returning * into e;
    if e.id is null then
        return null;  -- it serves this build, or a newer one, already
    end if;
    perform ops.start_serving(e);
    return e;
end
$$;

-- The maintenance functions' fence: the run's current attempt, also once
-- canceled (a canceled update must still be reverted).
create function ops.maintenance_fence(p_run_id bigint, p_attempt integer) returns ops.runs
language plpgsql set search_path = '' as $$
declare
    r ops.runs;
begin
    select * into r from ops.runs
     where id = p_run_id and attempt = p_attempt and status in ('claimed', 'running', 'canceled');
    if not found then
        raise exception 'run % attempt % is no longer current', p_run_id, p_attempt using errcode = 'OP004';
    end if;
    return r;
end
$$;

-- The environment of a branch of the run's project, locked; an error if none.
create function ops.environment_for_run(r ops.runs, p_branch_id uuid) returns ops.environments
language plpgsql security definer set search_path = '' as $$
declare
    e ops.environments;
begin
    select * into e from ops.environments where branch_id = p_branch_id and project_id = r.project_id for update;
    if e.id is null then
        raise exception 'the branch has no environment' using errcode = 'OP002';
    end if;
    return e;
end
$$;

-- A run takes an environment of its project (production for an update or
-- a snapshot, its own branch's) for maintenance: its serve runs stop, the
-- router shows the maintenance page. `p_build_id`, when given, is the build
-- the environment serves after (a revert's). Refused while another run holds it.
create function ops.maintenance_begin(p_run_id bigint, p_attempt integer, p_branch_id uuid,
                                      p_build_id bigint default null) returns ops.environments
language plpgsql security definer set search_path = '' as $$
declare
    r ops.runs := ops.maintenance_fence(p_run_id, p_attempt);
    e ops.environments := ops.environment_for_run(r, p_branch_id);
begin
    if e.maintenance_run_id is not null and e.maintenance_run_id <> r.id
       and exists (select from ops.runs x where x.id = e.maintenance_run_id and x.status in ('claimed', 'running')) then
        raise exception 'run % holds the environment for maintenance', e.maintenance_run_id using errcode = 'OP003';
    end if;
    update ops.environments set maintenance_run_id = r.id, maintenance_build_id = null, status = 'maintenance',
                                address = null, websocket_address = null, health = null, updated_at = now(),
                                build_id = coalesce(p_build_id, build_id)
     where id = e.id returning * into e;
    perform pg_notify('ops_environments', e.id::text);
    return e;
end
$$;

-- Whether a serve run of the branch is still at work (claimed or running).
create function ops.environment_serving(p_run_id bigint, p_attempt integer, p_branch_id uuid) returns boolean
language plpgsql stable security definer set search_path = '' as $$
declare
    r ops.runs := ops.maintenance_fence(p_run_id, p_attempt);
begin
    return exists (select from ops.runs x where x.branch_id = p_branch_id and x.project_id = r.project_id
                    and x.kind = 'serve' and x.status in ('claimed', 'running'));
end
$$;

-- The maintenance run hands the environment to `p_build_id`'s server (the
-- update's build; the previous one when reverting or after a snapshot): a
-- serve run of it starts, and the maintenance page stays until it is
-- healthy. Serve runs of other builds are canceled.
create function ops.maintenance_end(p_run_id bigint, p_attempt integer, p_branch_id uuid, p_build_id bigint)
returns ops.runs
language plpgsql security definer set search_path = '' as $$
declare
    r ops.runs := ops.maintenance_fence(p_run_id, p_attempt);
    e ops.environments := ops.environment_for_run(r, p_branch_id);
    x ops.runs;
begin
    for x in update ops.runs set status = 'canceled', error = 'the environment serves another build'
              where branch_id = p_branch_id and kind = 'serve' and status in ('queued', 'claimed', 'running')
                and (params ->> 'build_id')::bigint is distinct from p_build_id
             returning * loop
        perform pg_notify('ops_run_canceled', x.id::text);
    end loop;
    update ops.environments set build_id = p_build_id, maintenance_build_id = p_build_id, wanted = 'running',
                                updated_at = now()
     where id = e.id returning * into e;
    return ops.start_serving(e);
end
$$;

-- The run gives the environment up with nothing served (a revert that
-- failed): it says crashed, and its log says why.
create function ops.maintenance_abandon(p_run_id bigint, p_attempt integer, p_branch_id uuid) returns void
language plpgsql security definer set search_path = '' as $$
declare
    r ops.runs := ops.maintenance_fence(p_run_id, p_attempt);
begin
    update ops.environments set maintenance_run_id = null, maintenance_build_id = null, status = 'crashed',
                                updated_at = now()
     where branch_id = p_branch_id and project_id = r.project_id and maintenance_run_id = r.id;
end
$$;

-- Serve runs: stop during maintenance (but the one of the build handed over).
create or replace function ops.environment_check(p_run_id bigint, p_attempt integer, p_idle_seconds integer)
returns text
language plpgsql security definer set search_path = '' as $$
declare
    r ops.runs := ops.fence(p_run_id, p_attempt);
    e ops.environments;
    b ops.branches;
begin
    select * into e from ops.environments where id = (r.params ->> 'environment_id')::uuid for update;
    select * into b from ops.branches where id = e.branch_id;
    if e.maintenance_run_id is not null
       and (r.params ->> 'build_id')::bigint is distinct from e.maintenance_build_id then
        return 'maintenance';
    end if;
    if e.wanted = 'stopped' then
        if e.serve_run_id = r.id or e.serve_run_id is null then
            perform ops.environment_down(e.id, 'stopped');
        end if;
        return 'stopped';
    end if;
    if e.serve_run_id is distinct from r.id then
        if (r.params ->> 'build_id')::bigint < e.build_id
           or exists (select from ops.runs x where x.id = e.serve_run_id and x.status = 'running' and x.id > r.id) then
            return 'replaced';
        end if;
        return 'serve';
    end if;
    if p_idle_seconds > 0 and b.stage <> 'production'
       and coalesce(e.last_request_at, e.started_at) < now() - make_interval(secs => p_idle_seconds) then
        perform ops.environment_down(e.id, 'sleeping');
        return 'sleep';
    end if;
    return 'serve';
end
$$;

-- Up: during maintenance only the build handed over may take the
-- environment, and doing so ends the maintenance.
create or replace function ops.environment_up(p_run_id bigint, p_attempt integer, p_address text, p_websocket text,
                                              p_database text) returns ops.environments
language plpgsql security definer set search_path = '' as $$
declare
    r ops.runs := ops.fence(p_run_id, p_attempt);
    e ops.environments;
begin
    select * into e from ops.environments where id = (r.params ->> 'environment_id')::uuid for update;
    if e.wanted = 'stopped' then
        return e;  -- stopped while it started: ops.environment_check tells it to stop
    end if;
    if e.maintenance_run_id is not null
       and (r.params ->> 'build_id')::bigint is distinct from e.maintenance_build_id then
        return e;  -- ops.environment_check tells it to stop
    end if;
    update ops.environments
       set serve_run_id = r.id, status = 'running', address = p_address, websocket_address = p_websocket,
           database = p_database, started_at = now(), health = 'pass', health_checked_at = now(),
           health_detail = null, restarts = 0, updated_at = now(), maintenance_run_id = null,
           maintenance_build_id = null,
           last_request_at = greatest(last_request_at, now() - interval '1 minute')
     where id = e.id returning * into e;
    perform pg_notify('ops_environments', e.id::text);
    return e;
end
$$;

-- A serve run that ends during maintenance leaves the environment in it.
create or replace function ops.serve_run_ended() returns trigger
language plpgsql security definer set search_path = '' as $$
begin
    perform ops.environment_down(e.id, case when e.status = 'maintenance' then 'maintenance'
                                            when new.status = 'queued' then 'starting'
                                            when new.status = 'failed' then 'crashed'
                                            when e.status in ('sleeping', 'crashed') then e.status
                                            else 'stopped' end::ops.environment_status)
       from ops.environments e where e.serve_run_id = new.id;
    return null;
end
$$;

-- Start, stop and restart wait while a run holds the environment.
create or replace function ops.environment_control(p_branch_id uuid, p_action text) returns ops.environments
language plpgsql security definer set search_path = '' as $$
declare
    e ops.environments;
begin
    select * into e from ops.environments where branch_id = p_branch_id for update;
    if not found or ops.project_role(e.project_id) is null and not ops.caller_is_service() then
        raise exception 'this branch has no environment: a successful build makes one' using errcode = 'OP002';
    end if;
    if not ops.caller_is_service() and not ops.can_operate_branch(p_branch_id) then
        raise exception 'you may not % the environments of this branch''s stage', p_action using errcode = '42501';
    end if;
    if e.status = 'maintenance' then
        raise exception 'the environment is under maintenance (an update, or a snapshot for staging): it serves '
              'again when that ends' using errcode = 'OP003';
    end if;
    if e.build_id is null or e.collected_at is not null then
        raise exception 'the environment''s database was dropped: build the branch again' using errcode = 'OP003';
    end if;
    if p_action = 'stop' then
        update ops.environments set wanted = 'stopped', updated_at = now(),
               status = case when serve_run_id is null or status in ('sleeping', 'crashed') then 'stopped'
                             else status end
         where id = e.id returning * into e;
        update ops.runs set status = 'canceled', error = 'the environment was stopped'
         where kind = 'serve' and branch_id = p_branch_id and status = 'queued';
        perform pg_notify('ops_environments', e.id::text);
    elsif p_action in ('start', 'restart') then
        if p_action = 'start' and e.status in ('running', 'starting') and e.wanted = 'running' then
            return e;
        end if;
        update ops.environments set wanted = 'running', restarts = 0, updated_at = now(),
               status = case when status in ('running', 'starting') then status else 'starting' end
         where id = e.id returning * into e;
        perform ops.start_serving(e);
    else
        raise exception 'an environment is started, stopped or restarted, not %', p_action using errcode = '22023';
    end if;
    return e;
end
$$;

-- 5. Updates and copies, as the runner records them.
create function ops.update_record(p_run_id bigint, p_attempt integer, p_status text, p_previous bigint,
                                  p_copy_id bigint, p_updated text[], p_installed text[], p_failed_step text,
                                  p_detail text, p_maintenance_seconds numeric) returns ops.updates
language plpgsql security definer set search_path = '' as $$
declare
    r ops.runs := ops.maintenance_fence(p_run_id, p_attempt);
    u ops.updates;
begin
    insert into ops.updates (project_id, branch_id, build_id, previous_build_id, copy_id, status, updated_modules,
                             installed_modules, failed_step, detail, maintenance_seconds, finished_at)
    values (r.project_id, r.branch_id, r.id, p_previous, p_copy_id, p_status, coalesce(p_updated, '{}'),
            coalesce(p_installed, '{}'), p_failed_step, p_detail, p_maintenance_seconds,
            case when p_status = 'running' then null else now() end)
    on conflict (build_id) do update set status = excluded.status, copy_id = coalesce(excluded.copy_id, ops.updates.copy_id),
        updated_modules = excluded.updated_modules, installed_modules = excluded.installed_modules,
        failed_step = excluded.failed_step, detail = excluded.detail,
        maintenance_seconds = excluded.maintenance_seconds, finished_at = excluded.finished_at
    returning * into u;
    return u;
end
$$;

create function ops.record_copy(p_run_id bigint, p_attempt integer, p_kind text, p_build_id bigint,
                                p_database text, p_host text, p_size bigint, p_filestore_size bigint,
                                p_keep_days integer) returns ops.database_copies
language plpgsql security definer set search_path = '' as $$
declare
    r ops.runs := ops.maintenance_fence(p_run_id, p_attempt);
    c ops.database_copies;
begin
    insert into ops.database_copies (project_id, branch_id, kind, run_id, build_id, database, host, size_bytes,
                                     filestore_bytes, expires_at)
    select r.project_id, b.id, p_kind, r.id, p_build_id, p_database, p_host, p_size, p_filestore_size,
           case when p_keep_days is null then null else now() + make_interval(days => p_keep_days) end
      from ops.branches b
     where b.project_id = r.project_id and b.stage = 'production' and b.archived_at is null
    on conflict (database) do update   -- made again by a later attempt of the same run
        set run_id = excluded.run_id, build_id = excluded.build_id, host = excluded.host,
            size_bytes = excluded.size_bytes, filestore_bytes = excluded.filestore_bytes, created_at = now(),
            expires_at = excluded.expires_at, dropped_at = null
    returning * into c;
    if c.id is null then
        raise exception 'the project has no production branch' using errcode = 'OP002';
    end if;
    return c;
end
$$;

-- The newest snapshot of the run's project's production, if any, and where
-- production's database is.
create function ops.production_snapshot(p_run_id bigint, p_attempt integer)
returns table (snapshot text, snapshot_created_at timestamptz, snapshot_build_id bigint, production_branch_id uuid,
               production_branch text, production_database text, production_build_id bigint,
               production_host text)
language plpgsql stable security definer set search_path = '' as $$
declare
    r ops.runs := ops.fence(p_run_id, p_attempt);
begin
    return query
    select c.database, c.created_at, c.build_id, b.id, b.name, pr.database, e.build_id, e.host
      from ops.branches b
      left join ops.environments e on e.branch_id = b.id
      left join ops.runs pr on pr.id = e.build_id
      left join lateral (select * from ops.database_copies x where x.branch_id = b.id and x.kind = 'snapshot'
                            and x.dropped_at is null order by x.created_at desc, x.id desc limit 1) c on true
     where b.project_id = r.project_id and b.stage = 'production' and b.archived_at is null;
end
$$;

-- Copies on this host to drop: update copies past their days, snapshots a
-- newer one replaced.
create function ops.copies_to_drop(p_host text) returns setof ops.database_copies
language sql stable security definer set search_path = '' as $$
    select c.* from ops.database_copies c
     where c.host = p_host and c.dropped_at is null
       and ((c.kind = 'update' and c.expires_at < now())
            or (c.kind = 'snapshot' and exists (select from ops.database_copies n
                                                  where n.branch_id = c.branch_id and n.kind = 'snapshot'
                                                    and n.dropped_at is null and n.id > c.id)))
     order by c.id
$$;

create function ops.copy_dropped(p_id bigint) returns void
language sql security definer set search_path = '' as $$
    update ops.database_copies set dropped_at = now() where id = p_id
$$;

-- People: "Refresh staging data" takes a new snapshot of production (a
-- short pause of production: see docs/stages.md). Those who may operate
-- production may ask.
create function ops.refresh_snapshot(p_project_id uuid) returns ops.runs
language plpgsql security definer set search_path = '' as $$
declare
    b ops.branches;
    e ops.environments;
    r ops.runs;
begin
    select * into b from ops.branches where project_id = p_project_id and stage = 'production' and archived_at is null;
    if b.id is null or (ops.project_role(p_project_id) is null and not ops.caller_is_service()) then
        raise exception 'the project has no production branch' using errcode = 'OP002';
    end if;
    if not ops.caller_is_service() and not ops.can_operate_branch(b.id) then
        raise exception 'refreshing staging data pauses production: you may not operate production'
              using errcode = '42501';
    end if;
    select * into e from ops.environments where branch_id = b.id;
    if e.build_id is null or e.collected_at is not null then
        raise exception 'production has no database yet: its first build makes one' using errcode = 'OP003';
    end if;
    select * into r from ops.runs where branch_id = b.id and kind = 'snapshot' and status in ('queued', 'claimed', 'running');
    if r.id is not null then
        return r;
    end if;
    return ops.enqueue_run(p_project_id, 'snapshot', jsonb_build_object('build_id', e.build_id), 5, b.id, 'manual');
end
$$;

revoke all on function ops.build_database(bigint, integer, text), ops.production_host(),
    ops.maintenance_fence(bigint, integer), ops.environment_for_run(ops.runs, uuid), ops.maintenance_begin(bigint, integer, uuid, bigint),
    ops.environment_serving(bigint, integer, uuid), ops.maintenance_end(bigint, integer, uuid, bigint),
    ops.maintenance_abandon(bigint, integer, uuid),
    ops.update_record(bigint, integer, text, bigint, bigint, text[], text[], text, text, numeric),
    ops.record_copy(bigint, integer, text, bigint, text, text, bigint, bigint, integer),
    ops.production_snapshot(bigint, integer), ops.copies_to_drop(text), ops.copy_dropped(bigint),
    ops.refresh_snapshot(uuid) from public;
grant execute on function ops.build_database(bigint, integer, text), ops.maintenance_begin(bigint, integer, uuid, bigint),
    ops.environment_serving(bigint, integer, uuid), ops.maintenance_end(bigint, integer, uuid, bigint),
    ops.maintenance_abandon(bigint, integer, uuid),
    ops.update_record(bigint, integer, text, bigint, bigint, text[], text[], text, text, numeric),
    ops.record_copy(bigint, integer, text, bigint, text, text, bigint, bigint, integer),
    ops.production_snapshot(bigint, integer), ops.copies_to_drop(text), ops.copy_dropped(bigint)
    to service_role;
grant execute on function ops.refresh_snapshot(uuid) to authenticated, service_role;
