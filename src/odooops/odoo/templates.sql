-- The template cache, on the environments' server as OdooOps' role. A
-- template's record is the JSON comment of its database. Blocks with {braces}
-- take identifiers and literals composed by psycopg.sql; %s are bound.

-- name: template
select d.datname as database, shobj_description(d.oid, 'pg_database') as comment
  from pg_database d where d.datname = %s

-- name: templates
select d.datname as database, shobj_description(d.oid, 'pg_database') as comment
  from pg_database d where starts_with(d.datname, %s)
 order by d.datname

-- name: create_template
create database {database} template template0 encoding 'UTF8' lc_collate 'C'

-- name: revoke_public
revoke all on database {database} from public

-- name: grant_connect
grant connect, temporary on database {database} to {role}

-- name: give_public_schema
alter schema public owner to {role}

-- name: create_extensions
create extension if not exists pg_trgm

-- name: close_template
alter database {database} with allow_connections false

-- name: revoke_role
revoke all on database {database} from {role}

-- name: terminate_database
select count(pg_terminate_backend(pid)) as n from pg_stat_activity where datname = %s and pid <> pg_backend_pid()

-- name: database_size
select pg_database_size(%s) as size

-- name: comment_template
comment on database {database} is {comment}

-- name: drop_template
drop database if exists {database} with (force)

-- name: has_parameters
select to_regclass('public.ir_config_parameter') is not null as found

-- name: new_identity
update ir_config_parameter
   set value = case key when 'database.create_date' then to_char(now() at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS')
                        else gen_random_uuid()::text end
 where key in ('database.uuid', 'database.secret', 'database.create_date')

-- name: terminate_role
select count(pg_terminate_backend(pid)) as n from pg_stat_activity where usename = %s and pid <> pg_backend_pid()

-- name: drop_role
drop role if exists {role}
