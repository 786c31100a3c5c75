-- Roles, grants and row-level security. Role names follow Supabase/PostgREST
-- so the same schema runs on plain PostgreSQL and on a Supabase database:
--   anon           no identity: sees nothing in ops
--   authenticated  a user, identified by request.jwt.claims ->> 'sub'
--   service_role   the control plane itself (runners, local admin CLI)

do $$
begin
    if not exists (select from pg_roles where rolname = 'anon') then
        create role anon nologin noinherit;
    end if;
    if not exists (select from pg_roles where rolname = 'authenticated') then
        create role authenticated nologin noinherit;
    end if;
    if not exists (select from pg_roles where rolname = 'service_role') then
        create role service_role nologin noinherit;
    end if;
end
$$;

-- Membership helpers. Security definer so policies can ask them without
-- recursing into the policies of the membership tables.

-- The caller's role in a project: a project role overrides the org role.
create function ops.project_role(p_project_id uuid) returns ops.member_role
language sql stable security definer set search_path = '' as $$
    select coalesce(
        (select pm.role from ops.project_members pm
          where pm.project_id = p_project_id and pm.user_id = u.id),
        (select om.role from ops.org_members om
           join ops.projects p on p.org_id = om.org_id
          where p.id = p_project_id and om.user_id = u.id))
      from ops.users u
     where u.id = ops.current_user_id() and u.is_active
$$;

create function ops.org_role(p_org_id uuid) returns ops.member_role
language sql stable security definer set search_path = '' as $$
    select om.role
      from ops.org_members om
      join ops.users u on u.id = om.user_id and u.is_active
     where om.org_id = p_org_id and om.user_id = ops.current_user_id()
$$;

-- Every project the caller can see, with the caller's effective role there.
-- Policies use it as `project_id in (select … from ops.my_projects())`, an
-- uncorrelated subquery the planner runs once per statement.
create function ops.my_projects() returns table (project_id uuid, role ops.member_role)
language sql stable security definer set search_path = '' as $$
    select p.id, coalesce(pm.role, om.role)
      from ops.users u
      join ops.projects p on true
      left join ops.org_members om on om.org_id = p.org_id and om.user_id = u.id
      left join ops.project_members pm on pm.project_id = p.id and pm.user_id = u.id
     where u.id = ops.current_user_id() and u.is_active
       and coalesce(pm.role, om.role) is not null
$$;

-- Orgs the caller belongs to, directly or through one of its projects.
create function ops.my_orgs() returns table (org_id uuid, role ops.member_role)
language sql stable security definer set search_path = '' as $$
    select o.id, om.role
      from ops.users u
      join ops.orgs o on true
      left join ops.org_members om on om.org_id = o.id and om.user_id = u.id
     where u.id = ops.current_user_id() and u.is_active
       and (om.role is not null
            or exists (select from ops.project_members pm join ops.projects p on p.id = pm.project_id
                        where pm.user_id = u.id and p.org_id = o.id))
$$;

-- People who share an org or a project with the caller (and the caller).
create function ops.my_teammates() returns table (user_id uuid)
language sql stable security definer set search_path = '' as $$
    select ops.current_user_id()
    union
    select om.user_id from ops.org_members om
     where om.org_id in (select o.org_id from ops.my_orgs() o)
    union
    select pm.user_id from ops.project_members pm
     where pm.project_id in (select p.project_id from ops.my_projects() p)
$$;

-- Whether the caller may start or cancel work on a branch: developers on
-- development branches, admins and owners on every stage.
create function ops.can_operate_branch(p_branch_id uuid) returns boolean
language sql stable security definer set search_path = '' as $$
    select coalesce(
        (select case b.stage
                    when 'development' then ops.project_role(b.project_id) >= 'developer'
                    else ops.project_role(b.project_id) >= 'admin'
                end
           from ops.branches b where b.id = p_branch_id),
        false)
$$;

