-- name: may_manage
select ops.caller_is_service() or coalesce(ops.project_role(%(project_id)s) >= 'admin', false) as ok;

-- name: insert
insert into ops.ingest_tokens (project_id, name, token_hash)
values (%(project_id)s, %(name)s, %(token_hash)s)
returning id, project_id, name, created_by, created_at, last_used_at, revoked_at;

-- name: list
select id, project_id, name, created_by, created_at, last_used_at, revoked_at
  from ops.ingest_tokens where project_id = %(project_id)s order by created_at, id;

-- name: revoke
update ops.ingest_tokens set revoked_at = now()
 where id = %(id)s and project_id = %(project_id)s and revoked_at is null
returning id, project_id, name, created_by, created_at, last_used_at, revoked_at;

-- name: resolve
select ops.ingest_token_project(%(token_hash)s) as project_id;
