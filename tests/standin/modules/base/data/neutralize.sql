-- every mail server off, and one that cannot deliver in their place, so
-- that the servers given on the command line are not used either
UPDATE ir_mail_server
   SET active = false;
INSERT INTO ir_mail_server(name, smtp_port, smtp_host, smtp_encryption, active, smtp_authentication)
VALUES ('neutralization - disable emails', 1025, 'invalid', 'none', true, 'login');

-- every scheduled action off but the autovacuum
UPDATE ir_cron
   SET active = false
 WHERE id NOT IN (SELECT res_id FROM ir_model_data
                   WHERE module = 'base' AND name = 'autovacuum_job' AND model = 'ir.cron');

-- the database says it was neutralized
INSERT INTO ir_config_parameter (key, value)
VALUES ('database.is_neutralized', true)
    ON CONFLICT (key) DO UPDATE SET value = true;

-- server actions do not call their webhooks
UPDATE ir_act_server
   SET webhook_url = 'neutralization - disable webhook'
 WHERE state = 'webhook';
