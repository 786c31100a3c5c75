-- Running environments: what a successful build of a development or staging
-- branch leaves serving. The server is a run of kind `serve` that lasts as
-- long as it serves (its log is the environment's log), executed on the host
-- whose runner built it (runs.host); the environment row says which serve run
-- answers now, where, and how healthy it is.

-- 1. Where a run must execute: the host of the environment it serves (or
-- cleans up); null lets any runner take it.
alter table ops.runs add column host text;
alter table ops.runs add constraint runs_host_check check (host ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$');

create type ops.environment_status as enum ('starting', 'running', 'sleeping', 'stopped', 'crashed');

create table ops.environments (
    id uuid primary key default gen_random_uuid(),
    project_id uuid not null references ops.projects (id) on delete cascade,
    branch_id uuid not null unique,
    label text not null unique,          -- its DNS label: <label>.<base domain>
    status ops.environment_status not null default 'starting',
    wanted text not null default 'running',  -- what people asked: running, or stopped
    build_id bigint references ops.runs (id) on delete set null,     -- the build it serves, or is to serve
    serve_run_id bigint references ops.runs (id) on delete set null, -- the serve run answering now
    host text,                           -- the runner host it lives on
    address text,                        -- host:port of its HTTP server, while running
    websocket_address text,              -- host:port for /websocket when not the HTTP one (workers > 0)
    database text,
    started_at timestamptz,
    last_request_at timestamptz,
    health text,                         -- pass | fail
    health_detail text,
    health_checked_at timestamptz,
    memory_bytes bigint,
    restarts integer not null default 0, -- in a row, since it last came up
    collected_at timestamptz,            -- databases and filestores dropped (garbage collection)
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    constraint environments_branch_fkey foreign key (branch_id, project_id)
        references ops.branches (id, project_id) on delete cascade,
    constraint environments_label_check check (label ~ '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$'),
    constraint environments_wanted_check check (wanted in ('running', 'stopped')),
    constraint environments_health_check check (health in ('pass', 'fail'))
);
create index environments_project_idx on ops.environments (project_id);
alter table ops.environments enable row level security;
alter table ops.environments force row level security;
grant select on ops.environments to authenticated;
grant select, insert, update, delete on ops.environments to service_role;
create policy member_select on ops.environments for select to authenticated
    using (ops.project_role(project_id) is not null);
create policy service_all on ops.environments for all to service_role using (true) with check (true);

-- "Connect as": single-use, short-lived; only the sha256 of the token is kept.
create table ops.connect_tokens (
    id bigint generated always as identity primary key,
    environment_id uuid not null references ops.environments (id) on delete cascade,
    token_sha256 bytea not null unique,
    login text not null,
    created_by uuid default ops.current_user_id() references ops.users (id) on delete set null,
    created_at timestamptz not null default now(),
    expires_at timestamptz not null,
    used_at timestamptz,
    used_from text,
    constraint connect_tokens_login_check check (length(login) between 1 and 255)
);
create index connect_tokens_environment_idx on ops.connect_tokens (environment_id, id desc);
alter table ops.connect_tokens enable row level security;
alter table ops.connect_tokens force row level security;
grant select, insert, update on ops.connect_tokens to service_role;
create policy service_all on ops.connect_tokens for all to service_role using (true) with check (true);
-- no policy for users: they read the uses through ops.environment_connections

-- 2. A DNS label from org, project and branch: lower case, [a-z0-9-], at most
-- 63 characters; a long or taken one ends with a piece of the branch's id.
create function ops.environment_label(p_branch_id uuid) returns text
language plpgsql stable security definer set search_path = '' as $$
declare
    v text;
    v_short text;
begin
    select trim(both '-' from regexp_replace(lower(b.name || '-' || p.slug || '-' || o.slug), '[^a-z0-9]+', '-', 'g'))
      into v
      from ops.branches b join ops.projects p on p.id = b.project_id join ops.orgs o on o.id = p.org_id
     where b.id = p_branch_id;
    v_short := left(replace(p_branch_id::text, '-', ''), 8);
    if v = '' or length(v) > 63
       or exists (select from ops.environments e where e.label = v and e.branch_id <> p_branch_id) then
        v := trim(both '-' from left(v, 54)) || '-' || v_short;
    end if;
    return v;
end
$$;

-- 3. A succeeded build of a development or staging branch becomes its
-- environment: a serve run on the build's host. The running one keeps
-- serving until the new one is healthy (ops.environment_up).
create function ops.deploy_build(p_build_id bigint) returns ops.environments
language plpgsql security definer set search_path = '' as $$
declare
    r ops.runs;
    b ops.branches;
    e ops.environments;
    v_host text;
begin
    select * into r from ops.runs where id = p_build_id;
    select * into b from ops.branches where id = r.branch_id;
    if b.archived_at is not null or b.stage = 'production' then
        return null;  -- production's updates and reverts are another chapter
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
        return null;  -- it serves a newer build already
    end if;
    perform ops.start_serving(e);
    return e;
end
$$;

-- A serve run of the environment's build on its host; a queued one of an
-- older build is superseded by it.
create function ops.start_serving(e ops.environments) returns ops.runs
language plpgsql security definer set search_path = '' as $$
declare
    r ops.runs;
    s ops.runs;
begin
    select * into r from ops.runs where id = e.build_id;
    insert into ops.runs (kind, project_id, branch_id, commit_sha, ref, trigger, status, priority, max_attempts,
                          params, host)
    values ('serve', e.project_id, e.branch_id, r.commit_sha, r.ref, r.trigger, 'queued', 10, 5,
            jsonb_build_object('build_id', r.id, 'environment_id', e.id), e.host)
    returning * into s;
    update ops.runs x set status = 'superseded', superseded_by = s.id
     where x.branch_id = e.branch_id and x.kind = 'serve' and x.status = 'queued' and x.id < s.id;
    perform pg_notify('ops_runs', s.id::text);
    return s;
end
$$;

create function ops.build_succeeded() returns trigger
language plpgsql security definer set search_path = '' as $$
begin
    perform ops.deploy_build(new.id);
    return null;
end
$$;
create trigger runs_build_succeeded after update of status on ops.runs
    for each row when (new.kind = 'build' and new.status = 'succeeded' and old.status <> 'succeeded')
    execute function ops.build_succeeded();

-- A cleanup runs where the branch's environment lives.
create function ops.cleanup_host() returns trigger
language plpgsql security definer set search_path = '' as $$
begin
    new.host := (select e.host from ops.environments e where e.branch_id = new.branch_id);
    return new;
end
$$;
create trigger runs_cleanup_host before insert on ops.runs
    for each row when (new.kind = 'cleanup' and new.host is null and new.branch_id is not null)
    execute function ops.cleanup_host();

-- An environment whose server no longer answers: no address, no health.
create function ops.environment_down(p_id uuid, p_status ops.environment_status) returns void
language sql security definer set search_path = '' as $$
    update ops.environments set status = p_status, address = null, websocket_address = null, health = null,
                                memory_bytes = null, updated_at = now()
     where id = p_id
$$;

-- When a serve run ends other than by its own report (its worker lost, a
-- cancel, the branch archived), the environment says so.
create function ops.serve_run_ended() returns trigger
language plpgsql security definer set search_path = '' as $$
begin
    perform ops.environment_down(e.id, case when new.status = 'queued' then 'starting'
                                            when new.status = 'failed' then 'crashed'
                                            when e.status in ('sleeping', 'crashed') then e.status
                                            else 'stopped' end::ops.environment_status)
       from ops.environments e where e.serve_run_id = new.id;
    return null;
end
$$;
create trigger runs_serve_ended after update of status on ops.runs
    for each row when (new.kind = 'serve' and new.status in ('queued', 'failed', 'canceled', 'succeeded')
                       and old.status in ('claimed', 'running'))
    execute function ops.serve_run_ended();

-- 4. Claims: a run with a host goes to a runner of that host; serve runs are
-- long, so they neither wait for their branch's builds nor hold them up, nor
-- count against a project's cap on concurrent runs.
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
    v_host text := (select w.hostname from ops.workers w where w.id = p_worker_id);
begin
    for c in
        select q.id, q.project_id, q.branch_id, q.kind from ops.runs q
         where q.status = 'queued' and (q.not_before is null or q.not_before <= now())
           and (p_kinds is null or q.kind = any (p_kinds))
           and (q.host is null or q.host = v_host)
         order by q.priority desc, q.id
         limit greatest(p_limit, 1) * 4 + 16
    loop
        select x.attempt - x.handbacks, x.max_attempts into used, allowed
          from ops.runs x where x.id = c.id and x.status = 'queued' for update skip locked;
        continue when not found;
        if used >= allowed then
            perform ops.fail_unclaimable(c.id, format('no attempt left (%s of %s used)', used, allowed));
            continue;
        end if;
        if c.branch_id is not null and c.kind <> 'serve' then
            continue when not pg_try_advisory_xact_lock(hashtextextended(c.branch_id::text, 0));
            continue when exists (select from ops.runs x where x.branch_id = c.branch_id and x.kind <> 'serve'
                                                          and x.status in ('claimed', 'running'));
        end if;
        if cap_of is distinct from c.project_id then
            cap := ops.project_setting(c.project_id, 'max_concurrent_runs', 0);
            cap_of := c.project_id;
        end if;
        if cap > 0 and c.kind <> 'serve' then
            continue when not pg_try_advisory_xact_lock(hashtextextended(c.project_id::text, 1));
            continue when (select count(*) from ops.runs x where x.project_id = c.project_id and x.kind <> 'serve'
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
        exception when others then
            perform ops.fail_unclaimable(c.id, 'it cannot be claimed: ' || sqlerrm);
            continue;
        end;
        return next r;
        taken := taken + 1;
        exit when taken >= p_limit;
    end loop;
end
$$;

-- 5. What a serve run reports, fenced by its attempt.

-- Its server answers and is healthy: it becomes the environment's, and the
-- one it replaces learns so at its next check (or at once, by NOTIFY).
create function ops.environment_up(p_run_id bigint, p_attempt integer, p_address text, p_websocket text,
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
    update ops.environments
       set serve_run_id = r.id, status = 'running', address = p_address, websocket_address = p_websocket,
           database = p_database, started_at = now(), health = 'pass', health_checked_at = now(),
           health_detail = null, restarts = 0, updated_at = now(),
           last_request_at = greatest(last_request_at, now() - interval '1 minute')
     where id = e.id returning * into e;
    perform pg_notify('ops_environments', e.id::text);
    return e;
end
$$;

-- What the serve run is to do now: serve, or stop because it was replaced,
-- stopped by someone, or idle past p_idle_seconds (then the environment
-- sleeps); a run not yet up serves on (starting).
create function ops.environment_check(p_run_id bigint, p_attempt integer, p_idle_seconds integer)
returns text
language plpgsql security definer set search_path = '' as $$
declare
    r ops.runs := ops.fence(p_run_id, p_attempt);
    e ops.environments;
    b ops.branches;
begin
    select * into e from ops.environments where id = (r.params ->> 'environment_id')::uuid for update;
    select * into b from ops.branches where id = e.branch_id;
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

-- Health, memory, restarts; `p_status` starting (restarting after a death)
-- or crashed (too many in a row) when the server is this run's.
create function ops.environment_report(p_run_id bigint, p_attempt integer, p_status ops.environment_status,
                                       p_health text, p_detail text, p_memory bigint, p_restarts integer)
returns ops.environments
language plpgsql security definer set search_path = '' as $$
declare
    r ops.runs := ops.fence(p_run_id, p_attempt);
    e ops.environments;
begin
    update ops.environments
       set status = coalesce(p_status, status), health = p_health, health_detail = p_detail,
           health_checked_at = now(), memory_bytes = p_memory, restarts = coalesce(p_restarts, restarts),
           address = case when p_status in ('starting', 'crashed') then null else address end,
           websocket_address = case when p_status in ('starting', 'crashed') then null else websocket_address end,
           updated_at = now()
     where id = (r.params ->> 'environment_id')::uuid
       and (serve_run_id = r.id or (serve_run_id is null and p_status = 'crashed'))
    returning * into e;
    return e;
end
$$;

-- 6. People: start, stop, restart (by stage role, as builds are).
create function ops.environment_control(p_branch_id uuid, p_action text) returns ops.environments
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

-- 7. The router (service_role).
create function ops.route_environment(p_label text)
returns table (id uuid, label text, status ops.environment_status, address text, websocket_address text,
               stage ops.stage, branch text)
language sql stable security definer set search_path = '' as $$
    select e.id, e.label, e.status, e.address, e.websocket_address, b.stage, b.name
      from ops.environments e join ops.branches b on b.id = e.branch_id
     where e.label = p_label and b.archived_at is null
$$;

-- A sleeping environment is started again (the first request after a sleep).
create function ops.wake_environment(p_id uuid) returns ops.environments
language plpgsql security definer set search_path = '' as $$
declare
    e ops.environments;
begin
    update ops.environments set status = 'starting', updated_at = now(), last_request_at = now()
     where id = p_id and status = 'sleeping' and wanted = 'running' and build_id is not null
    returning * into e;
    if found then
        perform ops.start_serving(e);
    end if;
    return e;
end
$$;

create function ops.touch_environment(p_id uuid) returns void
language sql security definer set search_path = '' as $$
    update ops.environments set last_request_at = now() where id = p_id
$$;

-- Single use: the first to present it gets the login, no one after.
create function ops.use_connect_token(p_environment_id uuid, p_token_sha256 bytea, p_from text) returns text
language sql security definer set search_path = '' as $$
    update ops.connect_tokens set used_at = now(), used_from = left(p_from, 255)
     where token_sha256 = p_token_sha256 and environment_id = p_environment_id
       and used_at is null and expires_at > now()
    returning login
$$;

-- A project admin's link into a development or staging environment as one
-- of its Odoo users; on production only where the project allows it.
create function ops.create_connect_token(p_branch_id uuid, p_login text, p_token_sha256 bytea,
                                         p_ttl_seconds integer) returns ops.connect_tokens
language plpgsql security definer set search_path = '' as $$
declare
    e ops.environments;
    b ops.branches;
    t ops.connect_tokens;
begin
    select * into b from ops.branches where id = p_branch_id;
    if not found then
        raise exception 'branch not found' using errcode = 'OP002';
    end if;
    perform ops.require_project_role(b.project_id, 'admin', 'only an admin of this project can connect as a user');
    select * into e from ops.environments where branch_id = p_branch_id;
    if not found then
        raise exception 'this branch has no environment: a successful build makes one' using errcode = 'OP002';
    end if;
    if b.stage = 'production' and not coalesce((select (p.settings ->> 'connect_as_production')::boolean
                                                  from ops.projects p where p.id = b.project_id), false) then
        raise exception 'Connect as is off on production: the project setting connect_as_production=true allows it'
            using errcode = '42501';
    end if;
    insert into ops.connect_tokens (environment_id, token_sha256, login, expires_at)
    values (e.id, p_token_sha256, p_login, now() + make_interval(secs => least(greatest(p_ttl_seconds, 10), 300)))
    returning * into t;
    return t;
end
$$;

create function ops.environment_connections(p_branch_id uuid, p_limit integer default 20)
returns table (login text, created_by_email text, created_at timestamptz, used_at timestamptz, used_from text)
language sql stable security definer set search_path = '' as $$
    select t.login, u.email, t.created_at, t.used_at, t.used_from
      from ops.environments e join ops.connect_tokens t on t.environment_id = e.id
      left join ops.users u on u.id = t.created_by
     where e.branch_id = p_branch_id and ops.project_role(e.project_id) >= 'admin'
     order by t.id desc limit least(p_limit, 100)
$$;

-- 8. Garbage collection: a development environment whose branch has had no
-- build for p_days is stopped, and a cleanup on its host drops its
-- databases and filestores.
create function ops.collect_environments(p_host text, p_days integer) returns setof ops.environments
language plpgsql security definer set search_path = '' as $$
declare
    e ops.environments;
begin
    for e in
        update ops.environments x set collected_at = now(), wanted = 'stopped', updated_at = now(),
               status = case when x.serve_run_id is null or x.status in ('sleeping', 'crashed') then 'stopped'
                             else x.status end
          from ops.branches b
         where b.id = x.branch_id and b.stage = 'development' and x.host = p_host and x.collected_at is null
           and not exists (select from ops.runs r where r.branch_id = x.branch_id and r.kind = 'build'
                            and (r.status in ('queued', 'claimed', 'running')
                                 or r.finished_at > now() - make_interval(days => p_days)))
        returning x.*
    loop
        perform pg_notify('ops_environments', e.id::text);
        perform ops.enqueue_run(e.project_id, 'cleanup',
                                jsonb_build_object('why', format('no build for %s days', p_days)), 0,
                                e.branch_id, 'schedule');
        return next e;
    end loop;
end
$$;

revoke all on function ops.environment_label(uuid), ops.environment_down(uuid, ops.environment_status), ops.deploy_build(bigint), ops.start_serving(ops.environments),
    ops.build_succeeded(), ops.cleanup_host(), ops.serve_run_ended(),
    ops.environment_up(bigint, integer, text, text, text), ops.environment_check(bigint, integer, integer),
    ops.environment_report(bigint, integer, ops.environment_status, text, text, bigint, integer),
    ops.environment_control(uuid, text), ops.route_environment(text), ops.wake_environment(uuid),
    ops.touch_environment(uuid), ops.use_connect_token(uuid, bytea, text),
    ops.create_connect_token(uuid, text, bytea, integer), ops.environment_connections(uuid, integer),
    ops.collect_environments(text, integer) from public;
grant execute on function ops.environment_up(bigint, integer, text, text, text),
    ops.environment_check(bigint, integer, integer),
    ops.environment_report(bigint, integer, ops.environment_status, text, text, bigint, integer),
    ops.route_environment(text), ops.wake_environment(uuid), ops.touch_environment(uuid),
    ops.use_connect_token(uuid, bytea, text), ops.collect_environments(text, integer) to service_role;
grant execute on function ops.environment_control(uuid, text), ops.create_connect_token(uuid, text, bytea, integer),
    ops.environment_connections(uuid, integer) to authenticated, service_role;
