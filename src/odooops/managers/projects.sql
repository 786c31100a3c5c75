-- name: insert
insert into ops.projects (org_id, slug, name, repo_url, default_branch, odoo_version)
values (%(org_id)s, %(slug)s, %(name)s, %(repo_url)s, %(default_branch)s, %(odoo_version)s)
returning *;

-- name: insert_production_branch
insert into ops.branches (project_id, name, stage)
values (%(project_id)s, %(name)s, 'production')
returning *;

-- name: list
select * from ops.list_projects(%(include_archived)s);

-- name: merge_settings
update ops.projects set settings = settings || %(values)s where id = %(id)s returning *;

-- name: drop_setting
update ops.projects set settings = settings - %(key)s::text where id = %(id)s returning *;

-- name: update
update ops.projects set name = coalesce(%(name)s, name), repo_url = coalesce(%(repo_url)s, repo_url),
       odoo_version = coalesce(%(odoo_version)s, odoo_version)
 where id = %(id)s returning *;

-- name: archive
select * from ops.archive_project(%(id)s);

-- name: my_role
select ops.project_role(%(id)s) as role;

-- name: page
select * from ops.project_page(%(search)s, %(limit)s, %(offset)s);

-- name: org_roots
select path from ops.org_repo_roots where org_id = %(org_id)s;
