-- name: insert
insert into ops.api_tokens (user_id, name, token_hash, scopes, expires_at)
values (%(user_id)s, %(name)s, %(token_hash)s, %(scopes)s, %(expires_at)s)
returning id, user_id, name, scopes, expires_at, created_at;

-- name: resolve
select * from ops.token_actor(%(token_hash)s);

-- name: list
select id, user_id, name, scopes, expires_at, last_used_at, revoked_at, created_at
  from ops.api_tokens where user_id = %(user_id)s order by created_at;

-- name: revoke
update ops.api_tokens set revoked_at = now()
 where id = %(id)s and user_id = %(user_id)s and revoked_at is null
returning id, user_id, name, scopes, expires_at, last_used_at, revoked_at, created_at;
