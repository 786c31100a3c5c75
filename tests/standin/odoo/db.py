"""The database side: connections as real Odoo makes them (psycopg2 with
only the --db_* options given, libpq's PG* environment for the rest), the
tables real Odoo 17.0 creates that OdooOps reads or writes (columns named as
in 17.0, a subset of them), and the few records of module data the stand-in
understands (README.md: "Data files")."""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import logging
import mimetypes
import os
import uuid
import xml.etree.ElementTree as ET

import psycopg2
from psycopg2 import sql

_logger = logging.getLogger('odoo.sql_db')
queries = {'count': 0}
connected: set = set()  # databases (but the maintenance one) a connection was made to

ROUNDS = 600_000  # passlib's pbkdf2_sha512, as 17.0 hashes passwords

# tables created when a module is installed, by module; IF NOT EXISTS so that
# an update leaves them as they are
SCHEMA = {
    'base': """
CREATE TABLE ir_module_category (id serial PRIMARY KEY, name jsonb NOT NULL, parent_id integer,
    create_date timestamp, write_date timestamp);
CREATE TABLE ir_module_module (id serial PRIMARY KEY, create_uid integer, create_date timestamp,
    write_date timestamp, write_uid integer, website varchar, summary jsonb, name varchar NOT NULL,
    author varchar, icon varchar, state varchar, latest_version varchar, shortdesc jsonb, category_id integer,
    description jsonb, application boolean DEFAULT false, demo boolean DEFAULT false, web boolean DEFAULT false,
    license varchar, sequence integer DEFAULT 100, auto_install boolean DEFAULT false,
    to_buy boolean DEFAULT false, maintainer varchar, published_version varchar, url varchar,
    contributors text, imported boolean, CONSTRAINT ir_module_module_name_uniq UNIQUE (name));
CREATE TABLE ir_module_module_dependency (id serial PRIMARY KEY, name varchar,
    module_id integer REFERENCES ir_module_module ON DELETE CASCADE, auto_install_required boolean DEFAULT true);
CREATE TABLE ir_model_data (id serial PRIMARY KEY, create_uid integer, create_date timestamp,
    write_date timestamp, write_uid integer, noupdate boolean DEFAULT false, name varchar NOT NULL,
    module varchar NOT NULL, model varchar NOT NULL, res_id integer);
CREATE TABLE res_partner (id serial PRIMARY KEY, name varchar, email varchar, active boolean DEFAULT true,
    company_id integer, create_date timestamp, write_date timestamp);
CREATE TABLE res_company (id serial PRIMARY KEY, name varchar NOT NULL, partner_id integer NOT NULL,
    create_date timestamp, write_date timestamp);
CREATE TABLE res_users (id serial PRIMARY KEY, company_id integer NOT NULL, partner_id integer NOT NULL,
    active boolean DEFAULT true, create_date timestamp, login varchar NOT NULL, password varchar,
    action_id integer, create_uid integer, write_uid integer, signature text, share boolean,
    write_date timestamp, CONSTRAINT res_users_login_key UNIQUE (login));
CREATE TABLE ir_act_server (id serial PRIMARY KEY, name jsonb NOT NULL, type varchar NOT NULL,
    usage varchar NOT NULL, state varchar NOT NULL, model_name varchar, code text, webhook_url varchar,
    create_date timestamp, write_date timestamp);
CREATE TABLE ir_cron (id serial PRIMARY KEY, ir_actions_server_id integer NOT NULL REFERENCES ir_act_server,
    user_id integer NOT NULL, interval_number integer, numbercall integer, priority integer,
    create_uid integer, write_uid integer, cron_name varchar, interval_type varchar, active boolean,
    doall boolean, nextcall timestamp NOT NULL, lastcall timestamp, create_date timestamp, write_date timestamp);
CREATE TABLE ir_config_parameter (id serial PRIMARY KEY, create_uid integer, write_uid integer,
    key varchar NOT NULL, value text NOT NULL, create_date timestamp, write_date timestamp,
    CONSTRAINT ir_config_parameter_key_uniq UNIQUE (key));
CREATE TABLE ir_mail_server (id serial PRIMARY KEY, smtp_port integer, sequence integer, create_uid integer,
    write_uid integer, name varchar NOT NULL, from_filter varchar, smtp_host varchar,
    smtp_authentication varchar NOT NULL DEFAULT 'login', smtp_user varchar, smtp_pass varchar,
    smtp_encryption varchar NOT NULL DEFAULT 'none', smtp_debug boolean, active boolean DEFAULT true,
    create_date timestamp, write_date timestamp);
CREATE TABLE ir_attachment (id serial PRIMARY KEY, res_id integer, company_id integer, file_size integer,
    create_uid integer, write_uid integer, name varchar NOT NULL, res_model varchar, res_field varchar,
    type varchar NOT NULL, url varchar, access_token varchar, store_fname varchar, checksum varchar,
    mimetype varchar, description text, index_content text, public boolean, create_date timestamp,
    write_date timestamp, db_datas bytea, original_id integer);
CREATE TABLE ir_ui_view (id serial PRIMARY KEY, name varchar NOT NULL, model varchar, key varchar,
    type varchar, arch_db jsonb, priority integer DEFAULT 16, mode varchar DEFAULT 'primary',
    active boolean DEFAULT true, create_date timestamp, write_date timestamp);
""",
    'bus': """
CREATE TABLE IF NOT EXISTS bus_bus (id serial PRIMARY KEY, channel varchar, message varchar,
    create_date timestamp, write_date timestamp);
""",
    'mail': """
CREATE TABLE IF NOT EXISTS mail_template (id serial PRIMARY KEY, name jsonb, model varchar,
    mail_server_id integer, create_date timestamp, write_date timestamp);
CREATE TABLE IF NOT EXISTS fetchmail_server (id serial PRIMARY KEY, name varchar NOT NULL,
    active boolean DEFAULT true, server varchar, port integer, server_type varchar, create_date timestamp,
    write_date timestamp);
CREATE TABLE IF NOT EXISTS mail_notification_web_push (id serial PRIMARY KEY, user_device integer,
    payload text, create_date timestamp, write_date timestamp);
CREATE TABLE IF NOT EXISTS mail_partner_device (id serial PRIMARY KEY, partner_id integer, endpoint varchar,
    keys varchar, create_date timestamp, write_date timestamp);
""",
}


