-- Policy gates, on one of Odoo's databases as the environments' server's
-- superuser (read only).

-- name: table_count
-- tables (plain and partitioned) and sequences, as Odoo.sh counts them against its ceiling
select count(*)::int as n
  from pg_class c join pg_namespace n on n.oid = c.relnamespace
 where c.relkind in ('r', 'p', 'S')
   and n.nspname not in ('pg_catalog', 'information_schema')
   and n.nspname not like 'pg\_toast%'
   and n.nspname not like 'pg\_temp\_%'

-- name: has_mail_servers
select to_regclass('ir_mail_server') is not null as present

-- name: mail_servers_on_port
select name, smtp_host as host, smtp_port as port
  from ir_mail_server
 where active and smtp_port = %s
 order by sequence, id
