-- name: insert
insert into ops.orgs (slug, name) values (%(slug)s, %(name)s) returning *;

-- name: create_as_user
select * from ops.create_org(%(slug)s, %(name)s);

-- name: list
select o.*, (select count(*) from ops.projects p where p.org_id = o.id and p.archived_at is null) as project_count
  from ops.orgs o order by o.slug;

-- name: add_member
insert into ops.org_members (org_id, user_id, role) values (%(org_id)s, %(user_id)s, %(role)s)
returning *;

-- name: add_project_member
insert into ops.project_members (project_id, user_id, role) values (%(project_id)s, %(user_id)s, %(role)s)
returning *;