class Cursor(psycopg2.extensions.cursor):
    """Counts queries, as Odoo's log counts them."""

    def execute(self, query, params=None):
        queries['count'] += 1
        return super().execute(query, params)


def connect(config: dict, dbname: str):
    """A connection as Odoo's pool makes one; logs as Odoo does when it fails."""
    params = {'dbname': dbname, 'application_name': f'odoo-{os.getpid()}'}
    for key in ('host', 'port', 'user', 'password', 'sslmode'):
        if config.get(f'db_{key}'):
            params[key] = config[f'db_{key}']
    try:
        connection = psycopg2.connect(cursor_factory=Cursor, **params)
        if dbname != 'postgres':
            connected.add(dbname)
        return connection
    except psycopg2.Error:
        _logger.info('Connection to the database failed')
        raise


def execute(cr, query, params=None, log_exceptions=True):
    try:
        cr.execute(query, params)
    except Exception as e:
        if log_exceptions:
            text = query.as_string(cr) if isinstance(query, sql.Composable) else query
            _logger.error("bad query: %s\nERROR: %s", text, e)
        raise


def table_exists(cr, table: str) -> bool:
    cr.execute("SELECT 1 FROM information_schema.tables WHERE table_name = %s "
               "AND table_schema = current_schema()", (table,))
    return bool(cr.fetchone())


def now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime('%Y-%m-%d %H:%M:%S')


def hash_password(password: str) -> str:
    """passlib's $pbkdf2-sha512$ format, which real Odoo can check."""
    salt = os.urandom(16)
    digest = hashlib.pbkdf2_hmac('sha512', password.encode(), salt, ROUNDS)

    def ab64(raw):
        return base64.b64encode(raw).decode().rstrip('=').replace('+', '.')

    return f'$pbkdf2-sha512${ROUNDS}${ab64(salt)}${ab64(digest)}'


def create_schema(cr, module: str) -> None:
    if module in SCHEMA:
        cr.execute(SCHEMA[module])


