-- name: begin
select * from ops.login_begin(%(email)s, %(address)s);

-- name: succeeded
select * from ops.login_succeeded(%(attempt_id)s, %(user_id)s, %(token_hash)s, %(address)s, %(user_agent)s);

-- name: resolve
select * from ops.session_actor(%(token_hash)s);

-- name: end
delete from ops.sessions where id = %(id)s returning id;
