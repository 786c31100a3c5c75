-- Git host webhooks. A project has one hook; its secret is derived from the
-- server's key and the hook's salt, so the database never holds it. Every
-- delivery is written to a ledger before anything is done about it.

create table ops.hooks (
    id uuid primary key default gen_random_uuid(),
    project_id uuid not null references ops.projects (id) on delete cascade,
    salt text not null default gen_random_uuid()::text,  -- a new one rotates the secret
    created_at timestamptz not null default now(),
    rotated_at timestamptz,
    constraint hooks_project_key unique (project_id)
);

create type ops.delivery_status as enum ('pending', 'done', 'ignored', 'failed');

create table ops.hook_deliveries (
    id bigint generated always as identity primary key,
    host text not null,
    hook_id uuid not null references ops.hooks (id) on delete cascade,
    project_id uuid not null references ops.projects (id) on delete cascade,
    delivery_id text not null,
    event text not null,
    headers jsonb not null,           -- as received, less those that carry secrets
    body bytea not null,
    received_at timestamptz not null default now(),
    status ops.delivery_status not null default 'pending',
    attempts integer not null default 0,
    next_attempt_at timestamptz not null default now(),
    processed_at timestamptz,
    outcome text,                     -- what was done, why nothing was, or the last error
    run_id bigint references ops.runs (id) on delete set null,
    constraint hook_deliveries_key unique (host, hook_id, delivery_id),
    constraint hook_deliveries_host_check check (host in ('github', 'gitlab', 'gitea')),
    constraint hook_deliveries_delivery_id_check check (length(delivery_id) between 1 and 200)
);
create index hook_deliveries_pending_idx on ops.hook_deliveries (next_attempt_at) where status = 'pending';
create index hook_deliveries_project_idx on ops.hook_deliveries (project_id, id desc);

-- What deliveries did, by content: a replay under a new delivery id (Gitea
-- gives each redelivery one) finds the delivery that already did it.
create table ops.hook_effects (
    project_id uuid not null references ops.projects (id) on delete cascade,
    key text not null,
    delivery_id bigint not null references ops.hook_deliveries (id) on delete cascade,
    created_at timestamptz not null default now(),
    primary key (project_id, key)
);

alter table ops.hooks enable row level security;
alter table ops.hooks force row level security;
alter table ops.hook_deliveries enable row level security;
alter table ops.hook_deliveries force row level security;
alter table ops.hook_effects enable row level security;
alter table ops.hook_effects force row level security;

-- Deliveries are received and processed by the control plane; a project's
-- admins may look at its hook and what was delivered to it.
create policy service_all on ops.hooks for all to service_role using (true) with check (true);
create policy service_all on ops.hook_deliveries for all to service_role using (true) with check (true);
create policy service_all on ops.hook_effects for all to service_role using (true) with check (true);
create policy admin_select on ops.hooks for select to authenticated
    using (project_id in (select project_id from ops.my_projects() where role >= 'admin'));
create policy admin_select on ops.hook_deliveries for select to authenticated
    using (project_id in (select project_id from ops.my_projects() where role >= 'admin'));

grant select, insert, update, delete on ops.hooks, ops.hook_deliveries, ops.hook_effects to service_role;
grant usage on all sequences in schema ops to service_role;
grant select (id, project_id, created_at, rotated_at) on ops.hooks to authenticated;
grant select (id, host, hook_id, project_id, delivery_id, event, received_at, status, attempts,
              next_attempt_at, processed_at, outcome, run_id) on ops.hook_deliveries to authenticated;

-- Nothing for the control plane; for a user, "not found" when the project is
-- not theirs to see, and `p_refusal` when their role there is below `p_min`.
create function ops.require_project_role(p_project_id uuid, p_min ops.member_role, p_refusal text) returns void
language plpgsql stable security definer set search_path = '' as $$
declare
    v_role ops.member_role := ops.project_role(p_project_id);
begin
    if ops.caller_is_service() then
        return;
    end if;
    if v_role is null then
        raise exception 'project not found' using errcode = 'OP002';
    end if;
    if v_role < p_min then
        raise exception '%', p_refusal using errcode = '42501';
    end if;
end
$$;

-- A project's hook with a fresh salt (so a fresh secret): project admins only.
create function ops.rotate_hook(p_project_id uuid) returns ops.hooks
language plpgsql security definer set search_path = '' as $$
declare
    h ops.hooks;