revoke all on all functions in schema ops from public;
grant usage on schema ops to anon, authenticated, service_role;
grant execute on function ops.current_user_id(), ops.project_role(uuid), ops.org_role(uuid),
    ops.my_projects(), ops.my_orgs(), ops.my_teammates(), ops.can_operate_branch(uuid)
    to authenticated, service_role;

-- service_role: the control plane, every row of every table.
grant select, insert, update, delete on all tables in schema ops to service_role;
revoke update, delete on ops.run_events from service_role;  -- append-only
grant usage on all sequences in schema ops to service_role;

-- authenticated: what the policies below then narrow to the caller's tenants.
grant select on ops.orgs, ops.org_members, ops.project_members, ops.projects, ops.branches,
    ops.runs, ops.run_events, ops.artifacts, ops.workers, ops.run_transitions to authenticated;
grant update (name) on ops.orgs to authenticated;
grant delete on ops.orgs to authenticated;
grant select (id, email, name, is_active, created_at) on ops.users to authenticated;
grant update (name) on ops.users to authenticated;
grant insert, update, delete on ops.org_members, ops.project_members to authenticated;
grant select, delete on ops.api_tokens to authenticated;
grant insert (user_id, name, token_hash, scopes, expires_at) on ops.api_tokens to authenticated;
grant update (revoked_at) on ops.api_tokens to authenticated;
grant insert, delete on ops.projects to authenticated;
grant update (name, repo_url, default_branch, odoo_version, settings, archived_at) on ops.projects to authenticated;
grant insert, delete on ops.branches to authenticated;
grant update (stage, settings, archived_at) on ops.branches to authenticated;
grant insert (kind, project_id, branch_id, commit_sha, ref, pr_number, trigger, status, priority, params)
    on ops.runs to authenticated;
grant update (status) on ops.runs to authenticated;
grant delete on ops.runs to authenticated;