def init_base_records(cr, config: dict) -> None:
    """What base's installation leaves that OdooOps reads: the company, the
    superuser and admin (password admin), the database's identity."""
    stamp = now()
    cr.execute("INSERT INTO res_partner (id, name, company_id, create_date) VALUES "
               "(1, 'My Company', 1, %s), (2, 'OdooBot', 1, %s), (3, 'Mitchell Admin', 1, %s)",
               (stamp, stamp, stamp))
    cr.execute("SELECT setval('res_partner_id_seq', 3)")
    cr.execute("INSERT INTO res_company (id, name, partner_id, create_date) VALUES (1, 'My Company', 1, %s)",
               (stamp,))
    cr.execute("INSERT INTO res_users (id, login, password, active, company_id, partner_id, share, create_date) "
               "VALUES (1, '__system__', NULL, false, 1, 2, false, %s), (2, 'admin', %s, true, 1, 3, false, %s)",
               (stamp, hash_password('admin'), stamp))
    cr.execute("SELECT setval('res_users_id_seq', 2)")
    for name, model, res_id in (('main_company', 'res.company', 1), ('main_partner', 'res.partner', 1),
                                ('partner_root', 'res.partner', 2), ('partner_admin', 'res.partner', 3),
                                ('user_root', 'res.users', 1), ('user_admin', 'res.users', 2)):
        cr.execute("INSERT INTO ir_model_data (module, name, model, res_id, noupdate) "
                   "VALUES ('base', %s, %s, %s, true)",
                   (name, model, res_id))
    for key, value in (('web.base.url', f"http://localhost:{config['http_port']}"),
                       ('database.secret', str(uuid.uuid4())), ('database.uuid', str(uuid.uuid1())),
                       ('database.create_date', stamp)):
        cr.execute("INSERT INTO ir_config_parameter (key, value, create_date) VALUES (%s, %s, %s)",
                   (key, value, stamp))


