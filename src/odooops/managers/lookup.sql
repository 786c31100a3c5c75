-- name: user
select id, email, name, is_active, created_at from ops.users where lower(email) = lower(%(email)s);

-- name: org
select * from ops.orgs where slug = %(slug)s;

-- name: project
select p.* from ops.projects p join ops.orgs o on o.id = p.org_id
 where o.slug = %(org_slug)s and p.slug = %(slug)s;

-- name: branch
select * from ops.branches where project_id = %(project_id)s and name = %(name)s;
