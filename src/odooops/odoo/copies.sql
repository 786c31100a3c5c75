-- Database copies on the environments' server, as OdooOps. Blocks with
-- {braces} take identifiers composed by psycopg.sql; %s are bound.

-- name: close
alter database {database} with allow_connections false

-- name: terminate
select count(pg_terminate_backend(pid)) as n from pg_stat_activity where datname = %s and pid <> pg_backend_pid()

-- name: size
select pg_database_size(%s) as size