-- Row-level security on every table, forced so even the owner is held to it
-- unless it is a superuser or has BYPASSRLS (as Supabase's postgres role does).
do $$
declare t record;
begin
    for t in select c.relname from pg_class c
              where c.relnamespace = 'ops'::regnamespace and c.relkind in ('r', 'p')
                and c.relname <> 'schema_migrations'
    loop
        execute format('alter table ops.%I enable row level security', t.relname);
        execute format('alter table ops.%I force row level security', t.relname);
        execute format('create policy service_all on ops.%I for all to service_role using (true) with check (true)',
                       t.relname);
    end loop;
end
$$;

-- orgs: members see; admins rename; owners delete. New orgs come from ops.create_org().
create policy member_select on ops.orgs for select to authenticated
    using (id in (select org_id from ops.my_orgs()));
create policy admin_update on ops.orgs for update to authenticated
    using (id in (select org_id from ops.my_orgs() where role >= 'admin'));
create policy owner_delete on ops.orgs for delete to authenticated
    using (id in (select org_id from ops.my_orgs() where role = 'owner'));

-- users: yourself and your teammates; you may rename yourself.
create policy teammate_select on ops.users for select to authenticated
    using (id in (select user_id from ops.my_teammates()));
create policy self_update on ops.users for update to authenticated
    using (id = (select ops.current_user_id())) with check (id = (select ops.current_user_id()));

-- org_members: members see; admins manage members below owner; owners manage all.
create policy member_select on ops.org_members for select to authenticated
    using (org_id in (select org_id from ops.my_orgs()));
create policy manage_insert on ops.org_members for insert to authenticated
    with check ((select ops.org_role(org_id)) = 'owner'
                or ((select ops.org_role(org_id)) = 'admin' and role < 'owner'));
create policy manage_update on ops.org_members for update to authenticated
    using ((select ops.org_role(org_id)) = 'owner'
           or ((select ops.org_role(org_id)) = 'admin' and role < 'owner'))
    with check ((select ops.org_role(org_id)) = 'owner'
                or ((select ops.org_role(org_id)) = 'admin' and role < 'owner'));
create policy manage_delete on ops.org_members for delete to authenticated
    using ((select ops.org_role(org_id)) = 'owner'
           or ((select ops.org_role(org_id)) = 'admin' and role < 'owner'));

-- project_members: as org_members, judged by the role in the project.
create policy member_select on ops.project_members for select to authenticated
    using (project_id in (select project_id from ops.my_projects()));
create policy manage_insert on ops.project_members for insert to authenticated
    with check ((select ops.project_role(project_id)) = 'owner'
                or ((select ops.project_role(project_id)) = 'admin' and role < 'owner'));
create policy manage_update on ops.project_members for update to authenticated
    using ((select ops.project_role(project_id)) = 'owner'
           or ((select ops.project_role(project_id)) = 'admin' and role < 'owner'))
    with check ((select ops.project_role(project_id)) = 'owner'
                or ((select ops.project_role(project_id)) = 'admin' and role < 'owner'));
create policy manage_delete on ops.project_members for delete to authenticated
    using ((select ops.project_role(project_id)) = 'owner'
           or ((select ops.project_role(project_id)) = 'admin' and role < 'owner'));

-- api_tokens: your own only.
create policy self_all on ops.api_tokens for all to authenticated
    using (user_id = (select ops.current_user_id()))
    with check (user_id = (select ops.current_user_id()));

-- projects: members see; org admins create; project admins change; owners delete.
-- The org clause lets `insert … returning` show an org admin the project just
-- made, which ops.my_projects(), reading the statement's snapshot, cannot yet see.
create policy member_select on ops.projects for select to authenticated
    using (id in (select project_id from ops.my_projects())
           or org_id in (select org_id from ops.my_orgs() where role is not null));
create policy org_admin_insert on ops.projects for insert to authenticated
    with check ((select ops.org_role(org_id)) >= 'admin');
create policy admin_update on ops.projects for update to authenticated
    using (id in (select project_id from ops.my_projects() where role >= 'admin'));
create policy owner_delete on ops.projects for delete to authenticated
    using (id in (select project_id from ops.my_projects() where role = 'owner'));

-- branches: members see; admins add, change stages and archive; owners delete.
create policy member_select on ops.branches for select to authenticated
    using (project_id in (select project_id from ops.my_projects()));
create policy admin_insert on ops.branches for insert to authenticated
    with check ((select ops.project_role(project_id)) >= 'admin');
create policy admin_update on ops.branches for update to authenticated
    using (project_id in (select project_id from ops.my_projects() where role >= 'admin'));
create policy owner_delete on ops.branches for delete to authenticated
    using (project_id in (select project_id from ops.my_projects() where role = 'owner'));

-- runs: members see; developers enqueue and cancel on development branches,
-- admins on every stage (column grants allow a user to change only the status,
-- and the state machine trigger decides which status); owners delete.
create policy member_select on ops.runs for select to authenticated
    using (project_id in (select project_id from ops.my_projects()));
create policy operator_insert on ops.runs for insert to authenticated
    with check (case when branch_id is null then (select ops.project_role(project_id)) >= 'admin'
                     else (select ops.can_operate_branch(branch_id)) end);
create policy operator_update on ops.runs for update to authenticated
    using (case when branch_id is null then (select ops.project_role(project_id)) >= 'admin'
                else (select ops.can_operate_branch(branch_id)) end)
    with check (status = 'canceled');
create policy owner_delete on ops.runs for delete to authenticated
    using (project_id in (select project_id from ops.my_projects() where role = 'owner'));

-- run_events and artifacts: visible with their run; written by the control plane only.
create policy member_select on ops.run_events for select to authenticated
    using (exists (select from ops.runs r where r.id = run_id));
create policy member_select on ops.artifacts for select to authenticated
    using (exists (select from ops.runs r where r.id = run_id));

-- workers and the transition table hold no tenant data: any signed-in user may read them.
create policy authenticated_select on ops.workers for select to authenticated using (true);
create policy authenticated_select on ops.run_transitions for select to authenticated using (true);
