-- Three holes closed where they live.
--   1. Functions of the control plane were executable by `anon` and
--      `authenticated`: on a database that exposes ops through PostgREST,
--      ops.login_begin (a user's password hash) and ops.login_succeeded (a
--      session for anyone) took over every account. Now the control plane
--      resolves callers as service_role, and users keep only what they may
--      call directly and what checks their rights (tests/test_grants.py holds
--      the lists).
--   2. ops.enqueue_build authorized a build unless told otherwise, so a
--      developer queued a fork's pull request without an admin. Now the
--      database decides: a pull request waits unless an admin (or the control
--      plane, which knows a fork from a branch of the repository) says so.
--   3. Secret settings lay in clear in ops.projects.settings, which every
--      member reads. They move to ops.project_secrets, which no user role can
--      read, sealed by the control plane with a key derived from its server
--      key (odooops.sealing); the database cannot seal them itself, so the
--      values moved here wait, in that closed table, for the control plane to
--      seal them right after it migrates.

-- A function is executable by PUBLIC when created. Per-schema default
-- privileges can only add to the global ones, so this is the global default
-- of the role that runs migrations: what it creates from now on is executable
-- only where a migration grants it.
alter default privileges revoke execute on functions from public;

-- 1. Before the caller is known: service_role only.
revoke execute on function ops.login_begin(text, text), ops.login_succeeded(bigint, uuid, text, text, text),
    ops.session_actor(text), ops.token_actor(text), ops.ingest_token_project(text) from anon;
grant execute on function ops.login_begin(text, text), ops.login_succeeded(bigint, uuid, text, text, text),
    ops.session_actor(text), ops.token_actor(text), ops.ingest_token_project(text) to service_role;

-- Helpers that only security definer functions (or the control plane) call:
-- inside those the owner executes them, so users need no grant.
revoke execute on function ops.build_priority(ops.stage, ops.run_trigger), ops.can_read_run(bigint),
    ops.may_operate(ops.runs), ops.project_setting(uuid, text, integer) from authenticated;
-- superseded by ops.project_branches_v2
revoke execute on function ops.project_branches(uuid, boolean) from authenticated;

-- 2. Authorization of pull requests.