class DataLoader:
    """Loads one data file of a module: XML records of the models below
    become rows (with their ir_model_data id), other records are skipped;
    .sql files are executed; .csv files are read for existence only."""

    def __init__(self, cr, module: str, find_file, filestore: str, mode: str):
        self.cr, self.module, self.find_file, self.filestore, self.mode = cr, module, find_file, filestore, mode

    def load(self, filename: str, noupdate: bool) -> None:
        path = self.find_file(f'{self.module}/{filename}')
        if filename.endswith('.sql'):
            with open(path, encoding='utf-8') as f:
                self.cr.execute(f.read())
        elif filename.endswith('.xml'):
            root = ET.parse(path).getroot()
            self._records(root, noupdate)

    def _records(self, node, noupdate: bool) -> None:
        for child in node:
            if child.tag == 'data':
                self._records(child, _boolean(child.get('noupdate'), noupdate))
            elif child.tag == 'record':
                self._record(child, noupdate)

    def _record(self, node, noupdate: bool) -> None:
        model, xmlid = node.get('model'), node.get('id')
        handler = getattr(self, '_' + model.replace('.', '_'), None)
        if handler is None:
            return
        module, _, name = xmlid.rpartition('.') if '.' in xmlid else (self.module, '', xmlid)
        self.cr.execute("SELECT res_id FROM ir_model_data WHERE module = %s AND name = %s", (module, name))
        if self.cr.fetchone():
            return  # already there: the stand-in does not rewrite records on update
        values = {}
        for field in node.findall('field'):
            if field.get('eval') is not None:
                values[field.get('name')] = _boolean(field.get('eval'), None)
            elif field.get('file'):
                values[field.get('name')] = ('file', field.get('file'))
            elif field.get('ref') is None:
                values[field.get('name')] = (field.text or '').strip()
        res_id = handler(values)
        self.cr.execute("INSERT INTO ir_model_data (module, name, model, res_id, noupdate, create_date) "
                        "VALUES (%s, %s, %s, %s, %s, %s)", (module, name, model, res_id, noupdate, now()))

    def _ir_cron(self, values):
        self.cr.execute("INSERT INTO ir_act_server (name, type, usage, state, model_name, code, create_date) "
                        "VALUES (%s, 'ir.actions.server', 'ir_cron', 'code', %s, %s, %s) RETURNING id",
                        (json.dumps({'en_US': values.get('name', '')}), values.get('model_name'),
                         values.get('code'), now()))
        action = self.cr.fetchone()[0]
        self.cr.execute("INSERT INTO ir_cron (ir_actions_server_id, user_id, cron_name, active, interval_number, "
                        "interval_type, numbercall, priority, doall, nextcall, create_date) "
                        "VALUES (%s, 1, %s, %s, %s, %s, %s, %s, false, %s, %s) RETURNING id",
                        (action, values.get('name', ''), values.get('active', True) is not False,
                         int(values.get('interval_number') or 1), values.get('interval_type') or 'months',
                         int(values.get('numbercall') or -1), int(values.get('priority') or 5), now(), now()))
        return self.cr.fetchone()[0]

    def _res_users(self, values):
        self.cr.execute("INSERT INTO res_partner (name, email, company_id, create_date) VALUES (%s, %s, 1, %s) "
                        "RETURNING id", (values.get('name') or values.get('login'), values.get('email'), now()))
        partner = self.cr.fetchone()[0]
        password = values.get('password')
        self.cr.execute("INSERT INTO res_users (login, password, active, company_id, partner_id, share, create_date) "
                        "VALUES (%s, %s, %s, 1, %s, false, %s) RETURNING id",
                        (values['login'], hash_password(password) if password else None,
                         values.get('active', True) is not False, partner, now()))
        return self.cr.fetchone()[0]

    def _ir_config_parameter(self, values):
        self.cr.execute("INSERT INTO ir_config_parameter (key, value, create_date) VALUES (%s, %s, %s) "
                        "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value RETURNING id",
                        (values['key'], values.get('value', ''), now()))
        return self.cr.fetchone()[0]

    def _ir_mail_server(self, values):
        self.cr.execute("INSERT INTO ir_mail_server (name, smtp_host, smtp_port, smtp_user, smtp_pass, "
                        "smtp_encryption, active, sequence, create_date) VALUES (%s, %s, %s, %s, %s, %s, %s, 10, %s) "
                        "RETURNING id", (values['name'], values.get('smtp_host'), int(values.get('smtp_port') or 25),
                                         values.get('smtp_user'), values.get('smtp_pass'),
                                         values.get('smtp_encryption') or 'none',
                                         values.get('active', True) is not False, now()))
        return self.cr.fetchone()[0]

    def _ir_ui_view(self, values):
        self.cr.execute("INSERT INTO ir_ui_view (name, model, key, type, arch_db, active, create_date) "
                        "VALUES (%s, %s, %s, 'qweb', %s, %s, %s) RETURNING id",
                        (values.get('name', ''), values.get('model'), values.get('key') or None,
                         json.dumps({'en_US': values.get('arch', '')}), values.get('active', True) is not False,
                         now()))
        return self.cr.fetchone()[0]

    def _ir_attachment(self, values):
        """Stored in the filestore as real Odoo stores attachments:
        <data-dir>/filestore/<db>/<first two hex digits>/<sha1>."""
        _, source = values.get('datas', ('', ''))
        with open(self.find_file(source), 'rb') as f:
            content = f.read()
        checksum = hashlib.sha1(content).hexdigest()  # the filestore names files so, as Odoo's
        fname = f'{checksum[:2]}/{checksum}'
        full = os.path.join(self.filestore, fname)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        if not os.path.exists(full):
            with open(full, 'wb') as f:
                f.write(content)
        self.cr.execute("INSERT INTO ir_attachment (name, type, store_fname, checksum, mimetype, file_size, "
                        "res_model, public, create_date) VALUES (%s, 'binary', %s, %s, %s, %s, %s, %s, %s) "
                        "RETURNING id", (values.get('name') or os.path.basename(source), fname, checksum,
                                         mimetypes.guess_type(source)[0] or 'application/octet-stream',
                                         len(content), values.get('res_model'), values.get('public', False) is True,
                                         now()))
        return self.cr.fetchone()[0]


def _boolean(text, default):
    if text is None:
        return default
    booleans = {'1': True, 'True': True, 'true': True, '0': False, 'False': False, 'false': False}
    return booleans.get(text.strip(), text.strip())
