-- name: names
select name from ops.project_secret_names(%(project_id)s) as name;

-- name: put
select ops.put_project_secret(%(project_id)s, %(name)s, %(nonce)s, %(ciphertext)s);

-- name: drop
select ops.drop_project_secrets(%(project_id)s, %(names)s);

-- name: of_project
select name, nonce, ciphertext, unsealed from ops.project_secrets where project_id = %(project_id)s order by name;

-- name: unsealed
select project_id, name, unsealed from ops.project_secrets where unsealed is not null for update;

-- name: seal
update ops.project_secrets set nonce = %(nonce)s, ciphertext = %(ciphertext)s, unsealed = null
 where project_id = %(project_id)s and name = %(name)s;