-- Whether the caller must wait for an admin to run this: a user below admin
-- asking for a pull request (a number, or a ref other than the branch's own).
-- The control plane decides for itself.
create function ops.needs_authorization(p_project_id uuid, p_branch_name text, p_ref text, p_pr_number integer)
returns boolean
language sql stable security definer set search_path = '' as $$
    select not ops.caller_is_service()
       and (p_pr_number is not null
            or coalesce(p_ref <> 'refs/heads/' || p_branch_name, p_ref is not null))
       and coalesce(ops.project_role(p_project_id) < 'admin', true)
$$;

-- The same rule for a run a user inserts directly (their grants allow it on
-- the branches they operate): it starts waiting, whatever status it names.
-- Named to fire before runs_check_transition, which stamps queued_at.
create function ops.runs_wait_for_authorization() returns trigger
language plpgsql security definer set search_path = '' as $$
begin
    if new.status <> 'queued' or ops.caller_is_service() then
        return new;
    end if;
    if ops.needs_authorization(new.project_id, (select b.name from ops.branches b where b.id = new.branch_id),
                               new.ref, new.pr_number) then
        new.status := 'awaiting_authorization';
    end if;
    return new;
end
$$;

create trigger runs_authorization before insert on ops.runs
    for each row execute function ops.runs_wait_for_authorization();

-- ops.enqueue_build with no default for the authorization: the control plane
-- (the webhook, which knows a fork from a branch) says what it decided.
-- Users call ops.request_build. Security definer, so that superseding and
-- debouncing may touch runs the caller could not update directly; the
-- caller's rights are checked here.
drop function ops.enqueue_build(uuid, text, ops.run_trigger, text, integer, jsonb, boolean);

create function ops.enqueue_build_v2(
    p_branch_id uuid,
    p_commit_sha text,
    p_trigger ops.run_trigger,
    p_ref text,
    p_pr_number integer,
    p_params jsonb,
    p_authorized boolean)
returns ops.runs
language plpgsql security definer set search_path = '' as $$
declare
    b ops.branches;
    r ops.runs;
    v_sha text := lower(p_commit_sha);
    v_params jsonb := coalesce(p_params, '{}');
    v_quiet integer;
    v_authorized boolean;
begin
    if p_authorized is null then
        raise exception 'whether the build is authorized must be decided, not left null' using errcode = '22004';
    end if;
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
    v_authorized := p_authorized and not ops.needs_authorization(b.project_id, b.name, p_ref, p_pr_number);
    -- one build per (branch, commit, parameters) until it finishes
    select * into r from ops.runs x
     where x.branch_id = b.id and x.kind = 'build' and x.commit_sha = v_sha and x.params = v_params
       and x.status in ('awaiting_authorization', 'queued', 'claimed', 'running')
     order by x.id desc limit 1;
    if found then
        return r;
    end if;
    v_quiet := ops.project_setting(b.project_id, 'coalesce_seconds', 0);
    if v_quiet > 0 and v_authorized then
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
            case when v_authorized then 'queued' else 'awaiting_authorization' end::ops.run_status,
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

-- A build as a person asks for it (or the operator, as the control plane):
-- no say in its authorization, which the database decides.
create function ops.request_build(
    p_branch_id uuid,
    p_commit_sha text,
    p_trigger ops.run_trigger default 'manual',
    p_ref text default null,
    p_pr_number integer default null,
    p_params jsonb default '{}')
returns ops.runs
language sql security definer set search_path = '' as $$
    select * from ops.enqueue_build_v2(p_branch_id, p_commit_sha, p_trigger, p_ref, p_pr_number, p_params, true)
$$;

-- A build again, same branch, commit and parameters. A pull request waits
-- for an admin again, unless an admin asks.
create or replace function ops.rebuild(p_run_id bigint) returns ops.runs
language plpgsql security definer set search_path = '' as $$
declare
    r ops.runs;
begin
    r := ops.lock_visible_run(p_run_id);
    if r.kind <> 'build' then
        raise exception 'run % is a %, and only builds are rebuilt', p_run_id, r.kind using errcode = 'OP003';
    end if;
    return ops.request_build(r.branch_id, r.commit_sha, 'rebuild', r.ref, r.pr_number, r.params);
end
$$;

-- 3. Secret settings, sealed. A row holds a sealed value (nonce and AES-GCM
-- ciphertext, bound to the project and the name) or, only between this
-- migration and the control plane's first start after it, the clear value it
-- moved out of ops.projects.settings.
create table ops.project_secrets (
    project_id uuid not null references ops.projects (id) on delete cascade,
    name text not null,
    nonce bytea,
    ciphertext bytea,
    unsealed text,
    updated_at timestamptz not null default now(),
    primary key (project_id, name),
    constraint project_secrets_name_check check (length(name) between 1 and 200),
    constraint project_secrets_sealed_check check (
        (nonce is not null and ciphertext is not null and octet_length(nonce) = 12) <> (unsealed is not null))
);

alter table ops.project_secrets enable row level security;
alter table ops.project_secrets force row level security;
create policy service_all on ops.project_secrets for all to service_role using (true) with check (true);
grant select, insert, update, delete on ops.project_secrets to service_role;

insert into ops.project_secrets (project_id, name, unsealed)
select p.id, s.key, s.value
  from ops.projects p cross join lateral jsonb_each_text(p.settings -> 'secret_env') s
 where jsonb_typeof(p.settings -> 'secret_env') = 'object';
update ops.projects set settings = settings - 'secret_env' where settings ? 'secret_env';
alter table ops.projects add constraint projects_settings_no_secrets check (not settings ? 'secret_env');

-- The names of a project's secrets, for its members; values never leave the control plane.
create function ops.project_secret_names(p_project_id uuid) returns setof text
language sql stable security definer set search_path = '' as $$
    select s.name from ops.project_secrets s
     where s.project_id = p_project_id and (ops.caller_is_service() or ops.project_role(p_project_id) is not null)
     order by s.name
$$;

-- A sealed value, set by a project admin (through the control plane, which seals it).
create function ops.put_project_secret(p_project_id uuid, p_name text, p_nonce bytea, p_ciphertext bytea)
returns void
language plpgsql security definer set search_path = '' as $$
begin
    perform ops.require_project_role(p_project_id, 'admin', 'only an admin of this project can change its secrets');
    insert into ops.project_secrets (project_id, name, nonce, ciphertext)
    values (p_project_id, p_name, p_nonce, p_ciphertext)
    on conflict (project_id, name) do update
        set nonce = excluded.nonce, ciphertext = excluded.ciphertext, unsealed = null, updated_at = now();
end
$$;

-- Forgets the named secrets of a project, or all of them when p_names is null.
create function ops.drop_project_secrets(p_project_id uuid, p_names text[]) returns void
language plpgsql security definer set search_path = '' as $$
begin
    perform ops.require_project_role(p_project_id, 'admin', 'only an admin of this project can change its secrets');
    delete from ops.project_secrets s
     where s.project_id = p_project_id and (p_names is null or s.name = any (p_names));
end
$$;

revoke all on function ops.needs_authorization(uuid, text, text, integer), ops.runs_wait_for_authorization(),
    ops.enqueue_build_v2(uuid, text, ops.run_trigger, text, integer, jsonb, boolean),
    ops.request_build(uuid, text, ops.run_trigger, text, integer, jsonb),
    ops.project_secret_names(uuid), ops.put_project_secret(uuid, text, bytea, bytea),
    ops.drop_project_secrets(uuid, text[]) from public;
grant execute on function ops.enqueue_build_v2(uuid, text, ops.run_trigger, text, integer, jsonb, boolean)
    to service_role;
grant execute on function ops.request_build(uuid, text, ops.run_trigger, text, integer, jsonb),
    ops.project_secret_names(uuid), ops.put_project_secret(uuid, text, bytea, bytea),
    ops.drop_project_secrets(uuid, text[]) to authenticated, service_role;
