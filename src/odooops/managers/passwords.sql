-- name: set
select ops.set_password(%(user_id)s, %(password_hash)s, %(keep_session)s);

-- name: start_reset
select ops.start_password_reset(%(user_id)s, %(token_hash)s, %(seconds)s) as expires_at;

-- name: reset_user
select * from ops.password_reset_user(%(token_hash)s);

-- name: finish_reset
select * from ops.finish_password_reset(%(token_hash)s, %(password_hash)s);

-- name: forget_attempt
delete from ops.login_failures where id = %(attempt_id)s;
