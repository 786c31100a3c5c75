-- name: insert
insert into ops.branches (project_id, name, stage) values (%(project_id)s, %(name)s, %(stage)s)
returning *;

-- name: list
select * from ops.project_branches_v2(%(project_id)s, %(include_archived)s);

-- name: set_stage
update ops.branches set stage = %(stage)s where id = %(id)s returning *;

-- name: archive
select * from ops.archive_branch(%(id)s);

-- name: merge_settings
update ops.branches set settings = (settings || %(values)s) - %(drop)s::text[] where id = %(id)s returning *;

