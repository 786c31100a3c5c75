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

-- name: ensure_user
-- an account without a password for an address that has none, as ops.add_org_member makes
insert into ops.users (email, name) values (%(email)s, split_part(%(email)s, '@', 1))
on conflict ((lower(email))) do nothing;

-- name: invite
select * from ops.add_org_member(%(org_id)s, %(email)s, %(role)s);

-- name: members
select m.user_id, u.email, u.name, m.role, m.created_at
  from ops.org_members m join ops.users u on u.id = m.user_id
 where m.org_id = %(org_id)s and (%(user_id)s::uuid is null or m.user_id = %(user_id)s)
 order by m.role desc, lower(u.email);

-- name: member
select user_id, role from ops.org_members where org_id = %(org_id)s and user_id = %(user_id)s;

-- name: set_role
update ops.org_members set role = %(role)s where org_id = %(org_id)s and user_id = %(user_id)s returning *;

-- name: remove
delete from ops.org_members where org_id = %(org_id)s and user_id = %(user_id)s returning *;

-- name: mine
select o.id, o.slug, o.name, ops.org_role(o.id) as role from ops.orgs o order by o.slug;

-- name: insert_root
insert into ops.org_repo_roots (org_id, path) values (%(org_id)s, %(path)s)
on conflict do nothing returning *;

-- name: root
select * from ops.org_repo_roots where org_id = %(org_id)s and path = %(path)s;

-- name: delete_root
delete from ops.org_repo_roots where org_id = %(org_id)s and path = %(path)s returning *;

-- name: roots
select path, created_at from ops.org_repo_roots where org_id = %(org_id)s order by path;

-- name: administered
-- the orgs the caller may create projects in, their own first: one they
-- founded (its membership made with it), then by how long they have been admin
select o.slug, o.name, m.role
  from ops.orgs o
  join ops.org_members m on m.org_id = o.id and m.user_id = ops.current_user_id()
 where m.role >= 'admin'
 order by m.created_at = o.created_at desc, m.created_at, o.slug;
