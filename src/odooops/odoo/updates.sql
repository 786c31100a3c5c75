-- What an update reads and writes in one of Odoo's databases (as OdooOps).

-- name: installed
select name, latest_version from ir_module_module where state = 'installed' order by name

-- name: parameters
select key, value from ir_config_parameter where key = any(%s)

-- name: set_parameter
insert into ir_config_parameter (key, value, create_date, write_date)
values (%(key)s, %(value)s, now() at time zone 'UTC', now() at time zone 'UTC')
on conflict (key) do update set value = excluded.value, write_date = excluded.write_date