begin
    perform ops.require_project_role(p_project_id, 'admin', 'only an admin of this project can create or rotate its hook');
    insert into ops.hooks as x (project_id) values (p_project_id)
    on conflict (project_id) do update set salt = gen_random_uuid()::text, rotated_at = now()
    returning * into h;
    return h;
end
$$;

-- Archiving keeps a branch's history but ends its unfinished runs; a push
-- to a deleted branch archives it, and a push that recreates it revives it.
create function ops.end_runs(p_project_id uuid, p_branch_id uuid, p_why text) returns void
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
        perform pg_notify('ops_run_canceled', c::text);
    end loop;
end
$$;

create function ops.archive_branch(p_branch_id uuid) returns ops.branches
language plpgsql security definer set search_path = '' as $$
declare
    b ops.branches;
begin
    select * into b from ops.branches where id = p_branch_id for update;
    if not found then
        raise exception 'branch not found' using errcode = 'OP002';
    end if;
    perform ops.require_project_role(b.project_id, 'admin', 'only an admin of this project can archive branches');
    if b.stage = 'production' then
        raise exception 'branch "%" is the production branch and cannot be archived; archive the project instead',
            b.name using errcode = 'OP003';
    end if;
    if b.archived_at is null then
        update ops.branches set archived_at = now() where id = b.id returning * into b;
        perform ops.end_runs(b.project_id, b.id, format('canceled: branch %s was archived', b.name));
    end if;
    return b;
end
$$;

create function ops.archive_project(p_project_id uuid) returns ops.projects
language plpgsql security definer set search_path = '' as $$
declare
    p ops.projects;
begin
    perform ops.require_project_role(p_project_id, 'owner', 'only an owner of this project can archive it');
    select * into p from ops.projects where id = p_project_id for update;
    if p.archived_at is null then
        update ops.projects set archived_at = now() where id = p.id returning * into p;
        -- archived branches take no builds, so neither does the archived project
        update ops.branches set archived_at = now() where project_id = p.id and archived_at is null;
        perform ops.end_runs(p.id, null, 'canceled: the project was archived');
    end if;
    return p;
end
$$;

-- Adding a member by email. An address without an account gets one (with
-- no password, so it cannot sign in until its owner sets one): the answer is
-- the same either way, so adding someone reveals nothing about who has an account.
create function ops.add_org_member(p_org_id uuid, p_email text, p_role ops.member_role) returns ops.org_members
language plpgsql security definer set search_path = '' as $$
declare
    v_caller ops.member_role := ops.org_role(p_org_id);
    v_email text := btrim(p_email);
    v_user uuid;
    m ops.org_members;
begin
    if not ops.caller_is_service() then
        if v_caller is null then
            raise exception 'org not found' using errcode = 'OP002';
        end if;
        if v_caller < 'admin' or (v_caller = 'admin' and p_role = 'owner') then
            raise exception 'only owners add owners, and only admins and owners add members' using errcode = '42501';
        end if;
    end if;
    insert into ops.users (email, name) values (v_email, split_part(v_email, '@', 1))
    on conflict ((lower(email))) do nothing;
    select id into v_user from ops.users where lower(email) = lower(v_email);
    insert into ops.org_members (org_id, user_id, role) values (p_org_id, v_user, p_role)
    on conflict (org_id, user_id) do nothing
    returning * into m;
    if not found then
        raise exception '% is already a member: change their role instead', v_email using errcode = 'OP003';
    end if;
    return m;
end
$$;

-- A build again, same branch, commit and parameters. A fork's pull request
-- waits for an admin again, unless an admin asks.
create function ops.rebuild(p_run_id bigint) returns ops.runs
language plpgsql security definer set search_path = '' as $$
declare
    r ops.runs;
    v_fork boolean;
begin
    r := ops.lock_visible_run(p_run_id);
    if r.kind <> 'build' then
        raise exception 'run % is a %, and only builds are rebuilt', p_run_id, r.kind using errcode = 'OP003';
    end if;
    v_fork := r.ref like 'refs/pull/%' or r.ref like 'refs/merge-requests/%';
    return ops.enqueue_build(r.branch_id, r.commit_sha, 'rebuild', r.ref, r.pr_number, r.params,
                             not v_fork or ops.caller_is_service() or ops.project_role(r.project_id) >= 'admin');
end
$$;

revoke all on all functions in schema ops from public;
grant execute on function ops.rotate_hook(uuid), ops.archive_branch(uuid), ops.archive_project(uuid),
    ops.add_org_member(uuid, text, ops.member_role), ops.rebuild(bigint) to authenticated, service_role;
