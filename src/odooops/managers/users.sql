-- name: create
insert into ops.users (email, name, password_hash)
values (%(email)s, %(name)s, %(password_hash)s)
returning id, email, name, is_active, created_at;

-- name: list
select id, email, name, is_active, created_at from ops.users order by lower(email);

-- name: me
select id, email, name from ops.users where id = ops.current_user_id();
