-- OdooOps' neutralization of a copy of production (its safety net, after
-- odoo-bin neutralize), run as the branch's role in one of Odoo's databases.
-- Each statement runs only where its table (and column) exists.

-- name: has_table
select to_regclass(%s) is not null as found

-- name: has_column
select exists (select from information_schema.columns
                where table_schema = 'public' and table_name = %s and column_name = %s) as found

-- name: installed_modules
select name from ir_module_module where state in ('installed', 'to upgrade', 'to remove') order by name

-- name: mail_servers_off
update ir_mail_server set active = false where active and name is distinct from %(name)s

-- name: catcher
select id from ir_mail_server where name = %(name)s order by id limit 1

-- name: catcher_insert_with_authentication
insert into ir_mail_server (name, smtp_host, smtp_port, smtp_encryption, smtp_user, smtp_pass, active, sequence,
                            smtp_authentication)
values (%(name)s, %(host)s, %(port)s, 'none', %(user)s, %(password)s, true, 1, 'login')
returning id

-- name: catcher_insert
insert into ir_mail_server (name, smtp_host, smtp_port, smtp_encryption, smtp_user, smtp_pass, active, sequence)
values (%(name)s, %(host)s, %(port)s, 'none', %(user)s, %(password)s, true, 1)
returning id

-- name: catcher_update
update ir_mail_server set smtp_host = %(host)s, smtp_port = %(port)s, smtp_encryption = 'none',
                          smtp_user = %(user)s, smtp_pass = %(password)s, active = true
 where id = %(id)s

-- name: crons_off
update ir_cron set active = false
 where active and id not in (select res_id from ir_model_data
                              where model = 'ir.cron' and module = 'base' and name = 'autovacuum_job')

-- name: fetchmail_off
update fetchmail_server set active = false where active

-- name: templates_server_off
update mail_template set mail_server_id = null where mail_server_id is not null

-- name: payment_test
update payment_provider set state = 'test' where state = 'enabled'

-- name: acquirer_test
update payment_acquirer set state = 'test' where state = 'enabled'

-- name: delivery_test
update delivery_carrier set prod_environment = false where prod_environment

-- name: webhooks_off
update ir_act_server set webhook_url = 'neutralization - disable webhook' where state = 'webhook'

-- name: neutralized_flag
insert into ir_config_parameter (key, value, create_date, write_date)
values ('database.is_neutralized', 'True', now() at time zone 'UTC', now() at time zone 'UTC')
on conflict (key) do update set value = excluded.value, write_date = excluded.write_date

-- name: other_mail_servers
select id, name, smtp_host, smtp_port from ir_mail_server where active and id <> %(id)s order by id

-- name: other_crons
select c.id, coalesce(c.cron_name, c.ir_actions_server_id::text) as name
  from ir_cron c
 where c.active and c.id not in (select res_id from ir_model_data
                                  where model = 'ir.cron' and module = 'base' and name = 'autovacuum_job')
 order by c.id

-- name: other_crons_no_name
select c.id, c.ir_actions_server_id::text as name
  from ir_cron c
 where c.active and c.id not in (select res_id from ir_model_data
                                  where model = 'ir.cron' and module = 'base' and name = 'autovacuum_job')
 order by c.id
