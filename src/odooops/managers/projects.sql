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
