-- What the console, API and CLI ask of the database. Security invoker (the
-- default): row-level security decides what each caller sees and may change.

-- Whether the caller is the control plane: the service_role, or an owner
-- session that set no role. Read from the role the request set, so that it
-- holds inside security definer functions too, where current_user is the owner.
create function ops.caller_is_service() returns boolean
language sql stable set search_path = '' as $$
    select current_setting('role') in ('service_role', 'none') and ops.current_user_id() is null
$$;

create function ops.may_operate(p_run ops.runs) returns boolean
language sql stable set search_path = '' as $$
    select ops.caller_is_service() or case
        when p_run.branch_id is null then coalesce(ops.project_role(p_run.project_id) >= 'admin', false)
        else ops.can_operate_branch(p_run.branch_id)
    end
$$;

-- A new org with the caller as its owner.
create function ops.create_org(p_slug text, p_name text) returns ops.orgs
language plpgsql security definer set search_path = '' as $$
declare
    o ops.orgs;
    me uuid := ops.current_user_id();
begin
    if me is null or not exists (select from ops.users u where u.id = me and u.is_active) then
        raise exception 'only a signed-in user can create an org' using errcode = '42501';
    end if;
    insert into ops.orgs (slug, name) values (p_slug, p_name) returning * into o;
    insert into ops.org_members (org_id, user_id, role) values (o.id, me, 'owner');
    return o;
end
$$;

create function ops.list_projects(p_include_archived boolean default false)
returns table (
    id uuid, org_id uuid, org_slug text, slug text, name text, repo_url text,
    default_branch text, odoo_version text, branch_count bigint, build_count bigint,
    last_build_id bigint, last_build_status ops.run_status, last_build_result ops.run_result,
    last_build_at timestamptz, created_at timestamptz, archived_at timestamptz)
language sql stable set search_path = '' as $$
    select p.id, p.org_id, o.slug, p.slug, p.name, p.repo_url, p.default_branch, p.odoo_version,
           (select count(*) from ops.branches b where b.project_id = p.id and b.archived_at is null),
           (select count(*) from ops.runs r where r.project_id = p.id and r.kind = 'build'),
           lb.id, lb.status, lb.result,
           coalesce(lb.finished_at, lb.started_at, lb.queued_at, lb.created_at),
           p.created_at, p.archived_at
      from ops.projects p
      join ops.orgs o on o.id = p.org_id
      left join lateral (
          select r.id, r.status, r.result, r.finished_at, r.started_at, r.queued_at, r.created_at
            from ops.runs r where r.project_id = p.id and r.kind = 'build'
           order by r.id desc limit 1) lb on true
     where p_include_archived or p.archived_at is null
     order by o.slug, p.slug
$$;

create function ops.project_branches(p_project_id uuid, p_include_archived boolean default false)
returns table (
    id uuid, project_id uuid, name text, stage ops.stage, build_count bigint,
    last_build_id bigint, last_build_status ops.run_status, last_build_result ops.run_result,
    last_build_commit text, last_build_at timestamptz, created_at timestamptz, archived_at timestamptz)
language sql stable set search_path = '' as $$
    select b.id, b.project_id, b.name, b.stage,
           (select count(*) from ops.runs r where r.branch_id = b.id and r.kind = 'build'),
           lb.id, lb.status, lb.result, lb.commit_sha,
           coalesce(lb.finished_at, lb.started_at, lb.queued_at, lb.created_at),
           b.created_at, b.archived_at
      from ops.branches b
      left join lateral (
          select r.id, r.status, r.result, r.commit_sha, r.finished_at, r.started_at, r.queued_at, r.created_at
            from ops.runs r where r.branch_id = b.id and r.kind = 'build'
           order by r.id desc limit 1) lb on true
     where b.project_id = p_project_id and (p_include_archived or b.archived_at is null)
     order by b.stage desc, b.name
$$;

-- Newest first; pass the smallest id of a page as p_before for the next one.
create function ops.branch_builds(p_branch_id uuid, p_before bigint default null, p_limit integer default 50)
returns setof ops.runs
language sql stable set search_path = '' as $$
    select r.* from ops.runs r
     where r.branch_id = p_branch_id and r.kind = 'build'
       and (p_before is null or r.id < p_before)
     order by r.id desc
     limit least(greatest(coalesce(p_limit, 50), 1), 500)
$$;

create function ops.build_logs(p_run_id bigint, p_after_seq integer default 0, p_limit integer default 1000)
returns setof ops.run_events
language sql stable set search_path = '' as $$
    select e.* from ops.run_events e
     where e.run_id = p_run_id and e.seq > coalesce(p_after_seq, 0)
     order by e.seq
     limit least(greatest(coalesce(p_limit, 1000), 1), 10000)
$$;

-- Production first, then staging, then development; within a stage, work a
-- person asked for before work a push caused.
create function ops.build_priority(p_stage ops.stage, p_trigger ops.run_trigger) returns integer
language sql immutable set search_path = '' as $$
    select case p_stage when 'production' then 300 when 'staging' then 200 else 100 end
         + case when p_trigger in ('manual', 'rebuild', 'api') then 10 else 0 end
$$;

-- PostgreSQL lets everyone execute a new function; ops functions are for the
-- three roles only. Every migration that adds functions ends like this.
revoke all on all functions in schema ops from public;
grant execute on function
    ops.caller_is_service(), ops.may_operate(ops.runs), ops.create_org(text, text),
    ops.list_projects(boolean), ops.project_branches(uuid, boolean),
    ops.branch_builds(uuid, bigint, integer), ops.build_logs(bigint, integer, integer),
    ops.build_priority(ops.stage, ops.run_trigger)
    to authenticated, service_role;
