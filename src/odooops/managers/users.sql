-- name: create
insert into ops.users (email, name, password_hash)
values (%(email)s, %(name)s, %(password_hash)s)
returning id, email, name, is_active, created_at;

-- name: list
select id, email, name, is_active, created_at from ops.users order by lower(email);

-- name: me
select id, email, name from ops.users where id = ops.current_user_id();

-- name: lock_users
-- two setup forms sent at once: the second waits here, then finds the first owner
lock table ops.users in share row exclusive mode;

-- name: any_user
select exists (select from ops.users) as found;

-- name: adopt_orgs
-- orgs the operator made before anyone could sign in (the demo's, say)
insert into ops.org_members (org_id, user_id, role)
select o.id, %(user_id)s, 'owner' from ops.orgs o
 where not exists (select from ops.org_members m where m.org_id = o.id);
