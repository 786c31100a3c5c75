-- The console's projects page: one page of the caller's projects (row-level
-- security decides which), found by a piece of their name. Branch and build
-- counts and the last build are worked out for that page only, so a tenant
-- with a thousand projects costs what fifty do.
create function ops.project_page(p_search text, p_limit integer, p_offset integer)
returns table (
    id uuid, org_id uuid, org_slug text, slug text, name text, repo_url text,
    default_branch text, odoo_version text, branch_count bigint, build_count bigint,
    last_build_id bigint, last_build_status ops.run_status, last_build_result ops.run_result,
    last_build_at timestamptz, created_at timestamptz, total bigint)
language sql stable set search_path = '' as $$
    with page as (
        select p.id, p.org_id, o.slug as org_slug, p.slug, p.name, p.repo_url, p.default_branch,
               p.odoo_version, p.created_at, count(*) over () as total
          from ops.projects p
          join ops.orgs o on o.id = p.org_id
         where p.archived_at is null
           and (p_search is null
                or strpos(lower(o.slug || '/' || p.slug || ' ' || coalesce(p.name, '')), lower(p_search)) > 0)
         order by o.slug, p.slug
         limit least(greatest(coalesce(p_limit, 50), 1), 500) offset greatest(coalesce(p_offset, 0), 0))
    select page.id, page.org_id, page.org_slug, page.slug, page.name, page.repo_url, page.default_branch,
           page.odoo_version,
           (select count(*) from ops.branches b where b.project_id = page.id and b.archived_at is null),
           (select count(*) from ops.runs r where r.project_id = page.id and r.kind = 'build'),
           lb.id, lb.status, lb.result,
           coalesce(lb.finished_at, lb.started_at, lb.queued_at, lb.created_at),
           page.created_at, page.total
      from page
      left join lateral (
          select r.id, r.status, r.result, r.finished_at, r.started_at, r.queued_at, r.created_at
            from ops.runs r where r.project_id = page.id and r.kind = 'build'
           order by r.id desc limit 1) lb on true
     order by page.org_slug, page.slug
$$;

revoke all on function ops.project_page(text, integer, integer) from public;
grant execute on function ops.project_page(text, integer, integer) to authenticated, service_role;
