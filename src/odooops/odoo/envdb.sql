-- The environments' server (Odoo's databases), as its superuser or as the
-- role of ODOOOPS_ENV_DATABASE_URL. Blocks with {braces} take identifiers and
-- literals composed by psycopg.sql (DDL binds no parameters); %s are bound.

-- name: admin_rights
select rolsuper as superuser, rolsuper or (rolcreaterole and rolcreatedb) as can_create,
       current_user as name, current_setting('server_version_num')::int as version
  from pg_roles where rolname = current_user

-- name: role
select rolname as name, shobj_description(oid, 'pg_authid') as comment from pg_roles where rolname = %s

-- name: lock_role
select pg_advisory_xact_lock(%s, hashtext(%s))

-- name: create_role_as_superuser
create role {role} with login nosuperuser nocreatedb nocreaterole noreplication nobypassrls password {password}

-- name: alter_role_as_superuser
alter role {role} with login nosuperuser nocreatedb nocreaterole noreplication nobypassrls password {password}

-- name: create_role
create role {role} with login nocreatedb nocreaterole password {password}

-- name: alter_role
alter role {role} with login nocreatedb nocreaterole password {password}

-- name: admin_joins_role
grant {role} to current_user

-- name: comment_role
comment on role {role} is {comment}

-- name: create_database
create database {database} owner {owner} template template0 encoding 'UTF8' lc_collate 'C'

-- name: create_database_from
create database {database} owner {owner} template {template} {strategy}

-- name: revoke_public
revoke all on database {database} from public

-- name: grant_connect
grant connect, temporary on database {database} to {role}

-- name: create_extensions
create extension if not exists pg_trgm

-- name: owner_of
select r.rolname as owner, shobj_description(r.oid, 'pg_authid') as comment
  from pg_database d join pg_roles r on r.oid = d.datdba
 where d.datname = %s

-- name: databases_of
select d.datname as name
  from pg_database d join pg_roles r on r.oid = d.datdba
 where r.rolname = %s
 order by d.datname

-- name: alter_database_owner
alter database {database} owner to {owner}

-- name: drop_database
drop database if exists {database} with (force)

-- name: reassign_owned
reassign owned by {old} to {new}

-- name: drop_owned
drop owned by {role}

-- name: terminate_role
select count(pg_terminate_backend(pid)) as n from pg_stat_activity where usename = %s and pid <> pg_backend_pid()

-- name: drop_role
drop role if exists {role}

-- name: lock
select true as locked from pg_advisory_lock(%s, hashtext(%s))

-- name: lock_shared
select true as locked from pg_advisory_lock_shared(%s, hashtext(%s))

-- name: try_lock
select pg_try_advisory_lock(%s, hashtext(%s)) as locked
